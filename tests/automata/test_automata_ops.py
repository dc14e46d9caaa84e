"""run, trace, complete, reachable, trim."""

from __future__ import annotations

import numpy as np
import pytest
from automata_oracle import machines, step_output
from hypothesis import given
from hypothesis import strategies as st

from dfalens.automata import (
    Machine,
    complete,
    equivalent,
    final_states,
    parity,
    reachable,
    run,
    tomita,
    trace,
    trim,
)
from dfalens.errors import DataError


@given(m=machines(), data=st.data())
def test_run_matches_plain_stepping_on_ragged_words(m: Machine, data: st.DataObject) -> None:
    words = data.draw(
        st.lists(st.lists(st.integers(0, m.n_symbols - 1), max_size=8), min_size=1, max_size=20)
    )
    got = run(m, words)
    assert got.dtype == np.int64
    assert got.tolist() == [step_output(m, tuple(w)) for w in words]
    # the same words as a padded 2-D array
    width = max(len(w) for w in words)
    arr = np.full((len(words), width), -1)
    for i, w in enumerate(words):
        arr[i, : len(w)] = w
    assert np.array_equal(run(m, arr), got)


@given(m=machines(), data=st.data())
def test_trace_is_the_run_of_every_prefix(m: Machine, data: st.DataObject) -> None:
    word = data.draw(st.lists(st.integers(0, m.n_symbols - 1), max_size=10))
    tr = trace(m, word)
    assert tr.shape == (len(word) + 1,)
    assert tr.tolist() == [step_output(m, tuple(word[:t])) for t in range(len(word) + 1)]


def test_run_accepts_strings_and_empty_input() -> None:
    assert run(parity(), ["", "1", "11", "0110111"]).tolist() == [0, 1, 0, 1]
    assert run(parity(), []).shape == (0,)
    assert run(parity(), np.zeros((3, 0), dtype=int)).tolist() == [0, 0, 0]
    assert trace(tomita(2), "1010").tolist() == [1, 0, 1, 0, 1]


def test_undefined_transition_gives_minus_one_and_stays() -> None:
    m = Machine([[1, -1], [0, 0]], [1, 0])
    assert run(m, [[1], [1, 0], [0, 0], [0, 1, 0]]).tolist() == [-1, -1, 1, 0]
    assert final_states(m, [[1, 0, 0]]).tolist() == [-1]
    assert trace(m, [0, 1, 1, 0]).tolist() == [1, 0, 1, -1, -1]


@pytest.mark.parametrize(
    "words",
    [
        [[0, 2]],  # symbol out of range
        [[0, -3]],
        np.array([[0, -1, 1]]),  # a symbol after the padding
        np.zeros(3, dtype=int),  # 1-D
        np.zeros((2, 2)),  # floats
        "0101",  # one string, not a list of words
        ["012"],  # a character not in the alphabet
    ],
)
def test_bad_words_raise_data_error(words: object) -> None:
    with pytest.raises(DataError) as info:
        run(parity(), words)
    assert "\n" not in str(info.value)


def test_bad_character_in_string_is_named() -> None:
    with pytest.raises(DataError, match="'2' is not in the alphabet"):
        run(parity(), ["012"])


@given(m=machines())
def test_complete_adds_one_sink_only_when_needed(m: Machine) -> None:
    c = complete(m)
    assert c.is_complete
    if m.is_complete:
        assert c is m
    else:
        assert c.n_states == m.n_states + 1
        sink = m.n_states
        assert c.output[sink] == 0 and np.all(c.delta[sink] == sink)
        assert np.array_equal(c.delta[: m.n_states][m.delta >= 0], m.delta[m.delta >= 0])
        assert np.all(c.delta[: m.n_states][m.delta < 0] == sink)


@given(m=machines())
def test_reachable_and_trim(m: Machine) -> None:
    mask = reachable(m)
    # independent closure
    seen, todo = {m.start}, [m.start]
    while todo:
        q = todo.pop()
        for t in m.delta[q].tolist():
            if t >= 0 and t not in seen:
                seen.add(t)
                todo.append(t)
    assert set(np.flatnonzero(mask).tolist()) == seen
    t = trim(m)
    assert t.n_states == len(seen)
    assert reachable(t).all()
    assert equivalent(t, m).equal
    assert t.output.tolist() == m.output[mask].tolist()


def test_trim_keeps_state_names_and_complete_names_the_sink() -> None:
    m = Machine([[1, -1], [0, 1], [2, 2]], [0, 1, 1], state_names=["a", "b", "junk"])
    t = trim(m)
    assert t.state_names == ("a", "b")
    assert t.delta.tolist() == [[1, -1], [0, 1]]
    assert complete(t).state_names == ("a", "b", "sink")
    assert trim(t) is t


@pytest.mark.parametrize("small_level", [0, 10**9])
def test_bfs_order_is_the_same_in_numpy_and_python_levels(
    small_level: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections import deque

    from dfalens.automata import ops

    monkeypatch.setattr(ops, "SMALL_LEVEL", small_level)
    rng = np.random.default_rng(1)
    for _ in range(100):
        n, k = int(rng.integers(1, 40)), int(rng.integers(1, 4))
        delta = rng.integers(-1, n, size=(n, k))
        start = int(rng.integers(n))
        order, seen, queue = [], {start}, deque([start])
        while queue:
            q = queue.popleft()
            order.append(q)
            for t in delta[q].tolist():
                if t >= 0 and t not in seen:
                    seen.add(t)
                    queue.append(t)
        assert ops.bfs_order(delta, start).tolist() == order
