"""The :class:`Machine` type: a deterministic Moore machine over a finite alphabet, numpy inside."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dfalens.automata.rendering import mimebundle, render
from dfalens.errors import MachineError

__all__ = ["Machine", "UNDEFINED"]

UNDEFINED = -1
"""Entry of ``delta`` for a transition the machine does not define (partial machines)."""


def _freeze(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.int64, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False, repr=False)
class Machine:
    """A deterministic Moore machine; a DFA is the case with outputs in {0, 1}.

    Parameters
    ----------
    delta : array_like of int, shape (n_states, n_symbols)
        ``delta[q, a]`` is the state reached from ``q`` on symbol ``a``; ``-1`` marks an undefined
        transition (machines extracted from networks are often partial).
    output : array_like of int, shape (n_states,)
        The output of every state (for a DFA: 1 = accept). Outputs are non-negative integers.
    start : int, default 0
        The initial state.
    alphabet : sequence of str, default ("0", "1")
        Symbol names; ``len(alphabet)`` must equal ``n_symbols``.
    state_names : sequence of str, optional
        One name per state (for example the words that reached it).

    Notes
    -----
    Instances are immutable: the arrays are copied and made read-only. Algorithms are plain functions in
    :mod:`dfalens.automata` (``minimize``, ``equivalent``, ``complete``, ``trim``, ``run``); the methods of
    this class are thin conveniences over them.
    """

    delta: np.ndarray
    output: np.ndarray
    start: int = 0
    alphabet: tuple[str, ...] = ("0", "1")
    state_names: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        try:
            delta = np.asarray(self.delta)
            output = np.asarray(self.output)
        except (TypeError, ValueError) as exc:
            raise MachineError(f"machine arrays are not numeric: {exc}") from None
        if delta.ndim != 2:
            raise MachineError(
                f"delta must be a 2-D table (n_states, n_symbols), got shape {delta.shape}"
            )
        n, k = delta.shape
        if n == 0:
            raise MachineError("a machine needs at least one state")
        if k == 0:
            raise MachineError("a machine needs at least one symbol")
        for name, arr in (("delta", delta), ("output", output)):
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                if np.issubdtype(arr.dtype, np.bool_):
                    continue
                if not (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr))):
                    raise MachineError(f"{name} must hold integers, got dtype {arr.dtype}")
        if output.shape != (n,):
            raise MachineError(f"output must have shape ({n},) to match delta, got {output.shape}")
        if delta.size and (delta.min() < UNDEFINED or delta.max() >= n):
            bad = delta[(delta < UNDEFINED) | (delta >= n)][0]
            raise MachineError(
                f"delta points to state {int(bad)}, but states are 0..{n - 1} (use -1 for undefined)"
            )
        if output.min() < 0:
            raise MachineError("outputs must be non-negative integers (a DFA uses 0 and 1)")
        start = self.start
        if isinstance(start, bool) or not isinstance(start, int | np.integer):
            raise MachineError(f"start must be an integer state index, got {start!r}")
        if not 0 <= int(start) < n:
            raise MachineError(f"start state {start} is out of range 0..{n - 1}")
        alphabet = tuple(str(a) for a in self.alphabet)
        if len(alphabet) != k:
            raise MachineError(
                f"alphabet has {len(alphabet)} symbols but delta has {k} columns; give one name per column"
            )
        if len(set(alphabet)) != k:
            raise MachineError(f"alphabet symbols must be distinct, got {alphabet}")
        names = self.state_names
        if names is not None:
            names = tuple(str(s) for s in names)
            if len(names) != n:
                raise MachineError(f"state_names has {len(names)} entries for {n} states")
        object.__setattr__(self, "delta", _freeze(delta))
        object.__setattr__(self, "output", _freeze(output))
        object.__setattr__(self, "start", int(start))
        object.__setattr__(self, "alphabet", alphabet)
        object.__setattr__(self, "state_names", names)

    # -- basic properties -------------------------------------------------------------------------
    @property
    def n_states(self) -> int:
        """Number of states, including unreachable ones."""
        return int(self.delta.shape[0])

    @property
    def n_symbols(self) -> int:
        """Number of input symbols."""
        return int(self.delta.shape[1])

    @property
    def is_complete(self) -> bool:
        """True when every state has a transition on every symbol."""
        return bool(np.all(self.delta != UNDEFINED))

    def symbol_index(self, symbol: str) -> int:
        """Index of a symbol name in :attr:`alphabet`."""
        try:
            return self.alphabet.index(str(symbol))
        except ValueError:
            raise MachineError(
                f"symbol {symbol!r} is not in the alphabet {self.alphabet}"
            ) from None

    def encode(self, word: str | Sequence[str]) -> tuple[int, ...]:
        """Turn a word written in symbol names into a tuple of symbol indices.

        A plain string is split into characters when every symbol name is one character long
        (``"0110"``), else at whitespace (``"ab cd cd"``), as :meth:`decode` writes it; a sequence
        gives one symbol name per element (``["ab", "cd"]``).

        Raises
        ------
        MachineError
            When a symbol is not in the alphabet.
        """
        if isinstance(word, str) and not self._single_characters:
            return tuple(self.symbol_index(s) for s in word.split())
        return tuple(self.symbol_index(s) for s in word)

    def decode(self, word: Sequence[int]) -> str:
        """Write a word of symbol indices with the symbol names: joined without separator when every name
        is one character long, else separated by single spaces.

        ``encode(decode(w)) == w`` whenever the names are single characters, or contain no whitespace
        and are not empty.
        """
        sep = "" if self._single_characters else " "
        return sep.join(self.alphabet[int(i)] for i in word)

    @property
    def _single_characters(self) -> bool:
        return all(len(a) == 1 for a in self.alphabet)

    # -- equality and display ---------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        """Structural equality (same arrays, start and alphabet); use ``equivalent`` for languages."""
        if not isinstance(other, Machine):
            return NotImplemented
        return (
            self.start == other.start
            and self.alphabet == other.alphabet
            and np.array_equal(self.delta, other.delta)
            and np.array_equal(self.output, other.output)
        )

    def __hash__(self) -> int:
        return hash((self.start, self.alphabet, self.delta.tobytes(), self.output.tobytes()))

    def __repr__(self) -> str:
        kind = "complete" if self.is_complete else "partial"
        return f"Machine(n_states={self.n_states}, alphabet={self.alphabet}, start={self.start}, {kind})"

    # -- drawing ------------------------------------------------------------------------------------
    def render(self, path: Any, **kwargs: Any) -> Any:
        """Render to .svg/.png/.pdf/.dot; see :func:`dfalens.automata.render`."""
        return render(self, path, **kwargs)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Jupyter display: SVG when a Graphviz renderer exists, else a text table. Never raises."""
        try:
            return mimebundle(self)
        except Exception:  # a repr must never raise
            return {"text/plain": repr(self)}
