"""Clustering methods on constructed points: exactness against brute force, order, eps, budgets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist

from dfalens.errors import BudgetError, ConfigError, DataError
from dfalens.probes import _components, _cover, cluster, scale
from dfalens.probes import clustering as cl
from dfalens.probes.clustering import absolute_eps, canonical_labels


def brute_threshold(x: np.ndarray, eps: float) -> np.ndarray:
    _, comp = connected_components(cdist(x, x) <= eps, directed=False)
    return canonical_labels(comp)


def brute_leader(x: np.ndarray, eps: float, order: np.ndarray) -> np.ndarray:
    leaders: list[int] = []
    labels = np.empty(len(x), dtype=np.int64)
    for i in order:
        for g, lead in enumerate(leaders):
            if np.linalg.norm(x[i] - x[lead]) <= eps:
                labels[i] = g
                break
        else:
            labels[i] = len(leaders)
            leaders.append(int(i))
    return canonical_labels(labels)


def blobs(seed: int, n: int, d: int, centres: int, spread: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, d)) * 3
    return c[rng.integers(0, centres, n)] + rng.normal(size=(n, d)) * spread


same_partition = np.array_equal  # both sides are canonical labels


@settings(max_examples=60)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 120),
    d=st.integers(1, 12),
    centres=st.integers(1, 6),
    spread=st.sampled_from([0.0, 0.01, 0.3, 1.0]),
    eps=st.sampled_from([0.0, 0.05, 0.3, 0.8, 3.0]),
)
def test_threshold_and_leader_match_brute_force(
    seed: int, n: int, d: int, centres: int, spread: float, eps: float
) -> None:
    x = blobs(seed, n, d, centres, spread)
    dist = cdist(x, x)
    # distances within rounding of eps are decided by a documented tolerance (1e-5 x scale)
    assume(not np.any((np.abs(dist - eps) < 1e-4 * max(scale(x), 1e-9)) & (dist > 0)))
    got = cluster(x, "threshold", eps_abs=eps)
    assert same_partition(got, brute_threshold(x, eps))
    order = np.random.default_rng(seed).permutation(n)
    got = cluster(x, "leader", eps_abs=eps, order=order)
    assert same_partition(got, brute_leader(x, eps, order))


def test_threshold_is_order_independent_but_leader_is_not() -> None:
    x = np.array([[0.0], [0.6], [1.2]])
    assert cluster(x, "threshold", eps_abs=1.0).tolist() == [0, 0, 0]
    # leader in row order: 1.2 is 1.2 from the first member (0.0) -> its own group
    assert cluster(x, "leader", eps_abs=1.0).tolist() == [0, 0, 1]
    # visiting 0.6 first makes it the leader and both others join
    assert cluster(x, "leader", eps_abs=1.0, order=np.array([1, 0, 2])).tolist() == [
        0,
        0,
        0,
    ]
    perm = np.array([2, 0, 1])
    assert cluster(x[perm], "threshold", eps_abs=1.0).tolist() == [0, 0, 0]


def test_leader_joins_the_first_group_not_the_nearest() -> None:
    x = np.array([[0.0], [2.0], [1.1]])  # 1.1 is nearer to 2.0 but within eps of 0.0, created first
    assert cluster(x, "leader", eps_abs=1.5).tolist() == [0, 1, 0]


def test_many_distinct_points_and_exact_duplicates() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(700, 5))
    assert cluster(x, "leader", eps_abs=1e-6).max() == 699
    dup = np.repeat(x[:3], 50, axis=0)
    labels = cluster(dup, "threshold", eps_abs=0.0)
    assert labels.max() == 2 and np.array_equal(labels, np.repeat([0, 1, 2], 50))


def test_eps_is_relative_to_the_scale_by_default() -> None:
    x = blobs(3, 200, 8, 3, 0.05)
    base = cluster(x, "threshold", 0.05)
    assert same_partition(cluster(x * 1000.0, "threshold", 0.05), base)
    assert same_partition(cluster(x, "threshold", eps_abs=0.05 * scale(x)), base)
    assert absolute_eps(x, 0.05) == pytest.approx(0.05 * scale(x))
    # an explicit scale (pooled over checkpoints) replaces the states' own
    assert same_partition(cluster(x, "threshold", 1.0, scale=0.05 * scale(x)), base)
    assert cluster(x * 1000.0, "threshold", eps_abs=0.05).max() == 199


def test_internal_scale_matches_the_probes_helper() -> None:
    x = blobs(4, 300, 7, 4, 0.5).astype(np.float32)
    assert cl._moments(x).scale == pytest.approx(scale(x), rel=1e-9)


def test_labels_are_canonical_first_appearance() -> None:
    assert canonical_labels(np.array([7, 7, 3, 9, 3])).tolist() == [0, 0, 1, 2, 1]
    x = blobs(5, 100, 4, 4, 0.01)
    for method in ("leader", "threshold", "dbscan", "agglomerative"):
        lab = cluster(x, method, 0.05)
        assert lab[0] == 0
        first = [int(np.flatnonzero(lab == c)[0]) for c in range(lab.max() + 1)]
        assert first == sorted(first)


@pytest.mark.parametrize("eps", [0.02, 0.2, 0.6])
def test_single_linkage_agglomerative_and_dbscan_equal_threshold(eps: float) -> None:
    x = blobs(6, 250, 6, 5, 0.4)
    ref = cluster(x, "threshold", eps)
    # sklearn merges strictly below the threshold; generic points never sit exactly on it
    assert same_partition(cluster(x, "agglomerative", eps, linkage="single"), ref)
    assert same_partition(cluster(x, "dbscan", eps), ref)


def test_average_linkage_separates_blobs() -> None:
    x = np.vstack([np.zeros((20, 3)), np.full((20, 3), 5.0)])
    x += np.random.default_rng(0).normal(size=x.shape) * 0.01
    lab = cluster(x, "agglomerative", eps_abs=1.0, linkage="average")
    assert lab.tolist() == [0] * 20 + [1] * 20


def test_kmeans() -> None:
    x = np.vstack([np.zeros((30, 2)), np.full((30, 2), 4.0)])
    x += np.random.default_rng(0).normal(size=x.shape) * 0.1
    assert cluster(x, "kmeans", n_clusters=2).tolist() == [0] * 30 + [1] * 30
    assert cluster(x[:3], "kmeans", n_clusters=5).tolist() == [0, 1, 2]
    with pytest.raises(ConfigError, match="n_clusters"):
        cluster(x, "kmeans")
    with pytest.raises(ConfigError, match="n_clusters"):
        cluster(x, "kmeans", n_clusters=0)


def test_noise_points_become_singletons() -> None:
    rng = np.random.default_rng(2)
    core = np.vstack([rng.normal(size=(40, 2)) * 0.05, rng.normal(size=(40, 2)) * 0.05 + 5.0])
    outliers = np.array([[20.0, 20.0], [-20.0, 20.0], [20.0, -20.0]])
    x = np.vstack([core, outliers])
    lab = cluster(x, "hdbscan", min_cluster_size=10)
    assert len(set(lab[:40].tolist())) == 1 and len(set(lab[40:80].tolist())) == 1
    assert lab[0] != lab[40]
    assert len(set(lab[80:].tolist())) == 3 and not set(lab[80:]) & set(lab[:80])
    lab = cluster(x, "dbscan", eps_abs=0.5, min_samples=5)
    assert lab.max() == 4 and len(set(lab[80:].tolist())) == 3


def test_hdbscan_tiny_inputs() -> None:
    assert cluster(np.zeros((3, 2)), "hdbscan").tolist() == [0, 0, 0]
    assert cluster(np.arange(6.0).reshape(3, 2), "hdbscan").tolist() == [0, 1, 2]


def test_single_point_and_statesets() -> None:
    for method in ("leader", "threshold", "agglomerative", "dbscan", "hdbscan"):
        assert cluster(np.ones((1, 3)), method).tolist() == [0]


def test_bad_input_is_refused() -> None:
    x = np.zeros((4, 2))
    with pytest.raises(ConfigError, match="unknown clustering method"):
        cluster(x, "spectral")
    with pytest.raises(ConfigError, match="eps"):
        cluster(x, "threshold", -1.0)
    with pytest.raises(ConfigError, match="permutation"):
        cluster(x, "leader", order=np.array([0, 0, 1, 2]))
    with pytest.raises(ConfigError, match="linkage"):
        cluster(x, "agglomerative", linkage="ward-ish")
    with pytest.raises(DataError, match="NaN"):
        cluster(np.array([[0.0, np.nan], [1.0, 1.0]]), "threshold")
    with pytest.raises(DataError, match="2-D"):
        cluster(np.zeros(5), "threshold")


def test_budget_refuses_unmerged_states_with_the_way_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cover, "_COVER_BUDGET", 2_000.0)
    x = np.random.default_rng(0).normal(size=(200, 4))
    with pytest.raises(BudgetError, match="raise eps"):
        cluster(x, "threshold", eps_abs=1e-9)
    assert cluster(x, "threshold", eps_abs=100.0).max() == 0
    monkeypatch.setenv("DFALENS_MEMORY_BUDGET", "100K")
    with pytest.raises(BudgetError, match="threshold"):
        cluster(x, "agglomerative", linkage="average")


def test_threshold_groups_that_touch_only_through_members() -> None:
    # leaders far apart, but two members close: the member-by-member check must join them
    x = np.array([[0.0, 0.0], [0.45, 0.0], [1.4, 0.0], [0.95, 0.0]])
    assert cluster(x, "threshold", eps_abs=0.5).tolist() == [0, 0, 0, 0]
    assert cluster(x, "threshold", eps_abs=0.49).tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize(("big_pair", "brute"), [(1 << 20, 1 << 22), (0, 1 << 22), (0, 16)])
def test_threshold_ladder_matches_fresh_clusterings(
    monkeypatch: pytest.MonkeyPatch, big_pair: int, brute: int
) -> None:
    # big_pair=0 sends every band pair through the early-exit comparison; brute=16 makes that
    # comparison split the sets with finer covers, recursively
    monkeypatch.setattr(_components, "_BIG_PAIR", big_pair)
    monkeypatch.setattr(_components, "_BRUTE_PAIRS", brute)
    x = blobs(11, 300, 5, 6, 0.4)
    steps = [0.05, 0.1, 0.2, 0.4, 0.8, 1.6]
    cover = cl.leader_cover(x, steps[0] / 2)
    ladder = cl.ThresholdLadder(x, cover, max_eps=steps[-1])
    for eps in steps:
        got = canonical_labels(ladder.labels(eps))
        assert same_partition(got, brute_threshold(x, eps)), eps
    with pytest.raises(ConfigError, match="only goes up"):
        ladder.labels(0.1)
    with pytest.raises(ConfigError, match="eps/2"):
        cl.ThresholdLadder(x, cl.leader_cover(x, 1.0)).labels(0.5)


def test_large_sets_are_compared_by_recursive_covers(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)

    def disk(n: int, centre: float, r: float) -> np.ndarray:
        angle, rad = rng.random(n) * 2 * np.pi, np.sqrt(rng.random(n)) * r
        return np.c_[np.cos(angle) * rad + centre, np.sin(angle) * rad]

    x = np.vstack([disk(400, 0.0, 0.012), disk(400, 0.05, 0.012)])
    a, b = np.arange(400), np.arange(400, 800)
    gap = cdist(x[a], x[b]).min()
    calls = []
    inner = _components._sets_touch

    def counted(*args: Any) -> bool:
        calls.append(1)
        return inner(*args)

    monkeypatch.setattr(_components, "_BRUTE_PAIRS", 16)
    monkeypatch.setattr(_components, "_sets_touch", counted)
    mom = cl._moments(x)
    for eps in (gap * 0.999, gap * 1.001, gap * 0.5, gap * 2):
        calls.clear()
        assert _components._sets_touch(x, mom, a, b, eps, 0.0) == (gap <= eps)
        if gap * 0.99 < eps < gap * 1.01:
            assert len(calls) > 1  # the sets were split, not compared pair by pair
