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
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from dfalens._args import check_number
from dfalens._budget import check_memory
from dfalens.errors import BudgetError, ConfigError, DataError
from dfalens.probes._costs import ALTERNATIVES, check_cluster
from dfalens.probes._eps import accepts_relative, pick_eps
from dfalens.probes.scaling import state_moments
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

_CHUNK_MIN = 128
# numbers per cover chunk (points x max(leaders, d)); the first chunks are smaller (see
# leader_cover)
_CHUNK_ELEMENTS = 1 << 18
_CHUNK_MAX = 65536
_BLOCK_ELEMENTS = 1 << 22  # elements of one distance block (32 MiB in float64)
_COVER_BUDGET = 5e9  # points x leaders comparisons a cover may make
_PAIR_BYTES = 96  # bytes per leader pair a threshold ladder keeps (arrays, sort, reordered copies)
_MEMBER_BYTES = 48  # bytes per (pair, member) entry when band pairs are crossed


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


def _chunks(n: int, d: int) -> int:
    return max(1, min(n, _BLOCK_ELEMENTS // max(d, 1)))


@dataclass(frozen=True, eq=False)
class Moments:
    """Mean and scale of a set of states, and (for small sets) the centred float64 copy that every
    distance computation reuses.

    Attributes
    ----------
    mean : ndarray, shape (d,)
    scale : float
        Norm of the per-unit standard deviation (:func:`dfalens.probes.scale`).
    centred : ndarray of float64, shape (n, d), or None
        ``x - mean``, kept when it holds at most four million numbers.
    sqnorm : ndarray, shape (n,), or None
        Squared norms of the rows of ``centred``.
    """

    mean: np.ndarray
    scale: float
    centred: np.ndarray | None = None
    sqnorm: np.ndarray | None = None

    def rows(self, x: np.ndarray, sel: slice | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centred float64 rows ``sel`` of ``x`` and their squared norms."""
        if self.centred is not None and self.sqnorm is not None:
            return self.centred[sel], self.sqnorm[sel]
        p = _centred(x[sel], self.mean)
        return p, _rowsq(p)


def _moments(x: np.ndarray) -> Moments:
    """Mean (float64) and scale of the rows; chunked, so a big float32 array is never copied
    whole."""
    n, d = x.shape
    if n * d <= _BLOCK_ELEMENTS:
        x64 = np.array(x, dtype=np.float64)
        mu = x64.mean(axis=0)
        x64 -= mu
        sq = _rowsq(x64)
        return Moments(mu, float(np.sqrt(sq.sum() / n)), x64, sq)
    m = state_moments(x)
    return Moments(m.mean, float(m.scale))


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


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Renumber cluster ids 0, 1, 2, ... in order of first appearance (node 0 gets 0)."""
    labels = np.asarray(labels, dtype=np.int64)
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inv.reshape(-1)]


def _centred(rows: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """``rows - mu`` in a fresh float64 array (in place: a binary operation on a large temporary
    makes numpy probe the call stack for elision, which costs milliseconds in some sandboxes)."""
    out = np.array(rows, dtype=np.float64)
    out -= mu
    return out


def _sqdist(a: np.ndarray, asq: np.ndarray, b: np.ndarray, bsq: np.ndarray) -> np.ndarray:
    d2 = a @ b.T
    d2 *= -2.0
    d2 += asq[:, None]
    d2 += bsq[None, :]
    np.maximum(d2, 0.0, out=d2)
    return d2


def _rowsq(a: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, a)


# -- the leader cover ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cover:
    """A greedy cover of the points by balls around leaders (internal; shared by ``leader``,
    ``threshold`` and the extraction ladder).

    Attributes
    ----------
    group : ndarray of int, shape (n,)
        Index of the leader (into ``leaders``) each point joined.
    leaders : ndarray of int, shape (L,)
        Point index of every leader, in the order they were created.
    radius : float
        The cover radius (absolute): every point is within it of its leader.
    spread : ndarray of float, shape (L,)
        Largest distance of a member from its leader.
    moments : Moments
        The centre subtracted before computing distances (and the centred copy, when kept).
    tol2 : float
        Squared-distance rounding tolerance.
    """

    group: np.ndarray
    leaders: np.ndarray
    radius: float
    spread: np.ndarray
    moments: Moments
    tol2: float


def _group_uncovered(
    q: np.ndarray, qsq: np.ndarray, lim: float, base: int, limit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy leader grouping of points that no existing leader covers, in their given order.

    Candidates are taken in blocks: the first ``b`` still-uncovered points are grouped among
    themselves (a ``b x b`` matrix, one boolean-row operation per new leader), then every later
    uncovered point is compared with the block's new leaders at once. ``b`` doubles while every
    candidate becomes a leader and shrinks otherwise, so a few new clusters cost ``O(u x d)`` and
    many cost ``O(u^2 x d)`` without a ``u x u`` matrix.

    Returns
    -------
    tuple
        Group ids (``base`` + creation index), squared distance to the leader, and the rows of the
        new leaders; all empty when more than ``limit`` leaders would be needed.
    """
    u = q.shape[0]
    sub = np.full(u, -1, dtype=np.int64)
    subd = np.zeros(u)
    new: list[np.ndarray] = []
    n_new = 0
    pending = np.arange(u)
    b = 1
    while pending.size:
        cand = pending[:b]
        later = pending[b:]
        cq, csq = q[cand], qsq[cand]
        cd2 = _sqdist(cq, csq, cq, csq)
        near = cd2 <= lim
        csub = np.full(cand.size, -1, dtype=np.int64)
        made: list[int] = []
        for i in range(cand.size):
            if csub[i] < 0:
                take = near[i] & (csub < 0)
                csub[take] = len(made)
                made.append(i)
        madei = np.asarray(made, dtype=np.int64)
        sub[cand] = base + n_new + csub
        subd[cand] = cd2[madei[csub], np.arange(cand.size)]
        new.append(cand[madei])
        if later.size:
            lead, lsq = cq[madei], csq[madei]
            if later.size * 4 >= u:  # many left: multiply all rows rather than copy most of them
                d2 = _sqdist(q, qsq, lead, lsq)[later]
            else:
                d2 = _sqdist(q[later], qsq[later], lead, lsq)
            hit = d2 <= lim
            has = hit.any(axis=1)
            first = hit.argmax(axis=1)
            sub[later[has]] = base + n_new + first[has]
            subd[later[has]] = d2[has, first[has]]
            pending = later[~has]
        else:
            pending = later
        n_new += madei.size
        if n_new > limit:
            e = np.empty(0, dtype=np.int64)
            return e, np.empty(0), e
        cap = max(1, min(4096, _BLOCK_ELEMENTS // max(pending.size, 1)))
        b = min(cap, b * 2) if madei.size == cand.size else max(1, b // 2)
    return sub, subd, np.concatenate(new)


def leader_cover(
    x: np.ndarray,
    radius: float,
    order: np.ndarray | None = None,
    *,
    moments: Moments | None = None,
) -> Cover:
    """Greedy leader grouping: visit points in ``order``; each joins the first leader within
    ``radius`` (distance <= radius), else becomes a new leader.

    Vectorised by chunks: a chunk is compared with all existing leaders in one matrix product, and
    its uncovered points are grouped among themselves by :func:`_group_uncovered`. Chunks hold about
    four million distances, so memory stays bounded whatever the number of points.

    Parameters
    ----------
    x : ndarray, shape (n, d)
    radius : float
        Absolute radius.
    order : ndarray of int, optional
        Visiting order (a permutation of the rows); default the row order.
    moments : Moments, optional
        From :func:`_moments`, to avoid recomputing them (and reuse the centred copy).
    """
    n, d = x.shape
    mom = _moments(x) if moments is None else moments
    scale = mom.scale
    r2 = float(radius) ** 2
    # rounding tolerance of |a|^2 + |b|^2 - 2ab on centred float64 vectors
    tol2 = 1e-10 * scale * scale + 1e-300
    group = np.empty(n, dtype=np.int64)
    dist2 = np.empty(n, dtype=np.float64)
    lead_nodes: list[np.ndarray] = []
    lm = np.empty((0, d))
    lsq = np.empty(0)
    n_lead = 0
    start = 0
    grow = _CHUNK_MIN  # the first points of a tree are mostly new leaders: start small, then double
    while start < n:
        chunk = max(_CHUNK_MIN, min(grow, _CHUNK_MAX, _CHUNK_ELEMENTS // max(n_lead, d, 1)))
        grow *= 2
        stop = min(n, start + chunk)
        sel: slice | np.ndarray = slice(start, stop) if order is None else order[start:stop]
        p, psq = mom.rows(x, sel)
        m = p.shape[0]
        g = np.full(m, -1, dtype=np.int64)
        gd = np.zeros(m)
        if n_lead:
            d2 = _sqdist(p, psq, lm, lsq)
            hit = d2 <= r2 + tol2
            has = hit.any(axis=1)
            first = hit.argmax(axis=1)
            g[has] = first[has]
            gd[has] = d2[has, first[has]]
        rest = np.flatnonzero(g < 0)
        if rest.size:
            q = p[rest]
            qsq = psq[rest]
            limit = max(1, int(_COVER_BUDGET / n) - n_lead)
            sub, subd, newi = _group_uncovered(q, qsq, r2 + tol2, n_lead, limit)
            if sub.size == 0:
                raise BudgetError(
                    f"more than {n_lead + limit} distinct states among {n} at radius "
                    f"{radius:.3g}: the states have not merged at this eps; raise eps, lower "
                    "max_len, or use method='kmeans'"
                )
            g[rest] = sub
            gd[rest] = subd
            lm = np.vstack([lm, q[newi]])
            lsq = np.concatenate([lsq, qsq[newi]])
            idx = np.arange(start, stop) if order is None else np.asarray(sel)
            lead_nodes.append(idx[rest[newi]])
            n_lead += newi.size
        group[sel] = g
        dist2[sel] = gd
        start = stop
    leaders = np.concatenate(lead_nodes) if lead_nodes else np.empty(0, dtype=np.int64)
    spread = np.zeros(leaders.size)
    np.maximum.at(spread, group, np.sqrt(dist2))
    return Cover(group, leaders, float(radius), spread, mom, tol2)


def leader_pairs(x: np.ndarray, cover: Cover, reach: float) -> tuple[np.ndarray, ...]:
    """Pairs of leaders (a < b) closer than ``reach``, with their distances, computed in row
    blocks."""
    lpts, lsq = cover.moments.rows(x, cover.leaders)
    n_l = lpts.shape[0]
    step = max(1, _BLOCK_ELEMENTS // max(n_l, 1))
    ia: list[np.ndarray] = []
    ib: list[np.ndarray] = []
    dd: list[np.ndarray] = []
    lim = reach * reach + cover.tol2
    total = 0
    for s in range(0, n_l, step):
        d2 = _sqdist(lpts[s : s + step], lsq[s : s + step], lpts, lsq)
        a, b = np.nonzero(d2 <= lim)
        a = a + s
        keep = b > a
        total += int(keep.sum())
        # the pairs so far, and in proportion the rows still to come, must fit (checked per block)
        check_memory(
            _PAIR_BYTES * total * n_l / min(n_l, s + step),
            f"threshold clustering of {x.shape[0]:,} states ({n_l:,} groups, pairs within "
            f"{reach:.3g})",
            ALTERNATIVES["threshold"],
        )
        ia.append(a[keep])
        ib.append(b[keep])
        dd.append(np.sqrt(d2[a[keep] - s, b[keep]]))
    if not ia:
        e = np.empty(0, dtype=np.int64)
        return e, e, np.empty(0)
    return np.concatenate(ia), np.concatenate(ib), np.concatenate(dd)


def _members(cover: Cover) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(cover.group, kind="stable")
    bounds = np.searchsorted(cover.group[order], np.arange(cover.leaders.size + 1))
    return order, bounds


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of an undirected graph on ``n`` nodes with edges ``a[i] -- b[i]``. Few
    edges: a Python union-find (no sparse-matrix overhead)."""
    if a.size > 256:
        graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(n, n))
        _, comp = connected_components(graph, directed=False)
        return comp
    out = np.arange(n)
    if a.size == 0:
        return out
    nodes = np.unique(np.concatenate([a, b])).tolist()
    parent = {v: v for v in nodes}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(a.tolist(), b.tolist(), strict=True):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    out[nodes] = [find(v) for v in nodes]
    return out


def _ragged(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(starts[j], starts[j] + counts[j])`` over j, without a loop."""
    total = int(counts.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + offsets


_PAIR_ROWS = 1 << 15  # rows of one batch of member-to-leader distances
_BIG_PAIR = 1 << 20  # member pairs above which two groups are compared blockwise with early exit


def _near_members(
    x: np.ndarray,
    cover: Cover,
    members: tuple[np.ndarray, np.ndarray],
    own: np.ndarray,
    other: np.ndarray,
    limit: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For pairs j: the members of group ``own[j]`` within ``limit[j] + spread[other[j]]`` of the
    leader of ``other[j]`` (the only ones that can be within ``limit[j]`` of group ``other[j]``).
    Returns (pair index, point index), grouped by pair."""
    order, bounds = members
    mom = cover.moments
    counts = bounds[own + 1] - bounds[own]
    check_memory(
        _MEMBER_BYTES * float(counts.sum()),
        f"threshold clustering of {x.shape[0]:,} states (members of {own.size:,} group pairs)",
        ALTERNATIVES["threshold"],
    )
    pair = np.repeat(np.arange(own.size), counts)
    pts = order[_ragged(bounds[own], counts)]
    keep = np.empty(pts.size, dtype=bool)
    for s in range(0, pts.size, _PAIR_ROWS):
        sl = slice(s, s + _PAIR_ROWS)
        p, psq = mom.rows(x, pts[sl])
        lead = other[pair[sl]]
        uniq, col = np.unique(lead, return_inverse=True)
        if uniq.size <= 64:  # few distinct leaders: one product, no per-row copy of a leader
            q, qsq = mom.rows(x, cover.leaders[uniq])
            d2 = _sqdist(p, psq, q, qsq)[np.arange(col.size), col]
        else:
            q, qsq = mom.rows(x, cover.leaders[lead])
            d2 = psq + qsq - 2.0 * np.einsum("ij,ij->i", p, q)
        reach = limit[pair[sl]] + cover.spread[lead]
        keep[sl] = d2 <= reach * reach + cover.tol2
    return pair[keep], pts[keep]


_TINY_PRODUCT = 64  # member pairs of a group pair below which pairs are crossed row by row, batched


def _pair_min_distances(
    x: np.ndarray,
    cover: Cover,
    members: tuple[np.ndarray, np.ndarray],
    a: np.ndarray,
    b: np.ndarray,
    limit: np.ndarray,
) -> np.ndarray:
    """Smallest member-to-member distance of every group pair ``(a[j], b[j])``, exact when below
    ``limit[j]`` (otherwise some value >= ``limit[j]``, possibly inf).

    Only members near the other group's leader are crossed. Pairs with few such members are done
    together (row-wise distances over all their combinations), the others one matrix product each.
    """
    pa, qa = _near_members(x, cover, members, a, b, limit)
    pb, qb = _near_members(x, cover, members, b, a, limit)
    count_a = np.bincount(pa, minlength=a.size)
    count_b = np.bincount(pb, minlength=a.size)
    start_a = np.cumsum(count_a) - count_a
    start_b = np.cumsum(count_b) - count_b
    mom = cover.moments
    best = np.full(a.size, np.inf)
    tiny = count_a[pa] * count_b[pa] <= _TINY_PRODUCT  # per kept member of a, its pair's product
    la, lp = qa[tiny], pa[tiny]
    if la.size:
        rep = count_b[lp]
        left = np.repeat(la, rep)
        pair = np.repeat(lp, rep)
        right = qb[_ragged(start_b[lp], rep)]
        if left.size:
            p, psq = mom.rows(x, left)
            q, qsq = mom.rows(x, right)
            d2 = psq + qsq - 2.0 * np.einsum("ij,ij->i", p, q)
            np.minimum.at(best, pair, d2)
    big = np.flatnonzero((count_a * count_b > _TINY_PRODUCT) & (count_a > 0) & (count_b > 0))
    for j in big.tolist():
        p, psq = mom.rows(x, qa[start_a[j] : start_a[j] + count_a[j]])
        q, qsq = mom.rows(x, qb[start_b[j] : start_b[j] + count_b[j]])
        step = max(1, _BLOCK_ELEMENTS // max(q.shape[0], 1))
        for s in range(0, p.shape[0], step):
            best[j] = min(best[j], float(_sqdist(p[s : s + step], psq[s : s + step], q, qsq).min()))
    return np.sqrt(np.maximum(best, 0.0))


_BRUTE_PAIRS = 1 << 22  # member pairs compared directly; larger sets are split by a finer cover


def _sets_touch(
    x: np.ndarray, mom: Moments, p_idx: np.ndarray, q_idx: np.ndarray, eps: float, tol2: float
) -> bool:
    """Whether some point of ``p_idx`` is within ``eps`` of some point of ``q_idx``.

    Small sets: matrix products over blocks, stopping at the first hit. Large sets: the larger side
    is covered with balls of a quarter of its own radius; a ball whose leader is within ``eps -
    spread`` of a point decides yes, one farther than ``eps + spread`` from every point is dropped,
    and only the points in between are compared with that ball's members, recursively (the balls
    shrink fourfold per level, so two big clusters a little more than ``eps`` apart cost about their
    sizes, not their product)."""
    lim = eps * eps + tol2
    if p_idx.size == 0 or q_idx.size == 0:
        return False
    if p_idx.size * q_idx.size <= _BRUTE_PAIRS:
        bs_q = min(q_idx.size, 4096)
        bs_p = max(1, _BLOCK_ELEMENTS // bs_q)
        for s in range(0, q_idx.size, bs_q):
            q, qsq = mom.rows(x, q_idx[s : s + bs_q])
            for t in range(0, p_idx.size, bs_p):
                p, psq = mom.rows(x, p_idx[t : t + bs_p])
                if np.any(_sqdist(p, psq, q, qsq) <= lim):
                    return True
        return False
    if p_idx.size > q_idx.size:
        p_idx, q_idx = q_idx, p_idx
    q, qsq = mom.rows(x, q_idx)
    radius = float(np.sqrt(_sqdist(q[:1], qsq[:1], q, qsq).max()))
    sub = leader_cover(q, max(min(radius, eps) / 4, 1e-12 * (mom.scale + 1e-300)))
    order, bounds = _members(sub)
    lead = q_idx[sub.leaders]
    spread = sub.spread
    bs = max(1, _BLOCK_ELEMENTS // max(lead.size, 1))
    near_rows: list[np.ndarray] = []
    near_cols: list[np.ndarray] = []
    for t in range(0, p_idx.size, bs):
        p, psq = mom.rows(x, p_idx[t : t + bs])
        lq, lsq = mom.rows(x, lead)
        d = np.sqrt(_sqdist(p, psq, lq, lsq))
        if np.any(d * d <= (np.maximum(eps - spread, 0.0) ** 2)[None, :] + tol2):
            return True
        r, c = np.nonzero(d <= (eps + spread)[None, :])
        near_rows.append(r + t)
        near_cols.append(c)
    rows = np.concatenate(near_rows)
    cols = np.concatenate(near_cols)
    for g in np.unique(cols).tolist():
        inside = q_idx[order[bounds[g] : bounds[g + 1]]]
        if _sets_touch(x, mom, p_idx[rows[cols == g]], inside, eps, tol2):
            return True
    return False


def _touches(
    x: np.ndarray,
    cover: Cover,
    members: tuple[np.ndarray, np.ndarray],
    a: int,
    b: int,
    eps: float,
) -> bool:
    """Whether some member of group ``a`` is within ``eps`` of some member of group ``b`` (for pairs
    of large groups; see :func:`_sets_touch`)."""
    limit = np.array([eps])
    _, qa = _near_members(x, cover, members, np.array([a]), np.array([b]), limit)
    _, qb = _near_members(x, cover, members, np.array([b]), np.array([a]), limit)
    return _sets_touch(x, cover.moments, qa, qb, eps, cover.tol2)


class ThresholdLadder:
    """Exact threshold clusterings (connected components of "distance <= eps") for a non-decreasing
    sequence of eps, from one leader cover.

    The cover's radius must be at most half the smallest eps, so every group is a clique. Two groups
    are joined when their leaders are within eps (*direct* pairs), or, when the leaders are farther
    apart but within ``eps + spread_a + spread_b``, when some members are within eps (a *band* pair:
    the members near the other leader are crossed, vectorised over all such pairs, and the distance
    is cached). Components only grow with eps, so each step starts from the previous one and adds
    the new pairs: the leader distances are computed once (extended when eps outgrows them).
    """

    def __init__(self, x: np.ndarray, cover: Cover, max_eps: float | None = None) -> None:
        self.x = x
        self.cover = cover
        self.max_eps = max_eps
        self.comp = np.arange(cover.leaders.size)  # component of every group (numbered by a member)
        self.eps = 0.0
        self.reach = -1.0
        self.pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.done = 0  # pairs sorted by distance; the first `done` are merged directly
        self.mind = np.empty(0)  # member distance of each pair (NaN: not computed yet)
        self._members: tuple[np.ndarray, np.ndarray] | None = None

    def _extend(self, eps: float) -> None:
        cover = self.cover
        reach = 4 * eps if self.max_eps is None else min(4 * eps, self.max_eps)
        reach = max(reach, eps) + 2 * cover.radius
        ia, ib, dd = leader_pairs(self.x, cover, reach)
        order = np.argsort(dd, kind="stable")
        self.pairs = (ia[order], ib[order], dd[order])
        self.mind = np.full(dd.size, np.nan)
        self.reach = reach
        # pairs up to the previous eps were merged already
        lim = np.sqrt(self.eps * self.eps + cover.tol2) if self.eps > 0 else -1.0
        self.done = int(np.searchsorted(self.pairs[2], lim, side="right"))

    def labels(self, eps: float) -> np.ndarray:
        """Component of every point at ``eps`` (numbered arbitrarily; see
        :func:`canonical_labels`)."""
        cover = self.cover
        if eps < self.eps:
            raise ConfigError("a threshold ladder only goes up: eps must not decrease")
        if cover.radius > eps / 2 * (1 + 1e-9) + 1e-300:
            raise ConfigError("the cover radius must be at most eps/2 for exact components")
        if self.pairs is None or eps + 2 * cover.radius > self.reach:
            self._extend(eps)
        assert self.pairs is not None
        ia, ib, dd = self.pairs
        comp = self.comp
        # direct pairs: one vectorised connected-components pass over the components
        stop = int(np.searchsorted(dd, np.sqrt(eps * eps + cover.tol2), side="right"))
        if stop > self.done:
            a, b = comp[ia[self.done : stop]], comp[ib[self.done : stop]]
            keep = a != b
            if keep.any():
                comp = _components(comp.size, a[keep], b[keep])[comp]
            self.done = stop
        # band pairs: leaders farther than eps, members maybe closer; exact distances, cached
        rest = np.arange(stop, dd.size)
        band = dd[rest] <= eps + cover.spread[ia[rest]] + cover.spread[ib[rest]]
        rest = rest[band]
        rest = rest[comp[ia[rest]] != comp[ib[rest]]]
        if rest.size:
            todo = rest[np.isnan(self.mind[rest])]
            if todo.size:
                if self._members is None:
                    self._members = _members(cover)
                sizes = np.diff(self._members[1])
                big = sizes[ia[todo]] * sizes[ib[todo]] > _BIG_PAIR
                # small pairs: the exact distance (below the leader distance, where it matters)
                small = todo[~big]
                self.mind[small] = _pair_min_distances(
                    self.x, cover, self._members, ia[small], ib[small], dd[small]
                )
                # pairs of large groups: a yes/no at this eps, stopping at the first close pair
                for j in todo[big].tolist():
                    if _touches(self.x, cover, self._members, int(ia[j]), int(ib[j]), eps):
                        self.mind[j] = eps  # an upper bound: they touch at any larger eps too
            touch = rest[self.mind[rest] ** 2 <= eps * eps + cover.tol2]
            if touch.size:
                comp = _components(comp.size, comp[ia[touch]], comp[ib[touch]])[comp]
        self.comp = comp
        self.eps = eps
        return comp[cover.group]


def components_at(x: np.ndarray, cover: Cover, eps: float) -> np.ndarray:
    """Connected components of the graph "distance <= eps" over the points, from a cover of radius
    at most ``eps / 2`` (see :class:`ThresholdLadder`).

    Returns
    -------
    ndarray of int, shape (n,)
        Component of every point (not canonically numbered).
    """
    return ThresholdLadder(x, cover, max_eps=eps).labels(eps)


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
