"""Sweeps over training settings: every combination of a grid of :class:`TrainConfig` values.

``run_grid`` trains one network per combination (with :func:`~dfalens.trainers.train`, or with the
stacked trainer for combinations that differ only in ``seed``, ``gain``, ``data_fraction`` or ``lr``),
extracts its automaton and writes one row per combination to ``DIR/results.csv``: the grid values, the
final training loss and accuracy, the loss and accuracy at every test length, and the extraction summary
(``states_raw``, ``states_minimal_trimmed``, closed, equivalent to the task). Each final model is kept as
``DIR/models/cell_NNNN.safetensors`` (an ordinary dfalens checkpoint). The table resumes like the phase
diagram's and is the same under any executor.

::

    from dfalens.sweeps.grid import run_grid
    rows = run_grid("sweeps/width", {"hidden": [32, 64, 100], "seed": range(10)}, preset="fast")
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfalens._args import check_int, check_number, check_path
from dfalens._budget import check_cells
from dfalens._executors import Executor, default_jobs, make_executor
from dfalens._files import DirectoryLock, check_output_dir, jsonable, writing
from dfalens.automata import equivalent, get_task_machine
from dfalens.errors import ConfigError
from dfalens.probes import extract, from_model
from dfalens.sweeps.table import (
    ResultsTable,
    expand_grid,
    format_value,
    parse_grid,
    parse_values,
)
from dfalens.trainers import checkpoints as ck
from dfalens.trainers.batched import Member, train_batched
from dfalens.trainers.config import TrainConfig, make_config
from dfalens.trainers.loop import train

__all__ = ["grid_fields", "parse_grid_items", "run_grid", "MEMBER_KEYS", "run_tasks", "run_meta"]

MEMBER_KEYS = ("seed", "gain", "data_fraction", "lr")
"""Settings the stacked trainer varies per member (other grid keys make separate batched runs)."""

_OUTCOME = ("epochs_done", "stopped_early", "train_loss", "train_accuracy")
_EXTRACTION = ("states_raw", "states_minimal_trimmed", "closed", "equivalent")


def grid_fields() -> dict[str, Any]:
    """The :class:`TrainConfig` fields a grid may vary, with their annotations."""
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


def parse_grid_items(items: Sequence[str]) -> dict[str, list[Any]]:
    """Parse ``--grid KEY=VALUES`` items against the :class:`TrainConfig` fields.

    ``test_lengths`` takes one tuple per value, written with ``+`` between lengths
    (``test_lengths=25+100,1000``).

    Raises
    ------
    ConfigError
        An empty grid, an unknown key (the message lists the known ones), or a bad value.
    """
    fields = grid_fields()
    fields["test_lengths"] = str
    axes = parse_grid(items, fields)
    if "test_lengths" in axes:
        axes["test_lengths"] = [
            tuple(int(v) for v in parse_values("test_lengths", str(t).replace("+", ","), int))
            for t in axes["test_lengths"]
        ]
    return axes


def run_tasks(
    executor: str | Executor,
    jobs: int | None,
    fn: Callable[[Any], list[dict[str, Any]]],
    tasks: Sequence[Any],
    table: ResultsTable,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Run ``fn`` over ``tasks`` on an executor, adding each task's rows to ``table`` as it finishes.

    A named executor is created (and a scheduler reached) before the table is written, so a bad executor
    leaves no files behind; an executor instance is left open.
    """
    own = isinstance(executor, str)
    check_output_dir(table.directory, "sweep directory")
    ex = make_executor(executor, jobs) if own and tasks else executor
    lock: DirectoryLock | None = None
    kept = "the finished cells in results.csv; rerun the same command to resume"
    try:
        lock = DirectoryLock(table.directory).acquire()
        with writing(table.directory, kept):
            table.start()
            done = total - len(table.pending())
            if progress is not None:
                progress(done, total)
            if not tasks or not isinstance(ex, Executor):
                return
            for rows in ex.map_unordered(fn, tasks):
                table.add(rows)
                done += len(rows)
                if progress is not None:
                    progress(done, total)
    finally:
        if lock is not None:
            lock.release()
        if own and isinstance(ex, Executor):
            ex.close()


@dataclass(frozen=True)
class _GridTask:
    """Cells trained together: one config, and per cell its index, grid values and member."""

    config: TrainConfig
    cells: tuple[tuple[int, dict[str, Any]], ...]
    batched: bool
    directory: str | None
    extract: bool
    eps: float | None
    extract_len: int | None
    lengths: tuple[int, ...]


def _extraction_row(model: Any, config: TrainConfig, task: _GridTask) -> dict[str, Any]:
    if not task.extract:
        return dict.fromkeys(_EXTRACTION, "")

    ex = extract(
        from_model(model),
        max_len=task.extract_len or min(config.max_len, 10),
        method="threshold" if task.eps is not None else None,
        eps=task.eps,
        fidelity_lengths=(),
    )
    verdict = equivalent(ex.minimal, get_task_machine(config.task), include_empty=False)
    return {
        "states_raw": ex.n_raw,
        "states_minimal_trimmed": ex.n_minimal_trimmed,
        "closed": bool(ex.closed),
        "equivalent": bool(ex.closed and verdict.equal),
    }


def _grid_task(task: _GridTask) -> list[dict[str, Any]]:
    """Train the cells of one task and summarise each."""

    rows = []
    models_dir = None if task.directory is None else Path(task.directory) / "models"
    if models_dir is not None:
        models_dir.mkdir(parents=True, exist_ok=True)

    def finish(
        index: int,
        values: dict[str, Any],
        config: TrainConfig,
        model: Any,
        meta: dict,
        outcome: dict[str, Any],
        loss: Mapping[str, float],
        acc: Mapping[str, float],
    ) -> None:
        row: dict[str, Any] = dict(values)
        row.update(outcome)
        for length in task.lengths:
            row[f"val_loss_{length}"] = loss.get(str(length), "")
            row[f"val_accuracy_{length}"] = acc.get(str(length), "")
        row.update(_extraction_row(model, config, task))
        name = f"cell_{index:04d}.safetensors"
        if models_dir is not None:
            ck.save_checkpoint(models_dir / name, model, meta)
        row["model"] = f"models/{name}" if models_dir is not None else ""
        rows.append(row)

    if task.batched:
        members = [
            Member(**{k: v for k, v in values.items() if k in MEMBER_KEYS})
            for _, values in task.cells
        ]
        run = train_batched(task.config, members)
        for i, (index, values) in enumerate(task.cells):
            outcome = {
                "epochs_done": int(run.epochs[i]),
                "stopped_early": bool(run.stopped_early[i]),
                "train_loss": float(run.train_loss[i]),
                "train_accuracy": float(run.train_accuracy[i]),
            }
            loss = {k: float(v[i]) for k, v in run.test_loss.items()}
            acc = {k: float(v[i]) for k, v in run.test_accuracy.items()}
            finish(
                index, values, run.member_configs[i], run.model(i), run.meta(i), outcome, loss, acc
            )
        return rows
    for index, values in task.cells:
        config = task.config.replace(**values)
        if "checkpoints" not in values:  # in memory: only the final metrics are needed
            config = config.replace(checkpoints=f"every:{max(1, config.epochs)}")
        single = train(config)
        last = single.metrics[-1]
        outcome = {
            "epochs_done": single.epochs_done,
            "stopped_early": single.stopped_early,
            "train_loss": float(last["train_loss"]),
            "train_accuracy": float(last["train_accuracy"]),
        }
        finish(
            index,
            values,
            config,
            single.model,
            run_meta(config, single),
            outcome,
            last["val_loss"],
            last["val_accuracy"],
        )
    return rows


def run_meta(config: TrainConfig, run: Any) -> dict[str, Any]:
    """Checkpoint metadata of the final model of an in-memory :class:`~dfalens.trainers.Run`."""
    last = run.metrics[-1]
    return {
        "task": config.task,
        "alphabet": list(run.machine.alphabet) if run.machine is not None else [],
        "epoch": run.epochs_done,
        "step": int(last["step"]),
        "seed": config.seed,
        "train_loss": float(last["train_loss"]),
        "val_accuracy": last["val_accuracy"],
        "targets": config.targets,
        "config": config.to_dict(),
    }


def run_grid(
    directory: str | os.PathLike[str],
    grid: Mapping[str, Iterable[Any]] | Sequence[str],
    *,
    preset: str = "paper",
    base: Mapping[str, Any] | None = None,
    extract: bool = True,
    eps: float | None = None,
    extract_len: int | None = None,
    batched: bool = False,
    members: int | None = None,
    executor: str | Executor = "local",
    jobs: int | None = None,
    save_models: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, str]]:
    """Train every combination of a grid of settings (or resume) and tabulate the outcomes.

    Parameters
    ----------
    directory : path
        Gets ``results.csv``, ``sweep.json`` and ``models/``.
    grid : mapping of str to iterable, or sequence of str
        Axes (``{"hidden": [32, 64], "seed": range(3)}``) or ``KEY=VALUES`` strings as on the command line.
        Keys are :class:`TrainConfig` fields.
    preset : str
        Base settings (see :data:`~dfalens.trainers.config.PRESETS`).
    base : mapping, optional
        Fixed overrides of the preset (for example ``{"task": "tomita3", "epochs": 200}``).
    extract : bool
        Extract each final model's automaton (``states_raw``, ``states_minimal_trimmed``: the
        minimal count without a dead state, ``closed``, ``equivalent``).
    eps : float, optional
        Threshold clustering at this relative ε; None uses the extraction's default strategy.
    extract_len : int, optional
        Longest word collected for the extraction (default ``min(max_len, 10)``).
    batched : bool
        Train cells that differ only in seed, gain, data fraction or lr together with the stacked trainer
        (cells ``rnn`` and ``gru``; others train one by one).
    members : int, optional
        Cells per batched task (default spreads each group over the parallel tasks, at most 400).
    executor : str or Executor
        ``local``, ``local-dask``, ``dask://HOST:PORT`` or an :class:`Executor`.
    jobs : int, optional
        Parallel tasks for local executors.
    save_models : bool
        Keep each cell's final model under ``models/``.
    progress : callable, optional
        ``progress(done, total)`` as cells finish.

    Returns
    -------
    list of dict
        The rows of ``results.csv`` (text values), in grid order.

    Raises
    ------
    ConfigError
        An empty grid, an unknown key, a bad value or setting, an unreachable scheduler, or a directory
        that holds another sweep (nothing is written then).
    """
    check_path("directory", directory)
    check_int("jobs", jobs, minimum=1, optional=True)
    check_int("members", members, minimum=1, optional=True)
    check_int("extract_len", extract_len, minimum=1, optional=True)
    check_number("eps", eps, low=0, low_open=True, optional=True)
    if not isinstance(preset, str):
        raise ConfigError(f"preset must be a preset name such as 'paper', got {preset!r:.60}")
    if not isinstance(executor, str | Executor):
        raise ConfigError(
            f"executor must be a name such as 'local' or an Executor, got {executor!r:.60}"
        )
    if base is not None and not isinstance(base, Mapping):
        raise ConfigError(f"base must be a mapping of training settings, got {type(base).__name__}")
    if isinstance(grid, str | bytes) or not isinstance(grid, Mapping | Sequence):
        raise ConfigError(
            "grid must be a mapping {setting: values} or a list of 'KEY=VALUES' strings, got "
            f"{grid!r:.80}"
        )
    if isinstance(grid, Mapping):
        for key, values in grid.items():
            if isinstance(values, str | bytes) or not isinstance(values, Iterable):
                raise ConfigError(
                    f"grid values of {key!r} must be a list of values, got {values!r:.80}"
                )
            if isinstance(values, Sized):
                check_cells(len(values), f"grid axis {key!r}")
        axes = {str(k): list(v) for k, v in grid.items()}
        known = grid_fields()
        for key in axes:
            if key not in known:
                raise ConfigError(
                    f"unknown grid key {key!r}; known keys: {', '.join(sorted(known))}"
                )
    else:
        if not all(isinstance(item, str) for item in grid):
            raise ConfigError("grid items must be 'KEY=VALUES' strings, e.g. ['seed=0..3']")
        axes = parse_grid_items(list(grid))
    combos = expand_grid(axes)
    base_config = make_config(preset, **dict(base or {}))
    configs = [base_config.replace(**c) for c in combos]  # validates every combination up front
    lengths = tuple(sorted({n for c in configs for n in c.test_lengths}))
    keys = list(axes)
    columns = keys + list(_OUTCOME)
    for n in lengths:
        columns += [f"val_loss_{n}", f"val_accuracy_{n}"]
    columns += list(_EXTRACTION) + ["model"]
    spec = {
        "kind": "grid",
        "preset": preset,
        "base": jsonable(base_config.to_dict()),
        "grid": jsonable({k: list(values) for k, values in axes.items()}),
        "extraction": {"enabled": extract, "eps": eps, "max_len": extract_len},
    }
    cell_keys = [tuple(format_value(c[k]) for k in keys) for c in combos]
    table = ResultsTable(directory, spec, columns, keys, cell_keys)
    pending = set(table.pending())
    todo = [(i, c) for i, c in enumerate(combos) if cell_keys[i] in pending]
    groups: dict[tuple, list[tuple[int, dict[str, Any]]]] = {}
    for i, c in todo:
        can_batch = batched and configs[i].cell in ("rnn", "gru")
        shared = tuple(
            (k, format_value(v)) for k, v in c.items() if not (can_batch and k in MEMBER_KEYS)
        )
        groups.setdefault((can_batch, shared) if can_batch else (False, ("cell", i)), []).append(
            (i, c)
        )
    slots = executor.jobs if isinstance(executor, Executor) else (jobs or default_jobs())
    out_dir = str(directory) if save_models else None
    tasks = []
    for (can_batch, _), cells in groups.items():
        if not can_batch:
            tasks.append(
                _GridTask(
                    base_config, tuple(cells), False, out_dir, extract, eps, extract_len, lengths
                )
            )
            continue
        fixed = {k: v for k, v in cells[0][1].items() if k not in MEMBER_KEYS}
        config = base_config.replace(**fixed)
        size = members or min(400, max(1, math.ceil(len(cells) / max(slots, 1))))
        for a in range(0, len(cells), size):
            tasks.append(
                _GridTask(
                    config,
                    tuple(cells[a : a + size]),
                    True,
                    out_dir,
                    extract,
                    eps,
                    extract_len,
                    lengths,
                )
            )
    run_tasks(executor, jobs, _grid_task, tasks, table, len(combos), progress)
    return table.finish()
