"""Fig. 6: test loss per length over training, with the state counts and the three epochs.

The loss stays flat while the training loss falls, then drops for every length at once, when the
extracted automaton closes and is equivalent to parity (the shaded band).

    python examples/fig06_loss_by_length.py OUT_DIR [--run runs/paper]
"""

from __future__ import annotations

from _common import get_timeline, parse, save
from matplotlib.figure import Figure

from dfalens import plots


def main() -> None:
    args = parse(__doc__.splitlines()[0])
    tl = get_timeline(args.run)
    fig = Figure(figsize=(8.5, 4.6), layout="constrained")
    plots.timeline_plot(tl, ax=fig.subplots())
    save(fig, args.out_dir, "fig06_loss_by_length.png")
    print(
        f"memorisation {tl.memorisation_epoch}, merger {tl.merger_epoch}, "
        f"generalisation {tl.generalisation_epoch}"
    )


if __name__ == "__main__":
    main()
