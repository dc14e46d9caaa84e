"""What clustering and the quotient cost, estimated before anything is allocated.

Every stage of an extraction after collection (clustering by each method, the quotient) turns its input
sizes into an estimated peak of bytes (and, for the methods whose time grows with ``n^2``, seconds) and
refuses through :func:`dfalens._budget.check_memory` (and :func:`check_time`) before allocating. The
constants are calibrated against measured peaks (``benchmarks/cluster_peaks.py``; the table is in
``benchmarks/RESULTS.md``); an estimate is meant to be at or above the measured peak.

The time budget is 600 seconds unless ``DFALENS_TIME_BUDGET`` (seconds) says otherwise. Estimated
seconds are rough (a factor of two either way with the machine's speed); they only stop requests that
would run for many minutes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from dfalens._budget import check_memory
from dfalens.errors import BudgetError, ConfigError
from dfalens.probes._cover import _COVER_BUDGET

__all__ = [
    "TIME_ENV",
    "DEFAULT_TIME_BUDGET",
    "Cost",
    "cluster_cost",
    "quotient_bytes",
    "time_budget",
    "check_time",
    "check_cluster",
    "ALTERNATIVES",
]

TIME_ENV = "DFALENS_TIME_BUDGET"
DEFAULT_TIME_BUDGET = 600.0
"""Seconds a clustering may be estimated to take before it is refused."""

_F64 = 8
_BLOCK = (1 << 22) * _F64  # one distance block of the cover (float64)
# seconds per n^2 x d multiply-add of the quadratic methods, per n^2 of scipy's linkage and per
# neighbour pair of dbscan (measured on a loaded 2-core machine, about 2x head room: RESULTS.md)
_PAIRWISE_SECONDS = 7.5e-10
_LINKAGE_SECONDS = 1e-7
_NEIGHBOUR_SECONDS = 1e-8

ALTERNATIVES = {
    "leader": "raise eps, use a smaller max_len or words=...",
    "threshold": "raise eps, use a smaller max_len or words=...",
    "agglomerative": "use method='threshold' (single linkage at eps, linear memory), a smaller max_len "
    "or words=...",
    "dbscan": "use method='threshold' (the same clustering as min_samples=1, linear memory), a smaller "
    "max_len or words=...",
    "hdbscan": "use method='threshold' (linear memory), a smaller max_len or words=...",
    "kmeans": "use a smaller k_range, method='threshold' (linear memory), a smaller max_len or words=...",
}
"""What to do instead, per method, named in every refusal."""


@dataclass(frozen=True)
class Cost:
    """Estimated peak memory (bytes, beyond the states themselves) and time (seconds, 0 when linear)."""

    bytes: float
    seconds: float = 0.0


def time_budget(budget: float | None = None) -> float:
    """Seconds: ``budget`` if given, else ``$DFALENS_TIME_BUDGET``, else 600."""
    value: object = (
        budget if budget is not None else os.environ.get(TIME_ENV) or DEFAULT_TIME_BUDGET
    )
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{TIME_ENV} must be a positive number of seconds, got {value!r}")
    return seconds


def check_time(seconds: float, what: str, way_out: str, budget: float | None = None) -> None:
    """Refuse ``what`` when it is estimated to take longer than the time budget.

    Raises
    ------
    BudgetError
    """
    limit = time_budget(budget)
    if not seconds <= limit:
        raise BudgetError(
            f"{what} would take about {seconds:,.0f} s, over the time budget of {limit:,.0f} s; "
            f"{way_out}, or raise the budget with {TIME_ENV}=SECONDS"
        )


def _cover_bytes(n: int, d: int, blocks: int = 2) -> float:
    """A leader cover (``leader``, ``threshold``): the float64 centred copy when small, per-point
    arrays, the leaders (at most ``5e9 / n`` of them, twice while stacking) and a few distance
    blocks."""
    copy = n * d * _F64 if n * d <= (1 << 22) else 0
    leaders = min(n, _COVER_BUDGET / max(n, 1)) * (d + 2) * _F64 * 3
    return copy + n * 120 + leaders + blocks * _BLOCK


def cluster_cost(
    method: str,
    n: int,
    d: int,
    *,
    n_clusters: int | None = None,
    linkage: str = "single",
    min_samples: int | None = None,
    neighbour_pairs: float | None = None,
) -> Cost:
    """Estimated peak bytes and seconds of :func:`dfalens.probes.cluster` on ``n`` states of ``d`` units.

    Parameters
    ----------
    method : str
    n, d : int
    n_clusters : int, optional
        k of ``kmeans``.
    linkage : str, default "single"
        ``agglomerative``: "single" is a minimum spanning tree (linear memory); the others keep two
        condensed distance matrices (``n^2 / 2`` float64 each).
    min_samples : int, optional
        ``hdbscan``'s neighbours per point (default 5, the package's ``min_cluster_size``).
    neighbour_pairs : float, optional
        ``dbscan``: the number of (point, neighbour) pairs within eps; default the worst case ``n^2``.

    Returns
    -------
    Cost
        Bytes beyond the states themselves; seconds only for the methods whose time grows with
        ``n^2``.
    """
    n, d = int(n), int(d)
    x64 = n * d * _F64  # the float64 copy every scikit-learn method makes
    if method in ("leader", "threshold"):
        # threshold also holds a block of leader-to-leader distances (its pairs are checked as they
        # are found, see _components.leader_pairs)
        return Cost(_cover_bytes(n, d, 2 if method == "leader" else 3))
    if method == "agglomerative":
        seconds = _PAIRWISE_SECONDS * n * n * d
        if linkage == "single":  # scikit-learn's minimum spanning tree: linear memory
            return Cost(3 * x64 + n * 64, seconds)
        # scipy's linkage: the condensed distance matrix, and nn_chain's working copy of it
        condensed = n * (n - 1) / 2 * _F64
        return Cost(3 * x64 + 2 * condensed + n * 128, seconds + _LINKAGE_SECONDS * n * n)
    if method == "dbscan":
        pairs = float(n) * n if neighbour_pairs is None else float(neighbour_pairs)
        # the neighbourhoods (int64 indices, each its own array) and sklearn's chunked distances
        return Cost(
            2 * x64 + pairs * 2 * _F64 + n * 160 + 4 * _BLOCK,
            0.4 * _PAIRWISE_SECONDS * n * n * d + _NEIGHBOUR_SECONDS * pairs,
        )
    if method == "hdbscan":
        m = 5 if min_samples is None else int(min_samples)
        # prim's algorithm (more than 60 units) is O(n^2 d) time; boruvka on a k-d tree was measured
        # no faster on merged states (near-duplicate points), so both are costed as n^2 max(d, 32)
        seconds = _PAIRWISE_SECONDS * n * n * max(d, 32)
        return Cost(3 * x64 + n * (m + 1) * 3 * _F64 + n * 1600, seconds)
    if method == "kmeans":
        k = 32 if n_clusters is None else int(n_clusters)
        return Cost(3 * x64 + n * 64 + 2 * k * d * _F64 + 4 * k * 256 * _F64 * 16)
    raise ConfigError(f"unknown clustering method {method!r}")


def check_cluster(
    method: str, n: int, d: int, *, budget: int | str | None = None, **options: object
) -> Cost:
    """Refuse clustering ``n`` states of ``d`` units by ``method`` over the memory or time budget.

    ``options`` go to :func:`cluster_cost`. The message names the method's alternatives.

    Raises
    ------
    BudgetError
    """
    if method != "dbscan":
        options.pop("neighbour_pairs", None)
    cost = cluster_cost(method, n, d, **options)  # type: ignore[arg-type]
    what = f"{method} clustering of {n:,} states x {d} units"
    check_memory(cost.bytes, what, ALTERNATIVES[method], budget)
    if cost.seconds:
        check_time(cost.seconds, what, ALTERNATIVES[method])
    return cost


def quotient_bytes(n_nodes: int, n_states: int, n_symbols: int) -> float:
    """Estimated peak bytes of :func:`dfalens.probes.quotient`: int64 keys, sorts and votes over the
    tree's edges, and the ``n_states x n_symbols`` transition table (with the minimisation's copy)."""
    return float(n_nodes) * 14 * _F64 + float(n_states) * n_symbols * _F64 * 3 + n_states * 64
