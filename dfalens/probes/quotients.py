"""The quotient machine: clusters of a prefix tree's states become automaton states.

Every tree edge ``parent --symbol--> child`` votes for the transition ``cluster(parent) --symbol-->
cluster(child)``; every node votes for its cluster's output with the network's predicted class.
Majorities win, disagreements are counted, and transitions nobody voted for stay undefined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfalens._budget import check_memory
from dfalens.automata import UNDEFINED, Machine
from dfalens.automata.ops import bfs_order
from dfalens.errors import DataError
from dfalens.probes._costs import quotient_bytes
from dfalens.probes.clustering import canonical_labels
from dfalens.probes.stateset import StateSet

__all__ = ["QuotientStats", "quotient", "build_quotient", "MAX_NAMED_STATES"]

MAX_NAMED_STATES = 10_000
"""Above this many states the quotient carries no ``state_names`` (naming would dominate the
cost)."""


@dataclass(frozen=True, eq=False)
class QuotientStats:
    """How well a clustering agrees with the network's own tree.

    Attributes
    ----------
    n_edges : int
        Tree edges that voted (one per non-root node).
    transition_conflicts : int
        Edges whose child lies in another cluster than their state's majority transition.
    n_voters : int
        Nodes that voted for outputs (all non-root nodes, plus the root with ``include_empty``).
    output_conflicts : int
        Voting nodes whose predicted class differs from their state's majority output.
    undefined : int
        Undefined transitions of states reachable from the start.
    closed : bool
        True when every reachable state has a transition on every symbol: the quotient is a finite
        automaton that runs on words of any length.
    sizes : ndarray of int, shape (n_states,)
        Number of tree nodes in every state.
    """

    n_edges: int
    transition_conflicts: int
    n_voters: int
    output_conflicts: int
    undefined: int
    closed: bool
    sizes: np.ndarray

    def to_dict(self) -> dict[str, int | bool]:
        """The counts as plain JSON-ready values (without ``sizes``)."""
        return {
            "n_edges": self.n_edges,
            "transition_conflicts": self.transition_conflicts,
            "n_voters": self.n_voters,
            "output_conflicts": self.output_conflicts,
            "undefined": self.undefined,
            "closed": self.closed,
        }


def _majority(keys: np.ndarray, values: np.ndarray, n_values: int) -> tuple[np.ndarray, ...]:
    """For every distinct key: the most frequent value (ties: the smallest), its count, the
    total."""
    combined = keys * n_values + values
    uniq, counts = np.unique(combined, return_counts=True)
    ukey = uniq // n_values
    uval = uniq % n_values
    # within a key, values are ascending; pick the largest count, first (smallest value) on ties
    order = np.lexsort((uval, -counts, ukey))
    ukey, uval, counts = ukey[order], uval[order], counts[order]
    first = np.ones(ukey.size, dtype=bool)
    first[1:] = ukey[1:] != ukey[:-1]
    totals = np.add.reduceat(counts, np.flatnonzero(first)) if ukey.size else counts
    return ukey[first], uval[first], counts[first], totals


def _words_of(stateset: StateSet, nodes: np.ndarray) -> list[str]:
    """Words of the given nodes, walking all of them up the tree at once (one step per depth)."""
    depth = stateset.depth[nodes]
    width = int(depth.max()) if nodes.size else 0
    syms = np.full((nodes.size, width), -1, dtype=np.int64)
    cur = nodes.copy()
    pos = depth - 1
    for _ in range(width):
        live = pos >= 0
        rows = np.flatnonzero(live)
        syms[rows, pos[live]] = stateset.symbol[cur[live]]
        cur = np.where(live, stateset.parent[cur], cur)
        pos = pos - 1
    names = stateset.alphabet
    if width and all(len(a) == 1 and a.isascii() and a != "\0" for a in names):
        # one byte per symbol: build every word as one fixed-width bytes row, no per-symbol join
        table = np.frombuffer("".join(names).encode("ascii"), dtype="S1")
        mat = np.zeros(syms.shape, dtype="S1")
        mat[syms >= 0] = table[syms[syms >= 0]]
        flat = mat.view(f"S{width}").ravel()
        return [w.decode("ascii") if w else "ε" for w in flat.tolist()]
    sep = "" if all(len(a) == 1 for a in names) else " "
    table = np.array(list(names) + [""], dtype=object)
    out = []
    for row, dep in zip(syms, depth, strict=True):
        out.append(sep.join(table[row[:dep]]) if dep else "ε")
    return out


def _state_names(
    stateset: StateSet, labels: np.ndarray, n_states: int, per_state: int
) -> tuple[str, ...]:
    order = np.argsort(labels, kind="stable")  # members in node (breadth-first) order
    starts = np.searchsorted(labels[order], np.arange(n_states + 1))
    sizes = np.diff(starts)
    take = np.minimum(sizes, per_state)
    first = np.repeat(starts[:-1], take) + (
        np.arange(int(take.sum())) - np.repeat(np.cumsum(take) - take, take)
    )
    words = _words_of(stateset, order[first])
    names = []
    pos = 0
    for n_take, more in zip(take.tolist(), (sizes - take).tolist(), strict=True):
        shown = ",".join(words[pos : pos + n_take])
        pos += n_take
        names.append(f"{shown},…(+{more})" if more else shown)
    return tuple(names)


def quotient(
    stateset: StateSet,
    labels: np.ndarray,
    *,
    include_empty: bool = False,
    names: bool = True,
    names_per_state: int = 3,
) -> tuple[Machine, QuotientStats]:
    """The machine whose states are the clusters of a state set.

    Parameters
    ----------
    stateset : StateSet
        The prefix tree with the network's states and outputs.
    labels : ndarray of int, shape (n_nodes,)
        Cluster of every node (any integer ids).
    include_empty : bool, default False
        Let the empty word (the root) vote for its state's output. By default it does not: a
        network's output before reading any input is usually untrained and the paper leaves it
        undefined. The root's state still gets an output from its other members; a state holding
        only the root gets output 0.
    names : bool, default True
        Name every state by its first member words (breadth-first, so the shortest), e.g.
        ``"1,01,10,…(+1020)"``. Skipped above :data:`MAX_NAMED_STATES` states.
    names_per_state : int, default 3
        Member words shown per name.

    Returns
    -------
    machine : Machine
        States numbered by first appearance in node order, so the root's state is 0 and the start.
        ``delta[q, a]`` is the majority target of the edges leaving ``q``'s members on ``a`` (ties:
        the smaller state); ``-1`` (undefined) when no member has a child on ``a`` (for example
        states of only deepest words). ``output[q]`` is the majority predicted class of the voting
        members (ties: the smaller class).
    stats : QuotientStats
        Conflict counts and the ``closed`` flag.

    Raises
    ------
    BudgetError
        Before allocating, when the estimated peak (:func:`dfalens.probes._costs.quotient_bytes`)
        is over the memory budget.

    Notes
    -----
    Vectorised: one ``np.unique`` over the ``(source, symbol, target)`` triples of all edges and one
    over the ``(state, class)`` pairs of all voters.
    """
    n = stateset.n_nodes
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise DataError(f"labels must have shape ({n},) to match the state set, got {labels.shape}")
    return build_quotient(
        stateset,
        canonical_labels(labels),
        include_empty=include_empty,
        names=names,
        names_per_state=names_per_state,
    )


def build_quotient(
    stateset: StateSet,
    lab: np.ndarray,
    *,
    include_empty: bool = False,
    names: bool = True,
    names_per_state: int = 3,
) -> tuple[Machine, QuotientStats]:
    """:func:`quotient` for labels already numbered by first appearance (``canonical_labels``)."""
    n = stateset.n_nodes
    n_states = int(lab.max()) + 1
    k = len(stateset.alphabet)
    check_memory(
        quotient_bytes(n, n_states, k),
        f"the quotient of {n:,} states in {n_states:,} clusters over {k} symbols",
        "cluster coarser (a larger eps, another method), use a smaller max_len or words=...",
    )

    # transitions: majority over tree edges
    child = np.flatnonzero(stateset.parent >= 0)
    src = lab[stateset.parent[child]]
    sym = stateset.symbol[child]
    dst = lab[child]
    delta = np.full((n_states, k), UNDEFINED, dtype=np.int64)
    t_conflicts = 0
    if child.size:
        pair, best, count, total = _majority(src * k + sym, dst, n_states)
        delta[pair // k, pair % k] = best
        t_conflicts = int((total - count).sum())

    # outputs: majority of the predicted class over voting members
    pred = stateset.predicted
    voters = np.arange(n) if include_empty else child
    output = np.zeros(n_states, dtype=np.int64)
    o_conflicts = 0
    if voters.size:
        n_cls = int(pred.max()) + 1
        state, cls, count, total = _majority(lab[voters], pred[voters], n_cls)
        output[state] = cls
        o_conflicts = int((total - count).sum())

    # reachable states and closure
    reach = bfs_order(delta, 0)
    undefined = int((delta[reach] == UNDEFINED).sum())
    sizes = np.bincount(lab, minlength=n_states)

    state_names = None
    if names and n_states <= MAX_NAMED_STATES:
        state_names = _state_names(stateset, lab, n_states, max(1, names_per_state))
    machine = Machine(delta, output, 0, stateset.alphabet, state_names)
    stats = QuotientStats(
        n_edges=int(child.size),
        transition_conflicts=t_conflicts,
        n_voters=int(voters.size),
        output_conflicts=o_conflicts,
        undefined=undefined,
        closed=undefined == 0,
        sizes=sizes,
    )
    return machine, stats
