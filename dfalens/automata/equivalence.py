"""Language equivalence with the shortest counterexample, and consistency of a partial machine.

Both walk the product of two machines breadth-first, one whole level of state pairs at a time, so the
first separating word found is a shortest one; within a level, pairs are kept in the order of the
lexicographically least word that reaches them (symbols compared by index), which makes the returned word
the least among the shortest.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from dfalens.automata.machine import UNDEFINED, Machine
from dfalens.automata.ops import complete_arrays
from dfalens.errors import ConfigError, MachineError

__all__ = ["Verdict", "equivalent", "consistent"]

F = TypeVar("F", bound=Callable[..., Any])


def _accepts_ignore_empty(position: int) -> Callable[[F], F]:
    """Accept the deprecated ``ignore_empty`` (keyword, or positional at ``position``) for one release.

    ``ignore_empty=x`` becomes ``include_empty=not x`` with a :class:`DeprecationWarning`; it is not
    part of the signature.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            old = kwargs.pop("ignore_empty", None)
            if len(args) > position:  # the old positional ignore_empty
                if old is not None:
                    raise TypeError(f"{fn.__name__}() got ignore_empty twice")
                args, old = args[:position] + args[position + 1 :], args[position]
            if old is None:
                return fn(*args, **kwargs)
            if "include_empty" in kwargs:
                raise ConfigError(
                    f"{fn.__name__}: pass include_empty= only (ignore_empty= is its deprecated opposite)"
                )
            warnings.warn(
                f"{fn.__name__}(ignore_empty=...) is deprecated and will be removed in the next "
                "release; pass include_empty=not ignore_empty",
                DeprecationWarning,
                stacklevel=2,
            )
            return fn(*args, include_empty=not old, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


@dataclass(frozen=True)
class Verdict:
    """The answer of :func:`equivalent` or :func:`consistent`.

    Attributes
    ----------
    equal : bool
        True when no separating word exists (within the checked words).
    counterexample : tuple of int or None
        The shortest separating word as symbol indices (least in symbol-index order among the shortest),
        or None when ``equal``.
    output_a, output_b : int or None
        Each machine's output on the counterexample; ``-1`` where that machine is undefined on it.
    alphabet : tuple of str
        Symbol names, for :attr:`word_str`.

    Notes
    -----
    ``bool(verdict)`` is ``verdict.equal``.
    """

    equal: bool
    counterexample: tuple[int, ...] | None = None
    output_a: int | None = None
    output_b: int | None = None
    alphabet: tuple[str, ...] = ("0", "1")

    def __bool__(self) -> bool:
        return self.equal

    @property
    def word_str(self) -> str | None:
        """The counterexample written with the symbol names (``""`` for the empty word), or None."""
        if self.counterexample is None:
            return None
        sep = "" if all(len(a) == 1 for a in self.alphabet) else " "
        return sep.join(self.alphabet[i] for i in self.counterexample)

    def __str__(self) -> str:
        if self.equal:
            return "equivalent"
        word = self.word_str
        shown = repr(word) if word else "the empty word"
        return f"not equivalent: on {shown} the outputs are {self.output_a} vs {self.output_b}"


def _aligned_delta(a: Machine, b: Machine) -> np.ndarray:
    """``b.delta`` with its columns reordered to ``a``'s alphabet; MachineError if the alphabets differ."""
    if a.alphabet == b.alphabet:
        return b.delta
    if sorted(a.alphabet) != sorted(b.alphabet):
        raise MachineError(
            f"cannot compare machines over different alphabets {a.alphabet} and {b.alphabet}; "
            "give both machines the same symbol names"
        )
    return b.delta[:, [b.alphabet.index(s) for s in a.alphabet]]


def _product_search(
    delta_a: np.ndarray,
    out_a: np.ndarray,
    start_a: int,
    delta_b: np.ndarray,
    out_b: np.ndarray,
    start_b: int,
    check_empty: bool,
    max_len: int | None,
) -> tuple[int, ...] | None:
    """Shortest, then least, word reaching a pair ``(p, q)`` with ``out_a[p] != out_b[q]``, or None.

    A ``-1`` in either delta drops that pair (its words are not checked). Words of length up to
    ``max_len`` (all when None); the empty word only when ``check_empty``.
    """
    nb = np.int64(delta_b.shape[0])
    k = delta_a.shape[1]
    seen = _PairSet(delta_a.shape[0] * delta_b.shape[0])  # pair keys p * nb + q already queued
    frontier_a = np.array([start_a], dtype=np.int64)
    frontier_b = np.array([start_b], dtype=np.int64)
    parents: list[np.ndarray] = []  # per level: index into the previous level of each pair
    symbols: list[np.ndarray] = []  # per level: the symbol that led there
    level = 0
    check = check_empty
    if check_empty:
        seen.add(np.array([start_a * nb + start_b], dtype=np.int64))
    while frontier_a.size:
        if check:
            oa, ob = out_a[frontier_a], out_b[frontier_b]
            bad = np.flatnonzero(oa != ob)
            if bad.size:
                return _word(parents, symbols, int(bad[0]))
        check = True
        if max_len is not None and level >= max_len:
            return None
        na_ = delta_a[frontier_a]  # (f, k)
        nb_ = delta_b[frontier_b]
        ok = (na_ >= 0) & (nb_ >= 0)
        idx = np.flatnonzero(ok.ravel())  # row-major: (pair, symbol) order keeps words sorted
        if not idx.size:
            return None
        cand_a = na_.ravel()[idx]
        cand_b = nb_.ravel()[idx]
        key = cand_a * nb + cand_b
        uniq, first = np.unique(key, return_index=True)
        fresh = ~seen.contains(uniq)
        first = np.sort(first[fresh])
        if not first.size:
            return None
        seen.add(uniq[fresh])
        sel = idx[first]
        parents.append(sel // k)
        symbols.append(sel % k)
        frontier_a, frontier_b = cand_a[first], cand_b[first]
        level += 1
    return None


class _PairSet:
    """A set of int64 pair keys: a bitmap for small products, a sorted array for large ones."""

    BITMAP_LIMIT = 1 << 25

    def __init__(self, size: int) -> None:
        self.bitmap = np.zeros(size, dtype=bool) if size <= self.BITMAP_LIMIT else None
        self.sorted = np.empty(0, dtype=np.int64)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        if self.bitmap is not None:
            return self.bitmap[keys]
        if not self.sorted.size:
            return np.zeros(keys.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(self.sorted, keys), self.sorted.size - 1)
        return self.sorted[pos] == keys

    def add(self, keys: np.ndarray) -> None:
        """Add keys that are sorted, distinct and not yet present."""
        if self.bitmap is not None:
            self.bitmap[keys] = True
        else:
            self.sorted = np.insert(self.sorted, np.searchsorted(self.sorted, keys), keys)


def _word(parents: list[np.ndarray], symbols: list[np.ndarray], i: int) -> tuple[int, ...]:
    """Read the word of pair ``i`` of the last level back through the parent pointers."""
    out: list[int] = []
    for par, syms in zip(reversed(parents), reversed(symbols), strict=True):
        out.append(int(syms[i]))
        i = int(par[i])
    return tuple(reversed(out))


def _output_of(m: Machine, delta: np.ndarray, word: tuple[int, ...]) -> int:
    state = m.start
    for s in word:
        state = int(delta[state, s])
        if state < 0:
            return UNDEFINED
    return int(m.output[state])


@_accepts_ignore_empty(2)
def equivalent(a: Machine, b: Machine, *, include_empty: bool = True) -> Verdict:
    """Whether two machines give the same output on every word, with the shortest counterexample.

    Parameters
    ----------
    a, b : Machine
        Complete or partial. An undefined transition counts as its own output (``-1``), so a word on
        which one machine is defined and the other is not separates them.
    include_empty : bool, default True
        Compare the empty word too; False compares only non-empty words (a network's output before
        any input is usually untrained). ``ignore_empty=x`` is the deprecated spelling of
        ``include_empty=not x``.

    Returns
    -------
    Verdict
        ``equal``; else the shortest separating word (least in symbol-index order among the shortest,
        as symbol indices of ``a``'s alphabet) and both outputs on it.

    Raises
    ------
    MachineError
        If the alphabets hold different symbol names (the same names in another order are matched up).

    Examples
    --------
    >>> from dfalens.automata import equivalent, parity, tomita
    >>> v = equivalent(parity(), tomita(1))
    >>> v.equal, v.word_str, v.output_a, v.output_b
    (False, '', 0, 1)
    """
    delta_b = _aligned_delta(a, b)
    da, oa = complete_arrays(a.delta, a.output, UNDEFINED)
    db, ob = complete_arrays(delta_b, b.output, UNDEFINED)
    word = _product_search(da, oa, a.start, db, ob, b.start, include_empty, None)
    if word is None:
        return Verdict(True, alphabet=a.alphabet)
    return Verdict(
        False, word, _output_of(a, a.delta, word), _output_of(b, delta_b, word), a.alphabet
    )


@_accepts_ignore_empty(3)
def consistent(
    partial: Machine, full: Machine, max_len: int | None = None, *, include_empty: bool = True
) -> Verdict:
    """Whether ``partial`` agrees with ``full`` on every word on which ``partial`` is defined.

    Parameters
    ----------
    partial : Machine
        Typically a machine extracted from a network, with undefined transitions.
    full : Machine
        The reference (usually complete; where it is undefined and ``partial`` is not, that is a
        disagreement).
    max_len : int, optional
        Only check words up to this length; None checks all lengths (the search is finite).
    include_empty : bool, default True
        Check the empty word too (False skips it). ``ignore_empty=x`` is the deprecated spelling of
        ``include_empty=not x``.

    Returns
    -------
    Verdict
        ``equal`` is True when they agree everywhere checked; else the shortest (then least)
        disagreeing word and both outputs on it (``output_a`` from ``partial``).

    Raises
    ------
    MachineError
        If the alphabets hold different symbol names.
    ConfigError
        If ``max_len`` is negative.
    """
    if max_len is not None and max_len < 0:
        raise ConfigError(f"max_len must be >= 0, got {max_len}")
    delta_f = _aligned_delta(partial, full)
    df, of = complete_arrays(delta_f, full.output, UNDEFINED)
    word = _product_search(
        partial.delta, partial.output, partial.start, df, of, full.start, include_empty, max_len
    )
    if word is None:
        return Verdict(True, alphabet=partial.alphabet)
    return Verdict(
        False,
        word,
        _output_of(partial, partial.delta, word),
        _output_of(full, delta_f, word),
        partial.alphabet,
    )
