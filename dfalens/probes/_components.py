"""Exact threshold components from a leader cover (internal; the ``threshold`` method of
:func:`dfalens.probes.cluster` and the extraction ladder).

Connected components of the graph "distance <= eps" are found from a cover of radius at most
``eps / 2``: groups whose leaders are within eps join directly, groups whose leaders are a little
farther apart join when some members are within eps (members near the other leader are crossed,
vectorised; large groups are compared by recursive finer covers with early exit).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from dfalens._budget import check_memory
from dfalens.errors import ConfigError
from dfalens.probes._costs import ALTERNATIVES
from dfalens.probes._cover import _BLOCK_ELEMENTS, Cover, Moments, _sqdist, leader_cover

_PAIR_BYTES = 96  # bytes per leader pair a threshold ladder keeps (arrays, sort, reordered copies)
_MEMBER_BYTES = 48  # bytes per (pair, member) entry when band pairs are crossed


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
