"""equivalent and consistent: verdicts, shortest counterexamples, partial machines."""

from __future__ import annotations

import itertools
from collections import deque

import numpy as np
import pytest
from automata_oracle import machines, permuted_copy, shortest_cex, step_output
from hypothesis import given
from hypothesis import strategies as st

from dfalens.automata import (
    Machine,
    Verdict,
    consistent,
    equivalent,
    mod_count,
    parity,
    tomita,
)
from dfalens.errors import ConfigError, MachineError


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Machine, Machine]:
    """Two machines over one alphabet: independent, an equivalent shuffled copy, or a one-output edit."""
    a = draw(machines(max_states=8))
    mode = draw(st.sampled_from(["independent", "copy", "edit"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if mode == "independent":
        b = draw(machines(max_states=8, min_symbols=a.n_symbols, max_symbols=a.n_symbols))
    else:
        b = permuted_copy(a, rng, extra=draw(st.integers(0, 4)))
        if mode == "edit":
            out = b.output.copy()
            q = draw(st.integers(0, b.n_states - 1))
            out[q] = (out[q] + 1) % 3
            b = Machine(b.delta, out, b.start, b.alphabet)
    return a, b


def _check_verdict(v: Verdict, a: Machine, b: Machine, ignore_empty: bool) -> None:
    expected = shortest_cex(a, b, ignore_empty)
    assert v.equal == (expected is None)
    assert bool(v) == v.equal
    if v.equal:
        assert v.counterexample is None and v.output_a is None and v.output_b is None
        return
    word = v.counterexample
    assert isinstance(word, tuple)
    assert word == expected
    assert v.output_a == step_output(a, word) != v.output_b == step_output(b, word)
    if ignore_empty:
        assert len(word) >= 1
    # no shorter word separates, and no smaller word of the same length (brute force where cheap)
    if a.n_symbols ** len(word) <= 5000:
        lo = 1 if ignore_empty else 0
        for length in range(lo, len(word)):
            for w in itertools.product(range(a.n_symbols), repeat=length):
                assert step_output(a, w) == step_output(b, w)
        for w in itertools.product(range(a.n_symbols), repeat=len(word)):
            if w >= word:
                break
            assert step_output(a, w) == step_output(b, w)


@given(ab=pairs(), ignore_empty=st.booleans())
def test_counterexample_is_real_shortest_and_least(
    ab: tuple[Machine, Machine], ignore_empty: bool
) -> None:
    a, b = ab
    _check_verdict(equivalent(a, b, include_empty=not ignore_empty), a, b, ignore_empty)


@given(ab=pairs())
def test_equivalent_is_symmetric(ab: tuple[Machine, Machine]) -> None:
    a, b = ab
    v, w = equivalent(a, b), equivalent(b, a)
    assert v.equal == w.equal
    assert v.counterexample == w.counterexample
    assert (v.output_a, v.output_b) == (w.output_b, w.output_a)


@given(m=machines())
def test_equivalent_is_reflexive(m: Machine) -> None:
    assert equivalent(m, m).equal
    assert equivalent(m, permuted_copy(m, np.random.default_rng(m.n_states), extra=2)).equal


def test_undefined_differs_from_defined() -> None:
    full = parity()
    part = Machine([[0, -1]], [0])
    v = equivalent(full, part)
    assert v.counterexample == (1,) and (v.output_a, v.output_b) == (1, -1)
    assert v.word_str == "1"
    # a partial machine and its completion with an output-0 sink are not equivalent either
    assert not equivalent(part, Machine([[0, 1], [1, 1]], [0, 0]))


def test_include_empty_false_skips_only_the_empty_word() -> None:
    a = Machine([[1, 1], [1, 1]], [0, 1])  # output 0 on the empty word, 1 after
    b = Machine([[0, 0]], [1])
    assert equivalent(a, b).counterexample == ()
    assert equivalent(a, b, include_empty=False).equal
    # the start pair met again later is still compared
    c = Machine([[0, 0]], [0])
    v = equivalent(c, Machine([[1, 1], [1, 1]], [0, 1]), include_empty=False)
    assert v.counterexample == (0,)


def test_verdict_text() -> None:
    v = equivalent(tomita(3), tomita(4))
    assert v.word_str == "10" and str(v) == "not equivalent: on '10' the outputs are 0 vs 1"
    assert str(equivalent(parity(), mod_count(2))) == "equivalent"
    assert "empty word" in str(equivalent(parity(), tomita(1)))


def test_alphabets_are_matched_by_name() -> None:
    a = Machine([[0, 1], [1, 0]], [0, 1], alphabet=("a", "b"))
    b = Machine([[1, 0], [0, 1]], [0, 1], alphabet=("b", "a"))
    assert equivalent(a, b).equal
    with pytest.raises(MachineError, match="different alphabets"):
        equivalent(a, Machine([[0, 1], [1, 0]], [0, 1], alphabet=("a", "c")))


@given(m=machines(partial=False), data=st.data())
def test_a_restriction_is_consistent(m: Machine, data: st.DataObject) -> None:
    drop = data.draw(st.lists(st.booleans(), min_size=m.delta.size, max_size=m.delta.size))
    delta = np.where(np.array(drop).reshape(m.delta.shape), -1, m.delta)
    part = Machine(delta, m.output, m.start, m.alphabet)
    assert consistent(part, m).equal
    assert consistent(part, m, max_len=3).equal


@given(m=machines(partial=False), data=st.data())
def test_inconsistency_is_found_at_the_shortest_word(m: Machine, data: st.DataObject) -> None:
    q = data.draw(st.integers(0, m.n_states - 1))
    out = m.output.copy()
    out[q] = (out[q] + 1) % 3
    drop = data.draw(st.lists(st.booleans(), min_size=m.delta.size, max_size=m.delta.size))
    part = Machine(
        np.where(np.array(drop).reshape(m.delta.shape), -1, m.delta), out, m.start, m.alphabet
    )
    v = consistent(part, m)
    # part walks in lockstep with m, so they disagree exactly on the words that reach q in part:
    # the expected counterexample is the first word reaching q in a plain breadth-first search
    expected = None
    queue, seen = deque([(part.start, ())]), {part.start}
    while queue:
        p, w = queue.popleft()
        if p == q:
            expected = w
            break
        for a, t in enumerate(part.delta[p].tolist()):
            if t >= 0 and t not in seen:
                seen.add(t)
                queue.append((t, (*w, a)))
    assert v.counterexample == expected
    assert v.equal == (expected is None)
    if expected is not None:
        assert (v.output_a, v.output_b) == (out[q], m.output[q])
        assert consistent(part, m, max_len=len(expected)).counterexample == expected
        if expected:
            assert consistent(part, m, max_len=len(expected) - 1).equal
            assert consistent(part, m, include_empty=False).counterexample == expected


def test_consistent_checks_partial_against_partial_and_rejects_negative_length() -> None:
    part = Machine([[1, -1], [0, -1]], [0, 1])
    assert consistent(part, parity()).counterexample == (0,)
    assert consistent(Machine([[-1, 1], [-1, 0]], [0, 1]), parity()).equal
    v = consistent(Machine([[0, 0]], [0]), Machine([[-1, -1]], [0]))
    assert v.counterexample == (0,) and (v.output_a, v.output_b) == (0, -1)
    with pytest.raises(ConfigError):
        consistent(part, parity(), max_len=-1)


def test_long_counterexample_on_a_large_pair() -> None:
    # counters mod 997 and mod 991 first differ after 991 ones (outputs 991 vs 0)
    a, b = mod_count(997), mod_count(991)
    v = equivalent(a, b)
    assert v.counterexample == (1,) * 991
    assert (v.output_a, v.output_b) == (991, 0)


def test_large_product_mode_gives_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    from dfalens.automata import random_machine
    from dfalens.automata.equivalence import _PairSet

    cases = []
    for seed in range(60):
        a = random_machine(max_states=6, seed=seed)
        b = random_machine(max_states=6, seed=seed + 1000)
        c = permuted_copy(a, np.random.default_rng(seed), extra=3)
        cases += [(a, b), (a, c), (c, b)]
    expected = [(equivalent(a, b), equivalent(a, b, include_empty=False)) for a, b in cases]
    monkeypatch.setattr(_PairSet, "BITMAP_LIMIT", 0)  # force the sorted-array set
    for (a, b), (v, w) in zip(cases, expected, strict=True):
        assert equivalent(a, b) == v and v.counterexample == shortest_cex(a, b)
        assert equivalent(a, b, include_empty=False) == w
