"""``include_empty`` is the one name for the empty word; ``ignore_empty`` is its deprecated opposite."""

from __future__ import annotations

import pytest

from dfalens.automata import Machine, consistent, equivalent
from dfalens.errors import ConfigError

# output 0 on the empty word and 1 after any input, versus 1 everywhere: they differ only on ε
A = Machine([[1, 1], [1, 1]], [0, 1])
B = Machine([[0, 0]], [1])


def test_include_empty_decides_whether_the_empty_word_counts() -> None:
    assert not equivalent(A, B).equal and equivalent(A, B).counterexample == ()
    assert not equivalent(A, B, include_empty=True).equal
    assert equivalent(A, B, include_empty=False).equal
    assert consistent(A, B, include_empty=False).equal and not consistent(A, B).equal


def test_ignore_empty_is_a_deprecated_alias() -> None:
    with pytest.warns(DeprecationWarning, match="include_empty"):
        assert equivalent(A, B, ignore_empty=True).equal
    with pytest.warns(DeprecationWarning):
        assert not equivalent(A, B, ignore_empty=False).equal
    with pytest.warns(DeprecationWarning):  # the old positional third argument
        assert equivalent(A, B, True).equal
    with pytest.warns(DeprecationWarning):
        assert consistent(A, B, None, True).equal
    with pytest.warns(DeprecationWarning):
        assert consistent(A, B, ignore_empty=True) == consistent(A, B, include_empty=False)
    with pytest.raises(ConfigError, match="include_empty"):
        equivalent(A, B, include_empty=True, ignore_empty=True)
