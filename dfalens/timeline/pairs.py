"""Pair statistics: how the distance between two words' hidden states evolves over training.

These reproduce the pair figures of van Rossem & Saxe (ICML 2025): Fig. 7 (fraction of agreeing pairs that
merged, by length pair), Fig. 12 (mean pairwise distance over epochs), Fig. 14 (fraction of final mergers
that were once more than ``10 eps`` apart) and Fig. 15 (pairs farther than ``eps`` over epochs, agreeing vs
disagreeing). Two words *agree* when they reach the same state of the minimal ground-truth machine, i.e.
no continuation tells them apart.

Everything works on index arrays over the nodes of one prefix tree and on hidden states of shape
``(n_checkpoints, n_nodes, dim)``; distances for all checkpoints are computed at once, in chunks that keep
memory bounded. :func:`pair_trajectories` (a run) and :func:`trajectories` (hidden states in memory)
return per-pair distance trajectories, agreement labels and lengths (the input of the effective-theory
fits).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dfalens._args import DeprecatedAlias
from dfalens.automata import Machine, minimize
from dfalens.errors import DataError, TaskError
from dfalens.probes._eps import pick_eps, renamed
from dfalens.timeline.history import load_history

__all__ = [
    "Pairs",
    "PairTrajectories",
    "ByLength",
    "task_states",
    "random_pairs",
    "make_pairs",
    "pair_distances",
    "trajectories",
    "pair_trajectories",
    "mean_distance",
    "far_counts",
    "merged_fraction",
    "diverged_fraction",
]

_CHUNK_BYTES = 64 * 2**20


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Pairs:
    """Unordered pairs of distinct nodes of a prefix tree.

    Attributes
    ----------
    i, j : ndarray of int, shape (p,)
        Node indices with ``i < j``.
    length_i, length_j : ndarray of int, shape (p,)
        Word lengths of the two nodes.
    agree : ndarray of bool, shape (p,)
        True when both words reach the same state of the minimal task machine (they agree on every
        continuation).
    """

    i: np.ndarray
    j: np.ndarray
    length_i: np.ndarray
    length_j: np.ndarray
    agree: np.ndarray

    def __post_init__(self) -> None:
        p = np.shape(self.i)[0] if np.ndim(self.i) == 1 else -1
        for name in ("i", "j", "length_i", "length_j", "agree"):
            if np.shape(getattr(self, name)) != (p,):
                raise DataError(f"pair field {name} must be a 1-D array of the same length as i")
        for name in ("i", "j", "length_i", "length_j"):
            object.__setattr__(self, name, _ro(np.asarray(getattr(self, name), dtype=np.int64)))
        object.__setattr__(self, "agree", _ro(np.asarray(self.agree, dtype=bool)))

    def __len__(self) -> int:
        return int(self.i.shape[0])


@dataclass(frozen=True, eq=False)
class PairTrajectories:
    """Distances of a set of pairs at every checkpoint.

    Attributes
    ----------
    pairs : Pairs
    epochs : ndarray of int, shape (c,)
    distance : ndarray of float, shape (p, c)
        Euclidean distance between the two hidden states of each pair at each checkpoint.
    eps_abs : ndarray of float, shape (c,)
        The absolute merge threshold at each checkpoint (all equal when pooled); :attr:`eps` is its
        deprecated old name.
    train_loss : ndarray of float, shape (c,), optional
        Training loss at each checkpoint (NaN where unknown).
    """

    pairs: Pairs
    epochs: np.ndarray
    distance: np.ndarray
    eps_abs: np.ndarray
    train_loss: np.ndarray | None = None

    def __post_init__(self) -> None:
        c = np.shape(self.epochs)[0]
        if np.shape(self.distance) != (len(self.pairs), c):
            raise DataError(
                f"distance must have shape ({len(self.pairs)}, {c}), got {np.shape(self.distance)}"
            )
        eps = np.broadcast_to(np.asarray(self.eps_abs, dtype=np.float64), (c,))
        object.__setattr__(self, "epochs", _ro(np.asarray(self.epochs, dtype=np.int64)))
        object.__setattr__(self, "distance", _ro(np.asarray(self.distance, dtype=np.float64)))
        object.__setattr__(self, "eps_abs", _ro(eps))
        if self.train_loss is not None:
            object.__setattr__(self, "train_loss", _ro(np.asarray(self.train_loss, dtype=float)))

    eps = DeprecatedAlias("eps_abs")
    """Deprecated name of :attr:`eps_abs` (``eps`` is relative everywhere else)."""

    @property
    def merged(self) -> np.ndarray:
        """Bool (p, c): the pair is closer than eps_abs at each checkpoint."""
        return self.distance < self.eps_abs[None, :]


@dataclass(frozen=True, eq=False)
class ByLength:
    """A statistic aggregated over pairs by the lengths of their two words (symmetric).

    Attributes
    ----------
    lengths : ndarray of int, shape (L,)
        The word lengths of the rows and columns.
    numerator, denominator : ndarray of int, shape (L, L)
        Counts of pairs with the property and of pairs considered, for each length pair.
    """

    lengths: np.ndarray
    numerator: np.ndarray
    denominator: np.ndarray

    @property
    def fraction(self) -> np.ndarray:
        """``numerator / denominator``, NaN where no pair was considered."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.denominator > 0, self.numerator / self.denominator, np.nan)


def task_states(
    parent: np.ndarray, symbol: np.ndarray, depth: np.ndarray, task: Machine
) -> np.ndarray:
    """State of the minimal complete task machine reached by every node of a prefix tree.

    Parameters
    ----------
    parent, symbol, depth : ndarray of int, shape (n,)
        The tree (breadth-first order; the root has parent -1), as in :class:`StateSet`.
    task : Machine
        The ground truth; it is minimised (and completed) first, so equal states mean agreement on every
        continuation.

    Returns
    -------
    ndarray of int, shape (n,)
    """
    m = minimize(task)
    parent = np.asarray(parent, dtype=np.int64)
    symbol = np.asarray(symbol, dtype=np.int64)
    depth = np.asarray(depth, dtype=np.int64)
    if symbol.size and symbol.max() >= m.n_symbols:
        raise TaskError(
            f"the words use {int(symbol.max()) + 1} symbols but the task has {m.n_symbols} "
            f"({', '.join(m.alphabet)}); pass the task the network was trained on"
        )
    state = np.full(parent.shape, m.start, dtype=np.int64)
    for d in range(1, int(depth.max()) + 1 if depth.size else 1):  # one step per depth level
        idx = np.nonzero(depth == d)[0]
        state[idx] = m.delta[state[parent[idx]], symbol[idx]]
    return state


def _unrank(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair number ``k`` -> (i, j), i < j, in the order (0,1), (0,2), (1,2), (0,3), ..."""
    j = np.floor((1.0 + np.sqrt(1.0 + 8.0 * k.astype(np.float64))) / 2.0).astype(np.int64)
    # correct floating-point rounding at the boundaries
    j = np.where(j * (j - 1) // 2 > k, j - 1, j)
    j = np.where((j + 1) * j // 2 <= k, j + 1, j)
    i = k - j * (j - 1) // 2
    return i, j


def random_pairs(nodes: np.ndarray, n_pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Distinct unordered pairs of distinct nodes, uniformly at random.

    Parameters
    ----------
    nodes : ndarray of int
        The candidate node indices.
    n_pairs : int
        How many pairs; all pairs when there are fewer.
    seed : int

    Returns
    -------
    i, j : ndarray of int
        Node indices with ``i < j``, sorted by (j, i) rank.
    """
    nodes = np.sort(np.asarray(nodes, dtype=np.int64))
    m = nodes.size
    total = m * (m - 1) // 2
    if n_pairs < 0:
        raise DataError(f"n_pairs must be >= 0, got {n_pairs}")
    rng = np.random.default_rng(seed)
    if n_pairs >= total:
        k = np.arange(total, dtype=np.int64)
    else:
        k = np.sort(rng.choice(total, size=n_pairs, replace=False)).astype(np.int64)
    a, b = _unrank(k)
    return nodes[a], nodes[b]


@renamed(include_root="include_empty")
def make_pairs(
    parent: np.ndarray,
    symbol: np.ndarray,
    depth: np.ndarray,
    task: Machine,
    n_pairs: int | None = 1000,
    seed: int = 0,
    include_empty: bool = False,
    i: np.ndarray | None = None,
    j: np.ndarray | None = None,
) -> Pairs:
    """Pairs of nodes of a prefix tree with their lengths and agreement labels.

    Parameters
    ----------
    parent, symbol, depth : ndarray of int, shape (n,)
        The tree.
    task : Machine
        Ground truth for the agreement labels.
    n_pairs : int or None, default 1000
        Number of random pairs (the paper's code uses 1000); None for all pairs.
    seed : int, default 0
    include_empty : bool, default False
        Whether the empty word takes part (the paper's pairs are over the training words);
        ``include_root=`` is its deprecated old name.
    i, j : ndarray of int, optional
        Explicit pairs instead of random ones.
    """
    depth = np.asarray(depth, dtype=np.int64)
    if (i is None) != (j is None):
        raise DataError("give both i and j for explicit pairs, or neither")
    if i is None or j is None:
        nodes = np.arange(depth.size) if include_empty else np.nonzero(depth > 0)[0]
        n = nodes.size * (nodes.size - 1) // 2 if n_pairs is None else n_pairs
        i, j = random_pairs(nodes, n, seed)
    else:
        i = np.asarray(i, dtype=np.int64)
        j = np.asarray(j, dtype=np.int64)
        if i.shape != j.shape or i.ndim != 1:
            raise DataError("explicit pairs need 1-D i and j of the same length")
        if i.size and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= depth.size):
            raise DataError(f"pair indices must be node indices in 0..{depth.size - 1}")
        i, j = np.minimum(i, j), np.maximum(i, j)
    state = task_states(parent, symbol, depth, task)
    return Pairs(i, j, depth[i], depth[j], state[i] == state[j])


def _as_history(hidden: np.ndarray) -> np.ndarray:
    h = np.asarray(hidden)
    if h.ndim == 2:
        h = h[None]
    if h.ndim != 3:
        raise DataError(
            f"hidden states must have shape (n_checkpoints, n_nodes, dim), got {np.shape(hidden)}"
        )
    return h


def pair_distances(hidden: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Euclidean distance of every pair at every checkpoint.

    Parameters
    ----------
    hidden : ndarray of float, shape (c, n, d) or (n, d)
        Hidden states of all nodes at each checkpoint.
    i, j : ndarray of int, shape (p,)

    Returns
    -------
    ndarray of float64, shape (p, c)
    """
    h = _as_history(hidden)
    c, _, d = h.shape
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    out = np.empty((i.size, c), dtype=np.float64)
    step = max(1, _CHUNK_BYTES // max(1, c * d * h.itemsize))
    for s in range(0, i.size, step):  # chunks of pairs; all checkpoints at once
        diff = h[:, i[s : s + step]] - h[:, j[s : s + step]]
        out[s : s + step] = np.sqrt(np.einsum("cpd,cpd->pc", diff, diff, dtype=np.float64))
    return out


@renamed(eps="eps_abs")
def trajectories(
    hidden: np.ndarray,
    pairs: Pairs,
    eps_abs: float | np.ndarray,
    epochs: np.ndarray | None = None,
    train_loss: np.ndarray | None = None,
) -> PairTrajectories:
    """Distance trajectories of the given pairs over all checkpoints.

    Parameters
    ----------
    hidden : ndarray, shape (c, n, d)
        Hidden states of every node at each checkpoint (for example ``History.hidden``).
    pairs : Pairs
    eps_abs : float or ndarray of shape (c,)
        Absolute merge threshold (pooled, or one per checkpoint); ``eps=`` is its deprecated old
        name.
    epochs : ndarray of int, shape (c,), optional
        Default ``0..c-1``.
    train_loss : ndarray, shape (c,), optional
    """
    h = _as_history(hidden)
    c = h.shape[0]
    epochs = np.arange(c) if epochs is None else np.asarray(epochs)
    if epochs.shape != (c,):
        raise DataError(f"epochs must have shape ({c},) to match the hidden states")
    dist = pair_distances(h, pairs.i, pairs.j)
    return PairTrajectories(pairs, epochs, dist, eps_abs, train_loss)


def mean_distance(traj: PairTrajectories) -> np.ndarray:
    """Fig. 12: mean pairwise distance at each checkpoint, shape (c,)."""
    if len(traj.pairs) == 0:
        raise DataError("no pairs to average; use more nodes or more pairs")
    return traj.distance.mean(axis=0)


def far_counts(traj: PairTrajectories) -> dict[str, np.ndarray]:
    """Fig. 15: number of pairs farther apart than eps at each checkpoint.

    Returns
    -------
    dict with keys ``"total"``, ``"agreeing"``, ``"disagreeing"``, each an int array of shape (c,).
    """
    far = traj.distance >= traj.eps_abs[None, :]
    agree = traj.pairs.agree[:, None]
    return {
        "total": far.sum(axis=0),
        "agreeing": (far & agree).sum(axis=0),
        "disagreeing": (far & ~agree).sum(axis=0),
    }


def _by_length(li: np.ndarray, lj: np.ndarray, flag: np.ndarray, lengths: np.ndarray) -> ByLength:
    L = lengths.size
    pos = np.searchsorted(lengths, li) * L + np.searchsorted(lengths, lj)
    den = np.bincount(pos, minlength=L * L).reshape(L, L)
    num = np.bincount(pos, weights=flag.astype(np.float64), minlength=L * L).reshape(L, L)
    num = np.rint(num).astype(np.int64)
    # symmetric: a pair (a, b) counts for both (a, b) and (b, a), once on the diagonal
    diag = np.eye(L, dtype=bool)
    den = np.where(diag, den, den + den.T)
    num = np.where(diag, num, num + num.T)
    return ByLength(_ro(lengths), _ro(num), _ro(den))


def _final_close_pairs(
    final: np.ndarray, nodes: np.ndarray, eps: float, state: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs (i < j) of ``nodes`` closer than eps in ``final``, and whether each pair agrees.

    A Gram-matrix pass in float64 finds the candidates; their distances are then recomputed from the
    differences, so the test against eps is exact.
    """
    x = final[nodes].astype(np.float64)
    sq = np.einsum("nd,nd->n", x, x)
    m = nodes.size
    block = max(1, _CHUNK_BYTES // (8 * max(m, 1)))
    ii: list[np.ndarray] = []
    jj: list[np.ndarray] = []
    tol = 1e-9 * (sq.max() if m else 1.0)
    for s in range(0, m, block):  # blocks of rows of the distance matrix
        g = sq[s : s + block, None] + sq[None, :] - 2.0 * x[s : s + block] @ x.T
        r, col = np.nonzero(g < eps * eps + tol)
        r = r + s
        keep = col > r
        ii.append(r[keep])
        jj.append(col[keep])
    a = np.concatenate(ii) if ii else np.zeros(0, np.int64)
    b = np.concatenate(jj) if jj else np.zeros(0, np.int64)
    # exact check of the candidates
    d = np.sqrt(((x[a] - x[b]) ** 2).sum(axis=1)) if a.size else np.zeros(0)
    keep = d < eps
    a, b = a[keep], b[keep]
    agree = state[nodes[a]] == state[nodes[b]] if state is not None else np.ones(a.size, bool)
    return nodes[a], nodes[b], agree


@renamed(eps="eps_abs")
def merged_fraction(
    final_hidden: np.ndarray,
    parent: np.ndarray,
    symbol: np.ndarray,
    depth: np.ndarray,
    task: Machine,
    eps_abs: float,
) -> tuple[ByLength, int, int]:
    """Fig. 7: fraction of agreeing pairs that are merged (closer than eps_abs), by length pair.

    All pairs of non-empty words are considered (the diagonal excludes self-pairs).

    Parameters
    ----------
    final_hidden : ndarray, shape (n, d)
        Hidden states at the checkpoint of interest (the final one in the paper).
    parent, symbol, depth : ndarray of int, shape (n,)
    task : Machine
    eps_abs : float
        Absolute merge threshold (``eps=`` is its deprecated old name).

    Returns
    -------
    by_length : ByLength
        ``numerator`` = merged agreeing pairs, ``denominator`` = agreeing pairs.
    merged_agreeing, merged_disagreeing : int
        Totals of merged pairs that agree and that do not (the paper found 103460 and 0).
    """
    depth = np.asarray(depth, dtype=np.int64)
    final = np.asarray(final_hidden)
    if final.ndim != 2 or final.shape[0] != depth.size:
        raise DataError(f"final hidden states must have shape ({depth.size}, d), got {final.shape}")
    state = task_states(parent, symbol, depth, task)
    nodes = np.nonzero(depth > 0)[0]
    lengths = np.unique(depth[nodes])
    L = lengths.size
    # agreeing pairs per length pair, counted from class sizes (no pair enumeration)
    n_states = int(state.max()) + 1
    code = np.searchsorted(lengths, depth[nodes]) * n_states + state[nodes]
    cnt = np.bincount(code, minlength=L * n_states).reshape(L, n_states).astype(np.int64)
    den = cnt @ cnt.T
    den[np.diag_indices(L)] = (cnt * (cnt - 1) // 2).sum(axis=1)
    a, b, agree = _final_close_pairs(final, nodes, float(eps_abs), state)
    merged = _by_length(depth[a[agree]], depth[b[agree]], np.ones(int(agree.sum()), bool), lengths)
    return (
        ByLength(_ro(lengths), merged.numerator, _ro(den)),
        int(agree.sum()),
        int((~agree).sum()),
    )


@renamed(eps="eps_abs")
def diverged_fraction(
    hidden: np.ndarray,
    depth: np.ndarray,
    eps_abs: float,
    factor: float = 10.0,
    max_pairs: int | None = 20000,
    seed: int = 0,
) -> ByLength:
    """Fig. 14: fraction of final mergers once more than ``factor * eps_abs`` apart, by lengths.

    Parameters
    ----------
    hidden : ndarray, shape (c, n, d)
        Hidden states of every node at every checkpoint; the last is the final one.
    depth : ndarray of int, shape (n,)
    eps_abs : float
        Absolute merge threshold (pooled; ``eps=`` is its deprecated old name).
    factor : float, default 10
    max_pairs : int or None, default 20000
        Subsample of the final mergers to follow (None: all; the paper's run has ~10^5).
    seed : int

    Returns
    -------
    by_length : ByLength
        ``numerator`` = mergers that were once farther than ``factor * eps_abs``, ``denominator`` = mergers
        followed.
    """
    h = _as_history(hidden)
    depth = np.asarray(depth, dtype=np.int64)
    nodes = np.nonzero(depth > 0)[0]
    lengths = np.unique(depth[nodes])
    a, b, _ = _final_close_pairs(h[-1], nodes, float(eps_abs), None)
    if max_pairs is not None and a.size > max_pairs:
        pick = np.sort(np.random.default_rng(seed).choice(a.size, size=max_pairs, replace=False))
        a, b = a[pick], b[pick]
    far = np.zeros(a.size, dtype=bool)
    if a.size:
        far = pair_distances(h, a, b).max(axis=1) > factor * eps_abs
    return _by_length(depth[a], depth[b], far, lengths)


@renamed(include_root="include_empty")
def pair_trajectories(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    task: Machine | str | None = None,
    n_pairs: int | None = 1000,
    seed: int = 0,
    eps: float | None = None,
    max_len: int | None = None,
    epochs: Sequence[int] | None = None,
    include_empty: bool = False,
    *,
    eps_abs: float | None = None,
) -> PairTrajectories:
    """Distance trajectories of random word pairs over every checkpoint of a run.

    Loads the run's states (:func:`dfalens.probes.load_history`), draws pairs of distinct words, and
    returns each pair's distance at every checkpoint with its agreement label and word lengths: the
    input of Figs. 10, 12 and 15 and of the effective-theory fits.

    Parameters
    ----------
    source : path or sequence of paths
        A run directory or checkpoint files of one run.
    task : Machine or str, optional
        Ground truth for the agreement labels (default: the run's task).
    n_pairs : int or None, default 1000
        Random pairs (the paper's code uses 1000); None for all pairs.
    seed : int, default 0
    eps : float, optional
        Relative merge threshold (default 0.01); the absolute one is ``eps`` times the norm of the
        per-unit std pooled over all the checkpoints loaded.
    eps_abs : float, optional
        Absolute merge threshold, instead of ``eps`` (give at most one).
    max_len : int, optional
        Longest word (default: the run's training length).
    epochs : sequence of int, optional
        Only these checkpoints (the pooled scale is then over these too).
    include_empty : bool, default False
        Let the empty word take part (``include_root=`` is its deprecated old name).
    """
    given, relative = pick_eps(eps, eps_abs)
    given = 0.01 if given is None else given

    h = load_history(source, task=task, max_len=max_len, epochs=epochs)
    pairs = make_pairs(
        h.parent, h.symbol, h.depth, h.task, n_pairs=n_pairs, seed=seed, include_empty=include_empty
    )
    threshold = float(given) * h.scale() if relative else float(given)
    return trajectories(h.hidden, pairs, threshold, h.epochs, h.train_loss)
