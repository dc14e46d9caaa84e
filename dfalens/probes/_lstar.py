"""The observation table of a batched L* for Moore machines, and Rivest-Schapire counterexample analysis.

The learner (:func:`dfalens.probes.blackbox.learn`) drives these functions; they never call a network
themselves but go through ``ask``: a function that labels a list of words in one batched call (served from a
cache where it can) and raises :class:`OutOfQueries` instead when the query budget would be exceeded. Every
step that needs new labels (filling new rows, new columns, one level of counterexample search) collects all of
its words first and asks for them at once.

The table keeps prefixes ``S`` (access words, one per hypothesis state, prefix-closed) and their one-symbol
extensions ``S·Σ`` as rows, suffixes ``E`` (``E[0]`` is the empty word) as columns, and the label of every
``prefix + suffix``. Counterexamples add suffixes only (Rivest & Schapire 1993), so the rows of ``S`` stay
pairwise distinct and the table never needs a consistency check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "OutOfQueries",
    "Table",
    "Word",
    "new_table",
    "add_suffixes",
    "close",
    "hypothesis",
    "distinguishing_suffixes",
]

Word = tuple[int, ...]
Ask = Callable[[list[Word]], np.ndarray]


class OutOfQueries(Exception):
    """Raised by ``ask`` when labelling the requested words would exceed the query budget (internal)."""


@dataclass(eq=False)
class Table:
    """A mutable observation table (internal to the learner).

    Attributes
    ----------
    n_symbols : int
    prefixes : list of Word
        Every row's word: the access words and their one-symbol extensions, in the order added.
    index : dict
        Row number of each prefix.
    suffixes : list of Word
        The columns; ``suffixes[0] == ()``.
    values : numpy.ndarray of int64, shape (n_rows, n_suffixes)
        ``values[r, c]`` is the label of ``prefixes[r] + suffixes[c]``.
    access : list of int
        Row numbers of the access words ``S``, one per hypothesis state; ``access[0]`` is the empty word.
    """

    n_symbols: int
    prefixes: list[Word] = field(default_factory=list)
    index: dict[Word, int] = field(default_factory=dict)
    suffixes: list[Word] = field(default_factory=list)
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), dtype=np.int64))
    access: list[int] = field(default_factory=list)


def _add_rows(table: Table, words: Sequence[Word], ask: Ask) -> None:
    """Append rows for new prefixes (all labels asked in one call before anything changes)."""
    words = [w for w in dict.fromkeys(words) if w not in table.index]
    if not words:
        return
    queries = [w + e for w in words for e in table.suffixes]
    labels = ask(queries).reshape(len(words), len(table.suffixes))
    for w in words:
        table.index[w] = len(table.prefixes)
        table.prefixes.append(w)
    table.values = np.concatenate([table.values, labels])


def new_table(n_symbols: int, ask: Ask) -> Table:
    """The table with ``S = {ε}``, ``E = {ε}`` and its rows ``ε, a`` for every symbol ``a``."""
    table = Table(n_symbols=n_symbols, suffixes=[()])
    _add_rows(table, [(), *((a,) for a in range(n_symbols))], ask)
    table.access.append(table.index[()])
    return table


def add_suffixes(table: Table, suffixes: Sequence[Word], ask: Ask) -> int:
    """Add new columns (suffixes not yet in ``E``) with one call; returns how many were added."""
    known = set(table.suffixes)
    new = [s for s in dict.fromkeys(suffixes) if s not in known]
    if not new:
        return 0
    queries = [p + s for p in table.prefixes for s in new]
    labels = ask(queries).reshape(len(table.prefixes), len(new))
    table.suffixes.extend(new)
    table.values = np.concatenate([table.values, labels], axis=1)
    return len(new)


def row_classes(table: Table) -> np.ndarray:
    """Class id of every row: rows with equal labels on every suffix share an id."""
    _, inverse = np.unique(table.values, axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64, copy=False)


def close(table: Table, ask: Ask, max_states: int) -> bool:
    """Promote rows of ``S·Σ`` that match no access row to ``S`` until the table is closed.

    Each pass promotes one row per new class (the shortest) and asks for all of their extensions in one call.

    Returns
    -------
    bool
        True when ``max_states`` stopped the closing before the table was closed.

    Raises
    ------
    OutOfQueries
        From ``ask``; the table is left as it was before that pass.
    """
    while True:
        classes = row_classes(table)
        unmatched = np.flatnonzero(~np.isin(classes, classes[table.access]))
        if not unmatched.size:
            return False
        lengths = np.fromiter((len(table.prefixes[r]) for r in unmatched.tolist()), dtype=np.int64)
        # one row per new class: the shortest (then the earliest added)
        order = np.lexsort((unmatched, lengths, classes[unmatched]))
        cls = classes[unmatched][order]
        heads = unmatched[order][np.r_[True, cls[1:] != cls[:-1]]]
        heads = heads[np.lexsort((heads, lengths[np.searchsorted(unmatched, heads)]))]
        room = max(max_states - len(table.access), 0)
        promote = heads[:room].tolist()
        if promote:
            words = [table.prefixes[r] + (a,) for r in promote for a in range(table.n_symbols)]
            _add_rows(table, words, ask)
            table.access.extend(promote)
        if len(promote) < heads.size:
            return True


def hypothesis(table: Table) -> tuple[np.ndarray, np.ndarray]:
    """Transition table and outputs of the hypothesis; state ``j`` is ``access[j]``, state 0 the start.

    For a closed table every extension row matches exactly one access row. For a table left unclosed by a
    budget, an unmatched extension goes to the access row that agrees with it on the most suffixes (the
    lowest state on ties), so the result is always a complete machine.
    """
    access = np.asarray(table.access, dtype=np.int64)
    classes = row_classes(table)
    ext = np.array(
        [
            [table.index[table.prefixes[r] + (a,)] for a in range(table.n_symbols)]
            for r in table.access
        ],
        dtype=np.int64,
    )
    state_of_class = np.full(int(classes.max()) + 1, -1, dtype=np.int64)
    state_of_class[classes[access]] = np.arange(access.size)
    delta = state_of_class[classes[ext]]
    for j, a in np.argwhere(delta < 0).tolist():  # only for a table left unclosed by a budget
        agree = (table.values[access] == table.values[ext[j, a]]).sum(axis=1)
        delta[j, a] = int(np.argmax(agree))
    return delta, table.values[access, 0].copy()


def distinguishing_suffixes(
    table: Table,
    delta: np.ndarray,
    counterexamples: Sequence[tuple[Word, int]],
    ask: Ask,
    probes: int = 64,
) -> list[Word]:
    """Rivest-Schapire analysis of several counterexamples at once, by batched k-ary search.

    For a counterexample ``u`` (label ``y``, length ``m``) let ``q_i`` be the hypothesis state after
    ``u[:i]`` and ``α_i = access(q_i) + u[i:]``: ``α_0 = u`` has label ``y`` and ``α_m`` the hypothesis's
    output, which differs. A breakpoint ``i`` with ``label(α_i) == y != label(α_{i+1})`` gives the suffix
    ``u[i+1:]``, which separates ``access(q_i) + u[i]`` from ``access(q_{i+1})`` and so makes the table
    unclosed. Binary search finds one in ``log2 m`` sequential queries; here each step probes up to
    ``probes`` evenly spaced positions of every counterexample in one call, so counterexamples up to
    ``probes + 1`` symbols long need a single call.

    Returns
    -------
    list of Word
        One new suffix per counterexample (duplicates removed), in the order given.
    """
    access_words = [table.prefixes[r] for r in table.access]
    jobs = []
    for word, label in counterexamples:
        states = [0]
        for a in word:
            states.append(int(delta[states[-1], a]))
        jobs.append([word, label, states, 0, len(word)])  # invariant: f(lo) true, f(hi) false
    while True:
        active = [job for job in jobs if job[4] - job[3] > 1]
        if not active:
            break
        points = []
        for _, _, _, lo, hi in active:
            span = hi - lo - 1
            step = max(1, -(-span // probes))
            points.append(list(range(lo + 1, hi, step))[:probes])
        queries = [
            access_words[job[2][i]] + job[0][i:]
            for job, pts in zip(active, points, strict=True)
            for i in pts
        ]
        labels = ask(queries).tolist()
        k = 0
        for job, pts in zip(active, points, strict=True):
            lo, hi = job[3], job[4]
            for i, label in zip(pts, labels[k : k + len(pts)], strict=True):
                if label == job[1]:
                    lo = i
                else:
                    hi = i
                    break
            k += len(pts)
            job[3], job[4] = lo, hi
    return list(dict.fromkeys(job[0][job[3] + 1 :] for job in jobs))
