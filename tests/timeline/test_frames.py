"""Frames of the report: which checkpoints are shown, which states merge, what the page gets."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dfalens.timeline.frames import merging_states, select_frames


def test_short_runs_show_every_checkpoint() -> None:
    rows, note = select_frames(np.arange(0, 300), (10, 20, None), limit=300)
    np.testing.assert_array_equal(rows, np.arange(300))
    assert note == "every checkpoint (300)"


def test_long_runs_are_dense_around_the_landmarks() -> None:
    epochs = np.arange(1001)
    rows, note = select_frames(epochs, (543, 536, 533), limit=300)
    assert rows.size <= 300 and np.all(np.diff(rows) > 0)
    assert rows[0] == 0 and rows[-1] == 1000  # the whole run is covered
    # every checkpoint near the landmarks is shown, far from them only every tenth or so
    assert set(range(520, 560)) <= set(rows.tolist())
    far = rows[(rows > 100) & (rows < 400)]
    assert 0 < far.size < 50
    assert "memorisation (epoch 543)" in note and "1001 checkpoints" in note
    none, note2 = select_frames(epochs, (None, None, None), limit=50)
    assert none.size == 50 and "evenly" in note2 and "within" not in note2


@given(
    c=st.integers(2, 2000),
    limit=st.integers(2, 400),
    marks=st.lists(st.one_of(st.none(), st.integers(0, 3000)), min_size=3, max_size=3),
)
def test_selection_never_exceeds_the_limit(c: int, limit: int, marks: list[int | None]) -> None:
    epochs = np.arange(c) * 3
    rows, _ = select_frames(epochs, marks, limit=limit)
    assert 0 < rows.size <= max(limit, 2) and rows.min() >= 0 and rows.max() < c
    assert np.all(np.diff(rows) > 0)


def test_merging_states() -> None:
    before = np.array([0, 1, 2, 3, 4, 4])
    after = np.array([0, 1, 1, 2, 2, 3])  # 1 and 2 merge; 3 and 4 merge; 4 also splits
    np.testing.assert_array_equal(merging_states(before, after), [1, 2, 3, 4])
    np.testing.assert_array_equal(merging_states(before, before), [])
