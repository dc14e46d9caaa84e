"""The leader cover: a greedy cover of hidden states by balls around leaders, and the moments
(mean, scale, centred copy) every distance computation reuses (internal; shared by the ``leader`` and
``threshold`` methods of :func:`dfalens.probes.cluster` and the extraction ladder).

Points are visited in chunks, each chunk is compared with all current leaders in one matrix product,
and only the points that no leader covers are grouped among themselves, so no ``n x n`` matrix is
ever built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfalens.errors import BudgetError
from dfalens.probes.scaling import state_moments

_CHUNK_MIN = 128
# numbers per cover chunk (points x max(leaders, d)); the first chunks are smaller (see
# leader_cover)
_CHUNK_ELEMENTS = 1 << 18
_CHUNK_MAX = 65536
_BLOCK_ELEMENTS = 1 << 22  # elements of one distance block (32 MiB in float64)
_COVER_BUDGET = 5e9  # points x leaders comparisons a cover may make


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
