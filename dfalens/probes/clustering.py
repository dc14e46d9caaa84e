"""Clustering hidden states: which states of a network count as the same automaton state.

One function, :func:`cluster`, puts six methods behind one interface. The two distance-threshold
methods (``leader``, the paper's greedy grouping, and ``threshold``, its order-independent version)
share a vectorised *leader cover*: points are visited in chunks, each chunk is compared with all
current leaders in one matrix product, and only the points that no leader covers are grouped among
themselves. A network whose states have merged has few leaders, so the cost is about ``n x n_leaders
x d``; no pairwise ``n x n`` matrix is ever built for the threshold methods.

Distances are Euclidean. ``eps`` is relative: the absolute radius is ``eps x scale`` where ``scale`` is
the norm of the per-unit standard deviation of the states (:func:`dfalens.probes.scale`, the paper's
"representational standard deviation"); an absolute radius is given as ``eps_abs`` instead. Two states closer
than about ``1e-5 x scale`` are treated as identical whatever ``eps`` (floating-point rounding).

The cover and moments live in :mod:`dfalens.probes._cover`, the exact threshold components in
:mod:`dfalens.probes._components`, the scikit-learn and hdbscan wrappers in
:mod:`dfalens.probes._sklearn_methods`; the names other modules use are re-exported here.
"""

from __future__ import annotations

import numpy as np

from dfalens._args import check_number
from dfalens.errors import ConfigError, DataError
from dfalens.probes._components import ThresholdLadder as ThresholdLadder
from dfalens.probes._components import components_at as components_at
from dfalens.probes._components import leader_pairs as leader_pairs
from dfalens.probes._costs import check_cluster
from dfalens.probes._cover import Cover as Cover
from dfalens.probes._cover import Moments as Moments
from dfalens.probes._cover import _moments as _moments
from dfalens.probes._cover import leader_cover as leader_cover
from dfalens.probes._eps import accepts_relative, pick_eps
from dfalens.probes._labels import canonical_labels as canonical_labels
from dfalens.probes._sklearn_methods import _agglomerative, _dbscan, _hdbscan, _kmeans
from dfalens.probes._sklearn_methods import _neighbour_pairs as _neighbour_pairs
from dfalens.probes._sklearn_methods import _tiny as _tiny
from dfalens.probes.stateset import StateSet

__all__ = ["METHODS", "DEFAULT_EPS", "cluster", "absolute_eps", "canonical_labels"]

METHODS = ("leader", "threshold", "agglomerative", "kmeans", "hdbscan", "dbscan")
"""The clustering methods :func:`cluster` accepts."""

DEFAULT_EPS = {
    "leader": 0.01,
    "threshold": 0.01,
    "agglomerative": 0.01,
    "dbscan": 0.01,
    "hdbscan": 0.0,
}
"""Relative ``eps`` used when none is given (0.01 is the paper's merger cutoff; for ``hdbscan`` eps
is its ``cluster_selection_epsilon``)."""


# -- small helpers ---------------------------------------------------------------------------------
def _as_array(hidden: np.ndarray | StateSet) -> np.ndarray:
    x = hidden.hidden if isinstance(hidden, StateSet) else np.asarray(hidden)
    if x.ndim != 2:
        raise DataError(f"hidden states must be a 2-D array (n, d), got shape {x.shape}")
    if x.shape[0] == 0:
        raise DataError("there are no hidden states to cluster")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if not isinstance(hidden, StateSet):  # a StateSet checked its states when it was made
        finite = np.isfinite(x).all(axis=1)
        if not finite.all():
            raise DataError(
                f"hidden states contain NaN or inf ({int((~finite).sum())} of {x.shape[0]} states, "
                f"first at row {int(np.argmin(finite))}); the network diverged: use an earlier checkpoint"
            )
    return x


def _eps_abs(eps: float, relative: bool, scale: float) -> float:
    check_number("eps", eps)
    eps = float(eps)
    if not np.isfinite(eps) or eps < 0:
        raise ConfigError(f"eps must be a finite number >= 0, got {eps}")
    if not relative:
        return eps
    scale = float(scale)
    if not np.isfinite(scale) or scale < 0:
        raise ConfigError(f"scale must be a finite number >= 0, got {scale}")
    return eps * scale


@accepts_relative
def absolute_eps(
    hidden: np.ndarray | StateSet,
    eps: float | None = None,
    *,
    eps_abs: float | None = None,
    scale: float | None = None,
) -> float:
    """The absolute radius: ``eps x scale`` for a relative ``eps``, or ``eps_abs`` itself.

    ``scale`` defaults to :func:`dfalens.probes.scale` of ``hidden``; pass it to pool one scale over
    several checkpoints. Give one of ``eps`` and ``eps_abs``.
    """
    eps, relative = pick_eps(eps, eps_abs)
    if eps is None:
        raise ConfigError("absolute_eps needs eps (relative) or eps_abs (absolute)")
    if relative and scale is None:
        scale = _moments(_as_array(hidden)).scale
    return _eps_abs(eps, relative, 1.0 if scale is None else scale)


# -- the public function ---------------------------------------------------------------------------
@accepts_relative
def cluster(
    hidden: np.ndarray | StateSet,
    method: str = "threshold",
    eps: float | None = None,
    *,
    eps_abs: float | None = None,
    scale: float | None = None,
    order: np.ndarray | None = None,
    n_clusters: int | None = None,
    linkage: str = "single",
    min_samples: int | None = None,
    min_cluster_size: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Group hidden states into clusters (candidate automaton states).

    Parameters
    ----------
    hidden : ndarray of float, shape (n, d), or StateSet
        The states; a :class:`StateSet` is read through its ``hidden`` array.
    method : {"leader", "threshold", "agglomerative", "kmeans", "hdbscan", "dbscan"}
        - ``leader``: the paper's greedy grouping. Points are visited in ``order`` (default: the
          given row order, which for a StateSet is breadth-first: shorter words first, words of one
          length in lexicographic order of symbol indices; the paper's code instead sorts its label
          strings, for that pass ``order``). Each point joins the first group whose *first member*
          is within ``eps``, otherwise it starts a group. Depends on the visiting order.
        - ``threshold``: connected components of the graph linking states within ``eps``;
          independent of order (single-linkage clustering cut at ``eps``). Exact, computed from a
          leader cover of radius ``eps/2`` without an ``n x n`` matrix.
        - ``agglomerative``: scikit-learn ``AgglomerativeClustering`` with ``linkage`` ("single",
          "average", "complete") and ``distance_threshold=eps`` (clusters merge while their linkage
          distance is below eps). O(n^2) time; "average" and "complete" also O(n^2) memory.
        - ``kmeans``: scikit-learn ``KMeans`` with ``n_clusters`` (required; ``extract`` sweeps a
          k-range and keeps the smallest k whose quotient is consistent).
        - ``hdbscan``: the scikit-learn-contrib ``hdbscan`` package, ``min_cluster_size``,
          ``min_samples`` and ``cluster_selection_epsilon=eps``; noise points become singleton
          clusters (identical noise points share one).
        - ``dbscan``: scikit-learn ``DBSCAN`` with ``eps`` and ``min_samples`` (default 1, which
          makes it the threshold method); noise points become singleton clusters.
    eps : float, optional
        The merge distance relative to :func:`dfalens.probes.scale`. Default :data:`DEFAULT_EPS`
        (0.01, the paper's cutoff; 0 for hdbscan). Distances equal to eps merge.
    eps_abs : float, optional
        The merge distance as an absolute Euclidean distance, instead of ``eps`` (give at most one).
        The ``relative=False`` of earlier versions is a deprecated spelling of this.
    scale : float, optional
        The unit of a relative eps; default the norm of the per-unit standard deviation of
        ``hidden``. Pass a pooled value to use one scale across checkpoints.
    order : ndarray of int, optional
        Visiting order for ``leader`` (a permutation of the rows).
    n_clusters : int, optional
        k for ``kmeans``.
    linkage : str, default "single"
        Linkage for ``agglomerative``.
    min_samples : int, optional
        For ``dbscan`` (default 1) and ``hdbscan`` (default: the package's).
    min_cluster_size : int, default 5
        For ``hdbscan``.
    seed : int, default 0
        Random state for ``kmeans``.

    Returns
    -------
    ndarray of int64, shape (n,)
        Cluster ids ``0..n_clusters-1``, numbered in order of first appearance (row 0 is in cluster
        0).

    Raises
    ------
    DataError
        States that are not a non-empty 2-D array, or that contain NaN or inf (one message for every
        method).
    ConfigError
        Unknown method or invalid parameters.
    BudgetError
        Before allocating, when the method's estimated peak memory (or, for the methods whose time
        grows with ``n^2``, time) is over the budget (:func:`dfalens.probes.memory_budget`,
        ``DFALENS_TIME_BUDGET``), or when the states have not merged enough for a cover; the one-line
        message names the alternatives.
    """
    x = _as_array(hidden)
    n = x.shape[0]
    if method not in METHODS:
        raise ConfigError(
            f"unknown clustering method {method!r}; choose one of {', '.join(METHODS)}"
        )
    eps, relative = pick_eps(eps, eps_abs)
    # dbscan: here with its fewest neighbour pairs (n), again once they are counted (see _dbscan)
    check_cluster(
        method,
        n,
        x.shape[1],
        n_clusters=n_clusters,
        linkage=linkage,
        min_samples=min_samples,
        neighbour_pairs=float(n) if method == "dbscan" else None,
    )
    if method == "kmeans":
        return _kmeans(x, n_clusters, seed)
    if eps is None:
        eps = DEFAULT_EPS[method]
    moments = _moments(x)
    eps_abs = _eps_abs(eps, relative, moments.scale if scale is None else scale)
    if order is not None:
        order = np.asarray(order, dtype=np.int64)
        if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
            raise ConfigError("order must be a permutation of the state indices")
    if method == "leader":
        return canonical_labels(leader_cover(x, eps_abs, order, moments=moments).group)
    if method == "threshold":
        cover = leader_cover(x, eps_abs / 2, moments=moments)
        return canonical_labels(components_at(x, cover, eps_abs))
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    if method == "agglomerative":
        return _agglomerative(x, eps_abs, linkage)
    if method == "dbscan":
        return _dbscan(x, eps_abs, 1 if min_samples is None else min_samples, moments)
    return _hdbscan(x, eps_abs, min_cluster_size, min_samples)
