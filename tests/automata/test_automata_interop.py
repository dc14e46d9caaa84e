"""Machines to and from AALpy and automata-lib keep their language (checked by dfalens and by them)."""

from __future__ import annotations

import itertools

import pytest
from automata_oracle import machines, step_output
from hypothesis import given, settings

from dfalens.automata import (
    Machine,
    complete,
    equivalent,
    from_aalpy,
    from_automata_lib,
    parity,
    to_aalpy,
    to_automata_lib,
    tomita,
)
from dfalens.errors import MachineError


def _words(k: int, max_len: int = 5) -> list[tuple[int, ...]]:
    return [w for n in range(max_len + 1) for w in itertools.product(range(k), repeat=n)]


@settings(max_examples=60, deadline=None)
@given(machines(max_states=8))
def test_aalpy_round_trip_keeps_the_language_and_aalpy_agrees(m: Machine) -> None:
    theirs = to_aalpy(m)
    back = from_aalpy(theirs, m.alphabet)
    assert equivalent(back, complete(m)).equal
    full = complete(m)
    for word in _words(m.n_symbols, 4):
        symbols = [m.alphabet[s] for s in word]
        expected = step_output(full, word)
        state = theirs.initial_state
        for s in symbols:
            state = state.transitions[s]
        got = state.is_accepting if hasattr(state, "is_accepting") else state.output
        assert int(got) == expected, (word, got, expected)


@settings(max_examples=60, deadline=None)
@given(machines(max_states=8, dfa=True))
def test_automata_lib_round_trip_keeps_partial_machines_partial(m: Machine) -> None:
    theirs = to_automata_lib(m)
    back = from_automata_lib(theirs, m.alphabet)
    assert back.is_complete == m.is_complete
    assert equivalent(back, m).equal
    for word in _words(m.n_symbols, 4):
        expected = step_output(m, word)
        accepted = theirs.accepts_input([m.alphabet[s] for s in word])
        assert accepted == (expected == 1), word


def test_named_states_survive_and_known_machines_convert() -> None:
    p = Machine([[0, 1], [1, 0]], [0, 1], state_names=["even", "odd"])
    assert {s.state_id for s in to_aalpy(p).states} == {"even", "odd"}
    assert from_automata_lib(to_automata_lib(p)).state_names == ("even", "odd")
    assert equivalent(from_aalpy(to_aalpy(tomita(5))), tomita(5)).equal
    theirs = to_aalpy(parity())
    theirs.reset_to_initial()
    assert [theirs.step(s) for s in "1101"] == [True, False, False, True]


def test_moore_outputs_and_refusals() -> None:
    m = Machine([[1], [2], [0]], [0, 1, 2], alphabet=("a",))
    moore = to_aalpy(m)
    assert type(moore).__name__ == "MooreMachine"
    assert equivalent(from_aalpy(moore), m).equal
    with pytest.raises(MachineError, match="outputs other than 0 and 1"):
        to_automata_lib(m)
    with pytest.raises(MachineError, match="AALpy Dfa or MooreMachine"):
        from_aalpy(object())
    with pytest.raises(MachineError, match="automata-lib DFA"):
        from_automata_lib(object())
