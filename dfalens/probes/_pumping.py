"""Pumped words (private): collected words with one or two segments repeated, the words that tell a
counter from a finite automaton.

A machine refined on finitely many words can fit a network that counts (``a^n b^n``) on every one of
them. Repeating segments of the collected words (as in the pumping lemma) reaches longer words where
such a machine and the network part: ``aabb`` with one ``a`` and one ``b`` repeated is ``aaabbb``.
:func:`dfalens.probes.refine` takes its counterexamples from one draw and validates its result on
another, fresh one.
"""

from __future__ import annotations

import numpy as np

from dfalens.probes.collection import predict
from dfalens.probes.evidence import TreeRunner, WordSample
from dfalens.probes.hooks import PrefixProbe
from dfalens.probes.probe import Probe
from dfalens.probes.stateset import StateSet
from dfalens.probes.wordlists import padded

__all__ = ["pump", "pumped_words"]


def _pump(word: list[int], rng: np.random.Generator) -> tuple[int, ...]:
    """``word`` with one or two of its segments repeated (two: each once more, the same number of
    times)."""
    n = len(word)
    times = int(rng.integers(1, 4))
    if rng.random() < 0.5:
        i = int(rng.integers(0, n))
        j = int(rng.integers(i + 1, n + 1))
        return tuple(word[:j] + word[i:j] * times + word[j:])
    i, k = sorted(int(v) for v in rng.choice(n, size=2, replace=False))
    span = int(rng.integers(1, max(2, min(k - i, n - k) + 1)))
    a, b = word[i : i + span], word[k : k + span]
    return tuple(
        word[: i + span] + a * times + word[i + span : k + span] + b * times + word[k + span :]
    )


def pump(
    rows: list[tuple[int, ...]], classes: np.ndarray, n_words: int, rng: np.random.Generator
) -> list[tuple[int, ...]]:
    """Up to ``n_words`` distinct pumped words from ``rows`` (words of length >= 2 only; half of the
    picks among the words of the rarest class)."""
    keep = np.flatnonzero(np.fromiter((len(r) >= 2 for r in rows), dtype=bool, count=len(rows)))
    if keep.size == 0 or n_words <= 0:
        return []
    cls = classes[keep]
    labels, counts = np.unique(cls, return_counts=True)
    rare = keep[cls == labels[np.argmin(counts)]]
    picks = np.concatenate(
        [rng.choice(rare, size=n_words // 2), rng.choice(keep, size=n_words - n_words // 2)]
    )
    return list(dict.fromkeys(_pump(list(rows[i]), rng) for i in picks.tolist()))


def pumped_words(
    states: StateSet, probe: Probe | PrefixProbe, n_words: int, rng: np.random.Generator
) -> WordSample | None:
    """``n_words`` pumped collected words (see :func:`pump`) with the network's class on each;
    None when no word is long enough. Only the picked words are read off the tree, so a
    collection of millions of words costs no more than a small one."""
    pool = np.flatnonzero(states.depth >= 2)
    if pool.size == 0 or n_words <= 0:
        return None
    pred = states.predicted[pool]
    labels, counts = np.unique(pred, return_counts=True)
    rare = pool[pred == labels[np.argmin(counts)]]
    picks = np.concatenate(
        [rng.choice(rare, size=n_words // 2), rng.choice(pool, size=n_words - n_words // 2)]
    )
    runner = TreeRunner(states.parent, states.symbol, states.depth)
    rows = [runner.word(int(i)) for i in picks.tolist()]
    pumped = list(dict.fromkeys(_pump(list(r), rng) for r in rows))
    mat, lens = padded(pumped)
    return WordSample("pumped", mat, lens, predict(probe, pumped))
