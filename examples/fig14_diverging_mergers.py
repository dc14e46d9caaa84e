"""Fig. 14: the fraction of final mergers that were once more than 10 eps apart, by word lengths.

Agreeing pairs of unequal length often move apart before they merge (the effective theory predicts this
when their learning rates differ, which scales with length); same-length pairs rarely do.

    python examples/fig14_diverging_mergers.py OUT_DIR [--run runs/paper] [--max-pairs 20000]
"""

from __future__ import annotations

from _common import get_timeline, parse, save
from matplotlib.figure import Figure

from dfalens import plots
from dfalens.timeline import diverged_fraction, load_history


def main() -> None:
    limit = {"type": int, "default": 20000, "help": "most merged pairs followed"}
    args = parse(__doc__.splitlines()[0], options={"--max-pairs": limit})
    max_pairs = args.max_pairs
    tl = get_timeline(args.run)
    h = load_history(args.run)
    eps = 0.01 * tl.settings["scale"]
    frac = diverged_fraction(h.hidden, h.depth, eps, factor=10.0, max_pairs=max_pairs, seed=0)
    den = frac.denominator  # symmetric; off-diagonal pairs are counted in both cells
    followed = (int(den.sum()) + int(den.trace())) // 2
    print(f"{followed} final mergers followed; eps = {eps:.4g}")
    fig = Figure(figsize=(5.2, 4.2), layout="constrained")
    plots.length_heatmap(
        frac, ax=fig.subplots(), title="final mergers once > 10 eps apart", cmap="viridis"
    )
    save(fig, args.out_dir, "fig14_diverging_mergers.png")


if __name__ == "__main__":
    main()
