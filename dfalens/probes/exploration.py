"""Walk a network's own state space breadth-first, keeping one representative per ε-ball.

:func:`explore` closes after ``|states| × |Σ|`` steps for a network that implements an automaton.
Also importable from :mod:`dfalens.probes.collection`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dfalens._args import DeprecatedAlias
from dfalens.errors import ConfigError, DataError
from dfalens.probes._collect import _SCALE_NODES, _finite, collect, count_words
from dfalens.probes._eps import accepts_relative, pick_eps
from dfalens.probes.hooks import PrefixProbe
from dfalens.probes.probe import Probe
from dfalens.probes.scaling import scale
from dfalens.probes.stateset import StateSet

__all__ = ["Exploration", "explore"]


@dataclass(frozen=True, eq=False)
class Exploration:
    """Result of :func:`explore`: one representative state per ε-ball the network visited.

    Attributes
    ----------
    stateset : StateSet
        The kept representatives as a prefix tree (each was first reached from its parent by its symbol).
    delta : ndarray of int, shape (n_kept, n_symbols)
        For every kept state and symbol, the kept state within ε of the successor (the nearest one, or the
        successor itself when it was new); -1 where the successor was never computed or not kept because a
        budget stopped the walk.
    closed : bool
        True when the frontier emptied: every successor of every kept state lies within ε of a kept state.
    steps : int
        Number of (state, symbol) successors computed; equals ``n_kept * n_symbols`` when closed.
    eps_abs : float
        The absolute distance used (:attr:`eps` is its deprecated old name).
    depth : int
        Number of breadth-first levels expanded.
    reason : str
        ``"closed"``, ``"max_states"`` or ``"max_depth"``.
    """

    stateset: StateSet
    delta: np.ndarray
    closed: bool
    steps: int
    eps_abs: float
    depth: int
    reason: str

    eps = DeprecatedAlias("eps_abs")
    """Deprecated name of :attr:`eps_abs` (``eps`` is relative everywhere else)."""

    @property
    def n_states(self) -> int:
        """Number of kept representatives."""
        return self.stateset.n_nodes


def _nearest(x: Tensor, ref: Tensor, block: int = 1024) -> tuple[Tensor, Tensor]:
    """Distance to, and index of, the nearest row of ``ref`` for every row of ``x`` (exact, chunked)."""
    dmin = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    arg = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for s in range(0, x.shape[0], block):
        d = torch.cdist(x[s : s + block], ref, compute_mode="donot_use_mm_for_euclid_dist")
        dmin[s : s + block], arg[s : s + block] = d.min(dim=1)
    return dmin, arg


@accepts_relative
def explore(
    probe: Probe,
    eps: float | None = None,
    *,
    eps_abs: float | None = None,
    max_states: int = 10_000,
    max_depth: int | None = None,
    scale_len: int | None = None,
    block: int = 1024,
) -> Exploration:
    """Walk the network's state space breadth-first, keeping one state per ε-ball.

    Starting from the initial state, every kept state is expanded by every symbol. A successor farther
    than ε from every kept state is kept (and expanded at the next level); among several new successors
    within ε of each other the first (in breadth-first, lexicographic order) is kept and the others map to
    it. The walk is *closed* when no new state appears: then the kept states with :attr:`Exploration.delta`
    form a complete automaton that reproduces the network on words of every length, up to ε. For a network
    that implements an automaton with ``n`` states this takes ``n × |Σ|`` steps whatever the word length.

    Parameters
    ----------
    probe : Probe
    eps : float, optional
        Merge distance relative to the state scale: the absolute distance is ``eps × scale(H)`` where
        ``H`` are the states of all words up to length ``scale_len`` (by default the largest length with
        at most 2,047 words, e.g. 10 for two symbols, the paper's evaluation set) and :func:`scale` is
        the norm of the per-unit standard deviation.
    eps_abs : float, optional
        Merge distance as an absolute Euclidean distance, instead of ``eps`` (give exactly one). The
        ``relative=False`` of earlier versions is a deprecated spelling of this.
    max_states : int, default 10,000
        Stop (not closed) when this many states are kept.
    max_depth : int, optional
        Stop (not closed) after this many levels; unbounded by default (``max_states`` bounds the walk).
    scale_len : int, optional
        Word length of the enumeration that sets the relative scale.
    block : int, default 1024
        Successors compared per distance block.

    Returns
    -------
    Exploration
    """
    eps, relative = pick_eps(eps, eps_abs)
    if eps is None:
        raise ConfigError("explore needs a merge distance: eps (relative) or eps_abs (absolute)")
    if eps < 0:
        raise ConfigError(f"eps must be >= 0, got {eps}")
    if max_states < 1:
        raise ConfigError(f"max_states must be >= 1, got {max_states}")
    if isinstance(probe, PrefixProbe):
        raise ConfigError(
            "explore needs a recurrent step, and this probe reads whole words; use collect(probe, "
            "max_len) or extract(probe) instead"
        )
    k = probe.n_symbols
    if relative:
        if scale_len is None:
            scale_len = 1
            while count_words(k, scale_len + 1) <= _SCALE_NODES:
                scale_len += 1
        eps_abs = float(eps) * scale(collect(probe, scale_len).hidden)
    else:
        eps_abs = float(eps)
    h0 = probe.initial(1)
    cap = min(max_states, 1024)  # grows by doubling up to max_states
    kept = torch.empty((cap, probe.state_dim), dtype=h0.dtype, device=h0.device)
    kept[0] = h0[0]
    parent = np.full(cap, -1, dtype=np.int64)
    symbol = np.full(cap, -1, dtype=np.int64)
    depth = np.zeros(cap, dtype=np.int64)
    delta = np.full((cap, k), -1, dtype=np.int64)
    m, steps, level, reason = 1, 0, 0, "closed"
    frontier = np.array([0], dtype=np.int64)
    while frontier.size:
        if max_depth is not None and level >= max_depth:
            reason = "max_depth"
            break
        level += 1
        par = np.repeat(frontier, k)
        sym = np.tile(np.arange(k, dtype=np.int64), frontier.size)
        new_frontier: list[int] = []
        for s in range(0, par.size, block):
            p, a = par[s : s + block], sym[s : s + block]
            child = probe.step(kept[torch.from_numpy(p).to(kept.device)], a)
            steps += p.size
            if not _finite(child):
                raise DataError(
                    f"states became NaN or inf at depth {level}; the network diverged: use an earlier "
                    "checkpoint"
                )
            dmin, arg = _nearest(child, kept[:m], block)
            old = (dmin <= eps_abs).cpu().numpy()
            delta[p[old], a[old]] = arg.cpu().numpy()[old]
            cand = np.flatnonzero(~old)
            if cand.size == 0:
                continue
            # greedy leaders among the new successors, in order: each leader absorbs those within eps
            close = (
                (
                    torch.cdist(
                        child[cand], child[cand], compute_mode="donot_use_mm_for_euclid_dist"
                    )
                    <= eps_abs
                )
                .cpu()
                .numpy()
            )
            alive = np.ones(cand.size, dtype=bool)
            while alive.any():
                if m >= max_states:
                    reason = "max_states"
                    break
                if m == cap:
                    cap = min(2 * cap, max_states)
                    kept = torch.cat([kept, kept.new_empty((cap - m, kept.shape[1]))])
                    parent = np.concatenate([parent, np.full(cap - m, -1, dtype=np.int64)])
                    symbol = np.concatenate([symbol, np.full(cap - m, -1, dtype=np.int64)])
                    depth = np.concatenate([depth, np.zeros(cap - m, dtype=np.int64)])
                    delta = np.concatenate([delta, np.full((cap - m, k), -1, dtype=np.int64)])
                i = int(np.argmax(alive))
                members = cand[alive & close[i]]
                delta[p[members], a[members]] = m
                kept[m] = child[cand[i]]
                parent[m], symbol[m], depth[m] = p[cand[i]], a[cand[i]], depth[p[cand[i]]] + 1
                new_frontier.append(m)
                m += 1
                alive &= ~close[i]
            if reason == "max_states":
                break
        if reason == "max_states":
            break
        frontier = np.array(new_frontier, dtype=np.int64)
    closed = reason == "closed"
    states = kept[:m]
    output = probe.readout(states).cpu().numpy()
    stateset = StateSet(
        states.cpu().numpy(), parent[:m], symbol[:m], depth[:m], output, probe.alphabet
    )
    return Exploration(
        stateset=stateset,
        delta=delta[:m].copy(),
        closed=closed,
        steps=int(steps),
        eps_abs=eps_abs,
        depth=level,
        reason=reason,
    )
