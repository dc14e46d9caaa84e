"""Fig. 1: trained on words up to length 10, the network ends up right on words of any length.

Left: a few training words and a long test word with their parity. Right: the loss on the training set and
on random test words of lengths 25 ... 10,000 over training.

    python examples/fig01_generalisation.py OUT_DIR [--run runs/paper]
"""

from __future__ import annotations

import numpy as np
from _common import get_timeline, parse, save
from matplotlib.figure import Figure

from dfalens import plots
from dfalens.automata import parity, run


def main() -> None:
    args = parse(__doc__.splitlines()[0])
    tl = get_timeline(args.run)
    rng = np.random.default_rng(0)
    train_words = ["1", "01", "110", "1011", "0110100", "1110010011"]
    long_word = "".join(rng.choice(["0", "1"], size=60))
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[0.8, 1.2])
    left.axis("off")
    lines = ["training words (length 1 to 10)"]
    lines += [f"  {w:<12} -> {int(run(parity(), [w])[0])}" for w in train_words]
    lines += [
        "",
        "test word (length 25 ... 10,000)",
        f"  {long_word[:30]}",
        f"  {long_word[30:]}...",
    ]
    left.text(0.0, 1.0, "\n".join(lines), family="monospace", va="top", fontsize=9)
    left.set_title("streaming parity: output 1 after an odd number of 1s", fontsize="small")
    plots.loss_by_length(tl, ax=right)
    right.set_title("loss during training, by test length (Fig. 1)", fontsize="small")
    save(fig, args.out_dir, "fig01_generalisation.png")


if __name__ == "__main__":
    main()
