"""Merges and splits between two clusterings of the same words.

Two consecutive checkpoints of a timeline cluster the same nodes (the words of one prefix tree) into
states. Comparing the two partitions tells which states merged and which split. The comparison is done on
the *overlap graph*: old state ``a`` and new state ``b`` are joined when some word is in both.

- A **merge** is a new state whose words come from more than one old state.
- A **split** is an old state whose words go to more than one new state.
- ``merged_away`` counts the old states that disappeared into merges:
  ``sum over new states of (number of old states it overlaps - 1)``.
- ``split_created`` counts the states that splits created:
  ``sum over old states of (number of new states it overlaps - 1)``.

With ``E`` the number of edges of the overlap graph, ``merged_away = E - n_new`` and
``split_created = E - n_old``, so the accounting is exact: ``n_new = n_old - merged_away + split_created``.
A regrouping (a new state made of *parts* of two old states) counts as both a merge and splits.

States are named as in the paper, by their member words (``"01,0111,1101,…(57 words)"``); the
full membership of every state at every checkpoint is in :attr:`dfalens.probes.Timeline.labels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from dfalens.errors import DataError

__all__ = [
    "Change",
    "Event",
    "compare_partitions",
    "partition_events",
    "diff_partitions",
    "state_names",
]


@dataclass(frozen=True)
class Change:
    """Counts of merges and splits from one partition of the words to the next.

    Attributes
    ----------
    n_old, n_new : int
        Number of states before and after.
    merges : int
        New states made from words of more than one old state.
    splits : int
        Old states whose words went to more than one new state.
    merged_away : int
        Old states lost to merges (a merge of ``k`` old states loses ``k - 1``).
    split_created : int
        States created by splits (a split into ``k`` new states creates ``k - 1``).
    unchanged : int
        States with exactly the same words before and after.
    removed, added : int
        Old states that no longer exist with the same words, and new states that did not exist before
        (the quantities from which the paper's code infers its counts).
    """

    n_old: int
    n_new: int
    merges: int
    splits: int
    merged_away: int
    split_created: int
    unchanged: int
    removed: int
    added: int


@dataclass(frozen=True)
class Event:
    """One merge or split between two checkpoints.

    Attributes
    ----------
    epoch : int
        Epoch of the checkpoint at which the event is first seen.
    kind : {"merge", "split"}
    state : str
        For a merge the new state, for a split the old state (named by member words).
    parts : tuple of str
        For a merge the old states it took words from; for a split the new states its words went to.
    size : int
        Number of words of ``state``.
    """

    epoch: int
    kind: Literal["merge", "split"]
    state: str
    parts: tuple[str, ...]
    size: int

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "epoch": self.epoch,
            "kind": self.kind,
            "state": self.state,
            "parts": list(self.parts),
            "size": self.size,
        }


def _check(old: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    old = np.asarray(old)
    new = np.asarray(new)
    if old.ndim != 1 or new.shape != old.shape:
        raise DataError(
            f"two partitions of the same words are needed, got label arrays of shapes {old.shape} "
            f"and {new.shape}"
        )
    if old.size and (old.min() < 0 or new.min() < 0):
        raise DataError("cluster labels must be non-negative integers")
    return _compact(old), _compact(new)


def _compact(labels: np.ndarray) -> np.ndarray:
    """Relabel to 0..k-1 (in order of first appearance is not needed; sorted order is)."""
    _, inv = np.unique(labels, return_inverse=True)
    return inv.reshape(-1).astype(np.int64)


def _overlap(
    old: np.ndarray, new: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Edges (old state, new state, shared words) of the overlap graph."""
    n_old = int(old.max()) + 1 if old.size else 0
    n_new = int(new.max()) + 1 if new.size else 0
    key = old * max(n_new, 1) + new
    edges, counts = np.unique(key, return_counts=True)
    return edges // max(n_new, 1), edges % max(n_new, 1), counts, n_old, n_new


def compare_partitions(old: np.ndarray, new: np.ndarray) -> Change:
    """Count the merges and splits that turn one partition of the words into another.

    Parameters
    ----------
    old, new : ndarray of int, shape (n,)
        The state (cluster label) of every word at the earlier and at the later checkpoint. Label values
        are arbitrary; only which words share a label matters.

    Returns
    -------
    Change
        The counts; ``n_new == n_old - merged_away + split_created`` always holds.
    """
    return diff_partitions(old, new)[0]


def _change(old: np.ndarray, new: np.ndarray, e: tuple[np.ndarray, ...]) -> Change:
    a, b, counts, n_old, n_new = e
    deg_new = np.bincount(b, minlength=n_new)
    deg_old = np.bincount(a, minlength=n_old)
    size_old = np.bincount(old, minlength=n_old)
    size_new = np.bincount(new, minlength=n_new)
    # a state is unchanged when its only overlap is the whole of both sides
    same = (deg_old[a] == 1) & (deg_new[b] == 1) & (counts == size_old[a]) & (counts == size_new[b])
    unchanged = int(same.sum())
    return Change(
        n_old=n_old,
        n_new=n_new,
        merges=int((deg_new > 1).sum()),
        splits=int((deg_old > 1).sum()),
        merged_away=int(a.size - n_new),
        split_created=int(a.size - n_old),
        unchanged=unchanged,
        removed=n_old - unchanged,
        added=n_new - unchanged,
    )


def diff_partitions(
    old: np.ndarray,
    new: np.ndarray,
    words: Sequence[str] | None = None,
    epoch: int = 0,
    max_words: int = 3,
) -> tuple[Change, list[Event]]:
    """:func:`compare_partitions` and, when ``words`` are given, :func:`partition_events` in one go.

    Returns
    -------
    (Change, list of Event)
        The events list is empty when ``words`` is None.
    """
    old, new = _check(old, new)
    e = _overlap(old, new)
    change = _change(old, new, e)
    if words is None or (change.merges == 0 and change.splits == 0):
        return change, []
    return change, _events(old, new, e, words, epoch, max_words)


def state_names(
    labels: np.ndarray,
    words: Sequence[str],
    max_words: int = 3,
    states: np.ndarray | None = None,
) -> list[str]:
    """Name states by their member words, as the paper does.

    Parameters
    ----------
    labels : ndarray of int, shape (n,)
        State of every word; states are numbered ``0..k-1``.
    words : sequence of str, length n
        The words, in the order of ``labels`` (breadth-first, so a state's first word is its shortest).
    max_words : int, default 3
        How many member words to list before abbreviating as ``…(N words)``.
    states : ndarray of int, optional
        Which states to name (default: all ``0..k-1``).

    Returns
    -------
    list of str
        One name per requested state; a state without words gets ``""``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1 if labels.size else 0
    wanted = np.arange(k) if states is None else np.asarray(states, dtype=np.int64)
    order = np.argsort(labels, kind="stable")
    sizes = np.bincount(labels, minlength=k)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    names: list[str] = []
    for s in wanted:  # output formatting: one string per named state
        size = int(sizes[s]) if 0 <= s < k else 0
        members = order[starts[s] : starts[s] + min(size, max_words)] if size else []
        text = ",".join(words[int(i)] for i in members)
        if size > max_words:
            text += f",…({size} words)"
        names.append(text)
    return names


def partition_events(
    old: np.ndarray, new: np.ndarray, words: Sequence[str], epoch: int, max_words: int = 3
) -> list[Event]:
    """The individual merges and splits between two partitions, with states named by their words.

    Parameters
    ----------
    old, new : ndarray of int, shape (n,)
        State of every word before and after.
    words : sequence of str, length n
        The words (used for the state names).
    epoch : int
        Epoch recorded on the events (that of the later partition).
    max_words : int, default 3
        Member words listed per state name.

    Returns
    -------
    list of Event
        Merges first (ordered by new state), then splits (ordered by old state).
    """
    return diff_partitions(old, new, words, epoch, max_words)[1]


def _events(
    old: np.ndarray,
    new: np.ndarray,
    e: tuple[np.ndarray, ...],
    words: Sequence[str],
    epoch: int,
    max_words: int,
) -> list[Event]:
    a, b, _, n_old, n_new = e
    deg_new = np.bincount(b, minlength=n_new)
    deg_old = np.bincount(a, minlength=n_old)
    merging = np.nonzero(deg_new > 1)[0]
    splitting = np.nonzero(deg_old > 1)[0]
    if merging.size == 0 and splitting.size == 0:
        return []
    # name only the states taking part in an event
    old_ids = np.unique(np.concatenate([splitting, a[np.isin(b, merging)]]))
    new_ids = np.unique(np.concatenate([merging, b[np.isin(a, splitting)]]))
    old_names = dict(
        zip(old_ids.tolist(), state_names(old, words, max_words, old_ids), strict=True)
    )
    new_names = dict(
        zip(new_ids.tolist(), state_names(new, words, max_words, new_ids), strict=True)
    )
    size_old = np.bincount(old, minlength=n_old)
    size_new = np.bincount(new, minlength=n_new)
    events: list[Event] = []
    by_new = np.argsort(b, kind="stable")  # edges grouped by new state, old states ascending
    new_starts = np.searchsorted(b[by_new], np.arange(n_new + 1))
    for s in merging:
        parts = a[by_new[new_starts[s] : new_starts[s + 1]]]
        events.append(
            Event(
                epoch,
                "merge",
                new_names[int(s)],
                tuple(old_names[int(p)] for p in parts),
                int(size_new[s]),
            )
        )
    old_starts = np.searchsorted(a, np.arange(n_old + 1))  # edges are sorted by old state already
    for s in splitting:
        parts = b[old_starts[s] : old_starts[s + 1]]
        events.append(
            Event(
                epoch,
                "split",
                old_names[int(s)],
                tuple(new_names[int(p)] for p in parts),
                int(size_old[s]),
            )
        )
    return events
