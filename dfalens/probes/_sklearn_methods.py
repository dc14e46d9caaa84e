"""The clustering methods delegated to scikit-learn and hdbscan (``agglomerative``, ``dbscan``,
``hdbscan``, ``kmeans``), and how their noise points become clusters (internal; see
:func:`dfalens.probes.cluster`)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from dfalens.errors import BudgetError, ConfigError
from dfalens.probes._components import components_at
from dfalens.probes._costs import check_cluster
from dfalens.probes._cover import Moments, _moments, leader_cover
from dfalens.probes._labels import canonical_labels


def _tiny(x: np.ndarray) -> float:
    return 1e-5 * max(_moments(x).scale, 1e-30)


def _identical_groups(x: np.ndarray) -> np.ndarray:
    """One group per distinct point (exactly equal rows share one), canonically numbered.

    Exact equality, not the ``1e-5 x scale`` rounding tolerance: exactly equal states of a network have
    exactly equal successors, so grouping them keeps a quotient as closed as singletons would.
    """
    return canonical_labels(np.unique(x, axis=0, return_inverse=True)[1].reshape(-1))


def _noise_to_singletons(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Give every noise point (label < 0) a cluster of its own, one per group of identical points, and
    put identical points where the first of them is (hdbscan may split exact copies between a cluster
    and noise)."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    noise = labels < 0
    if noise.any():
        labels[noise] = labels.max(initial=-1) + 1 + _identical_groups(x[noise])
    _, first, inverse = np.unique(x, axis=0, return_index=True, return_inverse=True)
    return canonical_labels(labels[first[inverse.reshape(-1)]])


def _agglomerative(x: np.ndarray, eps_abs: float, linkage: str) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    if linkage not in ("single", "average", "complete", "ward"):
        raise ConfigError(f"unknown linkage {linkage!r}; choose single, average, complete or ward")
    model = AgglomerativeClustering(
        n_clusters=None,
        distance_threshold=max(eps_abs, _tiny(x)),
        linkage=linkage,
        compute_full_tree=True,
    )
    return canonical_labels(model.fit_predict(x.astype(np.float64)))


def _neighbour_pairs(x: np.ndarray, radius: float, moments: Moments) -> float:
    """An upper bound on the (point, neighbour) pairs within ``radius``: every neighbourhood lies in
    its threshold component, so the sum of the squared component sizes (linear memory to compute);
    ``n^2`` when the states are too spread for a cover."""
    n, d = x.shape
    try:
        check_cluster("threshold", n, d)
        comp = components_at(x, leader_cover(x, radius / 2, moments=moments), radius)
    except BudgetError:
        return float(n) * n
    sizes = np.bincount(comp).astype(np.float64)
    return float((sizes * sizes).sum())


def _dbscan(x: np.ndarray, eps_abs: float, min_samples: int, moments: Moments) -> np.ndarray:
    if min_samples < 1:
        raise ConfigError(f"min_samples must be >= 1, got {min_samples}")
    radius = max(eps_abs, 1e-5 * max(moments.scale, 1e-30))  # as _tiny
    pairs = _neighbour_pairs(x, radius, moments)
    check_cluster("dbscan", x.shape[0], x.shape[1], neighbour_pairs=pairs)
    from sklearn.cluster import DBSCAN

    model = DBSCAN(eps=radius, min_samples=min_samples)
    return _noise_to_singletons(x, model.fit_predict(x.astype(np.float64)))


def _hdbscan(
    x: np.ndarray, eps_abs: float, min_cluster_size: int, min_samples: int | None
) -> np.ndarray:
    import hdbscan

    if min_cluster_size < 2:
        raise ConfigError(f"min_cluster_size must be >= 2, got {min_cluster_size}")
    n = x.shape[0]
    if n <= min_cluster_size:  # too few points for a cluster: all noise
        return _identical_groups(x)
    kwargs: dict[str, Any] = {
        "min_cluster_size": min_cluster_size,
        "cluster_selection_epsilon": float(eps_abs),
    }
    if min_samples is not None:
        kwargs["min_samples"] = min_samples
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = hdbscan.HDBSCAN(**kwargs).fit_predict(x.astype(np.float64))
    return _noise_to_singletons(x, labels)


def _kmeans(x: np.ndarray, n_clusters: int | None, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    if n_clusters is None:
        raise ConfigError(
            "kmeans needs n_clusters (or use extract(method='kmeans'), which sweeps a k-range)"
        )
    k = int(n_clusters)
    if k < 1:
        raise ConfigError(f"n_clusters must be >= 1, got {k}")
    n = x.shape[0]
    if k >= n:  # every point its own cluster, except that identical points stay together
        return _identical_groups(x)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # fewer distinct points than k: sklearn warns, labels are fine
        model = KMeans(n_clusters=k, n_init=3, random_state=seed)
        labels = model.fit_predict(x.astype(np.float64))
    return canonical_labels(labels)
