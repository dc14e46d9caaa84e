"""ICML 2024 check of the effective theory: an MLP on two points, the 5 x 5 grid, and XOR rich vs lazy.

    python examples/theory_twopoint.py OUT_DIR                      # the small CPU variant (minutes)
    python examples/theory_twopoint.py OUT_DIR --variant default    # 20 x 500 leaky-ReLU (hours on a CPU)

Writes twopoint_fit.png (measured H, Y, W with the fitted ODE), twopoint_grid.png (theory vs experiment
final distance on the grid of input and target distances), xor.png (final distance matrices, rich and
lazy) and twopoint.json with the numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from dfalens import (
    plots,  # noqa: E402
    theory,  # noqa: E402
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--variant", choices=sorted(theory.SPECS), default="small")
    parser.add_argument(
        "--seeds", type=int, default=1, help="two-point runs averaged for the rates"
    )
    parser.add_argument("--grid", type=int, default=5, help="grid size per axis (paper: 5)")
    parser.add_argument("--grid-epochs", type=int, default=None, help="epoch cap per grid cell")
    parser.add_argument("--lr-factor", type=float, default=0.4, help="grid lr / fit lr (paper 0.4)")
    parser.add_argument(
        "--grid-values",
        type=str,
        default=None,
        help="comma-separated subset of the grid positions to run, e.g. 0,2,4",
    )
    parser.add_argument(
        "--eta",
        type=float,
        nargs=2,
        metavar=("ETA_H", "ETA_Y"),
        help="skip the two-point fit and use these rates",
    )
    parser.add_argument("--no-grid", action="store_true")
    parser.add_argument("--no-xor", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    spec = theory.SPECS[args.variant]
    summary: dict = {"variant": args.variant, "spec": spec.__dict__}

    t0 = time.perf_counter()
    if args.eta:
        eta_h, eta_y, runs = args.eta[0], args.eta[1], []
    else:
        eta_h, eta_y, runs = theory.fit_two_point_rates(spec, seeds=range(args.seeds))
    summary["fit"] = {
        "eta_h": eta_h,
        "eta_y": eta_y,
        "runs": [
            {
                "seed": r.settings["seed"],
                "eta_h": r.eta_h,
                "eta_y": r.eta_y,
                "fit_error": float(r.fit.fit_error[0]) if r.fitted else None,
                "reason": r.fit.reason[0],
                "final_loss": float(r.loss[-1]),
            }
            for r in runs
        ],
        "seconds": time.perf_counter() - t0,
    }
    print(f"rates: eta_h = {eta_h:.4g}, eta_y = {eta_y:.4g} ({summary['fit']['seconds']:.0f} s)")
    if runs:
        plots.save_figure(
            plots.plot_twopoint_fit(runs[0]), args.out_dir / "twopoint_fit.png", dpi=90
        )

    if not args.no_grid:
        import numpy as np

        t0 = time.perf_counter()
        dxs, dys = np.linspace(0.5, 1.5, args.grid), np.linspace(0.0, 1.0, args.grid)
        if args.grid_values:
            keep = [int(v) for v in args.grid_values.split(",")]
            dxs, dys = dxs[keep], dys[keep]
        grid = theory.two_point_grid(
            spec,
            eta_h,
            eta_y,
            dxs=tuple(dxs),
            dys=tuple(dys),
            lr_factor=args.lr_factor,
            max_epochs=args.grid_epochs or 40_000,
        )
        summary["grid"] = grid.to_dict() | {"seconds": time.perf_counter() - t0}
        print(
            f"grid: {int(grid.kept.sum())}/{grid.dx.size} runs kept, median relative error "
            f"{grid.median_relative_error}, Pearson r {grid.pearson}"
        )
        plots.save_figure(
            plots.plot_twopoint_grid(grid), args.out_dir / "twopoint_grid.png", dpi=90
        )

    if not args.no_xor:
        t0 = time.perf_counter()
        xor = theory.xor_experiment(args.variant)
        summary["xor"] = xor.to_dict() | {"seconds": time.perf_counter() - t0}
        for name in xor.settings_names:
            print(f"xor {name}: correlation theory/experiment {xor.correlation[name]}")
        plots.save_figure(plots.plot_xor(xor), args.out_dir / "xor.png", dpi=90)

    (args.out_dir / "twopoint.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(args.out_dir / "twopoint.json")


if __name__ == "__main__":
    main()
