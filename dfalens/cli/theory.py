"""``dfalens theory``: fit the effective theory on a run's early checkpoints and predict its mergers."""

from __future__ import annotations

from pathlib import Path

import click

from dfalens import plots
from dfalens._files import DirectoryLock, check_output_dir, refuse_existing, writing
from dfalens.cli._signals import set_kept
from dfalens.theory.run import theory_run, write_theory


@click.command("theory")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Where to write theory.json, theory.txt and the figures.",
)
@click.option("--task", help="Ground truth (default: the run's task from run.json).")
@click.option(
    "--fraction",
    default=0.5,
    show_default=True,
    type=float,
    help="Fit on the checkpoints of this first fraction of training; predict the last checkpoint.",
)
@click.option(
    "--rates",
    type=click.Choice(["pooled", "pair"]),
    default="pooled",
    show_default=True,
    help="One rate pair for the network (k_h ∝ m1 + m2, k_y ∝ 1/N) or rates fitted per pair.",
)
@click.option(
    "--max-pairs", default=2000, show_default=True, type=int, help="Random pairs of training words."
)
@click.option(
    "--eps",
    default=0.01,
    show_default=True,
    type=float,
    help="Merge distance, relative to the norm of the per-unit std pooled over the checkpoints.",
)
@click.option(
    "--checkpoints",
    "n_checkpoints",
    default=201,
    show_default=True,
    type=int,
    help="Load at most this many checkpoints, evenly spread (0: all).",
)
@click.option(
    "--no-refine", is_flag=True, help="Closed-form rate estimates only (no ODE least squares)."
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seeds the pair sample.")
@click.option(
    "--force", is_flag=True, help="Replace a theory report already in the output directory."
)
def theory(
    run_dir: Path,
    out_dir: Path,
    task: str | None,
    fraction: float,
    rates: str,
    max_pairs: int,
    eps: float,
    n_checkpoints: int,
    no_refine: bool,
    seed: int,
    force: bool,
) -> int:
    """Predict which pairs of hidden states merge, from the first part of a run, and score it.

    Writes DIR/theory.json (n_pairs, precision, recall, confusion, fit, settings, ...), DIR/theory.txt
    and DIR/theory_*.png. Exits 2 with a one-line message when the run cannot be fitted.
    """
    import torch

    torch.set_num_threads(1)
    figures = {
        "theory_fig10.png": plots.plot_fig10,
        "theory_prediction.png": plots.plot_prediction,
        "theory_fits.png": plots.plot_pair_fits,
    }
    names = ["theory.json", "theory.txt", *figures]
    check_output_dir(out_dir)
    refuse_existing(out_dir, names, force)
    set_kept("nothing was written; rerun the same command")
    result = theory_run(
        run_dir,
        task=task,
        fraction=fraction,
        rates=rates,
        max_pairs=max_pairs,
        eps=eps,
        n_checkpoints=None if n_checkpoints == 0 else n_checkpoints,
        refine=not no_refine,
        seed=seed,
    )
    with (
        DirectoryLock(out_dir, name=".theory.lock"),
        writing(out_dir, "no report", [out_dir / n for n in names]),
    ):
        refuse_existing(out_dir, names, force)  # again: another process may have written them
        write_theory(result, out_dir)
        fitted = result.fitted and result.prediction is not None
        for name, draw in figures.items():
            if fitted:
                plots.save_figure(draw(result), out_dir / name, dpi=110)
            else:  # no figures for an unfitted run: none left from an earlier one either
                (out_dir / name).unlink(missing_ok=True)
    click.echo(result.report(), nl=False)
    click.echo(f"wrote {out_dir / 'theory.json'}")
    if not result.fitted:
        click.echo(f"error: not fitted: {result.message}", err=True)
        return 2
    return 0
