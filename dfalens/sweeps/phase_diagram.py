"""The phase diagram of Fig. 9: training data fraction x initial weight scale, trained to convergence.

Each cell trains a network (the ``phase`` preset: 100 ReLU units, SGD lr 0.02, batches of 128 words of one
length, cross-entropy, stop when the training loss is below 1e-3) on a fraction ``p`` of the words up to
length 10 from Xavier-normal weights of gain ``g``, then extracts its automaton (threshold clustering at
0.1 x the state scale over all words up to length 10, as the paper's sweep) and scores it on 30 random
words of length 100. Cells are grouped into batches of members of the stacked trainer
(:mod:`dfalens.trainers.batched`); an executor (:mod:`dfalens._executors`) runs the batches.

A cell depends only on ``(fraction, gain, seed)``: its data subset, test words, initial weights and batch
order come from the seed as in :func:`dfalens.trainers.train`, so the table is the same whatever the
executor or the grouping. Results go to ``DIR/results.csv`` as cells finish; rerunning resumes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfalens._args import check_int, check_number, check_path
from dfalens._budget import check_cells
from dfalens._executors import Executor, default_jobs
from dfalens.automata import equivalent, get_task_machine
from dfalens.errors import ConfigError, DataError
from dfalens.probes import extract, from_model
from dfalens.sweeps.grid import run_meta, run_tasks
from dfalens.sweeps.table import ResultsTable, current_names, format_value
from dfalens.trainers import checkpoints as ck
from dfalens.trainers.batched import Member, train_batched
from dfalens.trainers.config import TrainConfig, make_config
from dfalens.trainers.data import make_task_data
from dfalens.trainers.loop import train

__all__ = [
    "PHASE_COLUMNS",
    "axis_values",
    "phase_config",
    "PhaseCell",
    "cell_row",
    "run_phase_diagram",
    "read_results",
]

PHASE_COLUMNS = (
    "fraction",
    "gain",
    "seed",
    "states_raw",
    "states_minimal_trimmed",
    "closed",
    "equivalent",
    "open_states",
    "val_accuracy",
    "train_loss",
    "train_accuracy",
    "epochs",
    "converged",
    "n_train",
    "model",
)
"""Columns of ``results.csv``: the cell, the extraction at convergence (``states_raw`` clusters,
``states_minimal_trimmed`` states of the minimal machine without a dead state, as
:attr:`Extraction.n_raw <dfalens.probes.Extraction>` and ``n_minimal_trimmed``), the training outcome and
the final model's checkpoint (relative to the sweep directory; empty when models are not kept). Tables
with the previous names ``states`` and ``minimal_states`` are read as these."""

_KEY = ("fraction", "gain", "seed")
_INT_COLUMNS = {"seed", "states_raw", "states_minimal_trimmed", "open_states", "epochs", "n_train"}
_BOOL_COLUMNS = {"closed", "equivalent", "converged"}
_CONFIG_FIXED = ("seed", "gain", "data_fraction", "device", "threads", "checkpoints")
"""TrainConfig fields a cell overrides, or that do not change results; left out of the manifest."""


def axis_values(resolution: int, low: float = 0.1, high: float = 1.0) -> tuple[float, ...]:
    """``resolution`` evenly spaced values from ``low`` to ``high`` (``linspace``), rounded to 10 digits.

    Raises
    ------
    ConfigError
        For a resolution below 1 or a range outside (0, inf).
    """
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, int | np.integer)
        or resolution < 1
    ):
        raise ConfigError(f"--resolution must be a positive integer, got {resolution!r}")
    check_cells(int(resolution) ** 2, f"a phase diagram of resolution {int(resolution):,}")
    if not (0 < low <= high and math.isfinite(high)):
        raise ConfigError(f"the range must satisfy 0 < low <= high, got {low}..{high}")
    values = np.linspace(low, high, int(resolution)) if resolution > 1 else np.array([high])
    return tuple(float(format_value(float(v))) for v in values)


def phase_config(max_epochs: int = 1_000_000, **overrides: Any) -> TrainConfig:
    """The settings of one phase-diagram cell: the ``phase`` preset with an epoch cap.

    Parameters
    ----------
    max_epochs : int
        Epoch cap of every cell (the paper's is 1,000,000).
    **overrides
        Any other :class:`TrainConfig` field (for example ``hidden`` or ``stop_loss``).
    """
    settings: dict[str, Any] = {"checkpoints": f"every:{max(1, int(max_epochs))}"}
    settings.update(overrides)
    return make_config("phase", epochs=int(max_epochs), **settings)


@dataclass(frozen=True)
class PhaseCell:
    """One cell of the diagram."""

    fraction: float
    gain: float
    seed: int

    @property
    def key(self) -> tuple[str, ...]:
        return (format_value(self.fraction), format_value(self.gain), format_value(self.seed))

    @property
    def model_name(self) -> str:
        """File name of the cell's final model under ``DIR/models/``."""
        f, g, s = self.key
        return f"fraction{f}_gain{g}_seed{s}.safetensors"


@dataclass(frozen=True)
class _Task:
    """A batch of cells for one worker (picklable)."""

    config: TrainConfig
    cells: tuple[PhaseCell, ...]
    eps: float
    extract_len: int
    batched: bool
    device: str | None
    directory: str | None


def cell_row(
    cell: PhaseCell,
    model: Any,
    *,
    machine: Any,
    eps: float,
    extract_len: int,
    val_accuracy: float,
    train_loss: float,
    train_accuracy: float,
    epochs: int,
    converged: bool,
    n_train: int,
) -> dict[str, Any]:
    """Extract the automaton of a trained cell and build its results row.

    Parameters
    ----------
    cell : PhaseCell
    model : RecurrentModel
        The trained network.
    machine : Machine
        The task's ground truth.
    eps : float
        Threshold-clustering distance, relative to the state scale.
    extract_len : int
        Longest word collected for the extraction.
    val_accuracy, train_loss, train_accuracy : float
    epochs : int
    converged : bool
    n_train : int
        Number of training words of the cell.

    Returns
    -------
    dict
        A row with the :data:`PHASE_COLUMNS`.
    """

    ex = extract(
        from_model(model),
        max_len=extract_len,
        method="threshold",
        eps=eps,
        fidelity_lengths=(),
        holdout_words=0,
    )
    verdict = equivalent(ex.minimal, machine, include_empty=False)  # empty-word output: untrained
    return {
        "fraction": cell.fraction,
        "gain": cell.gain,
        "seed": cell.seed,
        "states_raw": ex.n_raw,
        "states_minimal_trimmed": ex.n_minimal_trimmed,
        "closed": bool(ex.closed),
        "equivalent": bool(ex.closed and verdict.equal),
        "open_states": int(np.count_nonzero((ex.machine.delta < 0).any(axis=1))),
        "val_accuracy": float(val_accuracy),
        "train_loss": float(train_loss),
        "train_accuracy": float(train_accuracy),
        "epochs": int(epochs),
        "converged": bool(converged),
        "n_train": int(n_train),
    }


def _run_task(task: _Task) -> list[dict[str, Any]]:
    """Train a batch of cells (stacked, or one by one) and extract each; one row per cell."""

    machine = get_task_machine(task.config.task)
    length = str(max(task.config.test_lengths))
    members = [Member(seed=c.seed, gain=c.gain, data_fraction=c.fraction) for c in task.cells]
    models = None if task.directory is None else Path(task.directory) / "models"
    rows: list[dict[str, Any]] = []

    def keep(cell: PhaseCell, row: dict[str, Any], save: Callable[[Path], Any]) -> None:
        row["model"] = ""
        if models is not None:
            models.mkdir(parents=True, exist_ok=True)
            save(models / cell.model_name)
            row["model"] = f"models/{cell.model_name}"
        rows.append(row)

    settings = {"machine": machine, "eps": task.eps, "extract_len": task.extract_len}
    if task.batched:
        run = train_batched(task.config, members, device=task.device)
        for i, cell in enumerate(task.cells):
            row = cell_row(
                cell,
                run.model(i),
                val_accuracy=float(run.test_accuracy[length][i]),
                train_loss=float(run.train_loss[i]),
                train_accuracy=float(run.train_accuracy[i]),
                epochs=int(run.epochs[i]),
                converged=bool(run.stopped_early[i]),
                n_train=int(run.n_train[i]),
                **settings,
            )
            keep(cell, row, lambda path, i=i: run.save_member(i, path))
        return rows
    for cell, member in zip(task.cells, members, strict=True):
        config = member.apply(task.config)
        if task.device is not None:
            config = config.replace(device=task.device)
        single = train(config)
        last = single.metrics[-1]
        row = cell_row(
            cell,
            single.model,
            val_accuracy=float(last["val_accuracy"][length]),
            train_loss=float(last["train_loss"]),
            train_accuracy=float(last["train_accuracy"]),
            epochs=single.epochs_done,
            converged=single.stopped_early,
            n_train=_n_train(config),
            **settings,
        )
        keep(
            cell,
            row,
            lambda path, c=config, r=single: ck.save_checkpoint(path, r.model, run_meta(c, r)),
        )
    return rows


def _n_train(config: TrainConfig) -> int:

    data = make_task_data(
        get_task_machine(config.task),
        max_len=config.max_len,
        data_fraction=config.data_fraction,
        test_lengths=(1,),
        n_test_words=1,
        seed=config.seed,
    )
    return len(data.train)


def _spec(
    fractions: Sequence[float],
    gains: Sequence[float],
    seeds: Sequence[int],
    config: TrainConfig,
    eps: float,
    extract_len: int,
) -> dict[str, Any]:
    settings = {k: v for k, v in config.to_dict().items() if k not in _CONFIG_FIXED}
    return {
        "kind": "phase-diagram",
        "fractions": [float(f) for f in fractions],
        "gains": [float(g) for g in gains],
        "seeds": [int(s) for s in seeds],
        "training": settings,
        "extraction": {"method": "threshold", "eps": float(eps), "max_len": int(extract_len)},
    }


def run_phase_diagram(
    directory: str | os.PathLike[str],
    *,
    fractions: Sequence[float] | None = None,
    gains: Sequence[float] | None = None,
    seeds: Sequence[int] = (0,),
    config: TrainConfig | None = None,
    eps: float = 0.1,
    extract_len: int = 10,
    executor: str | Executor = "local",
    jobs: int | None = None,
    members: int | None = None,
    batched: bool = True,
    device: str | None = None,
    save_models: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, str]]:
    """Run (or resume) the phase-diagram sweep into ``directory``.

    Parameters
    ----------
    directory : path
        Gets ``results.csv`` and ``sweep.json`` (draw it with :func:`dfalens.plots.plot_phase_diagram`).
    fractions, gains : sequence of float, optional
        Grid axes; default ``axis_values(20)`` each (20 values over linspace(0.1, 1.0)).
    seeds : sequence of int
        Seeds per cell (each seed is a full repetition of the grid).
    config : TrainConfig, optional
        Settings of every cell (default :func:`phase_config`); the cell sets ``data_fraction``, ``gain``
        and ``seed``.
    eps : float
        Extraction threshold relative to the state scale (0.1 in the paper's sweep).
    extract_len : int
        Longest word collected for the extraction (10 in the paper).
    executor : str or Executor
        ``local``, ``local-dask``, ``dask://HOST:PORT`` (see
        :func:`~dfalens.sweeps.make_executor`) or an executor instance (left open).
    jobs : int, optional
        Parallel tasks for local executors (default: every usable CPU, or 1 when training on a GPU).
    members : int, optional
        Cells per batched task; default spreads the pending cells evenly over the parallel tasks, at most
        400 per task.
    batched : bool
        Train each task's cells with the stacked trainer (True) or one by one with ``train``.
    device : str, optional
        Training device of each task (default: the config's).
    save_models : bool
        Keep each cell's final model as ``DIR/models/fraction{p}_gain{g}_seed{s}.safetensors`` (an
        ordinary dfalens checkpoint, about 40 KB at 100 units), for re-extraction at other settings.
        With a remote Dask cluster the files land on the workers' file system.
    progress : callable, optional
        ``progress(done, total)`` after every finished task (cells counted).

    Returns
    -------
    list of dict
        The rows of ``results.csv`` (text values), in grid order.

    Raises
    ------
    ConfigError
        Bad settings, an unreachable scheduler, or a directory that holds another sweep (nothing is
        written then).
    """
    check_path("directory", directory)
    check_number("eps", eps, low=0, low_open=True)
    check_int("extract_len", extract_len, minimum=1)
    check_int("jobs", jobs, minimum=1, optional=True)
    check_int("members", members, minimum=1, optional=True)
    if config is not None and not isinstance(config, TrainConfig):
        raise ConfigError(
            f"config must be a TrainConfig (see phase_config), got {type(config).__name__}"
        )
    if not isinstance(executor, str | Executor):
        raise ConfigError(
            f"executor must be a name such as 'local' or an Executor, got {executor!r:.60}"
        )
    sizes = [
        20 if v is None else len(v) if isinstance(v, Sized) else 1
        for v in (fractions, gains, seeds)
    ]
    check_cells(math.prod(sizes), "the phase diagram")
    fractions = axis_values(20) if fractions is None else _numbers("fractions", fractions, float)
    gains = axis_values(20) if gains is None else _numbers("gains", gains, float)
    seeds = _numbers("seeds", seeds, int)
    check_cells(len(fractions) * len(gains) * len(seeds), "the phase diagram")
    if not fractions or not gains or not seeds:
        raise ConfigError("the phase diagram needs at least one fraction, one gain and one seed")
    if any(not 0 < f <= 1 for f in fractions):
        raise ConfigError(f"data fractions must be in (0, 1], got {list(fractions)}")
    if any(not g > 0 for g in gains):
        raise ConfigError(f"gains must be positive, got {list(gains)}")
    if not eps > 0:
        raise ConfigError(f"eps must be positive, got {eps}")
    config = phase_config() if config is None else config
    if members is not None and members < 1:
        raise ConfigError(f"--members must be at least 1, got {members}")
    cells = [PhaseCell(f, g, s) for s in seeds for g in gains for f in fractions]
    by_key = {c.key: c for c in cells}
    table = ResultsTable(
        directory,
        _spec(fractions, gains, seeds, config, eps, extract_len),
        PHASE_COLUMNS,
        _KEY,
        [c.key for c in cells],
    )
    pending = [by_key[k] for k in table.pending()]
    models = str(directory) if save_models else None
    if jobs is None and executor == "local" and _on_gpu(device or config.device):
        jobs = 1  # one process feeds the GPU; stacked members are its parallelism
    slots = executor.jobs if isinstance(executor, Executor) else (jobs or default_jobs())
    size = members or min(400, max(1, math.ceil(len(pending) / max(slots, 1))))
    tasks = [
        _Task(config, tuple(pending[i : i + size]), eps, extract_len, batched, device, models)
        for i in range(0, len(pending), size)
    ]
    run_tasks(executor, jobs, _run_task, tasks, table, len(cells), progress)
    return table.finish()


def _numbers(name: str, values: Any, kind: type) -> tuple[Any, ...]:
    """``values`` as a tuple of ``kind``, or a :class:`ConfigError` naming the argument."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ConfigError(f"{name} must be a sequence of numbers, got {values!r}")
    try:
        out = tuple(kind(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if kind is float and not all(math.isfinite(v) for v in out):
        raise ConfigError(f"{name} must be finite numbers, got {list(out)}")
    return out


def _on_gpu(device: str) -> bool:
    if device == "cpu":
        return False
    import torch

    return torch.cuda.is_available()


def typed_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A results row with numbers and booleans parsed from their text (old column names renamed, see
    :data:`~dfalens.sweeps.table.RENAMED_COLUMNS`)."""
    out: dict[str, Any] = {}
    for key, value in current_names(row).items():
        if not isinstance(value, str):
            out[key] = value
        elif key in _BOOL_COLUMNS:
            out[key] = value == "true"
        elif key in _INT_COLUMNS:
            out[key] = int(value)
        else:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out


def read_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a phase-diagram ``results.csv`` (or its directory) into typed rows.

    Raises
    ------
    DataError
        When the file is missing or lacks the phase-diagram columns.
    """
    import csv

    path = Path(path)
    if path.is_dir():
        path = path / "results.csv"
    if not path.is_file():
        raise DataError(f"{path} not found; run `dfalens sweep phase-diagram -o DIR` first")
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        names = current_names(dict.fromkeys(reader.fieldnames or []))
        missing = [c for c in PHASE_COLUMNS if c not in names]
        if missing:
            raise DataError(f"{path} is not a phase-diagram table (no columns {missing})")
        return [typed_row(r) for r in reader]
