"""The oracles of the black-box learner: labels through a cache, and random check words.

:class:`Queries` labels words through one cache, counting the membership queries (which have a budget) and
the check words apart, and the calls of the user's function. :class:`Sampler` draws check words shaped like
the user's words; :func:`disagreements` finds the shortest check words a hypothesis gets wrong.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from dfalens.automata import Machine, run
from dfalens.probes._lstar import OutOfQueries, Word

__all__ = [
    "CHECK_BATCH_GROWTH",
    "COUNTEREXAMPLES_PER_ROUND",
    "FIRST_CHECK_BATCH",
    "UNIFORM_SYMBOL_SHARE",
    "Queries",
    "Sampler",
    "disagreements",
    "fresh",
]

COUNTEREXAMPLES_PER_ROUND = 4
"""How many of the shortest disagreeing check words one round analyses (each adds one suffix)."""

FIRST_CHECK_BATCH = 256
"""Size of a round's first batch of fresh check words; each further batch is CHECK_BATCH_GROWTH times
larger, so a wrong hypothesis costs few words and a right one ``n_check`` in a few calls."""

CHECK_BATCH_GROWTH = 4

UNIFORM_SYMBOL_SHARE = 0.1
"""Share of the uniform distribution mixed into the symbol frequencies of the user's words, so that random
check words contain every symbol even when the user's words miss some."""


class Queries:
    """Labels through a cache: membership queries (with the budget) and check words, and the call count."""

    def __init__(
        self, label: Callable[[list[Word]], np.ndarray], batch_size: int, max_queries: int
    ) -> None:
        self.label = label
        self.batch_size = batch_size
        self.max_queries = max_queries
        self.cache: dict[Word, int] = {}
        self.asked: set[Word] = set()
        self.checked: set[Word] = set()
        self.calls = 0

    def _label(self, words: list[Word]) -> np.ndarray:
        missing = [w for w in dict.fromkeys(words) if w not in self.cache]
        if missing:
            labels = self.label(missing)
            self.calls += math.ceil(len(missing) / self.batch_size)
            self.cache.update(zip(missing, labels.tolist(), strict=True))
        cache = self.cache
        return np.fromiter((cache[w] for w in words), dtype=np.int64, count=len(words))

    def ask(self, words: list[Word]) -> np.ndarray:
        """Labels of membership-query words; raises OutOfQueries rather than exceed the budget."""
        new = [w for w in dict.fromkeys(words) if w not in self.asked]
        if len(self.asked) + len(new) > self.max_queries:
            raise OutOfQueries
        self.asked.update(new)
        return self._label(words)

    def check(self, words: list[Word]) -> np.ndarray:
        """Labels of check words (not limited by the query budget)."""
        self.checked.update(words)
        return self._label(words)


class Sampler:
    """Random check words: lengths and symbol frequencies like the user's words, else uniform."""

    def __init__(
        self, words: list[Word], n_symbols: int, max_len: int, rng: np.random.Generator
    ) -> None:
        self.rng = rng
        self.n_symbols = n_symbols
        uniform = np.full(n_symbols, 1.0 / n_symbols)
        if words:
            self.lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
            counts = np.bincount(
                np.fromiter(itertools.chain.from_iterable(words), dtype=np.int64),
                minlength=n_symbols,
            ).astype(float)
            freq = counts / counts.sum() if counts.sum() else uniform
            self.freq = (1 - UNIFORM_SYMBOL_SHARE) * freq + UNIFORM_SYMBOL_SHARE * uniform
            self.uniform = False
        else:
            self.uniform = True
            self.lengths = np.arange(max_len + 1)
            self.freq = uniform

    def draw(self, n: int) -> tuple[np.ndarray, list[Word]]:
        """``n`` random words: as a padded array and as tuples (duplicates possible)."""
        lengths = self.rng.choice(self.lengths, size=n)
        width = int(lengths.max())
        if self.uniform:
            arr = self.rng.integers(self.n_symbols, size=(n, width))
        else:
            arr = self.rng.choice(self.n_symbols, size=(n, width), p=self.freq)
        arr[np.arange(width)[None, :] >= lengths[:, None]] = -1
        words = [tuple(row[:m]) for row, m in zip(arr.tolist(), lengths.tolist(), strict=True)]
        return arr, words


def fresh(sampler: Sampler, oracle: Queries, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random check words not checked before (at most ``n``), labelled: (padded words, labels)."""
    arr, words = sampler.draw(n)
    seen = oracle.checked
    new = dict.fromkeys(w for w in words if w not in seen)
    keep = np.zeros(len(words), dtype=bool)
    for i, w in enumerate(words):
        if w in new:
            keep[i] = True
            del new[w]
    words = list(itertools.compress(words, keep.tolist()))
    return arr[keep], oracle.check(words)


def disagreements(
    machine: Machine,
    pool: list[tuple[np.ndarray, np.ndarray]],
    limit: int = COUNTEREXAMPLES_PER_ROUND,
) -> list[tuple[Word, int]]:
    """The shortest check words (with their labels) on which the machine and the classifier differ."""
    found: list[tuple[Word, int]] = []
    for arr, labels in pool:
        bad = np.flatnonzero(run(machine, arr) != labels)
        if bad.size:
            lengths = (arr[bad] >= 0).sum(axis=1)
            for i in bad[np.argsort(lengths, kind="stable")[:limit]].tolist():
                row = arr[i]
                found.append((tuple(row[row >= 0].tolist()), int(labels[i])))
    found.sort(key=lambda item: len(item[0]))
    return list(dict.fromkeys(found))[:limit]
