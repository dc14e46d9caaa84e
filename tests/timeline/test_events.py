"""Merge/split accounting between two partitions of the same words."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dfalens.errors import DataError
from dfalens.timeline.events import (
    compare_partitions,
    diff_partitions,
    partition_events,
    state_names,
)

WORDS = ["ε", "0", "1", "00", "01", "10", "11"]


def test_pure_merge_counts_and_names() -> None:
    old = np.array([0, 1, 2, 3, 4, 5, 6])
    new = np.array([0, 1, 2, 3, 1, 5, 6])  # "01" joins "0"
    ch = compare_partitions(old, new)
    assert (ch.merges, ch.splits, ch.merged_away, ch.split_created) == (1, 0, 1, 0)
    assert (ch.n_old, ch.n_new, ch.unchanged, ch.removed, ch.added) == (7, 6, 5, 2, 1)
    (ev,) = partition_events(old, new, WORDS, epoch=4)
    assert ev.kind == "merge" and ev.epoch == 4 and ev.size == 2
    assert ev.state == "0,01" and ev.parts == ("0", "01")


def test_pure_split_and_three_way_merge() -> None:
    old = np.array([0, 0, 0, 1, 1, 1, 1])
    new = np.array([5, 5, 7, 9, 9, 9, 9])  # labels are arbitrary
    ch = compare_partitions(old, new)
    assert (ch.merges, ch.splits, ch.merged_away, ch.split_created) == (0, 1, 0, 1)
    ev = partition_events(old, new, WORDS, epoch=1)
    assert [e.kind for e in ev] == ["split"]
    assert ev[0].state == "ε,0,1" and ev[0].parts == ("ε,0", "1")
    ch = compare_partitions(np.arange(7), np.array([0, 0, 0, 1, 2, 3, 4]))
    assert (ch.merges, ch.merged_away) == (1, 2)


def test_regrouping_counts_both_ways() -> None:
    old = np.array([0, 0, 1, 1])
    new = np.array([0, 1, 1, 2])  # the middle new state takes parts of both old ones
    ch = compare_partitions(old, new)
    assert ch.merges == 1 and ch.splits == 2
    assert ch.n_new == ch.n_old - ch.merged_away + ch.split_created


def test_names_abbreviate_long_states() -> None:
    labels = np.array([0, 1, 1, 1, 1, 0, 0])
    names = state_names(labels, WORDS, max_words=2)
    assert names == ["ε,10,…(3 words)", "0,1,…(4 words)"]
    assert state_names(labels, WORDS, states=np.array([1])) == ["0,1,00,…(4 words)"]


def test_bad_partitions() -> None:
    with pytest.raises(DataError):
        compare_partitions(np.zeros(3, int), np.zeros(4, int))
    with pytest.raises(DataError):
        compare_partitions(np.array([0, -1]), np.array([0, 0]))


@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=40),
)
def test_accounting_is_exact(pairs: list[tuple[int, int]]) -> None:
    old = np.array([p[0] for p in pairs])
    new = np.array([p[1] for p in pairs])
    ch = compare_partitions(old, new)
    assert ch.n_old == np.unique(old).size and ch.n_new == np.unique(new).size
    assert ch.n_new == ch.n_old - ch.merged_away + ch.split_created
    assert ch.merges <= ch.merged_away and ch.splits <= ch.split_created
    assert (ch.merges == 0) == (ch.merged_away == 0)
    assert ch.removed == ch.n_old - ch.unchanged and ch.added == ch.n_new - ch.unchanged
    events = partition_events(old, new, [str(k) for k in range(len(pairs))], epoch=0)
    assert diff_partitions(old, new, [str(k) for k in range(len(pairs))], 0) == (ch, events)
    assert diff_partitions(old, new) == (ch, [])
    assert sum(e.kind == "merge" for e in events) == ch.merges
    assert sum(e.kind == "split" for e in events) == ch.splits
    assert sum(len(e.parts) - 1 for e in events if e.kind == "merge") == ch.merged_away
    # identical partitions have no events; reversing swaps merges and splits
    assert compare_partitions(old, old).unchanged == ch.n_old
    back = compare_partitions(new, old)
    assert (back.merges, back.splits) == (ch.splits, ch.merges)


def test_pure_binary_changes_match_the_paper_formula() -> None:
    # the paper's code infers mergers = (2 removed - added) / 3 and splits = (2 added - removed) / 3,
    # exact when every change is a binary merge or a binary split
    old = np.array([0, 1, 2, 3, 4, 4, 5])
    new = np.array([0, 0, 1, 2, 3, 4, 5])  # states 0,1 merge; state 4 splits
    ch = compare_partitions(old, new)
    assert ch.merges == (2 * ch.removed - ch.added) / 3 == 1
    assert ch.splits == (2 * ch.added - ch.removed) / 3 == 1
