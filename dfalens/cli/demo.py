"""``dfalens demo``: train a parity RNN on the CPU and watch it become the two-state automaton.

The demo trains the paper's network and optimiser (one layer of ReLU units, h0 = ones, Xavier-normal
gain 0.1, plain SGD, MSE on the output after the last symbol, batches of 128 words of one length) at a
size that finishes in about a minute on two cores: 64 units, every word up to length 8 (510 words),
learning rate 0.05, 400 epochs, a checkpoint every 5 epochs, tests at lengths 25, 100 and 1000. The
paper's own setting (100 units, words up to length 10, lr 0.02, 1000 epochs, tests up to length 10,000 at
every epoch) took 49 minutes on a loaded 2-core machine; ``--paper`` runs it. Both show the same story:
the extraction first grows into a prefix tree that memorises the training words, then its states merge
until it closes into an automaton equivalent to parity, and the network generalises to every length at
once.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import click

from dfalens import plots
from dfalens._files import DirectoryLock, check_output_dir, writing
from dfalens.automata import minimize, render
from dfalens.automata.rendering import RenderWarning
from dfalens.cli._format import epoch_text
from dfalens.cli._signals import set_kept
from dfalens.errors import ConfigError, DfalensError
from dfalens.plots.report import run_report
from dfalens.timeline.timelines import timeline
from dfalens.trainers import checkpoints as ck
from dfalens.trainers import load_run, make_config, train

DEMO_SETTINGS: dict[str, Any] = {
    "task": "parity",
    "hidden": 64,
    "max_len": 8,
    "lr": 0.05,
    "epochs": 400,
    "checkpoints": "every:5",
    "test_lengths": (25, 100, 1000),
    "seed": 0,
}
"""Changes to the ``paper`` preset that make the demo fast on a CPU."""


def demo_config(paper: bool = False, seed: int = 0) -> Any:
    """The demo's training settings (the ``paper`` preset itself with ``paper=True``)."""

    if paper:
        return make_config("paper", task="parity", seed=seed)
    return make_config("paper", **{**DEMO_SETTINGS, "seed": seed})


def _finished(run_dir: Path, config: Any) -> bool:
    """A complete run with exactly these settings is already in ``run_dir``."""

    try:
        run = load_run(run_dir)
    except DfalensError:
        return False
    return run.config == config and run.epochs_done >= config.epochs


def _holds_run(run_dir: Path) -> bool:
    """Any dfalens run files in ``run_dir``."""
    return any((run_dir / name).exists() for name in (ck.RUN_JSON, ck.METRICS, ck.CHECKPOINT_DIR))


def _same_settings(run_dir: Path, config: Any) -> bool:
    """The run in ``run_dir`` was started with ``config`` (so it can be continued)."""
    try:
        run = load_run(run_dir)
    except DfalensError:
        return False
    return run.config == config


def _render(machine: Any, path: Path) -> tuple[Path, str | None]:

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RenderWarning)
        written = render(machine, path)
    hint = next((str(w.message) for w in caught if issubclass(w.category, RenderWarning)), None)
    return written, hint


@click.command("demo")
@click.option(
    "-o",
    "--out",
    "out_dir",
    default="demo-out",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Output directory (the run goes to OUT/run).",
)
@click.option(
    "--paper",
    is_flag=True,
    help="Train the paper's exact setting (1000 epochs: tens of minutes on a CPU).",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Training seed.")
@click.option("--retrain", is_flag=True, help="Train again even if OUT/run holds the finished run.")
@click.option("--jobs", type=int, help="Worker processes for the timeline (default: automatic).")
def demo(out_dir: Path, paper: bool, seed: int, retrain: bool, jobs: int | None) -> int:
    """Train a parity RNN on the CPU, then show when it became the 2-state automaton.

    Writes OUT/run (the training run), OUT/timeline.csv and .json, OUT/timeline.png (training curves,
    per-checkpoint states and automaton snapshots), the final automaton, raw and minimal, as SVG, and
    OUT/report.html (the interactive report: see `dfalens report`).
    """

    check_output_dir(out_dir)
    started = time.perf_counter()
    run_dir = out_dir / "run"
    config = demo_config(paper, seed)
    with DirectoryLock(out_dir, name=".demo.lock"), writing(out_dir, f"the run in {run_dir}"):
        return _demo(out_dir, run_dir, config, paper, retrain, jobs, started)


def _demo(
    out_dir: Path,
    run_dir: Path,
    config: Any,
    paper: bool,
    retrain: bool,
    jobs: int | None,
    started: float,
) -> int:
    if not retrain and _finished(run_dir, config):
        click.echo(f"reusing the finished run in {run_dir} (pass --retrain to train again)")
    else:
        resume = not retrain and _holds_run(run_dir)
        if resume and not _same_settings(run_dir, config):
            raise ConfigError(
                f"{run_dir} holds a run with other settings; pass --retrain to replace it or "
                "choose another -o"
            )
        what = "the paper's setting" if paper else "a small version of the paper's network"
        click.echo(
            f"training {what}: {config.hidden} ReLU units, words up to length {config.max_len}, "
            f"{config.epochs} epochs of SGD (lr {config.lr:g}) -> {run_dir}"
        )
        set_kept(
            f"the run in {run_dir} is saved up to its last checkpoint; rerun the same command to "
            "continue it"
        )
        train(config, run_dir, resume=resume, force=retrain and _holds_run(run_dir), progress=True)
    set_kept(f"the finished run in {run_dir}; rerun the same command to reuse it")
    trained = time.perf_counter()
    click.echo("extracting the automaton at every checkpoint ...")
    tl = timeline(run_dir, jobs=jobs, progress=True)
    csv_path, json_path = tl.write(out_dir)
    png = plots.save_figure(plots.overview(tl), out_dir / "timeline.png")
    last = tl.rows[-1]
    final = tl.machines[-1]
    raw_path, hint = _render(final, out_dir / "automaton_raw.svg")
    min_path, hint2 = _render(minimize(final), out_dir / "automaton_minimal.svg")
    page = run_report(run_dir, out_dir / "report.html", tl=tl).path
    done = time.perf_counter()

    length = tl.settings.get("generalisation_length")
    click.echo(
        f"memorisation epoch (training loss < 1e-3):            {epoch_text(tl.memorisation_epoch)}"
    )
    click.echo(
        f"merger epoch (extraction closed and equivalent):      {epoch_text(tl.merger_epoch)}"
    )
    click.echo(
        f"generalisation epoch (accuracy 1.0 at length {length}):  {epoch_text(tl.generalisation_epoch)}"
    )
    if last.equivalent:
        verdict = f"equivalent to {tl.task}"
    elif last.counterexample is not None:
        verdict = f"not equivalent to {tl.task} (they differ on {last.counterexample!r})"
    else:
        verdict = f"not equivalent to {tl.task}"
    peak = int(tl.column("states_raw").max())
    click.echo(
        f"final automaton: {last.states_raw} states (largest tree: {peak}), {last.states_minimal} after "
        f"minimisation, {'closed' if last.closed else 'open'}, {verdict}"
    )
    click.echo(f"wrote {png}, {raw_path.name}, {min_path.name}, {csv_path.name}, {json_path.name}")
    click.echo(f"report (open in a browser): {page}")
    for h in (hint, hint2):
        if h:
            click.echo(f"note: {h}")
            break
    click.echo(
        f"time: training {trained - started:.0f} s, timeline and pictures {done - trained:.0f} s"
    )
    return 0
