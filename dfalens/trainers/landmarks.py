"""When a run memorised and when it generalised: the one definition both :class:`~dfalens.trainers.Run`
and :class:`~dfalens.timeline.Timeline` use.

- *memorisation*: the first epoch whose training loss is below :data:`MEMORISATION_LOSS`.
- *generalisation*: the first epoch from which the test accuracy at :func:`generalisation_length` (1000,
  else the longest tested length) is :data:`GENERALISATION_ACCURACY` (1.0) at every later logged epoch.
  A run that reaches 1.0 and drops again has not generalised at that first epoch (``Run.summary`` keeps
  that first epoch too, as ``first_epoch_accuracy_1``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = [
    "memorisation_epoch",
    "MEMORISATION_LOSS",
    "GENERALISATION_LENGTH",
    "GENERALISATION_ACCURACY",
    "first_stable",
    "generalisation_length",
    "generalisation_epoch",
]

MEMORISATION_LOSS = 1e-3
"""Training loss under which a run counts as having memorised its training set."""

GENERALISATION_LENGTH = 1000
"""Test length whose accuracy defines the generalisation epoch (the longest logged if absent)."""

GENERALISATION_ACCURACY = 1.0
"""Test accuracy a run must hold from the generalisation epoch on."""


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


def generalisation_length(test_lengths: Iterable[int], length: int | None = None) -> int | None:
    """The test length that decides generalisation: ``length`` (default :data:`GENERALISATION_LENGTH`)
    when it was tested, else the longest tested length; None when nothing was tested."""
    tested = sorted({int(n) for n in test_lengths})
    want = GENERALISATION_LENGTH if length is None else int(length)
    if want in tested:
        return want
    return tested[-1] if tested else None


def generalisation_epoch(epochs: np.ndarray, accuracy: np.ndarray) -> int | None:
    """The first epoch from which ``accuracy`` is at least :data:`GENERALISATION_ACCURACY` at every
    later logged epoch (NaN entries, epochs without a measurement, are skipped); None if never.

    Parameters
    ----------
    epochs : ndarray of int, shape (c,)
        Increasing epochs.
    accuracy : ndarray of float, shape (c,)
        Test accuracy at the generalisation length at each epoch.
    """
    acc = np.asarray(accuracy, dtype=float)
    known = ~np.isnan(acc)
    if not known.any():
        return None
    return first_stable(np.asarray(epochs)[known], acc[known] >= GENERALISATION_ACCURACY)


def memorisation_epoch(
    epochs: np.ndarray, train_loss: np.ndarray, threshold: float = MEMORISATION_LOSS
) -> int | None:
    """The first epoch whose training loss is below ``threshold`` (None if never)."""
    low = np.flatnonzero(np.asarray(train_loss, dtype=float) < threshold)
    return int(np.asarray(epochs)[low[0]]) if low.size else None
