"""``dfalens train``: train a recurrent network on a task and save its checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from dfalens.cli._signals import set_kept
from dfalens.errors import ConfigError
from dfalens.trainers import make_config
from dfalens.trainers import train as run_training
from dfalens.trainers.checkpoints import RUN_JSON, read_run_json
from dfalens.trainers.config import TrainConfig

_SETTINGS = (
    "task",
    "cell",
    "hidden",
    "layers",
    "nonlinearity",
    "h0",
    "gain",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "batch_size",
    "loss",
    "targets",
    "max_len",
    "data_fraction",
    "epochs",
    "stop_loss",
    "seed",
    "device",
    "checkpoints",
    "test_lengths",
    "n_test_words",
    "threads",
)


def _config(preset: str | None, resume: bool, out_dir: Path, overrides: dict[str, Any]) -> Any:
    """The run's settings: the stored ones when resuming (flags on top), else preset plus flags."""

    given = {k: v for k, v in overrides.items() if v is not None}
    if resume and preset is None and (out_dir / RUN_JSON).is_file():
        stored = read_run_json(out_dir).get("config") or {}
        return TrainConfig.from_dict(stored).replace(**given)
    if "task" not in given:
        raise ConfigError("--task is required (for example --task parity; see `dfalens tasks`)")
    return make_config(preset or "paper", **given)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


@click.command("train")
@click.option("--task", help="Task name (parity, mod3, tomita4, random:7) or machine JSON file.")
@click.option(
    "--preset",
    help="Base settings: paper (default), tanh, random, phase, fast. Flags override them.",
)
@click.option("--epochs", type=int, help="Epochs to train (with --resume: the new total).")
@click.option("--seed", type=int, help="Seed of data, test words, initial weights and batches.")
@click.option("--device", help="auto (CUDA when present), cpu, cuda or mps.")
@click.option("--cell", help="rnn, gru or lstm.")
@click.option("--hidden", type=int, help="Units per layer.")
@click.option("--layers", type=int, help="Recurrent layers.")
@click.option("--nonlinearity", help="relu or tanh (rnn cell).")
@click.option("--h0", help="Initial state: ones, zeros or learned.")
@click.option("--gain", type=float, help="Xavier-normal gain of the initial weights.")
@click.option("--optimizer", help="sgd or adam.")
@click.option("--lr", type=float, help="Learning rate.")
@click.option("--momentum", type=float, help="SGD momentum.")
@click.option("--weight-decay", type=float, help="L2 penalty.")
@click.option("--batch-size", type=int, help="Words per batch (each batch holds one length).")
@click.option("--loss", help="mse (one-hot targets) or ce.")
@click.option("--targets", help="last (output after the word) or every (after every symbol).")
@click.option("--max-len", type=int, help="Longest training word.")
@click.option("--data-fraction", type=float, help="Fraction of the words of each length, (0, 1].")
@click.option("--stop-loss", type=float, help="Stop once the training loss is below this.")
@click.option("--checkpoints", help="Checkpoint schedule: every, every:K or log:N.")
@click.option("--test-lengths", help="Comma-separated test word lengths, e.g. 25,100,1000.")
@click.option("--n-test-words", type=int, help="Random test words per test length.")
@click.option("--threads", type=int, help="torch CPU threads (default 1, fastest for small nets).")
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Run directory to create (or continue with --resume).",
)
@click.option("--resume", is_flag=True, help="Continue the run in the output directory.")
@click.option("--force", is_flag=True, help="Overwrite a run already in the output directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the end summary as JSON.")
def train(
    preset: str | None,
    out_dir: Path,
    resume: bool,
    force: bool,
    as_json: bool,
    **settings: Any,
) -> int:
    """Train a network on a task; write run.json, metrics.jsonl and checkpoints to OUT.

    Examples: `dfalens train --task parity -o runs/parity` (the paper's App. C.1 settings);
    `dfalens train --task parity --preset fast -o runs/demo`;
    `dfalens train -o runs/parity --resume --epochs 2000`.
    """

    overrides = {k: settings.get(k) for k in _SETTINGS}
    if overrides["test_lengths"] is not None:
        overrides["test_lengths"] = str(overrides["test_lengths"])
    config = _config(preset, resume, out_dir, overrides)
    set_kept(
        f"the run is saved up to its last checkpoint: continue it with "
        f"`dfalens train -o {out_dir} --resume`"
    )
    run = run_training(config, out_dir, resume=resume, force=force, progress=True)
    if run.diverged:
        raise ConfigError(
            f"training diverged at epoch {run.epochs_done} (the loss is not finite); the checkpoints "
            f"before it are kept in {out_dir}. Lower --lr or --gain and train again with --force"
        )
    summary = run.summary()
    if as_json:
        click.echo(json.dumps({"run_dir": str(out_dir), **summary}, indent=2))
        return 0
    length = summary["accuracy_length"]
    stop = " (stopped: loss below --stop-loss)" if summary["stopped_early"] else ""
    click.echo(f"trained {summary['epochs']} epochs{stop} -> {out_dir}")
    click.echo(f"final training loss: {_fmt(summary['train_loss'])}")
    tests = ", ".join(
        f"{n}: {_fmt(loss)} / {summary['val_accuracy'][n]:.2f}"
        for n, loss in summary["val_loss"].items()
    )
    if tests:
        click.echo(f"final test loss / accuracy by length: {tests}")
    first_loss = summary["first_epoch_loss_below"]
    first_acc = summary["first_epoch_accuracy_1"]
    click.echo(
        f"first epoch with training loss < {summary['loss_below']:g}: "
        f"{'never' if first_loss is None else first_loss}"
    )
    if length is not None:
        click.echo(
            f"first epoch with accuracy 1.0 at length {length}: "
            f"{'never' if first_acc is None else first_acc}"
        )
    return 0
