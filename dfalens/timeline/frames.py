"""A run as the frames of the report page: which checkpoints are shown, their machines, the merges to
the next checkpoint, the curves and one projection of the hidden states for all frames.

:func:`timeline_payload` turns a :class:`~dfalens.timeline.Timeline` (and, for the projection, the
hidden states of the shown checkpoints) into the data :func:`dfalens.probes.page.render_page` draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dfalens.automata import Machine, minimize
from dfalens.errors import ConfigError, DataError, DfalensError
from dfalens.probes.page import SvgStore, classes, pack, project, render_page, subsample_words
from dfalens.timeline.history import History, load_history

if TYPE_CHECKING:
    from dfalens.timeline.timelines import Timeline

__all__ = [
    "MAX_FRAMES",
    "frame_history",
    "merging_states",
    "select_frames",
    "timeline_html",
    "timeline_payload",
]

MAX_FRAMES = 300
"""Runs with at most this many checkpoints show every one; longer runs a subsample."""

LANDMARKS = ("memorisation", "merger", "generalisation")


def select_frames(
    epochs: np.ndarray, landmarks: Sequence[int | None], limit: int = MAX_FRAMES
) -> tuple[np.ndarray, str]:
    """The checkpoints shown: all of them, or a subsample dense around the landmark epochs.

    Parameters
    ----------
    epochs : ndarray of int, shape (c,)
        Checkpoint epochs, increasing.
    landmarks : sequence of int or None
        The memorisation, merger and generalisation epochs (None: never reached).
    limit : int, default 300

    Returns
    -------
    index : ndarray of int
        Increasing row indices, at most ``limit`` of them.
    note : str
        Which checkpoints were taken, for the page.
    """
    if limit < 2:
        raise ConfigError(f"a report shows at least 2 frames, got a limit of {limit}")
    ep = np.asarray(epochs)
    c = int(ep.size)
    if c <= limit:
        return np.arange(c), f"every checkpoint ({c})"
    marks = sorted({min(c - 1, int(np.searchsorted(ep, m))) for m in landmarks if m is not None})
    n_even = max(2, limit // 3) if marks else limit
    even = np.unique(np.rint(np.linspace(0, c - 1, n_even)).astype(np.int64))

    def around(radius: int) -> np.ndarray:
        near = np.concatenate([np.arange(m - radius, m + radius + 1) for m in marks])
        return np.union1d(even, near[(near >= 0) & (near < c)])

    if not marks or around(0).size > limit:  # too few frames for the landmarks: evenly spaced
        even = np.unique(np.rint(np.linspace(0, c - 1, limit)).astype(np.int64))
        return even, f"{even.size} of {c} checkpoints, evenly spaced"
    # the widest window around every landmark for which the union still fits in the limit
    lo, hi = 0, c
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if around(mid).size <= limit:
            lo = mid
        else:
            hi = mid - 1
    radius = lo
    chosen = around(radius)
    names = [
        f"{name} (epoch {m})"
        for name, m in zip(LANDMARKS, landmarks, strict=False)
        if m is not None
    ]
    note = (
        f"{chosen.size} of {c} checkpoints: {even.size} evenly spaced, plus every checkpoint within "
        f"{radius} checkpoints of the {', '.join(names)}"
    )
    return chosen, note


def merging_states(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """States of ``before`` whose words share a state in ``after`` with words of another state.

    Parameters
    ----------
    before, after : ndarray of int, shape (n,)
        The state of every word at a checkpoint and at the next one.

    Returns
    -------
    ndarray of int
        Sorted state numbers of ``before`` that merge.
    """
    b = np.asarray(before, dtype=np.int64)
    a = np.asarray(after, dtype=np.int64)
    width = int(b.max()) + 1 if b.size else 1
    pairs = np.unique(a * width + b)
    targets, sources = pairs // width, pairs % width
    many = np.unique(targets, return_counts=True)
    shared = many[0][many[1] > 1]
    return np.unique(sources[np.isin(targets, shared)])


def frame_history(tl: Timeline, rows: np.ndarray) -> History | None:
    """The hidden states of the given rows, read again from the timeline's run (None if it is gone)."""
    run_dir = tl.settings.get("run_dir")
    if not run_dir or not Path(run_dir).is_dir():
        return None
    epochs = tl.epochs[np.asarray(rows)].tolist()
    try:
        return load_history(run_dir, max_len=tl.settings.get("max_len"), epochs=epochs)
    except DfalensError:
        return None


def _num(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _curves(tl: Timeline) -> dict[str, Any]:
    def col(name: str) -> list[Any]:
        return [_num(v) for v in tl.column(name).tolist()]

    return {
        "epoch": tl.epochs.tolist(),
        "train_loss": col("train_loss"),
        "val_loss": col("val_loss"),
        "states_raw": col("states_raw"),
        "states_minimal": col("states_minimal"),
        "closed": tl.column("closed").tolist(),
        "equivalent": tl.column("equivalent").tolist(),
    }


def _projection(tl: Timeline, history: History, rows: np.ndarray) -> dict[str, Any] | None:
    if tl.labels is None:
        return None
    wanted = tl.epochs[rows]
    if history.epochs.shape != wanted.shape or np.any(history.epochs != wanted):
        raise DataError(
            "the hidden states given are not those of the shown checkpoints; pass the History of "
            "the frames' epochs (frame_history)"
        )
    words = subsample_words(history.depth)
    hidden = np.asarray(history.hidden)[:, words]
    xy, explained = project(hidden)
    names = history.words
    return {
        "words": [names[i] for i in words.tolist()],
        "n": int(words.size),
        "xy": pack(xy),
        "state": pack(tl.labels[rows][:, words], "u2"),
        "output": pack(classes(np.asarray(history.output)[:, words]), "u1"),
        "explained": [float(e) for e in explained],
    }


def timeline_payload(
    tl: Timeline,
    history: History | None = None,
    *,
    limit: int = MAX_FRAMES,
    title: str | None = None,
    load_states: bool = False,
) -> dict[str, Any]:
    """JSON-ready data of the report of a run.

    Parameters
    ----------
    tl : Timeline
        With machines and labels (computed by :func:`dfalens.timeline.timeline`) for the drawings and
        the merges; one read from JSON gives the curves and verdicts only.
    history : History, optional
        Hidden states of exactly the shown checkpoints (:func:`frame_history`); None: no projection.
    limit : int, default 300
        Most frames (see :func:`select_frames`).
    title : str, optional
    load_states : bool, default False
        Without ``history``, read the states of the shown checkpoints again from the run directory
        (skipped, with no projection, when it is gone).
    """
    landmarks = (tl.memorisation_epoch, tl.merger_epoch, tl.generalisation_epoch)
    rows, note = select_frames(tl.epochs, landmarks, limit)
    if history is None and load_states and tl.labels is not None:
        history = frame_history(tl, rows)
    store = SvgStore()
    minimal: dict[Machine, Machine] = {}
    if tl.machines:
        for r in rows.tolist():
            machine = tl.machines[r]
            if machine not in minimal:
                minimal[machine] = minimize(machine)
        # the drawings of both machines of every frame, in frame order, several at a time
        store.draw_all(
            [m for r in rows.tolist() for m in (tl.machines[r], minimal[tl.machines[r]])]
        )
    frames = []
    for r in rows.tolist():
        row = tl.rows[r]
        raw_svg = min_svg = None
        merging: list[str] = []
        if tl.machines:
            machine = tl.machines[r]
            raw_svg = store.index(machine)
            min_svg = store.index(minimal[machine])
        if tl.labels is not None and r + 1 < len(tl.rows):
            merging = [f"q{q}" for q in merging_states(tl.labels[r], tl.labels[r + 1]).tolist()]
        frames.append(
            {
                "epoch": row.epoch,
                "index": r,
                "states_raw": row.states_raw,
                "states_minimal": row.states_minimal,
                "closed": row.closed,
                "equivalent": row.equivalent,
                "counterexample": row.counterexample,
                "fidelity": _num(row.fidelity),
                "train_loss": _num(row.train_loss),
                "val_loss": _num(row.val_loss),
                "merges": row.merges,
                "splits": row.splits,
                "raw": raw_svg,
                "minimal": min_svg,
                "merging": merging,
            }
        )
    settings = {k: v for k, v in tl.settings.items() if not isinstance(v, list | dict)}
    return {
        "kind": "timeline",
        "title": title or f"dfalens: {tl.task or 'run'} over training",
        "task": tl.task,
        "frames": frames,
        "svgs": store.svgs,
        "draw_limit": store.limit,
        "over_budget": store.over_budget,
        "curves": _curves(tl),
        "landmarks": dict(zip(LANDMARKS, landmarks, strict=True)),
        "projection": None if history is None else _projection(tl, history, rows),
        "settings": {k: _num(v) if isinstance(v, float) else v for k, v in settings.items()},
        "frame_note": note,
        "candidates": None,
    }


def timeline_html(
    tl: Timeline,
    history: History | None = None,
    *,
    limit: int = MAX_FRAMES,
    title: str | None = None,
    load_states: bool = False,
    fragment: bool = False,
) -> str:
    """The report page of a run (see :func:`timeline_payload`; ``fragment`` for Jupyter)."""
    payload = timeline_payload(tl, history, limit=limit, title=title, load_states=load_states)
    return render_page(payload, fragment=fragment)
