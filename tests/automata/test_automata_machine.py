"""Machine.encode / Machine.decode: words written with symbol names round-trip, whatever the names."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dfalens.automata import Machine, equivalent, run
from dfalens.errors import DataError, MachineError


def _machine(alphabet: tuple[str, ...]) -> Machine:
    k = len(alphabet)
    return Machine(np.zeros((1, k), dtype=int), [0], alphabet=alphabet)


_NAME = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")),
    min_size=1,
    max_size=4,
)
"""A symbol name with no whitespace (the names decode separates with spaces)."""


@given(
    alphabet=st.lists(_NAME, min_size=1, max_size=5, unique=True).map(tuple),
    data=st.data(),
)
def test_decode_then_encode_is_the_identity(alphabet: tuple[str, ...], data: st.DataObject) -> None:
    m = _machine(alphabet)
    word = tuple(data.draw(st.lists(st.integers(0, len(alphabet) - 1), max_size=12)))
    text = m.decode(word)
    assert m.encode(text) == word
    assert m.encode([alphabet[i] for i in word]) == word  # a sequence of names too
    assert m.decode(m.encode(text)) == text


@given(
    alphabet=st.lists(
        st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6, unique=True
    ),
    data=st.data(),
)
def test_single_character_names_are_written_without_separator(
    alphabet: list[str], data: st.DataObject
) -> None:
    """Even a space or a tab is a valid one-character symbol: no splitting at whitespace then."""
    m = _machine(tuple(alphabet))
    word = tuple(data.draw(st.lists(st.integers(0, len(alphabet) - 1), max_size=12)))
    text = m.decode(word)
    assert len(text) == len(word)
    assert m.encode(text) == word


def test_multi_character_names() -> None:
    m = _machine(("ab", "cd"))
    assert m.decode((0, 1, 1)) == "ab cd cd"
    assert m.encode("ab cd cd") == (0, 1, 1)
    assert m.encode("  ab\tcd  ") == (0, 1)  # any whitespace separates
    assert m.encode("") == () and m.decode(()) == ""
    assert m.encode(["cd", "ab"]) == (1, 0)
    with pytest.raises(MachineError, match="'abcd' is not in the alphabet"):
        m.encode("abcd")


def test_run_and_verdicts_read_multi_character_words() -> None:
    # one state per last symbol read: output 1 after "hi", 0 after "lo"
    m = Machine([[1, 2], [1, 2], [1, 2]], [0, 1, 0], alphabet=("hi", "lo"))
    assert run(m, ["hi", "hi lo", "lo lo hi", ""]).tolist() == [1, 0, 1, 0]
    with pytest.raises(DataError, match="not in the alphabet"):
        run(m, ["hi mid"])
    other = Machine([[1, 2], [1, 2], [1, 1]], [0, 1, 0], alphabet=("hi", "lo"))
    verdict = equivalent(m, other)
    assert not verdict.equal
    assert m.encode(verdict.word_str) == verdict.counterexample
