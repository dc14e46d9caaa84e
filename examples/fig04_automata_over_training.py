"""Fig. 4: the automaton extracted at several epochs, with the training curves.

The extraction first grows into a tree that memorises the training words, then its states merge until it
is a finite automaton, and that is when the network generalises.

    python examples/fig04_automata_over_training.py OUT_DIR [--run runs/paper] [--epochs 0 300 ...]
"""

from __future__ import annotations

import numpy as np
from _common import get_timeline, parse, save
from matplotlib.figure import Figure

from dfalens import plots


def pick_epochs(tl) -> list[int]:  # noqa: ANN001
    """The start, the largest tree, the merger (or the end) and the end."""
    raw = tl.column("states_raw")
    picks = {int(tl.epochs[0]), int(tl.epochs[int(np.argmax(raw))]), int(tl.epochs[-1])}
    if tl.merger_epoch is not None:
        picks.add(int(tl.merger_epoch))
    return sorted(picks)


def main() -> None:
    epochs = {
        "nargs": "+",
        "type": int,
        "help": "epochs to draw (default: picked from the timeline)",
    }
    args = parse(__doc__.splitlines()[0], options={"--epochs": epochs})
    tl = get_timeline(args.run, machines=True)
    picks = args.epochs or pick_epochs(tl)
    fig = Figure(figsize=(3.6 * len(picks), 7.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 0.9])
    plots.snapshots(tl, picks, ax=top.subplots(1, len(picks)))
    plots.training_curves(tl, ax=bottom.subplots())
    save(fig, args.out_dir, "fig04_automata_over_training.png")


if __name__ == "__main__":
    main()
