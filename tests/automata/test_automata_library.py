"""Ground-truth machines and the task registry."""

from __future__ import annotations

import numpy as np
import pytest
from automata_oracle import TOMITA_PREDICATES, all_words
from hypothesis import given
from hypothesis import strategies as st

from dfalens.automata import (
    from_transitions,
    get_task_machine,
    list_tasks,
    minimize,
    mod_count,
    parity,
    random_machine,
    reachable,
    run,
    to_json,
    tomita,
)
from dfalens.errors import ConfigError, MachineError, TaskError

WORDS_12 = ["".join(map(str, w)) for w in all_words(2, 12)]


@pytest.mark.parametrize("n", range(1, 8))
def test_tomita_agrees_with_its_predicate_up_to_length_12(n: int) -> None:
    assert len(WORDS_12) == 8191
    expected = [int(TOMITA_PREDICATES[n](w)) for w in WORDS_12]
    assert run(tomita(n), WORDS_12).tolist() == expected


@pytest.mark.parametrize("n", range(1, 8))
def test_tomita_tables_are_minimal_and_canonical(n: int) -> None:
    assert minimize(tomita(n)) == tomita(n)


def test_parity_and_mod_count() -> None:
    words = [w for w in WORDS_12 if len(w) <= 8]
    ones = np.array([w.count("1") for w in words])
    assert run(parity(), words).tolist() == (ones % 2).tolist()
    assert run(mod_count(5), words).tolist() == (ones % 5).tolist()
    assert mod_count(2) == parity()
    for bad in (1, 0, -3, 2.5, True):
        with pytest.raises(TaskError):
            mod_count(bad)  # type: ignore[arg-type]
    with pytest.raises(TaskError, match="1..7"):
        tomita(8)


@given(
    seed=st.integers(0, 2**31),
    max_states=st.integers(2, 9),
    p_new=st.floats(0.05, 1.0),
    k=st.integers(1, 3),
)
def test_random_machine_follows_the_generator(
    seed: int, max_states: int, p_new: float, k: int
) -> None:
    m = random_machine(max_states=max_states, p_new=p_new, n_symbols=k, seed=seed)
    assert m.is_complete and 1 <= m.n_states <= max_states
    assert reachable(m).all()
    assert m.alphabet == tuple(str(i) for i in range(k))
    assert minimize(m).n_states > 1
    assert set(m.output.tolist()) <= {0, 1}
    # states are created in breadth-first order: a new state is always the next index
    created = np.maximum.accumulate(np.concatenate([[0], m.delta.ravel()]))
    assert np.all(m.delta.ravel() <= created[:-1] + 1)
    assert m == random_machine(max_states=max_states, p_new=p_new, n_symbols=k, seed=seed)


def test_random_machine_size_distribution_and_errors() -> None:
    sizes = [random_machine(seed=s).n_states for s in range(200)]
    assert max(sizes) == 7 and np.mean(sizes) > 5  # p_new = 0.75 fills up most machines
    with pytest.raises(ConfigError):
        random_machine(max_states=1)
    with pytest.raises(ConfigError):
        random_machine(p_new=0.0)


def test_from_transitions_names_states_and_leaves_gaps_undefined() -> None:
    m = from_transitions(
        {"s": {"a": "t"}, "t": {"a": "s", "b": "u"}},
        {"s": 1, "t": 0, "u": True},
    )
    assert m.state_names == ("s", "t", "u")
    assert m.alphabet == ("a", "b")
    assert m.delta.tolist() == [[1, -1], [0, 2], [-1, -1]]
    assert m.output.tolist() == [1, 0, 1]
    m2 = from_transitions({"s": {"a": "s"}}, {"s": 0, "x": 1}, start="x", alphabet="ab")
    assert m2.start == 1 and m2.delta.tolist() == [[0, -1], [-1, -1]]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (({"s": {"a": "t"}}, {"s": 1}), "no output"),
        (({"s": {"c": "s"}}, {"s": 1}, None, "ab"), "not in alphabet"),
        (({"s": {"a": "s"}}, {"s": "yes"}), "must be integers"),
        (({"s": {"a": "s"}}, {"s": 1}, "nowhere"), "not among the states"),
        (({}, {}), "no states"),
    ],
)
def test_from_transitions_errors(args: tuple, match: str) -> None:
    with pytest.raises(MachineError, match=match):
        from_transitions(*args)


def test_registry_names(tmp_path) -> None:
    assert get_task_machine("parity") == parity()
    assert get_task_machine("Mod3") == mod_count(3)
    assert get_task_machine(" tomita4 ") == tomita(4)
    assert get_task_machine("random:7") == random_machine(seed=7)
    path = tmp_path / "m.json"
    path.write_text(to_json(tomita(5)))
    assert get_task_machine(str(path)) == tomita(5)
    assert get_task_machine(path) == tomita(5)


@pytest.mark.parametrize("name", ["prity", "tomita9", "mod1", "random:x", "missing/file.json"])
def test_registry_unknown_names_raise_task_error_in_one_line(name: str) -> None:
    with pytest.raises(TaskError) as info:
        get_task_machine(name)
    msg = str(info.value)
    assert "\n" not in msg
    if name == "prity":
        assert "parity" in msg and "tomitaN" in msg and "random:SEED" in msg


def test_every_listed_example_resolves() -> None:
    tasks = list_tasks()
    assert [t.name for t in tasks][:3] == ["parity", "modK", "tomita1"]
    for t in tasks:
        if t.name != "PATH.json":
            assert get_task_machine(t.example).n_states >= 2
