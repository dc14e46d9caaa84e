"""One conformance suite for every clustering method of :func:`dfalens.probes.cluster`.

Whatever the method, the contract is the same: NaN/inf states are refused with one message, one state is
one cluster, identical states share a cluster, the same input gives the same labels, labels are numbered
0, 1, 2, ... in order of first appearance, and they come back as an int64 array of shape ``(n,)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dfalens.errors import DataError
from dfalens.probes import StateSet, cluster
from dfalens.probes.clustering import METHODS

OPTIONS: dict[str, dict[str, Any]] = {
    "leader": {},
    "threshold": {},
    "agglomerative": {},
    "kmeans": {"n_clusters": 3},
    "hdbscan": {"min_cluster_size": 2},
    "dbscan": {},
}
"""The options each method needs (kmeans needs k; hdbscan's default cluster size of 5 hides small
data sets)."""


def test_the_suite_covers_every_method() -> None:
    assert set(OPTIONS) == set(METHODS)


def _blobs(seed: int = 0, n: int = 60) -> np.ndarray:
    """Three well-separated tight groups in 4-D, in shuffled order."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0, 0, 0], [5, 5, 0, 0], [0, 5, 5, 5]])
    which = rng.integers(0, 3, size=n)
    return centres[which] + rng.normal(scale=1e-3, size=(n, 4))


def _cluster(x: np.ndarray | StateSet, method: str, **kw: Any) -> np.ndarray:
    return cluster(x, method, **{**OPTIONS[method], **kw})


@pytest.fixture(params=METHODS)
def method(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_states_are_refused_with_one_message(method: str, bad: float) -> None:
    x = _blobs()
    x[7, 2] = bad
    with pytest.raises(DataError) as info:
        _cluster(x, method)
    assert str(info.value) == (
        "hidden states contain NaN or inf (1 of 60 states, first at row 7); the network diverged: "
        "use an earlier checkpoint"
    )


def test_one_state_is_one_cluster(method: str) -> None:
    for x in (np.zeros((1, 3)), np.array([[0.3, -2.0]])):
        labels = _cluster(x, method, **({"n_clusters": 1} if method == "kmeans" else {}))
        assert labels.dtype == np.int64 and labels.shape == (1,)
        assert labels.tolist() == [0]


@pytest.mark.parametrize("n", [2, 3, 7, 40])
def test_identical_states_share_a_cluster(method: str, n: int) -> None:
    x = np.tile(np.array([[0.25, -1.0, 3.0]]), (n, 1))
    assert _cluster(x, method).tolist() == [0] * n


def test_duplicated_points_share_their_cluster(method: str) -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(4, 3)) * 10  # four far-apart points ...
    idx = np.array([0, 1, 0, 2, 3, 3, 1, 2, 0])  # ... each given two or three times
    labels = _cluster(base[idx], method)
    for i in range(4):
        assert len(set(labels[idx == i].tolist())) == 1, (method, labels, idx)


@pytest.mark.parametrize("size", [2, 3, 5])
def test_few_points_with_duplicates(method: str, size: int) -> None:
    """Data sets smaller than a method's minimum cluster size still keep identical points together."""
    x = np.array([[0.0, 0.0], [9.0, 1.0], [0.0, 0.0], [9.0, 1.0], [4.0, 4.0]])[:size]
    labels = _cluster(x, method, **({"n_clusters": size} if method == "kmeans" else {}))
    assert labels[0] != labels[1]
    if size > 2:
        assert labels[0] == labels[2]
    if size > 3:
        assert labels[1] == labels[3]


def test_deterministic(method: str) -> None:
    x = _blobs(2)
    a, b = _cluster(x, method), _cluster(x.copy(), method)
    np.testing.assert_array_equal(a, b)


def test_separated_groups_are_found(method: str) -> None:
    x = _blobs(3)
    labels = _cluster(x, method)
    truth = np.unique(np.round(x[:, :3]), axis=0, return_inverse=True)[1].reshape(-1)
    # the same partition as the truth (up to renaming)
    pairs = set(zip(labels.tolist(), truth.tolist(), strict=True))
    assert len(pairs) == len(set(labels.tolist())) == len(set(truth.tolist())) == 3


def _is_canonical(labels: np.ndarray) -> bool:
    seen: list[int] = []
    for v in labels.tolist():
        if v not in seen:
            seen.append(v)
    return seen == list(range(len(seen)))


@pytest.mark.parametrize("method_name", METHODS)
@settings(max_examples=60)
@given(
    x=arrays(
        np.float64,
        st.tuples(st.integers(1, 25), st.integers(1, 3)),
        elements=st.sampled_from([0.0, 1.0, -2.0, 7.5, 100.0]),
    )
)
def test_labels_are_canonical_int64(method_name: str, x: np.ndarray) -> None:
    method = method_name
    k = {"n_clusters": min(3, x.shape[0])} if method == "kmeans" else {}
    labels = _cluster(x, method, **k)
    assert labels.dtype == np.int64 and labels.shape == (x.shape[0],)
    assert labels[0] == 0
    assert _is_canonical(labels), labels
    # identical rows always share a cluster
    inv = np.unique(x, axis=0, return_inverse=True)[1].reshape(-1)
    for g in np.unique(inv):
        assert len(set(labels[inv == g].tolist())) == 1, (x, labels)


def test_state_sets_are_clustered_like_their_arrays(method: str) -> None:
    x = _blobs(4, n=15)
    n = x.shape[0]
    states = StateSet(
        x,
        parent=np.r_[-1, np.zeros(n - 1, dtype=np.int64)],
        symbol=np.r_[-1, np.zeros(n - 1, dtype=np.int64)],
        depth=np.r_[0, np.ones(n - 1, dtype=np.int64)],
        output=np.zeros((n, 2)),
    )
    np.testing.assert_array_equal(_cluster(states, method), _cluster(x, method))


def test_input_is_not_modified(method: str) -> None:
    x = _blobs(5)
    before = x.copy()
    _cluster(x, method)
    np.testing.assert_array_equal(x, before)
