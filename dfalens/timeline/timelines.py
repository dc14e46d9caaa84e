"""When a training run becomes the automaton: :func:`timeline` and the :class:`Timeline` it returns.

A timeline extracts an automaton at every checkpoint of a run and records, per checkpoint, the raw and
minimal state counts, whether the extraction is closed and equivalent to the task, its fidelity, the run's
losses and accuracies, and the merges and splits since the previous checkpoint. Three epochs are derived:

- *memorisation*: the first epoch with training loss below 1e-3;
- *merger*: the first checkpoint from which the extraction is closed and equivalent and stays so;
- *generalisation*: the first epoch from which the accuracy at length 1000 is 1.0 at every later epoch.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from dfalens._args import check_int, check_number
from dfalens._budget import check_memory, words_up_to
from dfalens._files import atomic_write
from dfalens.automata import Machine
from dfalens.automata import from_dict as machine_from_dict
from dfalens.automata import to_dict as machine_to_dict
from dfalens.errors import ConfigError, DataError
from dfalens.timeline._workers import collect_block, extract_block, pooled_scale, run_blocks
from dfalens.timeline.events import Event
from dfalens.timeline.history import (
    check_same_run,
    resolve_run,
    resolve_task,
    tree_arrays,
    word_strings,
)

__all__ = [
    "Row",
    "Timeline",
    "timeline",
    "TIMELINE_METHODS",
    "derived_epochs",
    "first_stable",
    "MEMORISATION_LOSS",
    "GENERALISATION_LENGTH",
]

MEMORISATION_LOSS = 1e-3
"""Training loss under which a run counts as having memorised its training set."""

GENERALISATION_LENGTH = 1000
"""Test length whose accuracy defines the generalisation epoch (the longest logged if absent)."""

_SCALAR_FIELDS = (
    "epoch",
    "step",
    "train_loss",
    "val_loss",
    "states_raw",
    "states_minimal",
    "closed",
    "equivalent",
    "counterexample",
    "fidelity",
    "eps",
    "merges",
    "splits",
    "merged_away",
    "split_created",
)


@dataclass(frozen=True)
class Row:
    """What the extraction at one checkpoint looks like.

    Attributes
    ----------
    epoch : int
    step : int or None
        Optimiser steps taken (None when the checkpoint does not say).
    train_loss, val_loss : float or None
        From the run's metrics at this epoch (None when not logged).
    states_raw : int
        Clusters (states of the quotient machine, the prefix tree while memorising).
    states_minimal : int
        States of the minimised extraction (complete, a dead state counted).
    closed : bool
        Every reachable state of the extraction has every transition (the automaton is finite).
    equivalent : bool
        The extraction is closed and recognises the task (the empty word's output ignored).
    counterexample : str or None
        Shortest word on which the extraction and the task differ (None when equivalent or not
        checked).
    fidelity : float or None
        Fraction of long random words on which the closed extraction predicts the network's output
        (None when the extraction is not closed).
    eps : float
        The absolute merge distance used.
    merges, splits, merged_away, split_created : int or None
        Against the previous checkpoint (None for the first); see :mod:`dfalens.timeline.events`.
    loss, accuracy : dict of int to float
        Per test length, from the run's metrics (empty when not logged).
    """

    epoch: int
    step: int | None
    train_loss: float | None
    val_loss: float | None
    states_raw: int
    states_minimal: int
    closed: bool
    equivalent: bool
    counterexample: str | None
    fidelity: float | None
    eps: float
    merges: int | None = None
    splits: int | None = None
    merged_away: int | None = None
    split_created: int | None = None
    loss: dict[int, float] = field(default_factory=dict, hash=False)
    accuracy: dict[int, float] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN becomes None)."""
        d: dict[str, Any] = {name: _clean(getattr(self, name)) for name in _SCALAR_FIELDS}
        d["loss"] = {str(k): _clean(v) for k, v in sorted(self.loss.items())}
        d["accuracy"] = {str(k): _clean(v) for k, v in sorted(self.accuracy.items())}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Row:
        """Inverse of :meth:`to_dict`."""
        kwargs = {f.name: d.get(f.name) for f in fields(cls) if f.name not in ("loss", "accuracy")}
        for key in ("epoch", "states_raw", "states_minimal"):
            if kwargs[key] is None:
                raise DataError(f"timeline row lacks {key!r}; the file is not a dfalens timeline")
        kwargs["closed"] = bool(kwargs["closed"])
        kwargs["equivalent"] = bool(kwargs["equivalent"])
        kwargs["eps"] = float(kwargs["eps"]) if kwargs["eps"] is not None else math.nan
        loss = {int(k): float(v) for k, v in (d.get("loss") or {}).items() if v is not None}
        acc = {int(k): float(v) for k, v in (d.get("accuracy") or {}).items() if v is not None}
        return cls(**kwargs, loss=loss, accuracy=acc)


def _clean(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def first_stable(epochs: np.ndarray, ok: np.ndarray) -> int | None:
    """The first epoch from which ``ok`` holds at every later entry, or None.

    Parameters
    ----------
    epochs : ndarray of int, shape (c,)
        Increasing epochs.
    ok : ndarray of bool, shape (c,)
    """
    ok = np.asarray(ok, dtype=bool)
    if ok.size == 0 or not ok[-1]:
        return None
    bad = np.nonzero(~ok)[0]
    start = 0 if bad.size == 0 else int(bad[-1]) + 1
    return int(np.asarray(epochs)[start])


def derived_epochs(
    epochs: np.ndarray,
    train_loss: np.ndarray,
    extraction_ok: np.ndarray,
    metric_epochs: np.ndarray | None = None,
    metric_loss: np.ndarray | None = None,
    metric_accuracy: np.ndarray | None = None,
    memorisation_loss: float = MEMORISATION_LOSS,
) -> dict[str, int | None]:
    """The memorisation, merger and generalisation epochs.

    Parameters
    ----------
    epochs : ndarray of int, shape (c,)
        Checkpoint epochs, increasing.
    train_loss : ndarray of float, shape (c,)
        Training loss at each checkpoint (NaN when unknown).
    extraction_ok : ndarray of bool, shape (c,)
        The extraction is closed and equivalent to the task at each checkpoint.
    metric_epochs, metric_loss, metric_accuracy : ndarray, optional
        The run's full metric log (every logged epoch, finer than the checkpoints): training loss and
        accuracy at the generalisation length (NaN when not logged). When absent the checkpoint rows are
        used.
    memorisation_loss : float, default 1e-3

    Returns
    -------
    dict
        ``memorisation_epoch`` (first epoch with training loss below ``memorisation_loss``),
        ``merger_epoch`` (first checkpoint from which the extraction is closed and equivalent and stays
        so), ``generalisation_epoch`` (first epoch from which the accuracy is 1.0 at every later logged
        epoch); None for an event that never happens.
    """
    epochs = np.asarray(epochs)
    if metric_epochs is None or metric_loss is None:
        metric_epochs, metric_loss = epochs, np.asarray(train_loss, dtype=float)
    metric_epochs = np.asarray(metric_epochs)
    low = np.nonzero(np.asarray(metric_loss, dtype=float) < memorisation_loss)[0]
    memorised = int(metric_epochs[low[0]]) if low.size else None
    generalised = None
    if metric_accuracy is not None:
        acc = np.asarray(metric_accuracy, dtype=float)
        known = ~np.isnan(acc)
        if known.any():
            generalised = first_stable(metric_epochs[known], acc[known] >= 1.0)
    return {
        "memorisation_epoch": memorised,
        "merger_epoch": first_stable(epochs, extraction_ok),
        "generalisation_epoch": generalised,
    }


@dataclass(frozen=True, eq=False)
class Timeline:
    """The extraction at every checkpoint of a training run.

    Attributes
    ----------
    rows : tuple of Row
        One per checkpoint, in epoch order.
    events : tuple of Event
        Every merge and split between consecutive checkpoints (states named by member words).
    memorisation_epoch, merger_epoch, generalisation_epoch : int or None
        See :func:`derived_epochs`; None when it never happens.
    task : str or None
        Name of the ground-truth task.
    task_machine : Machine or None
        The ground-truth machine itself.
    settings : dict
        How the timeline was computed (method, eps, pooled, max_len, scale, generalisation length...).
    words : tuple of str
        The words of the prefix tree, in node order (``"ε"`` for the empty word).
    depth : ndarray of int, shape (n,)
        Length of each word.
    labels : ndarray of int32, shape (c, n), optional
        State of every word at every checkpoint (None for a timeline read from JSON).
    machines : tuple of Machine, optional
        The raw extracted machine at every checkpoint (empty for a timeline read from JSON).
    metrics : dict of str to ndarray, optional
        The run's full metric log: ``epoch``, ``train_loss``, ``val_loss`` and ``loss_<L>`` /
        ``acc_<L>`` per test length, one entry per logged epoch.
    """

    rows: tuple[Row, ...]
    events: tuple[Event, ...] = ()
    memorisation_epoch: int | None = None
    merger_epoch: int | None = None
    generalisation_epoch: int | None = None
    task: str | None = None
    task_machine: Machine | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    words: tuple[str, ...] = ()
    depth: np.ndarray | None = None
    labels: np.ndarray | None = None
    machines: tuple[Machine, ...] = ()
    metrics: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.rows:
            raise DataError("a timeline needs at least one checkpoint row")
        ep = np.array([r.epoch for r in self.rows])
        if np.any(np.diff(ep) <= 0):
            raise DataError("timeline rows must have strictly increasing epochs")
        if self.labels is not None:
            lab = np.array(self.labels, dtype=np.int32, copy=True)
            if lab.ndim != 2 or lab.shape[0] != len(self.rows):
                raise DataError(
                    f"labels must have shape ({len(self.rows)}, n_words), got {lab.shape}"
                )
            lab.setflags(write=False)
            object.__setattr__(self, "labels", lab)
        if self.depth is not None:
            dep = np.array(self.depth, dtype=np.int64, copy=True)
            dep.setflags(write=False)
            object.__setattr__(self, "depth", dep)
        if self.machines and len(self.machines) != len(self.rows):
            raise DataError("give one machine per row, or none")

    # -- access ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    @property
    def epochs(self) -> np.ndarray:
        """Checkpoint epochs, shape (c,)."""
        return np.array([r.epoch for r in self.rows], dtype=np.int64)

    def column(self, name: str) -> np.ndarray:
        """One row field over all checkpoints as an array (None -> NaN for numeric fields).

        ``loss_<L>`` and ``acc_<L>`` give the per-length metrics.
        """
        if name.startswith(("loss_", "acc_")):
            kind, _, length = name.partition("_")
            key = int(length)
            src = "loss" if kind == "loss" else "accuracy"
            return np.array([getattr(r, src).get(key, np.nan) for r in self.rows], dtype=float)
        if name not in _SCALAR_FIELDS:
            raise DataError(f"no timeline column {name!r}; columns: {', '.join(self.columns())}")
        values = [getattr(r, name) for r in self.rows]
        if name in ("closed", "equivalent"):
            return np.array(values, dtype=bool)
        if name == "counterexample":
            return np.array(["" if v is None else v for v in values], dtype=object)
        return np.array([np.nan if v is None else v for v in values], dtype=float)

    @property
    def test_lengths(self) -> tuple[int, ...]:
        """Test lengths with logged loss or accuracy."""
        keys: set[int] = set()
        for r in self.rows:
            keys.update(r.loss)
            keys.update(r.accuracy)
        return tuple(sorted(keys))

    def columns(self) -> list[str]:
        """Names accepted by :meth:`column` (the CSV header)."""
        lengths = self.test_lengths
        return list(_SCALAR_FIELDS) + [f"loss_{k}" for k in lengths] + [f"acc_{k}" for k in lengths]

    def index(self, epoch: int) -> int:
        """Row index of the checkpoint at ``epoch`` (the nearest earlier one if absent)."""
        ep = self.epochs
        i = int(np.searchsorted(ep, epoch, side="right")) - 1
        if i < 0:
            raise DataError(f"no checkpoint at or before epoch {epoch}; the first is {int(ep[0])}")
        return i

    def machine(self, epoch: int) -> Machine:
        """The raw extracted machine at ``epoch`` (the nearest earlier checkpoint)."""
        if not self.machines:
            raise DataError(
                "this timeline holds no machines (read from JSON?); recompute it with timeline()"
            )
        return self.machines[self.index(epoch)]

    @property
    def n_words(self) -> int:
        """Number of words (nodes) clustered at each checkpoint."""
        if self.labels is not None:
            return int(self.labels.shape[1])
        return len(self.words) or int(self.settings.get("n_words", 0))

    # -- serialisation -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the derived epochs, settings, rows and events."""
        return {
            "format": "dfalens.timeline/1",
            "task": self.task,
            "task_machine": None
            if self.task_machine is None
            else machine_to_dict(self.task_machine),
            "memorisation_epoch": self.memorisation_epoch,
            "merger_epoch": self.merger_epoch,
            "generalisation_epoch": self.generalisation_epoch,
            "settings": {k: _clean(v) for k, v in self.settings.items()},
            "rows": [r.to_dict() for r in self.rows],
            "events": [e.to_dict() for e in self.events],
        }

    def to_json(self) -> str:
        """JSON text (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n"

    def to_csv(self) -> str:
        """CSV text, one line per checkpoint; empty cells for unknown values."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        cols = self.columns()
        writer.writerow(cols)
        for r in self.rows:
            d = r.to_dict()
            line = []
            for c in cols:
                if c.startswith("loss_"):
                    v = d["loss"].get(c[5:])
                elif c.startswith("acc_"):
                    v = d["accuracy"].get(c[4:])
                else:
                    v = d[c]
                line.append("" if v is None else (repr(v) if isinstance(v, float) else v))
            writer.writerow(line)
        return buf.getvalue()

    def write(self, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``timeline.csv`` and ``timeline.json`` into ``out_dir`` (atomically).

        Returns
        -------
        (Path, Path)
            The CSV and JSON paths.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        csv_path, json_path = out / "timeline.csv", out / "timeline.json"
        atomic_write(csv_path, self.to_csv())
        atomic_write(json_path, self.to_json())
        return csv_path, json_path

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> Timeline:
        """Read a ``timeline.json`` written by :meth:`write` (a path or the JSON text).

        The result has no labels or machines.
        """
        text = str(source)
        p = Path(text) if "\n" not in text and len(text) < 4096 else None
        if p is not None and p.is_dir():
            p = p / "timeline.json"
        if p is not None and p.exists():
            text = p.read_text(encoding="utf-8")
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"not a timeline JSON file: {exc}") from None
        if not isinstance(d, dict) or "rows" not in d:
            raise DataError("not a dfalens timeline: the JSON has no 'rows'")
        rows = tuple(Row.from_dict(r) for r in d["rows"])
        events = tuple(
            Event(int(e["epoch"]), e["kind"], e["state"], tuple(e["parts"]), int(e["size"]))
            for e in d.get("events", [])
        )
        return cls(
            rows=rows,
            events=events,
            memorisation_epoch=d.get("memorisation_epoch"),
            merger_epoch=d.get("merger_epoch"),
            generalisation_epoch=d.get("generalisation_epoch"),
            task=d.get("task"),
            task_machine=machine_from_dict(d["task_machine"]) if d.get("task_machine") else None,
            settings=dict(d.get("settings") or {}),
        )


# -- computing a timeline ---------------------------------------------------------------------------
TIMELINE_METHODS = ("leader", "threshold", "dbscan", "agglomerative", "hdbscan")
"""Clustering methods a timeline accepts (the ones driven by a merge distance eps)."""

KEEP_STATES_BYTES = 3 * 10**9
"""In-process timelines keep pass 1's states for pass 2 when they take at most this much memory."""


def _blocks(n: int, jobs: int, block: int | None) -> list[slice]:
    if block is None:
        block = max(1, min(64, -(-n // max(1, 4 * jobs))))
    return [slice(s, min(s + block, n)) for s in range(0, n, block)]


def _words(info: Any, max_len: int) -> int:
    """Number of words up to ``max_len`` over the run's alphabet (binary when unknown)."""
    k = len(info.task_machine.alphabet) if info.task_machine is not None else 2
    return words_up_to(k, max_len) + 1


def _last(states: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The last checkpoint of a kept block of states."""
    return None if states is None else (states[0][-1:], states[1][-1:])


def _metric_table(rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """The run's metric rows as columns: epoch, step, train_loss, loss_<L>, acc_<L>."""
    if not rows:
        return {}
    lengths = sorted(
        {
            int(k)
            for r in rows
            for k in list(r.get("val_loss") or {}) + list(r.get("val_accuracy") or {})
        }
    )
    table: dict[str, np.ndarray] = {
        "epoch": np.array([int(r["epoch"]) for r in rows], dtype=np.int64),
        "train_loss": np.array([_num(r.get("train_loss")) for r in rows]),
    }
    for L in lengths:
        table[f"loss_{L}"] = np.array([_num((r.get("val_loss") or {}).get(str(L))) for r in rows])
        table[f"acc_{L}"] = np.array(
            [_num((r.get("val_accuracy") or {}).get(str(L))) for r in rows]
        )
    if lengths:
        table["val_loss"] = table[f"loss_{lengths[0]}"]
    order = np.argsort(table["epoch"], kind="stable")
    return {k: v[order] for k, v in table.items()}


def _num(v: Any) -> float:
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _opt(v: float) -> float | None:
    return None if not math.isfinite(v) else float(v)


def timeline(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    task: str | Machine | None = None,
    *,
    max_len: int | None = None,
    method: str = "leader",
    eps: float = 0.01,
    pooled: bool = True,
    relative: bool = True,
    order: str = "bfs",
    include_empty: bool = False,
    fidelity_words: int = 32,
    fidelity_length: int = 50,
    events: bool = True,
    jobs: int | None = None,
    block: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Timeline:
    """Extract the automaton at every checkpoint of a training run.

    Parameters
    ----------
    source : path or sequence of paths
        A run directory (its ``checkpoints/epoch_*.safetensors``) or checkpoint files of one run.
    task : str or Machine, optional
        Ground truth to compare with (default: the run's task from ``run.json`` or the checkpoints).
    max_len : int, optional
        Longest word whose state is collected (default: the run's training length; 10 in the paper,
        2,047 words).
    method : {"leader", "threshold", "dbscan", "agglomerative", "hdbscan"}, default "leader"
        Clustering (see :func:`dfalens.probes.cluster`); ``leader`` is the paper's greedy grouping.
    eps : float, default 0.01
        Merge distance, relative to the representational scale (the paper's 0.01) unless
        ``relative=False``.
    pooled : bool, default True
        The scale is the norm of the per-unit std pooled over all checkpoints and words (the paper);
        False: each checkpoint's own.
    relative : bool, default True
    order : {"bfs", "lexicographic"}, default "bfs"
        Visiting order of ``leader``: shorter words first, or the paper code's string order.
    include_empty : bool, default False
        Let the empty word's output count (see :func:`dfalens.probes.quotient`); equivalence then
        also compares the empty word.
    fidelity_words, fidelity_length : int, default 32 and 50
        Random words on which a closed extraction is compared with the network (0: skip).
    events : bool, default True
        Record the individual merges and splits with state names (counts are always recorded).
    jobs : int, optional
        Worker processes (joblib/loky; each runs torch and BLAS with one thread). 1 runs in this
        process (also with one thread) and keeps the states of pass 1 for pass 2 instead of computing
        them again. Default: 1 when those states fit in :data:`KEEP_STATES_BYTES`, else 2. On a
        2-core machine shared with other work one process was faster than two workers; on two idle
        cores two workers were 1.1-1.3x faster (see ``benchmarks/RESULTS.md``).
    block : int, optional
        Checkpoints per work item (default: a quarter of an even share, at most 64).
    seed : int, default 0
        Seeds the fidelity words.
    progress : bool, default False
        Progress bars (only on a terminal).

    Returns
    -------
    Timeline

    Raises
    ------
    CheckpointError
        No checkpoints, unreadable ones, or checkpoints of different runs.
    TaskError
        A task whose alphabet differs from the network's.
    ConfigError
        A bad setting.
    """

    if method not in TIMELINE_METHODS:
        raise ConfigError(
            f"timeline method must be one of {', '.join(TIMELINE_METHODS)} (merge-distance methods), "
            f"got {method!r}"
        )
    if order not in ("bfs", "lexicographic"):
        raise ConfigError(f"order must be 'bfs' or 'lexicographic', got {order!r}")
    check_number("eps", eps, low=0, low_open=True)
    check_int("jobs", jobs, minimum=1, optional=True)
    check_int("max_len", max_len, minimum=1, optional=True)
    check_int("block", block, minimum=1, optional=True)
    check_int("fidelity_words", fidelity_words, minimum=0)
    check_int("fidelity_length", fidelity_length, minimum=1)
    check_int("seed", seed, minimum=0)
    if task is not None and not isinstance(task, str | Machine | os.PathLike):
        raise ConfigError(
            f"task must be a task name, a machine JSON path or a Machine, got {task!r:.60}"
        )
    info = resolve_run(source)
    if max_len is None:
        max_len = int(info.config.get("max_len", 10))
    if isinstance(max_len, bool) or not isinstance(max_len, int | np.integer) or max_len < 1:
        raise ConfigError(f"max_len must be a positive integer, got {max_len!r}")
    paths = list(info.paths)
    # pass 1: metadata (do the checkpoints belong together?) and the states' scale; in this process
    # the states are kept for pass 2 when they fit in memory
    units = int(info.config.get("hidden", 128)) * int(info.config.get("layers", 1))
    units *= 2 if info.config.get("cell") == "lstm" else 1
    try:
        n_words = float(_words(info, max_len)) if max_len < 4096 else math.inf
    except OverflowError:
        n_words = math.inf
    # each worker holds one block's states (float32) and its clustering; all labels are kept
    check_memory(
        n_words * (8.0 * (units + 2) * (jobs or 1) + 8.0 * len(paths)),
        f"a timeline over every word up to length {max_len} ({len(paths)} checkpoints, "
        f"{units} units)",
        "lower --max-len",
    )
    fits = 4 * len(paths) * _words(info, max_len) * (units + 2) <= KEEP_STATES_BYTES
    if jobs is None:
        jobs = 1 if fits else 2
    keep = jobs == 1 and fits
    parts = _blocks(len(paths), jobs, block)
    moments = run_blocks(
        collect_block, jobs, [(paths[p], max_len, keep) for p in parts], progress, "collect"
    )
    metas = [m for part in moments for m in part["metas"]]
    check_same_run(metas, paths)
    for p, part in zip(parts, moments, strict=True):
        if "diverged" in part:
            bad = p.start + part["diverged"]
            raise DataError(
                f"the network's states are NaN or inf at epoch {int(info.epochs[bad])} (training "
                f"diverged); pass the checkpoints before it (e.g. the files of epochs < "
                f"{int(info.epochs[bad])})"
            )
    machine, task_name = resolve_task(task, info, metas[0])
    n_ckpt = len(paths)
    if not relative:
        eps_abs = np.full(n_ckpt, float(eps))
        unit: float | list[float] = 1.0
    elif pooled:
        unit = pooled_scale(moments)
        eps_abs = np.full(n_ckpt, eps * unit)
    else:
        per = np.concatenate([m["scales"] for m in moments])
        unit = per.tolist()
        eps_abs = eps * per

    # pass 2: the extraction at every checkpoint, and its changes from the previous one
    fidelity = (int(fidelity_words), int(fidelity_length))
    kept = [m.pop("states", None) for m in moments]
    epoch_list = [int(e) for e in info.epochs]
    args = [
        (
            paths[p],
            epoch_list[p],
            paths[p.start - 1] if p.start > 0 else None,
            max_len,
            eps_abs[p].tolist(),
            float(eps_abs[max(p.start - 1, 0)]),
            method,
            order,
            machine,
            include_empty,
            fidelity,
            seed,
            events,
            kept[i],
            _last(kept[i - 1]) if i else None,
        )
        for i, p in enumerate(parts)
    ]
    del kept
    results = [
        r for part in run_blocks(extract_block, jobs, args, progress, "extract") for r in part
    ]

    parent, symbol, depth = tree_arrays(len(machine.alphabet), max_len)
    words = word_strings(parent, symbol, machine.alphabet)
    labels = np.stack([r["labels"] for r in results])
    table = _metric_table(list(info.metrics))
    by_epoch = {int(e): i for i, e in enumerate(table.get("epoch", []))}
    lengths = sorted(int(k[5:]) for k in table if k.startswith("loss_"))
    rows: list[Row] = []
    all_events: list[Event] = []
    for c, r in enumerate(results):
        epoch = int(info.epochs[c])
        meta = metas[c]
        change = r["change"]
        all_events.extend(r["events"])
        i = by_epoch.get(epoch)
        if i is not None:
            train_loss = _opt(table["train_loss"][i])
            loss = {L: v for L in lengths if math.isfinite(v := float(table[f"loss_{L}"][i]))}
            acc = {L: v for L in lengths if math.isfinite(v := float(table[f"acc_{L}"][i]))}
        else:  # no metrics file: what the checkpoint itself recorded
            train_loss = _opt(_num(meta.get("train_loss")))
            loss = {}
            acc = {int(k): float(v) for k, v in (meta.get("val_accuracy") or {}).items()}
        step = meta.get("step")
        rows.append(
            Row(
                epoch=epoch,
                step=None if step is None else int(step),
                train_loss=train_loss,
                val_loss=loss[min(loss)] if loss else None,
                states_raw=int(r["machine"].n_states),
                states_minimal=int(r["n_minimal"]),
                closed=r["closed"],
                equivalent=bool(r["closed"] and r["equal"]),
                counterexample=None if r["equal"] else r["counterexample"],
                fidelity=r["fidelity"],
                eps=float(eps_abs[c]),
                merges=None if change is None else change.merges,
                splits=None if change is None else change.splits,
                merged_away=None if change is None else change.merged_away,
                split_created=None if change is None else change.split_created,
                loss=loss,
                accuracy=acc,
            )
        )

    # derived epochs: the full metric log when there is one, else the rows
    test_lengths = sorted({L for row in rows for L in row.accuracy})
    gen_len = (
        GENERALISATION_LENGTH
        if GENERALISATION_LENGTH in test_lengths or not test_lengths
        else max(test_lengths)
    )
    epochs_arr = np.array([row.epoch for row in rows])
    ok = np.array([row.equivalent for row in rows])
    if table:
        acc_col = table.get(f"acc_{gen_len}")
        derived = derived_epochs(
            epochs_arr, np.array([]), ok, table["epoch"], table["train_loss"], acc_col
        )
    else:
        loss_rows = np.array([_num(row.train_loss) for row in rows])
        acc_rows = np.array([row.accuracy.get(gen_len, math.nan) for row in rows])
        derived = derived_epochs(epochs_arr, loss_rows, ok, epochs_arr, loss_rows, acc_rows)
    settings = {
        "method": method,
        "eps": float(eps),
        "relative": bool(relative),
        "pooled": bool(pooled),
        "scale": unit if isinstance(unit, float) else None,
        "order": order,
        "max_len": int(max_len),
        "n_words": int(depth.size),
        "include_empty": bool(include_empty),
        "fidelity_words": fidelity[0],
        "fidelity_length": fidelity[1],
        "memorisation_loss": MEMORISATION_LOSS,
        "generalisation_length": gen_len if test_lengths else None,
        "run_dir": str(info.run_dir) if info.run_dir is not None else None,
        "n_checkpoints": n_ckpt,
    }
    return Timeline(
        rows=tuple(rows),
        events=tuple(all_events),
        task=task_name,
        task_machine=machine,
        settings=settings,
        words=words,
        depth=depth,
        labels=labels,
        machines=tuple(r["machine"] for r in results),
        metrics=table,
        **derived,
    )
