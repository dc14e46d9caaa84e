"""Training and test words for a task machine, grouped by length, with the machine's targets.

The paper trains on *every* word of length 1..10 (2,046 binary words) and tests on 10 random words at
each of the lengths 25, 100, 250, 1000, 2500 and 10000. A data fraction ``p`` < 1 keeps, for each length
``l``, ``n ~ Binomial(|alphabet|**l, p)`` distinct words drawn uniformly (lengths where ``n = 0`` are
skipped), as in the phase-diagram sweep (Fig. 9).

Words are int64 arrays of symbol indices, one ``(n_l, l)`` array per length. Targets are the machine's
output classes: after the whole word (``"last"``, the paper) or after every prefix (``"every"``, streaming).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dfalens._budget import check_memory, word_symbols
from dfalens.automata import Machine, run
from dfalens.errors import BudgetError, ConfigError, TaskError

__all__ = [
    "PAPER_TEST_LENGTHS",
    "MAX_TRAIN_SYMBOLS",
    "WordGroups",
    "TaskData",
    "all_words",
    "enumerate_words",
    "sample_words",
    "random_words",
    "word_targets",
    "n_classes",
    "make_task_data",
]

PAPER_TEST_LENGTHS: tuple[int, ...] = (25, 100, 250, 1000, 2500, 10000)
"""The long test lengths of the paper's Fig. 1 (10 random words each)."""

MAX_TRAIN_SYMBOLS = 50_000_000
"""Refuse training sets holding more symbols than this (about 400 MB of int64 words)."""

TARGET_MODES = ("last", "every")
_BYTES_PER_SYMBOL = 32


@dataclass(frozen=True, eq=False)
class WordGroups:
    """Words grouped by length, with their targets.

    Parameters
    ----------
    words : tuple of ndarray of int64
        ``words[i]`` has shape ``(n_i, lengths[i])``, one word per row.
    targets : tuple of ndarray of int64
        ``targets[i]`` has shape ``(n_i,)`` (output after the whole word) or ``(n_i, lengths[i])``
        (output after every prefix, streaming).
    """

    words: tuple[np.ndarray, ...]
    targets: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if len(self.words) != len(self.targets):
            raise ConfigError(
                f"{len(self.words)} word groups but {len(self.targets)} target groups; give one each"
            )
        for w, t in zip(self.words, self.targets, strict=True):
            if w.ndim != 2 or t.shape[0] != w.shape[0]:
                raise ConfigError(
                    f"word group of shape {w.shape} does not match targets of shape {t.shape}"
                )
            w.setflags(write=False)
            t.setflags(write=False)

    @property
    def lengths(self) -> tuple[int, ...]:
        """The word length of each group."""
        return tuple(int(w.shape[1]) for w in self.words)

    @property
    def sizes(self) -> tuple[int, ...]:
        """The number of words in each group."""
        return tuple(int(w.shape[0]) for w in self.words)

    def __len__(self) -> int:
        return int(sum(self.sizes))


@dataclass(frozen=True, eq=False)
class TaskData:
    """Everything a training run reads: the machine, the training words and the long test words.

    Attributes
    ----------
    machine : Machine
        The ground truth; targets are its outputs.
    train : WordGroups
        Training words, one group per length 1..max_len present.
    test : WordGroups
        Test words, one group per test length, targets after the whole word.
    n_classes : int
        ``max(machine.output) + 1``, at least 2.
    streaming : bool
        True when training targets are given after every prefix.
    """

    machine: Machine
    train: WordGroups
    test: WordGroups
    n_classes: int
    streaming: bool

    @property
    def n_symbols(self) -> int:
        """Size of the input alphabet."""
        return self.machine.n_symbols


def all_words(n_symbols: int, length: int) -> np.ndarray:
    """Every word of one length in lexicographic order of symbol indices.

    Parameters
    ----------
    n_symbols : int
        Alphabet size ``k``.
    length : int
        Word length ``l`` (0 gives one empty word).

    Returns
    -------
    ndarray of int64, shape (k**l, l)
        Row ``i`` spells ``i`` in base ``k``, most significant symbol first.
    """
    _check_budget(n_symbols**length * length, f"all words of length {length}")
    index = np.arange(n_symbols**length, dtype=np.int64)
    return _spell(index, n_symbols, length)


def _spell(index: np.ndarray, n_symbols: int, length: int) -> np.ndarray:
    """Write word indices in base ``n_symbols`` with ``length`` digits, most significant first."""
    powers = n_symbols ** np.arange(length - 1, -1, -1, dtype=np.int64)
    return (index[:, None] // powers[None, :]) % n_symbols


def _check_budget(n_symbols_total: int, what: str) -> None:
    """Refuse word arrays over :data:`MAX_TRAIN_SYMBOLS` symbols or over the memory budget."""
    way_out = "lower max_len or use a data fraction below 1"
    if n_symbols_total > MAX_TRAIN_SYMBOLS:
        raise BudgetError(
            f"{what} would hold {n_symbols_total:,} symbols (limit {MAX_TRAIN_SYMBOLS:,}); {way_out}"
        )
    # int64 words, their targets and the tensors built from them
    check_memory(_BYTES_PER_SYMBOL * n_symbols_total, what, way_out)


def enumerate_words(n_symbols: int, max_len: int) -> list[np.ndarray]:
    """All words of length 1..max_len, one array per length (2,046 binary words for max_len 10)."""
    total = int(min(word_symbols(n_symbols, max_len), 2.0**62))
    _check_budget(total, f"all words up to length {max_len}")
    return [all_words(n_symbols, length) for length in range(1, max_len + 1)]


def sample_words(
    n_symbols: int, max_len: int, fraction: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """A random subset of the words up to ``max_len``, drawn length by length.

    For each length ``l`` a count ``n ~ Binomial(k**l, fraction)`` is drawn, then ``n`` distinct words
    uniformly without replacement (kept in lexicographic order). Lengths with ``n = 0`` are left out, so
    the result may hold fewer than ``max_len`` arrays. ``fraction = 1`` gives every word.

    Returns
    -------
    list of ndarray of int64
        One ``(n_l, l)`` array per length that kept at least one word.
    """
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"data fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return enumerate_words(n_symbols, max_len)
    expected = word_symbols(n_symbols, max_len, fraction)
    _check_budget(
        int(min(expected, 2.0**62)), f"a {fraction:g} fraction of the words up to length {max_len}"
    )
    groups = []
    counts = [int(rng.binomial(n_symbols**length, fraction)) for length in range(1, max_len + 1)]
    _check_budget(
        sum(c * length for c, length in zip(counts, range(1, max_len + 1), strict=True)),
        f"a {fraction:g} fraction of the words up to length {max_len}",
    )
    for length, count in zip(range(1, max_len + 1), counts, strict=True):
        if count == 0:
            continue
        index = np.sort(rng.choice(n_symbols**length, size=count, replace=False))
        groups.append(_spell(index.astype(np.int64), n_symbols, length))
    return groups


def random_words(n_symbols: int, length: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct words of one length with independent uniform symbols.

    Duplicates are redrawn, so the words are unique; the order is the order of drawing.

    Raises
    ------
    ConfigError
        When fewer than ``n`` distinct words of that length exist.
    """
    if n > n_symbols**length:
        raise ConfigError(
            f"asked for {n} distinct test words of length {length}, but only {n_symbols**length} "
            "exist; use longer test lengths or fewer test words"
        )
    _check_budget(n * length, f"{n} test words of length {length}")
    words = rng.integers(0, n_symbols, size=(n, length), dtype=np.int64)
    while True:
        # rows as bytes: np.unique(axis=0) is slow for long rows
        first: dict[bytes, int] = {}
        for i, row in enumerate(words):
            first.setdefault(row.tobytes(), i)
        if len(first) == n:
            return words
        keep = words[sorted(first.values())]
        extra = rng.integers(0, n_symbols, size=(n - keep.shape[0], length), dtype=np.int64)
        words = np.concatenate([keep, extra])


def word_targets(machine: Machine, words: np.ndarray, streaming: bool = False) -> np.ndarray:
    """The machine's output after each word, or after every prefix of each word.

    Parameters
    ----------
    machine : Machine
        A complete task machine.
    words : ndarray of int, shape (n, l)
    streaming : bool
        False: shape ``(n,)``, the output after the whole word. True: shape ``(n, l)``, column ``t`` is the
        output after the first ``t + 1`` symbols.

    Raises
    ------
    TaskError
        When the machine leaves a word undefined (a partial machine cannot label data).
    """
    if streaming:
        cols = [run(machine, words[:, : t + 1]) for t in range(words.shape[1])]
        out = np.stack(cols, axis=1) if cols else np.zeros((words.shape[0], 0), dtype=np.int64)
    else:
        out = run(machine, words)
    if out.size and out.min() < 0:
        raise TaskError(
            "the task machine has undefined transitions, so some words have no target; "
            "complete it (dfalens.automata.complete) before training"
        )
    return out.astype(np.int64)


def n_classes(machine: Machine) -> int:
    """The number of output classes a network needs for a machine: ``max(output) + 1``, at least 2."""
    return max(int(machine.output.max()) + 1, 2)


def make_task_data(
    machine: Machine,
    *,
    max_len: int = 10,
    data_fraction: float = 1.0,
    test_lengths: Sequence[int] = PAPER_TEST_LENGTHS,
    n_test_words: int = 10,
    targets: str = "last",
    seed: int = 0,
) -> TaskData:
    """Build the training and test words of a task.

    Parameters
    ----------
    machine : Machine
        The task's ground truth (complete).
    max_len : int, default 10
        Longest training word.
    data_fraction : float, default 1.0
        Fraction ``p`` of the words of each length to keep (per-length Binomial counts).
    test_lengths : sequence of int, default (25, 100, 250, 1000, 2500, 10000)
    n_test_words : int, default 10
        Distinct random words per test length.
    targets : {"last", "every"}
        Train on the output after the whole word (the paper) or after every prefix (streaming).
    seed : int
        Seeds the subsampling and the test words (independent streams).

    Returns
    -------
    TaskData

    Examples
    --------
    >>> from dfalens.automata import parity
    >>> data = make_task_data(parity(), test_lengths=(25,))
    >>> len(data.train), data.train.lengths[-1], data.test.sizes
    (2046, 10, (10,))
    """
    if targets not in TARGET_MODES:
        raise ConfigError(f"targets must be one of {TARGET_MODES}, got {targets!r}")
    if max_len < 1:
        raise ConfigError(f"max_len must be at least 1, got {max_len}")
    if n_test_words < 1:
        raise ConfigError(f"n_test_words must be at least 1, got {n_test_words}")
    if any(int(length) < 1 for length in test_lengths):
        raise ConfigError(f"test lengths must be positive, got {tuple(test_lengths)}")
    if not machine.is_complete:
        raise TaskError(
            "the task machine has undefined transitions; complete it "
            "(dfalens.automata.complete) before training"
        )
    data_seq, test_seq = np.random.SeedSequence(seed).spawn(2)
    k = machine.n_symbols
    streaming = targets == "every"
    train_words = sample_words(k, max_len, data_fraction, np.random.default_rng(data_seq))
    if not train_words:
        raise ConfigError(
            f"data fraction {data_fraction:g} leaves no training words of length 1..{max_len} "
            f"({k} symbols) with seed {seed}; raise the data fraction or max_len"
        )
    train = WordGroups(
        tuple(train_words), tuple(word_targets(machine, w, streaming) for w in train_words)
    )
    test_rng = np.random.default_rng(test_seq)
    lengths = sorted({int(length) for length in test_lengths})
    test_words = [random_words(k, length, n_test_words, test_rng) for length in lengths]
    test = WordGroups(tuple(test_words), tuple(word_targets(machine, w) for w in test_words))
    return TaskData(machine, train, test, n_classes(machine), streaming)
