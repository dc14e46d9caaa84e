"""The majority-vote quotient on hand-built prefix trees."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dfalens.automata import UNDEFINED, equivalent, minimize, parity
from dfalens.errors import DataError
from dfalens.probes import StateSet, quotient


def tree(max_len: int, k: int = 2) -> list[tuple[int, ...]]:
    """All words up to max_len, breadth-first, lexicographic within a length."""
    words: list[tuple[int, ...]] = [()]
    for length in range(1, max_len + 1):
        words += list(itertools.product(range(k), repeat=length))
    return words


def stateset(words: list[tuple[int, ...]], classes: list[int], alphabet: str = "01") -> StateSet:
    index = {w: i for i, w in enumerate(words)}
    parent = [-1] + [index[w[:-1]] for w in words[1:]]
    symbol = [-1] + [w[-1] for w in words[1:]]
    depth = [len(w) for w in words]
    n_cls = max(classes) + 1
    output = np.eye(max(n_cls, 2))[classes]
    hidden = np.arange(len(words), dtype=np.float32)[:, None]
    return StateSet(
        hidden, np.array(parent), np.array(symbol), np.array(depth), output, tuple(alphabet)
    )


def test_parity_labels_give_the_parity_machine() -> None:
    words = tree(3)
    par = [sum(w) % 2 for w in words]
    m, stats = quotient(stateset(words, par), np.array(par))
    assert m.delta.tolist() == [[0, 1], [1, 0]] and m.output.tolist() == [0, 1]
    assert m.start == 0 and stats.closed and stats.undefined == 0
    assert stats.transition_conflicts == 0 and stats.output_conflicts == 0
    assert stats.n_edges == 14 and stats.n_voters == 14 and stats.sizes.tolist() == [8, 7]
    assert equivalent(minimize(m), parity()).equal
    assert m.state_names == ("ε,0,00,…(+5)", "1,01,10,…(+4)")


def test_states_are_renumbered_so_the_root_is_the_start() -> None:
    words = tree(2)
    labels = np.array([5, 5, 9, 5, 9, 9, 5])  # parity, with arbitrary ids
    m, _ = quotient(stateset(words, [sum(w) % 2 for w in words]), labels)
    assert m.start == 0 and m.delta.tolist() == [[0, 1], [1, 0]]


def test_majority_vote_and_conflict_counts() -> None:
    # words: ε 0 1 00 01 10 11; "01" shares the root's cluster, its parent "0" is elsewhere
    words = tree(2)
    labels = np.array([0, 1, 2, 1, 0, 2, 1])
    #            ε  0  1 00 01 10 11
    classes = [0, 0, 1, 0, 1, 1, 0]
    m, stats = quotient(stateset(words, classes), labels)
    # state 1 = {0, 00, 11}: edges 0-0->00 (1), 0-1->01 (0)
    # state 2 = {1, 10}: edges 1-0->10 (2), 1-1->11 (1)
    # state 0 = {ε, 01}: ε-0->0 (1), ε-1->1 (2); 01 has no children in the tree
    assert m.delta.tolist() == [[1, 2], [1, 0], [2, 1]]
    assert stats.transition_conflicts == 0
    # outputs: state 0 voters {01}: class 1; state 1 {0, 00, 11}: 0,0,0; state 2 {1, 10}: 1,1
    assert m.output.tolist() == [1, 0, 1] and stats.output_conflicts == 0
    # state 1 = {0, 1}: on 0 -> {00: 2, 10: 2}, on 1 -> {01: 3, 11: 2}
    labels = np.array([0, 1, 1, 2, 3, 2, 2])
    m, stats = quotient(stateset(words, classes), labels)
    # symbol 1 has one vote for 3 and one for 2: a tie goes to the smaller state
    assert m.delta[1].tolist() == [2, 2]
    assert stats.transition_conflicts == 1
    # outputs: state 1 = {0: 0, 1: 1} is a tie -> class 0 (one conflict); state 2 = {00: 0, 10: 1,
    # 11: 0} -> class 0 (one conflict)
    assert m.output.tolist() == [0, 0, 0, 1] and stats.output_conflicts == 2


def test_clear_majority_wins_over_minority() -> None:
    words = tree(3)
    par = np.array([sum(w) % 2 for w in words])
    labels = par.copy()
    labels[words.index((1, 1, 1))] = 2  # one odd word in its own cluster: one conflicting edge
    classes = par.tolist()
    classes[words.index((1, 0))] = 0  # and one wrong network output among the even words... of odd
    m, stats = quotient(stateset(words, classes), labels)
    assert m.delta[0].tolist() == [0, 1] and m.delta[1].tolist() == [1, 0]
    assert stats.transition_conflicts == 1 and stats.output_conflicts == 1
    assert m.output[:2].tolist() == [0, 1]
    assert m.delta[2].tolist() == [UNDEFINED, UNDEFINED]  # a leaf cluster: no transitions
    # cluster 2 is unreachable by majority transitions, so the machine is still closed
    assert stats.closed and stats.undefined == 0


def test_undefined_transitions_stay_undefined_and_open_flag() -> None:
    words = tree(2)
    labels = np.arange(len(words))  # the prefix tree itself: leaves have no children
    m, stats = quotient(stateset(words, [0] * len(words)), labels)
    assert (m.delta[3:] == UNDEFINED).all() and not stats.closed
    assert stats.undefined == 8  # 4 reachable leaves x 2 symbols
    assert not m.is_complete


def test_empty_word_does_not_vote_unless_asked() -> None:
    words = tree(1)  # ε, 0, 1
    classes = [1, 0, 0]
    labels = np.array([0, 0, 1])  # ε and "0" together
    m, stats = quotient(stateset(words, classes), labels)
    assert m.output[0] == 0 and stats.n_voters == 2 and stats.output_conflicts == 0
    m, stats = quotient(stateset(words, classes), labels, include_empty=True)
    assert stats.n_voters == 3 and stats.output_conflicts == 1  # tie 1-1 -> class 0
    # a state holding only the root gets output 0 without a vote
    m, _ = quotient(stateset(words, [1, 1, 1]), np.array([0, 1, 1]))
    assert m.output.tolist() == [0, 1]
    m, _ = quotient(stateset(words, [1, 1, 1]), np.array([0, 1, 1]), include_empty=True)
    assert m.output.tolist() == [1, 1]


def test_names_with_multi_letter_symbols_and_without_names() -> None:
    words = tree(1, k=2)
    ss = stateset(words, [0, 1, 0], alphabet=("ab", "cd"))
    m, _ = quotient(ss, np.array([0, 1, 2]))
    assert m.state_names == ("ε", "ab", "cd")
    m, _ = quotient(ss, np.array([0, 1, 2]), names=False)
    assert m.state_names is None


def test_labels_must_match_the_tree() -> None:
    words = tree(1)
    with pytest.raises(DataError, match="labels"):
        quotient(stateset(words, [0, 0, 0]), np.array([0, 1]))


def test_multiclass_outputs_and_alphabet() -> None:
    words = tree(2, k=3)
    classes = [sum(w) % 3 for w in words]
    m, stats = quotient(stateset(words, classes, alphabet="abc"), np.array(classes))
    assert m.alphabet == ("a", "b", "c") and stats.closed
    assert m.output.tolist() == [0, 1, 2]
    assert m.delta.tolist() == [[0, 1, 2], [1, 2, 0], [2, 0, 1]]
