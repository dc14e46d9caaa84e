"""Fig. 10 and the merger prediction: the effective theory fitted on the first part of a run.

    python examples/theory_fig10.py OUT_DIR --run runs/paper [--fractions 0.5 0.55 0.6] [--rates pooled]

Left panel of Fig. 10: the 9-variable fixed-expansion-point model for an agreeing and a disagreeing pair
of lengths 1 and 10 (agreeing pairs first move apart, then merge). Right panel: a merged agreeing pair and
a disagreeing pair of the run. For each fit fraction the script also writes the prediction scatter and the
fitted trajectories, and prints precision / recall of the predicted mergers next to the baselines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ensure_run  # noqa: E402

from dfalens import plots  # noqa: E402
from dfalens.theory import theory_run, write_theory  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--run", type=Path, default=Path("runs") / "paper")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.5])
    parser.add_argument("--rates", choices=["pooled", "pair"], default="pooled")
    parser.add_argument("--max-pairs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ensure_run(args.run, "paper", 0)
    rows = []
    for fraction in args.fractions:
        t0 = time.perf_counter()
        result = theory_run(
            args.run, fraction=fraction, rates=args.rates, max_pairs=args.max_pairs, seed=args.seed
        )
        out = args.out_dir / f"{args.rates}_{fraction:g}"
        write_theory(result, out)
        if result.fitted:
            for name, draw in (
                ("theory_fig10.png", plots.plot_fig10),
                ("theory_prediction.png", plots.plot_prediction),
                ("theory_fits.png", plots.plot_pair_fits),
            ):
                plots.save_figure(draw(result), out / name, dpi=110)
        seconds = time.perf_counter() - t0
        print(result.report(), end="")
        print(f"({seconds:.0f} s) -> {out}\n")
        data = result.to_dict()
        rows.append(
            {
                "fraction": fraction,
                "t_cut": data["t_cut"],
                "theory": {k: data[k] for k in ("precision", "recall", "spearman", "confusion")},
                "baselines": data["baselines"],
                "seconds": seconds,
            }
        )
    (args.out_dir / f"summary_{args.rates}.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
