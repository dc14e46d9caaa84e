"""Running words through a machine, completing it with a sink, and dropping unreachable states.

Everything here is vectorised over words or states; the only Python loops run over word positions or
breadth-first levels.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from dfalens.automata.machine import UNDEFINED, Machine
from dfalens.errors import DataError, MachineError

__all__ = ["run", "final_states", "trace", "complete", "reachable", "trim", "as_word_array"]

SINK_NAME = "sink"
"""State name given to the sink that :func:`complete` adds to a machine with named states."""


def as_word_array(machine: Machine, words: Any) -> np.ndarray:
    """Turn words into a 2-D int64 array, one word per row, padded with ``-1`` after the word ends.

    Parameters
    ----------
    machine : Machine
        Gives the alphabet (for words written as strings) and the number of symbols.
    words : 2-D array_like of int, or sequence of sequences of int, or sequence of str
        Symbol indices, one word per row; ragged rows are padded with ``-1``. Strings are encoded with
        :meth:`Machine.encode`.

    Returns
    -------
    numpy.ndarray of int64, shape (n_words, max_len)

    Raises
    ------
    DataError
        If a symbol index is out of range or a row has a symbol after its ``-1`` padding.
    """
    if isinstance(words, np.ndarray):
        arr = words
        if arr.ndim == 1 and arr.size == 0:
            arr = arr.reshape(0, 0)
        if arr.ndim != 2:
            raise DataError(
                f"words must be a 2-D array (one word per row), got shape {arr.shape}; "
                "wrap a single word as [word]"
            )
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise DataError(f"words must hold integer symbol indices, got dtype {arr.dtype}")
        arr = arr.astype(np.int64, copy=False)
    else:
        if isinstance(words, str):
            raise DataError("words must be a sequence of words, not one string; use [word]")
        seq = list(words)
        if any(isinstance(w, str) for w in seq):
            seq = [_encode(machine, w) if isinstance(w, str) else w for w in seq]
        lengths = np.fromiter((len(w) for w in seq), dtype=np.int64, count=len(seq))
        width = int(lengths.max()) if len(seq) else 0
        flat = np.fromiter(
            itertools.chain.from_iterable(seq), dtype=np.int64, count=int(lengths.sum())
        )
        arr = np.full((len(seq), width), UNDEFINED, dtype=np.int64)
        arr[np.arange(width)[None, :] < lengths[:, None]] = flat
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < UNDEFINED or hi >= machine.n_symbols:
            bad = lo if lo < UNDEFINED else hi
            raise DataError(
                f"words contain symbol index {bad}, but the alphabet has {machine.n_symbols} symbols "
                f"(indices 0..{machine.n_symbols - 1}, -1 only as padding after a word ends)"
            )
        if arr.shape[1] > 1 and np.any((arr[:, 1:] >= 0) & (arr[:, :-1] < 0)):
            raise DataError(
                "a word has a symbol after its -1 padding; pad only at the end of a row"
            )
    return arr


def _encode(machine: Machine, word: str) -> tuple[int, ...]:
    try:
        return machine.encode(word)
    except MachineError as exc:
        raise DataError(f"word {word!r}: {exc}") from None


def final_states(machine: Machine, words: Any) -> np.ndarray:
    """The state each word ends in (``-1`` once an undefined transition was taken).

    Parameters
    ----------
    machine : Machine
    words : words as accepted by :func:`run`

    Returns
    -------
    numpy.ndarray of int64, shape (n_words,)
    """
    arr = as_word_array(machine, words)
    delta = machine.delta
    state = np.full(arr.shape[0], machine.start, dtype=np.int64)
    for t in range(arr.shape[1]):
        sym = arr[:, t]
        move = (sym >= 0) & (state >= 0)
        state[move] = delta[state[move], sym[move]]
    return state


def run(machine: Machine, words: Any) -> np.ndarray:
    """The output of the machine after reading each word.

    All words are stepped together, one position at a time.

    Parameters
    ----------
    machine : Machine
    words : 2-D array_like of int, or sequence of sequences of int, or sequence of str
        One word per row of symbol indices; ragged words are padded with ``-1`` meaning "ended".
        Strings are encoded with the machine's alphabet.

    Returns
    -------
    numpy.ndarray of int64, shape (n_words,)
        The output of the state reached; ``-1`` when the word hits an undefined transition (it stays
        ``-1`` for the rest of the word).

    Examples
    --------
    >>> from dfalens.automata import parity, run
    >>> run(parity(), ["", "1", "101", "111"]).tolist()
    [0, 1, 0, 1]
    """
    state = final_states(machine, words)
    return np.where(state >= 0, machine.output[np.maximum(state, 0)], UNDEFINED)


def trace(machine: Machine, word: Sequence[int] | str) -> np.ndarray:
    """The output after every prefix of one word, the empty prefix included.

    Parameters
    ----------
    machine : Machine
    word : sequence of int or str

    Returns
    -------
    numpy.ndarray of int64, shape (len(word) + 1,)
        ``out[t]`` is the output after the first ``t`` symbols; ``-1`` from the first undefined
        transition on.
    """
    if isinstance(word, str):
        word = _encode(machine, word)
    arr = as_word_array(machine, [list(word)])[0]
    if np.any(arr < 0):
        raise DataError("trace takes one unpadded word; it contains -1")
    states = np.empty(arr.size + 1, dtype=np.int64)
    state = machine.start
    states[0] = state
    delta = machine.delta
    for t, sym in enumerate(arr.tolist(), start=1):
        if state >= 0:
            state = int(delta[state, sym])
        states[t] = state
    return np.where(states >= 0, machine.output[np.maximum(states, 0)], UNDEFINED)


def complete_arrays(
    delta: np.ndarray, output: np.ndarray, sink_output: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Arrays of the machine completed with one extra sink state (always added, even if unused).

    The sink is the last state, loops to itself on every symbol and has ``sink_output`` (which may be
    ``-1``: internal callers use it to make "undefined" an output of its own).
    """
    n, k = delta.shape
    full = np.empty((n + 1, k), dtype=np.int64)
    full[:n] = delta
    full[n] = n
    full[:n][delta == UNDEFINED] = n
    out = np.empty(n + 1, dtype=np.int64)
    out[:n] = output
    out[n] = sink_output
    return full, out


def complete(machine: Machine) -> Machine:
    """The machine with an explicit sink for its undefined transitions.

    Parameters
    ----------
    machine : Machine

    Returns
    -------
    Machine
        The input itself when it is already complete; otherwise a copy with one extra state (the last,
        output 0, looping on every symbol) that every undefined transition now enters. With named states
        the sink is named ``"sink"``.
    """
    if machine.is_complete:
        return machine
    delta, output = complete_arrays(machine.delta, machine.output, 0)
    names = None if machine.state_names is None else (*machine.state_names, SINK_NAME)
    return Machine(delta, output, machine.start, machine.alphabet, names)


SMALL_LEVEL = 64
"""Breadth-first levels with at most this many candidate transitions are expanded in plain Python (cheaper
than a dozen numpy calls; it matters for deep, narrow machines such as long cycles)."""


def bfs_order(delta: np.ndarray, start: int) -> np.ndarray:
    """States reachable from ``start`` in breadth-first order, symbols taken in index order.

    This is the canonical order: each state comes at the position of the shortest, then
    lexicographically smallest, word that reaches it. ``-1`` entries of ``delta`` are skipped.
    """
    n, k = delta.shape
    seen = np.zeros(n, dtype=bool)
    seen[start] = True
    levels = [np.array([start], dtype=np.int64)]
    frontier = levels[0]
    while frontier.size:
        if frontier.size * k <= SMALL_LEVEL:
            found = []
            for t in delta[frontier].ravel().tolist():
                if t >= 0 and not seen[t]:
                    seen[t] = True
                    found.append(t)
            frontier = np.array(found, dtype=np.int64)
        else:
            cand = delta[frontier].ravel()
            cand = cand[cand >= 0]
            cand = cand[~seen[cand]]
            _, first = np.unique(cand, return_index=True)
            frontier = cand[np.sort(first)]
            seen[frontier] = True
        levels.append(frontier)
    return np.concatenate(levels)


def reachable(machine: Machine) -> np.ndarray:
    """Boolean mask of the states reachable from the start state.

    Parameters
    ----------
    machine : Machine

    Returns
    -------
    numpy.ndarray of bool, shape (n_states,)
    """
    mask = np.zeros(machine.n_states, dtype=bool)
    mask[bfs_order(machine.delta, machine.start)] = True
    return mask


def trim(machine: Machine) -> Machine:
    """The machine without its unreachable states.

    Surviving states keep their relative order (and their names); transitions are renumbered.

    Parameters
    ----------
    machine : Machine

    Returns
    -------
    Machine
        The input itself when every state is reachable.
    """
    keep = reachable(machine)
    if keep.all():
        return machine
    new_id = np.full(machine.n_states, UNDEFINED, dtype=np.int64)
    new_id[keep] = np.arange(int(keep.sum()))
    delta = machine.delta[keep]
    delta = np.where(delta >= 0, new_id[np.maximum(delta, 0)], UNDEFINED)
    names = None
    if machine.state_names is not None:
        names = tuple(itertools.compress(machine.state_names, keep.tolist()))
    return Machine(delta, machine.output[keep], int(new_id[machine.start]), machine.alphabet, names)
