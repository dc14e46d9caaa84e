"""minimize, minimal_state_map, n_states_trimmed: against enumeration and against automata-lib."""

from __future__ import annotations

import numpy as np
import pytest
from automata_oracle import (
    language,
    machines,
    myhill_nerode_size,
    permuted_copy,
    separation_bound,
    shortest_cex,
    step_output,
)
from hypothesis import given
from hypothesis import strategies as st

from dfalens.automata import (
    Machine,
    minimal_state_map,
    minimize,
    mod_count,
    n_states_trimmed,
    parity,
    tomita,
)
from dfalens.automata.minimization import refine_partition


def _complete_with_zero(m: Machine) -> Machine:
    """``m`` with undefined transitions sent to a new sink of output 0 (minimize's convention)."""
    n, k = m.delta.shape
    delta = np.vstack([np.where(m.delta >= 0, m.delta, n), np.full((1, k), n)])
    return Machine(delta, [*m.output.tolist(), 0], m.start, m.alphabet)


@given(m=machines(max_states=6, max_symbols=2))
def test_minimize_preserves_language_by_enumeration_two_symbols(m: Machine) -> None:
    mm = minimize(m)
    ref = _complete_with_zero(m)
    bound = separation_bound(ref, mm)
    assert bound <= 12
    assert language(mm, bound) == language(ref, bound)


@given(m=machines(max_states=4, min_symbols=3, max_symbols=3))
def test_minimize_preserves_language_by_enumeration_three_symbols(m: Machine) -> None:
    mm = minimize(m)
    ref = _complete_with_zero(m)
    bound = separation_bound(ref, mm)
    assert bound <= 8
    assert language(mm, bound) == language(ref, bound)


@given(m=machines())
def test_minimize_preserves_language_by_product_walk(m: Machine) -> None:
    mm = minimize(m)
    assert mm.is_complete
    assert shortest_cex(_complete_with_zero(m), mm) is None


@given(m=machines())
def test_minimize_reaches_myhill_nerode_size(m: Machine) -> None:
    assert minimize(m).n_states == myhill_nerode_size(m)


@given(m=machines())
def test_minimize_is_idempotent_and_canonical(m: Machine) -> None:
    mm = minimize(m)
    again = minimize(mm)
    assert np.array_equal(again.delta, mm.delta)
    assert np.array_equal(again.output, mm.output)
    assert again.start == mm.start == 0
    # canonical: a shuffled, blown-up copy gives identical arrays
    other = minimize(permuted_copy(m, np.random.default_rng(mm.n_states), extra=3))
    assert other == mm


@given(m=machines())
def test_minimal_numbering_is_breadth_first(m: Machine) -> None:
    mm = minimize(m)
    # each state's first discovery follows the previous one in (level, parent, symbol) order
    order, seen = [0], {0}
    i = 0
    while i < len(order):
        for t in mm.delta[order[i]].tolist():
            if t not in seen:
                seen.add(t)
                order.append(t)
        i += 1
    assert order == list(range(mm.n_states))


@given(m=machines())
def test_trimmed_minimal_drops_only_the_dead_state(m: Machine) -> None:
    full = minimize(m)
    trimmed = minimize(m, keep_sink=False)
    assert n_states_trimmed(m) == trimmed.n_states
    dead = [
        q
        for q in range(full.n_states)
        if q != full.start and full.output[q] == 0 and np.all(full.delta[q] == q)
    ]
    assert len(dead) <= 1
    assert trimmed.n_states == full.n_states - len(dead)
    # where the trimmed machine is undefined the full one outputs 0 forever
    assert shortest_cex(_complete_with_zero(trimmed), full) is None


@given(m=machines())
def test_state_map_points_each_state_to_its_minimal_state(m: Machine) -> None:
    mm = minimize(m)
    smap = minimal_state_map(m)
    assert smap.shape == (m.n_states,)
    reach = smap >= 0
    assert smap[m.start] == mm.start
    assert np.array_equal(mm.output[smap[reach]], m.output[reach])
    # a defined transition of a reachable state maps onto the minimal transition
    q, a = np.nonzero((m.delta >= 0) & reach[:, None])
    assert np.array_equal(smap[m.delta[q, a]], mm.delta[smap[q], a])
    trimmed = minimize(m, keep_sink=False)
    tmap = minimal_state_map(m, keep_sink=False)
    ok = tmap >= 0
    assert np.array_equal(trimmed.output[tmap[ok]], m.output[ok])


@given(m=machines(dfa=True))
def test_agrees_with_automata_lib_minify(m: Machine) -> None:
    from automata.fa.dfa import DFA

    n, k = m.delta.shape
    symbols = set(m.alphabet)
    transitions = {
        q: {m.alphabet[a]: int(m.delta[q, a]) for a in range(k) if m.delta[q, a] >= 0}
        for q in range(n)
    }
    theirs = DFA(
        states=set(range(n)),
        input_symbols=symbols,
        transitions=transitions,
        initial_state=m.start,
        final_states={q for q in range(n) if m.output[q] == 1},
        allow_partial=True,
    ).minify()
    mm = minimize(m)
    ours = DFA(
        states=set(range(mm.n_states)),
        input_symbols=symbols,
        transitions={
            q: dict(zip(mm.alphabet, mm.delta[q].tolist(), strict=True)) for q in range(mm.n_states)
        },
        initial_state=mm.start,
        final_states={q for q in range(mm.n_states) if mm.output[q] == 1},
    )
    assert ours == theirs
    # sizes agree modulo the sink: count their states that can reach a final state, plus the start
    live = set(theirs.final_states)
    grew = True
    while grew:
        grew = False
        for q, row in theirs.transitions.items():
            if q not in live and any(t in live for t in row.values()):
                live.add(q)
                grew = True
    assert n_states_trimmed(m) == len(live | {theirs.initial_state})


@pytest.mark.parametrize(
    ("machine", "complete_size", "trimmed_size"),
    [(parity(), 2, 2), (mod_count(5), 5, 5)]
    + [
        (tomita(n), c, t)
        for n, c, t in zip(range(1, 8), [2, 3, 5, 4, 4, 3, 5], [1, 2, 4, 3, 4, 3, 4], strict=True)
    ],
)
def test_known_sizes(machine: Machine, complete_size: int, trimmed_size: int) -> None:
    assert minimize(machine).n_states == complete_size
    assert n_states_trimmed(machine) == trimmed_size


def test_empty_language_keeps_its_start_when_trimmed() -> None:
    m = Machine([[1, -1], [-1, 1]], [0, 0])
    assert minimize(m).delta.tolist() == [[0, 0]]
    t = minimize(m, keep_sink=False)
    assert t.n_states == 1 and t.output.tolist() == [0]


def test_partial_input_gives_complete_output_with_sink() -> None:
    m = Machine([[1, -1], [0, -1]], [1, 0])  # (00)* with 1 undefined
    mm = minimize(m)
    assert mm.is_complete and mm.n_states == 3
    assert step_output(mm, (1, 0)) == 0


def test_refine_partition_handles_wide_alphabets_without_overflow() -> None:
    rng = np.random.default_rng(0)
    n, k = 3000, 12
    delta = rng.integers(0, n, size=(n, k))
    output = rng.integers(0, 2, size=n)
    block = refine_partition(delta, output)
    # the partition is stable: equal blocks have equal outputs and equal successor blocks
    _, first = np.unique(block, return_index=True)
    rep = first[block]
    assert np.array_equal(output, output[rep])
    assert np.array_equal(block[delta], block[delta[rep]])


@given(st.integers(0, 2**32 - 1))
def test_blown_up_machine_minimises_to_the_original(seed: int) -> None:
    rng = np.random.default_rng(seed)
    from dfalens.automata import random_machine

    base = random_machine(seed=seed)
    blown = permuted_copy(base, rng, extra=int(rng.integers(0, 30)))
    assert minimize(blown) == minimize(base)
