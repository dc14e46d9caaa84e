"""Fig. 7: which pairs of words ended up merged, by the lengths of the two words.

For every pair of training words that agree on all futures (same state of the minimal parity machine),
whether their hidden states are closer than eps at the final checkpoint. Pairs of short words never merge;
merging starts once both words are long enough. The paper found no merged pair that disagrees.

    python examples/fig07_merged_pairs.py OUT_DIR [--run runs/paper]
"""

from __future__ import annotations

from _common import get_timeline, parse, save
from matplotlib.figure import Figure

from dfalens import plots
from dfalens.timeline import load_history, merged_fraction


def main() -> None:
    args = parse(__doc__.splitlines()[0])
    tl = get_timeline(args.run)  # its pooled scale: the norm of the per-unit std over all epochs
    eps = 0.01 * tl.settings["scale"]
    last = int(tl.epochs[-1])
    h = load_history(args.run, epochs=[last])
    frac, agreeing, disagreeing = merged_fraction(
        h.hidden[0], h.parent, h.symbol, h.depth, h.task, eps
    )
    print(f"merged pairs at epoch {last}: {agreeing} agreeing, {disagreeing} disagreeing")
    fig = Figure(figsize=(5.2, 4.2), layout="constrained")
    plots.length_heatmap(
        frac,
        ax=fig.subplots(),
        title=f"agreeing pairs merged at epoch {last} ({agreeing} pairs, {disagreeing} disagreeing)",
    )
    save(fig, args.out_dir, "fig07_merged_pairs.png")


if __name__ == "__main__":
    main()
