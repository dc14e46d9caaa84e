"""The result of a timeline: one :class:`Row` per checkpoint, the :class:`Timeline` that holds them (files
in and out), and the derived epochs (:func:`derived_epochs`). :func:`dfalens.timeline.timeline` computes
it; see :mod:`dfalens.timeline.timelines`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from dfalens._args import DeprecatedAlias
from dfalens._files import atomic_write, jsonable
from dfalens.automata import Machine
from dfalens.automata import from_dict as machine_from_dict
from dfalens.automata import to_dict as machine_to_dict
from dfalens.errors import DataError
from dfalens.timeline.events import Event
from dfalens.timeline.frames import timeline_html
from dfalens.trainers.landmarks import (
    MEMORISATION_LOSS,
    first_stable,
    generalisation_epoch,
    memorisation_epoch,
)

__all__ = ["Row", "Timeline", "derived_epochs"]

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
    "eps_abs",
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
    eps_abs : float
        The absolute merge distance used (``eps`` in timelines of earlier versions, and the
        deprecated name of this attribute).
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
    eps_abs: float
    merges: int | None = None
    splits: int | None = None
    merged_away: int | None = None
    split_created: int | None = None
    loss: dict[int, float] = field(default_factory=dict, hash=False)
    accuracy: dict[int, float] = field(default_factory=dict, hash=False)

    eps = DeprecatedAlias("eps_abs")
    """Deprecated name of :attr:`eps_abs` (``eps`` is relative everywhere else)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN becomes None)."""
        d: dict[str, Any] = {
            name: jsonable(getattr(self, name), finite=True) for name in _SCALAR_FIELDS
        }
        d["loss"] = jsonable(dict(sorted(self.loss.items())), finite=True)
        d["accuracy"] = jsonable(dict(sorted(self.accuracy.items())), finite=True)
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
        # timelines of earlier versions call the absolute distance "eps"
        if kwargs["eps_abs"] is None:
            kwargs["eps_abs"] = d.get("eps")
        kwargs["eps_abs"] = float(kwargs["eps_abs"]) if kwargs["eps_abs"] is not None else math.nan
        loss = {int(k): float(v) for k, v in (d.get("loss") or {}).items() if v is not None}
        acc = {int(k): float(v) for k, v in (d.get("accuracy") or {}).items() if v is not None}
        return cls(**kwargs, loss=loss, accuracy=acc)


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
    memorised = memorisation_epoch(metric_epochs, metric_loss, memorisation_loss)
    generalised = None
    if metric_accuracy is not None:
        generalised = generalisation_epoch(metric_epochs, metric_accuracy)
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
        if name == "eps":
            warnings.warn(
                'the timeline column "eps" is now "eps_abs" (the absolute distance); the old name '
                "will be removed in the next release",
                DeprecationWarning,
                stacklevel=2,
            )
            name = "eps_abs"
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

    def _repr_html_(self) -> str:
        """The report page, inline in Jupyter (states read again from the run for the projection)."""
        return timeline_html(self, load_states=True, fragment=True)

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
            "settings": jsonable(self.settings, finite=True),
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
