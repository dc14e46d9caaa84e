"""Fig. 17: the tanh network on parity behaves like the ReLU one (Figs. 4, 6 and 7 again).

The run uses the paper's App. D.6 setting: tanh units, gain 0.01, lr 0.05.

    python examples/fig17_tanh.py OUT_DIR [--run runs/tanh]
"""

from __future__ import annotations

from _common import get_timeline, parse, save
from matplotlib.figure import Figure

from dfalens import plots
from dfalens.timeline import load_history, merged_fraction


def main() -> None:
    args = parse(__doc__.splitlines()[0], run="tanh")
    tl = get_timeline(args.run)
    last = int(tl.epochs[-1])
    h = load_history(args.run, epochs=[last])
    frac, agreeing, disagreeing = merged_fraction(
        h.hidden[0], h.parent, h.symbol, h.depth, h.task, 0.01 * tl.settings["scale"]
    )
    fig = Figure(figsize=(15, 4.0), layout="constrained")
    a, b, c = fig.subplots(1, 3, width_ratios=[1.0, 1.3, 0.8])
    plots.training_curves(tl, ax=a)
    plots.timeline_plot(tl, ax=b)
    plots.length_heatmap(frac, ax=c, title=f"agreeing pairs merged ({disagreeing} disagreeing)")
    save(fig, args.out_dir, "fig17_tanh.png")
    print(
        f"memorisation {tl.memorisation_epoch}, merger {tl.merger_epoch}, generalisation "
        f"{tl.generalisation_epoch}; merged pairs {agreeing} agreeing, {disagreeing} disagreeing"
    )


if __name__ == "__main__":
    main()
