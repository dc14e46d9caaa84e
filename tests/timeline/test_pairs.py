"""Pair statistics on synthetic hidden states with known geometry."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dfalens.automata import parity
from dfalens.errors import DataError, TaskError
from dfalens.timeline.pairs import (
    _unrank,
    diverged_fraction,
    far_counts,
    make_pairs,
    mean_distance,
    merged_fraction,
    pair_distances,
    random_pairs,
    task_states,
    trajectories,
)


def tree(max_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Binary prefix tree in breadth-first order: parent, symbol, depth, parity of each word."""
    parent, symbol, depth, par = [-1], [-1], [0], [0]
    start = 0
    for d in range(1, max_len + 1):
        n_prev = 2 ** (d - 1)
        for p in range(start, start + n_prev):
            for s in (0, 1):
                parent.append(p)
                symbol.append(s)
                depth.append(d)
                par.append(par[p] ^ s)
        start += n_prev
    return (np.array(parent), np.array(symbol), np.array(depth), np.array(par))


def test_task_states_is_parity() -> None:
    parent, symbol, depth, par = tree(5)
    st_ = task_states(parent, symbol, depth, parity())
    assert np.array_equal(st_ == st_[0], par == 0)
    with pytest.raises(TaskError):
        task_states(parent, symbol + 1, depth, parity())


@given(st.integers(0, 10**7))
def test_unrank_inverts_the_pair_numbering(k: int) -> None:
    i, j = _unrank(np.array([k]))
    assert 0 <= i[0] < j[0] and j[0] * (j[0] - 1) // 2 + i[0] == k


def test_random_pairs_distinct_and_all() -> None:
    i, j = random_pairs(np.arange(1, 31), 100, seed=3)
    assert np.all(i < j) and i.min() >= 1
    assert len(set(zip(i.tolist(), j.tolist(), strict=True))) == 100
    i, j = random_pairs(np.arange(5), 1000)
    assert i.size == 10
    assert np.array_equal(
        random_pairs(np.arange(50), 20, seed=1)[0], random_pairs(np.arange(50), 20, seed=1)[0]
    )


def test_distances_and_counts() -> None:
    parent, symbol, depth, par = tree(3)
    n = depth.size
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(4, n, 3))
    pairs = make_pairs(parent, symbol, depth, parity(), n_pairs=None)
    assert len(pairs) == (n - 1) * (n - 2) // 2
    assert np.array_equal(pairs.agree, par[pairs.i] == par[pairs.j])
    d = pair_distances(hidden, pairs.i, pairs.j)
    ref = np.linalg.norm(hidden[:, pairs.i] - hidden[:, pairs.j], axis=2).T
    np.testing.assert_allclose(d, ref)
    traj = trajectories(hidden, pairs, eps_abs=1.0, epochs=np.array([0, 5, 10, 20]))
    np.testing.assert_allclose(mean_distance(traj), ref.mean(axis=0))
    far = far_counts(traj)
    assert np.array_equal(far["total"], (ref >= 1.0).sum(axis=0))
    assert np.array_equal(far["agreeing"] + far["disagreeing"], far["total"])
    assert traj.merged.shape == (len(pairs), 4)
    with pytest.raises(DataError):
        trajectories(hidden, pairs, eps_abs=1.0, epochs=np.arange(3))


def test_merged_fraction_on_a_collapsed_parity_geometry() -> None:
    # words of length >= 3 sit exactly on one of two points by parity; shorter words are spread out
    parent, symbol, depth, par = tree(5)
    n = depth.size
    rng = np.random.default_rng(1)
    h = rng.normal(size=(n, 4)) * 10
    long = depth >= 3
    h[long] = (
        np.where(par[long, None] == 1, 5.0, -5.0) + rng.normal(size=(int(long.sum()), 4)) * 1e-4
    )
    frac, n_agree, n_disagree = merged_fraction(h, parent, symbol, depth, parity(), eps_abs=0.01)
    assert n_disagree == 0
    f = frac.fraction
    assert frac.lengths.tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(f[2:, 2:], 1.0)
    assert np.isnan(f[0, 0])  # "0" and "1" disagree: no agreeing pair of length 1
    np.testing.assert_allclose(f[:2, 1:], 0.0)
    np.testing.assert_allclose(f, f.T, equal_nan=True)
    # denominators: agreeing pairs, self-pairs excluded on the diagonal
    counts = {d: (int((depth == d).sum()) // 2) for d in range(1, 6)}
    assert frac.denominator[4, 4] == 2 * counts[5] * (counts[5] - 1) // 2
    assert frac.denominator[2, 4] == 2 * counts[3] * counts[5]
    n_long = [int(((depth >= 3) & (par == p)).sum()) for p in (0, 1)]
    assert n_agree == sum(k * (k - 1) // 2 for k in n_long)


def test_diverged_fraction_finds_pairs_that_once_separated() -> None:
    parent, symbol, depth, par = tree(3)
    n = depth.size
    final = np.zeros((n, 2))
    final[:, 0] = par  # two points: all agreeing pairs merged at the end
    early = final.copy()
    early[depth == 3, 1] = 100.0  # length-3 words were once far from everything shorter
    hidden = np.stack([final, early, final])
    frac = diverged_fraction(hidden, depth, eps_abs=0.5, factor=10.0)
    f = frac.fraction
    assert np.isnan(f[0, 0])  # "0" and "1" never merge
    assert f[1, 1] == 0 and f[2, 2] == 0  # same-length pairs moved together
    assert f[0, 2] == 1 and f[2, 0] == 1 and f[1, 2] == 1
    sub = diverged_fraction(hidden, depth, eps_abs=0.5, max_pairs=5)
    assert sub.denominator.sum() <= 2 * 5


def test_old_pair_keywords_are_deprecated_aliases() -> None:
    parent, symbol, depth, _ = tree(3)
    hidden = np.random.default_rng(1).normal(size=(3, depth.size, 2))
    new = make_pairs(parent, symbol, depth, parity(), n_pairs=None, include_empty=True)
    assert 0 in new.i  # the empty word (node 0) takes part
    assert 0 not in make_pairs(parent, symbol, depth, parity(), n_pairs=None).i
    with pytest.warns(DeprecationWarning, match="include_empty"):
        old = make_pairs(parent, symbol, depth, parity(), n_pairs=None, include_root=True)
    assert np.array_equal(old.i, new.i) and np.array_equal(old.j, new.j)
    traj = trajectories(hidden, new, eps_abs=0.7)
    with pytest.warns(DeprecationWarning, match="eps_abs"):
        old_traj = trajectories(hidden, new, eps=0.7)
    assert np.array_equal(old_traj.merged, traj.merged)
    with pytest.warns(DeprecationWarning, match="eps_abs"):
        assert np.array_equal(traj.eps, traj.eps_abs)
    with pytest.warns(DeprecationWarning):
        old_div = diverged_fraction(hidden, depth, eps=0.7, factor=2.0)
    new_div = diverged_fraction(hidden, depth, eps_abs=0.7, factor=2.0)
    assert np.array_equal(old_div.numerator, new_div.numerator)
