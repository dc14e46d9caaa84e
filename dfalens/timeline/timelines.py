"""When a training run becomes the automaton: :func:`timeline` and the :class:`Timeline` it returns.

A timeline extracts an automaton at every checkpoint of a run and records, per checkpoint, the raw and
minimal state counts, whether the extraction is closed and equivalent to the task, its fidelity, the run's
losses and accuracies, and the merges and splits since the previous checkpoint. Three epochs are derived:

- *memorisation*: the first epoch with training loss below 1e-3;
- *merger*: the first checkpoint from which the extraction is closed and equivalent and stays so;
- *generalisation*: the first epoch from which the accuracy at length 1000 is 1.0 at every later epoch.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dfalens._args import check_int, check_number
from dfalens._budget import check_memory, words_up_to
from dfalens.automata import Machine
from dfalens.errors import ConfigError, DataError
from dfalens.probes._eps import accepts_relative, pick_eps
from dfalens.probes.collection import tree_arrays
from dfalens.probes.hooks import PrefixProbe
from dfalens.probes.probe import Probe
from dfalens.probes.scaling import pool
from dfalens.timeline._result import Row, Timeline, derived_epochs
from dfalens.timeline._sources import EpochProbe, is_probe_source, probe_items, probe_meta
from dfalens.timeline._workers import collect_block, extract_block, run_blocks
from dfalens.timeline.events import Event
from dfalens.timeline.history import (
    RunInfo,
    check_same_run,
    resolve_run,
    resolve_task,
    word_strings,
)
from dfalens.trainers.landmarks import (
    GENERALISATION_LENGTH,
    MEMORISATION_LOSS,
    first_stable,
    generalisation_length,
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


def _probe_run(
    source: Sequence[Any],
    task: str | Machine | os.PathLike[str] | None,
    jobs: int | None,
    fidelity_words: int,
    fidelity_length: int,
) -> list[EpochProbe]:
    """Check a probe timeline's ``(epoch, probe)`` pairs and the settings that depend on them."""
    if task is None:
        raise ConfigError(
            "a timeline over probes needs task=... (a task name or Machine): probes do not name "
            "their task"
        )
    items = probe_items(source)
    if jobs is not None and jobs != 1:
        warnings.warn(
            f"jobs={jobs} ignored: probes hold closures and models, so a timeline over probes runs "
            "in this process (jobs=1)",
            UserWarning,
            stacklevel=3,
        )
    probe = items[0].probe
    context = probe.context if isinstance(probe, PrefixProbe) else None
    if context is not None and fidelity_words > 0 and fidelity_length > context:
        raise ConfigError(
            f"fidelity_length={fidelity_length} does not fit the model's context of {context} "
            f"symbols; pass fidelity_length={context} or less (or fidelity_words=0)"
        )
    return items


@accepts_relative
def timeline(
    source: str
    | os.PathLike[str]
    | Sequence[str | os.PathLike[str]]
    | Sequence[tuple[int, Probe | PrefixProbe]],
    task: str | Machine | None = None,
    *,
    max_len: int | None = None,
    method: str = "leader",
    eps: float | None = None,
    eps_abs: float | None = None,
    pooled: bool = True,
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
    source : path, sequence of paths, or sequence of (epoch, probe) pairs
        A run directory (its ``checkpoints/epoch_*.safetensors``) or checkpoint files of one run; or
        one network at several epochs as ``(epoch, probe)`` pairs, the probes being
        :class:`~dfalens.probes.Probe` or :class:`~dfalens.probes.PrefixProbe` (e.g.
        :func:`~dfalens.probes.from_transformer_lens` of each saved checkpoint of a transformer)
        with one alphabet, state size and readout. Probes run in this process (``jobs`` is 1);
        their rows have no losses or accuracies, so only the merger epoch is derived.
    task : str or Machine, optional
        Ground truth to compare with (default: the run's task from ``run.json`` or the checkpoints;
        required for probes).
    max_len : int, optional
        Longest word whose state is collected (default: the run's training length; 10 in the paper,
        2,047 words; 10 for probes).
    method : {"leader", "threshold", "dbscan", "agglomerative", "hdbscan"}, default "leader"
        Clustering (see :func:`dfalens.probes.cluster`); ``leader`` is the paper's greedy grouping.
    eps : float, optional
        Merge distance relative to the representational scale; default 0.01 (the paper's) unless
        ``eps_abs`` is given.
    eps_abs : float, optional
        Merge distance as an absolute Euclidean distance, instead of ``eps`` (give at most one). The
        ``relative=False`` of earlier versions is a deprecated spelling of this.
    pooled : bool, default True
        The scale is the norm of the per-unit std pooled over all checkpoints and words (the paper);
        False: each checkpoint's own. Not used with ``eps_abs``.
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
        process (also with one thread; always so for probes) and keeps the states of pass 1 for
        pass 2 instead of computing them again. Default: 1 when those states fit in :data:`KEEP_STATES_BYTES`, else 2. On a
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
        A bad setting; for probes: no task, an item that is not an ``(epoch, probe)`` pair, two
        probes for one epoch, or probes whose alphabets, state sizes or outputs differ.
    """

    eps, relative = pick_eps(eps, eps_abs)
    eps = 0.01 if eps is None else eps
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
    probes = is_probe_source(source)
    if probes:
        items = _probe_run(source, task, jobs, fidelity_words, fidelity_length)
        jobs = 1
        first = probe_meta(items[0])
        base = RunInfo((), np.array([it.epoch for it in items], dtype=np.int64))
        info = RunInfo(
            (),
            base.epochs,
            config={"hidden": first["model_config"]["hidden"], "layers": 1},
            task_machine=resolve_task(task, base, first)[0],
        )
        paths: list[Any] = list(items)
    else:
        if isinstance(source, Sequence) and not isinstance(source, str | bytes) and not source:
            raise ConfigError(
                "source is empty; pass a run directory, checkpoint files or (epoch, probe) pairs"
            )
        info = resolve_run(source)
        paths = list(info.paths)
    if max_len is None:
        max_len = int(info.config.get("max_len", 10))
    if isinstance(max_len, bool) or not isinstance(max_len, int | np.integer) or max_len < 1:
        raise ConfigError(f"max_len must be a positive integer, got {max_len!r}")
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
    if not probes:  # probes were checked by probe_items
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
        unit = float(pool([m["moments"] for m in moments]).scale)
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
                eps_abs=float(eps_abs[c]),
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
    gen_len = generalisation_length(test_lengths) or GENERALISATION_LENGTH
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
        "eps": float(eps) if relative else None,
        "eps_abs": None if relative else float(eps),
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
