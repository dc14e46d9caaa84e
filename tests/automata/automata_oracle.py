"""Test helpers for dfalens.automata: a hypothesis strategy for machines and independent oracles.

The oracles share no code with the package: they step words in plain Python, enumerate words with
itertools, and walk products with a deque, so a bug in the vectorised code cannot hide in them.
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from collections.abc import Callable, Iterator

import numpy as np
from hypothesis import strategies as st

from dfalens.automata import Machine

TOMITA3_REJECT = re.compile("((0|1)*0)*1(11)*(0(0|1)*1)*0(00)*(1(0|1)*)*$")

TOMITA_PREDICATES: dict[int, Callable[[str], bool]] = {
    1: lambda w: "0" not in w,
    2: lambda w: w == "10" * (len(w) // 2),
    3: lambda w: not TOMITA3_REJECT.match(w),
    4: lambda w: "000" not in w,
    5: lambda w: w.count("0") % 2 == 0 and w.count("1") % 2 == 0,
    6: lambda w: (w.count("0") - w.count("1")) % 3 == 0,
    7: lambda w: w.count("10") <= 1,
}


@st.composite
def machines(
    draw: st.DrawFn,
    max_states: int = 12,
    min_symbols: int = 2,
    max_symbols: int = 3,
    partial: bool | None = None,
    dfa: bool | None = None,
) -> Machine:
    """Random machines; sizes are drawn first so failures shrink to small machines.

    ``partial``: None draws both kinds, True/False forces one. ``dfa``: None draws outputs in {0, 1}
    mostly and in {0, 1, 2} sometimes; True forces {0, 1}.
    """
    n = draw(st.integers(1, max_states))
    k = draw(st.integers(min_symbols, max_symbols))
    is_partial = draw(st.booleans()) if partial is None else partial
    n_out = 2 if dfa else draw(st.sampled_from([2, 2, 3])) if dfa is None else 3
    lo = -1 if is_partial else 0
    delta = draw(st.lists(st.integers(lo, n - 1), min_size=n * k, max_size=n * k))
    output = draw(st.lists(st.integers(0, n_out - 1), min_size=n, max_size=n))
    start = draw(st.integers(0, n - 1))
    alphabet = tuple("abc"[:k])
    return Machine(np.array(delta).reshape(n, k), output, start, alphabet)


def step_output(m: Machine, word: tuple[int, ...]) -> int:
    """Output after ``word`` by plain stepping; -1 once a transition is undefined."""
    delta = m.delta.tolist()
    q = m.start
    for s in word:
        q = delta[q][s]
        if q < 0:
            return -1
    return int(m.output[q])


def all_words(k: int, max_len: int) -> Iterator[tuple[int, ...]]:
    """Every word over ``range(k)`` of length 0..max_len, shortest first, then in symbol order."""
    for length in range(max_len + 1):
        yield from itertools.product(range(k), repeat=length)


def language(m: Machine, max_len: int) -> list[int]:
    """Outputs on every word up to ``max_len`` (in the order of :func:`all_words`)."""
    return [step_output(m, w) for w in all_words(m.n_symbols, max_len)]


def completed_size(m: Machine) -> int:
    """States after completion with a sink (as the package and the bounds below count them)."""
    return m.n_states + (0 if m.is_complete else 1)


def separation_bound(a: Machine, b: Machine) -> int:
    """A word length that provably suffices to separate two inequivalent machines.

    In a Moore machine with N states, two inequivalent states are separated by a word of length <= N-2
    (each refinement round that changes nothing ends the refinement, and there are at most N-1 blocks
    to add). Apply it to the disjoint union of both machines, completed.
    """
    return max(completed_size(a) + completed_size(b) - 2, 0)


def myhill_nerode_size(m: Machine) -> int:
    """Number of distinct futures among reachable states of the completed machine, by enumeration.

    Two states of an N-state machine that differ on some word differ on one of length <= N - 2, so the
    rows of outputs over all words of that length tell them apart.
    """
    n, k = m.delta.shape
    delta = m.delta.tolist()
    out = m.output.tolist()
    sink = n
    full = [[t if t >= 0 else sink for t in row] for row in delta] + [[sink] * k]
    out = [*out, 0]
    reach, todo = {m.start}, [m.start]
    while todo:
        q = todo.pop()
        for t in full[q]:
            if t not in reach:
                reach.add(t)
                todo.append(t)
    depth = max(len(full) - 2, 0)
    full_np, out_np = np.array(full), np.array(out)
    cur = np.array(sorted(reach))[:, None]
    cols = [out_np[cur]]
    for _ in range(depth):
        cur = full_np[cur].reshape(len(reach), -1)
        cols.append(out_np[cur])
    rows = np.concatenate(cols, axis=1)
    return len({r.tobytes() for r in rows})


def shortest_cex(a: Machine, b: Machine, ignore_empty: bool = False) -> tuple[int, ...] | None:
    """Shortest, then least, separating word by a plain deque BFS over the product (undefined = -1)."""
    da, db = a.delta.tolist(), b.delta.tolist()
    oa, ob = a.output.tolist(), b.output.tolist()

    def out(o: list[int], q: int) -> int:
        return -1 if q < 0 else o[q]

    def nxt(d: list[list[int]], q: int, s: int) -> int:
        return -1 if q < 0 else d[q][s]

    start = (a.start, b.start)
    queue: deque[tuple[tuple[int, int], tuple[int, ...]]] = deque()
    seen: set[tuple[int, int]] = set()
    if ignore_empty:
        for s in range(a.n_symbols):
            pair = (nxt(da, a.start, s), nxt(db, b.start, s))
            if pair not in seen:
                seen.add(pair)
                queue.append((pair, (s,)))
    else:
        seen.add(start)
        queue.append((start, ()))
    while queue:
        (p, q), word = queue.popleft()
        if out(oa, p) != out(ob, q):
            return word
        for s in range(a.n_symbols):
            pair = (nxt(da, p, s), nxt(db, q, s))
            if pair not in seen:
                seen.add(pair)
                queue.append((pair, (*word, s)))
    return None


def permuted_copy(m: Machine, rng: np.random.Generator, extra: int = 0) -> Machine:
    """The same language with states shuffled, ``extra`` states duplicated and one junk state added."""
    n, k = m.delta.shape
    dup = rng.integers(0, n, size=extra)
    orig = np.concatenate([np.arange(n), dup])  # original of each new state
    total = n + extra
    copies = [np.flatnonzero(orig == q) for q in range(n)]
    delta = np.full((total + 1, k), -1)
    for i in range(total):
        for s in range(k):
            t = m.delta[orig[i], s]
            if t >= 0:
                delta[i, s] = rng.choice(copies[t])
    delta[total] = rng.integers(0, total + 1, size=k)  # unreachable junk
    output = np.concatenate([m.output[orig], [rng.integers(0, 3)]])
    perm = rng.permutation(total + 1)  # new index of old state i is perm[i]
    new_delta = np.full_like(delta, -1)
    new_delta[perm] = np.where(delta >= 0, perm[np.maximum(delta, 0)], -1)
    new_output = np.empty_like(output)
    new_output[perm] = output
    return Machine(new_delta, new_output, int(perm[m.start]), m.alphabet)
