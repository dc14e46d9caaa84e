"""Fig. 4: the automaton extracted at several epochs, with the training curves.

The extraction first grows into a tree that memorises the training words, then its states merge until it
is a finite automaton, and that is when the network generalises.

    python examples/fig04_automata_over_training.py OUT_DIR [--run runs/paper] [--epochs 0 300 ...]
"""

from __future__ import annotations

from _common import get_timeline, parse, save
from matplotlib.figure import Figure

from dfalens import plots


def main() -> None:
    epochs = {
        "nargs": "+",
        "type": int,
        "help": "epochs to draw (default: picked from the timeline)",
    }
    args = parse(__doc__.splitlines()[0], options={"--epochs": epochs})
    tl = get_timeline(args.run, machines=True)
    picks = args.epochs or plots.snapshot_epochs(tl)
    fig = Figure(figsize=(3.6 * len(picks), 7.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 0.9])
    plots.snapshots(tl, picks, fig=top)
    plots.training_curves(tl, ax=bottom.subplots())
    save(fig, args.out_dir, "fig04_automata_over_training.png")


if __name__ == "__main__":
    main()
