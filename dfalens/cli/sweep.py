"""``dfalens sweep``: the phase diagram (Fig. 9) and grids over any training setting, on any executor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dfalens import plots
from dfalens._files import writing
from dfalens.cli._signals import set_kept
from dfalens.errors import ConfigError
from dfalens.sweeps.grid import parse_grid_items, run_grid
from dfalens.sweeps.phase_diagram import axis_values, phase_config, run_phase_diagram
from dfalens.trainers.loop import resolve_device

EXECUTOR_HELP = (
    "Where cells run: 'local' (worker processes), 'local-dask' (a Dask LocalCluster) or "
    "'dask://HOST:PORT' (an existing Dask scheduler; its workers need dfalens)."
)


def _progress(label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm bar over cells (off when stderr is not a terminal) and its closer."""
    from tqdm.auto import tqdm

    bar: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, initial=done, unit="cell", desc=label, disable=None)
        else:
            bar["bar"].update(done - bar["bar"].n)

    def close() -> None:
        if "bar" in bar:
            bar["bar"].close()

    return update, close


def _shared_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every sweep takes: where cells run, whether models are kept, the output folder."""
    options = [
        click.option("--executor", default="local", show_default=True, help=EXECUTOR_HELP),
        click.option(
            "--jobs", type=int, default=None, help="Parallel tasks (default: all usable CPUs)."
        ),
        click.option(
            "--save-models/--no-save-models",
            default=True,
            show_default=True,
            help="Keep each cell's final model under DIR/models/.",
        ),
        click.option(
            "-o",
            "--out",
            "out",
            required=True,
            type=click.Path(path_type=Path),
            help="Sweep directory.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group("sweep")
def sweep() -> None:
    """Train many networks: the phase diagram, or a grid over training settings.

    Results go to DIR/results.csv, one row per cell, written as cells finish; rerunning the same command
    resumes (finished cells are skipped). A DIR holding a different sweep is refused.
    """


@sweep.command(
    "phase-diagram", short_help="The data fraction x initial gain phase diagram (Fig. 9)."
)
@click.option(
    "--resolution",
    default=20,
    show_default=True,
    type=int,
    help="N x N grid of data fraction x initial gain over linspace(0.1, 1.0).",
)
@click.option(
    "--seeds", default=1, show_default=True, type=int, help="Seeds per cell (seeds 0..S-1)."
)
@click.option(
    "--max-epochs",
    default=1_000_000,
    show_default=True,
    type=int,
    help="Epoch cap of every cell (cells stop earlier at training loss < 1e-3).",
)
@click.option(
    "--members",
    type=int,
    default=None,
    help="Cells trained together per task (default: spread evenly, at most 400).",
)
@click.option(
    "--fraction-range",
    nargs=2,
    type=float,
    default=(0.1, 1.0),
    show_default=True,
    help="Lowest and highest training data fraction.",
)
@click.option(
    "--gain-range",
    nargs=2,
    type=float,
    default=(0.1, 1.0),
    show_default=True,
    help="Lowest and highest initial Xavier gain.",
)
@click.option("--hidden", default=100, show_default=True, type=int, help="Hidden units.")
@click.option(
    "--eps",
    default=0.1,
    show_default=True,
    type=float,
    help="Extraction threshold relative to the state scale.",
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True
)
@click.option(
    "--batched/--no-batched",
    default=True,
    show_default=True,
    help="Train the cells of a task together with stacked parameters.",
)
@_shared_options
def phase_diagram(
    resolution: int,
    seeds: int,
    max_epochs: int,
    executor: str,
    jobs: int | None,
    members: int | None,
    fraction_range: tuple[float, float],
    gain_range: tuple[float, float],
    hidden: int,
    eps: float,
    device: str,
    batched: bool,
    save_models: bool,
    out: Path,
) -> int:
    """Fig. 9: train every (data fraction, gain, seed) cell to convergence and extract its automaton.

    Each cell trains the paper's ReLU RNN with SGD (lr 0.02, cross-entropy) until the training loss is
    below 1e-3, extracts its automaton (threshold 0.1 x state scale over all words up to length 10) and
    scores it on 30 words of length 100. Writes DIR/results.csv and DIR/phase_diagram.png.
    """

    resolve_device(device)  # a missing GPU is refused here, not in every worker
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    if max_epochs < 1:
        raise ConfigError(f"--max-epochs must be at least 1, got {max_epochs}")
    if fraction_range[1] > 1:
        raise ConfigError(f"data fractions must be at most 1, got {fraction_range[1]}")
    fractions = axis_values(resolution, *fraction_range)
    gains = axis_values(resolution, *gain_range)
    config = phase_config(max_epochs, hidden=hidden, device=device)
    set_kept(f"the finished cells in {out / 'results.csv'}; rerun the same command to resume")
    update, close = _progress("phase diagram")
    try:
        rows = run_phase_diagram(
            out,
            fractions=fractions,
            gains=gains,
            seeds=range(seeds),
            config=config,
            eps=eps,
            executor=executor,
            jobs=jobs,
            members=members,
            batched=batched,
            save_models=save_models,
            progress=update,
        )
    finally:
        close()
    with writing(out / "phase_diagram.png", f"every cell in {out / 'results.csv'}"):
        plots.save_figure(plots.plot_phase_diagram(rows), out / "phase_diagram.png")
    n = len(rows)
    converged = sum(r["converged"] == "true" for r in rows)
    solved = sum(r["equivalent"] == "true" for r in rows)
    perfect = sum(float(r["val_accuracy"]) == 1.0 for r in rows)
    click.echo(f"wrote {out / 'results.csv'} ({n} cells) and {out / 'phase_diagram.png'}")
    click.echo(
        f"converged {converged}/{n}, closed and equivalent {solved}/{n}, "
        f"validation accuracy 1.0 in {perfect}/{n}"
    )
    return 0


@sweep.command("grid", short_help="A grid over any training settings.")
@click.option(
    "--grid",
    "items",
    multiple=True,
    metavar="KEY=VALUES",
    help="An axis over a training setting: 'hidden=32,64,100', 'seed=0..9', "
    "'gain=0.1..1:10'. Repeat for more axes.",
)
@click.option("--task", default=None, help="Task name (default: the preset's, parity).")
@click.option("--preset", default="paper", show_default=True, help="Base settings.")
@click.option(
    "--batched",
    is_flag=True,
    help="Train cells differing only in seed, gain, data_fraction or lr together.",
)
@click.option("--members", type=int, default=None, help="Cells per batched task.")
@click.option(
    "--eps",
    type=float,
    default=None,
    help="Extract with threshold clustering at this relative eps (default: the "
    "extraction's automatic strategy).",
)
@click.option(
    "--extract/--no-extract",
    default=True,
    show_default=True,
    help="Extract each final model's automaton.",
)
@_shared_options
def grid(
    items: tuple[str, ...],
    task: str | None,
    preset: str,
    executor: str,
    jobs: int | None,
    batched: bool,
    members: int | None,
    eps: float | None,
    extract: bool,
    save_models: bool,
    out: Path,
) -> int:
    """Train one network per combination of the grid and tabulate losses, accuracies and automata.

    Keys are training settings (those of `dfalens train`): task, cell, hidden, layers, nonlinearity, h0,
    gain, optimizer, lr, batch_size, loss, max_len, data_fraction, epochs, stop_loss, seed, ...
    """

    axes = parse_grid_items(list(items))
    set_kept(f"the finished cells in {out / 'results.csv'}; rerun the same command to resume")
    update, close = _progress("grid")
    try:
        rows = run_grid(
            out,
            axes,
            preset=preset,
            base={"task": task} if task else None,
            extract=extract,
            eps=eps,
            batched=batched,
            members=members,
            executor=executor,
            jobs=jobs,
            save_models=save_models,
            progress=update,
        )
    finally:
        close()
    click.echo(f"wrote {out / 'results.csv'} ({len(rows)} rows)")
    return 0
