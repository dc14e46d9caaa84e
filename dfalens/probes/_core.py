"""The extraction core, shared by :func:`dfalens.probes.extract` and the timeline's workers.

One fixed clustering of a state set becomes an automaton in three steps, written once here:

1. :func:`cluster_fixed`: cluster the states at an absolute merge distance (the cover methods reuse
   precomputed moments);
2. :func:`~dfalens.probes.quotients.build_quotient`: the quotient machine of the clusters;
3. :func:`minimal_of`: minimise it, giving a start state that holds only the (non-voting) empty word the
   output that makes the minimal machine smallest.

:func:`extract_fixed` runs all three. ``extract`` adds its strategies (ε ladder, k-sweep) and the
consistency checks around them; the timeline adds the comparison with the task and the merge/split
events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dfalens.automata import Machine, minimize
from dfalens.probes._costs import check_cluster
from dfalens.probes.clustering import (
    Moments,
    _moments,
    canonical_labels,
    cluster,
    components_at,
    leader_cover,
)
from dfalens.probes.quotients import QuotientStats, build_quotient
from dfalens.probes.stateset import StateSet

__all__ = ["Core", "cluster_fixed", "minimal_of", "extract_fixed"]


@dataclass(frozen=True, eq=False)
class Core:
    """One clustering made an automaton.

    Attributes
    ----------
    labels : ndarray of int64, shape (n,)
        Cluster of every state, numbered by first appearance.
    machine : Machine
        The quotient (its start state's output possibly chosen by :func:`minimal_of`).
    stats : QuotientStats
    minimal : Machine
        ``minimize(machine)``.
    """

    labels: np.ndarray
    machine: Machine
    stats: QuotientStats
    minimal: Machine


def cluster_fixed(
    x: np.ndarray,
    method: str,
    eps_abs: float | None,
    *,
    order: np.ndarray | None = None,
    moments: Moments | None = None,
    seed: int = 0,
    options: dict[str, Any] | None = None,
) -> np.ndarray:
    """Cluster labels of states ``x`` (n, d) at the absolute distance ``eps_abs``.

    ``threshold`` and ``leader`` without extra options run their covers directly on ``moments``
    (computed when not given); every other case goes through :func:`dfalens.probes.cluster` with
    ``eps_abs``. Labels are numbered by first appearance.
    """
    options = options or {}
    if method in ("threshold", "leader") and not options:
        assert eps_abs is not None
        check_cluster(method, *x.shape)
        moments = _moments(x) if moments is None else moments
        if method == "threshold":
            cover = leader_cover(x, eps_abs / 2, moments=moments)
            return canonical_labels(components_at(x, cover, eps_abs))
        return canonical_labels(leader_cover(x, eps_abs, order, moments=moments).group)
    return cluster(x, method, eps_abs=eps_abs, order=order, seed=seed, **options)


def minimal_of(
    machine: Machine, stats: QuotientStats, states: StateSet, include_empty: bool
) -> tuple[Machine, Machine]:
    """The quotient and its minimal machine.

    Without ``include_empty``, a start state holding only the empty word has no voter, so its output
    is a don't-care: it gets the class that makes the minimal machine smallest (ties keep 0).
    """
    minimal = minimize(machine)
    if include_empty or stats.sizes[0] != 1:
        return machine, minimal
    best = (machine, minimal)
    for c in range(1, int(states.predicted.max(initial=0)) + 1):
        output = machine.output.copy()
        output[machine.start] = c
        alt = Machine(machine.delta, output, machine.start, machine.alphabet, machine.state_names)
        alt_min = minimize(alt)
        if alt_min.n_states < best[1].n_states:
            best = (alt, alt_min)
    return best


def extract_fixed(
    states: StateSet,
    method: str,
    eps_abs: float | None,
    *,
    include_empty: bool = False,
    names: bool = False,
    order: np.ndarray | None = None,
    moments: Moments | None = None,
    seed: int = 0,
    options: dict[str, Any] | None = None,
) -> Core:
    """Cluster -> quotient -> minimise one state set at one absolute distance (see the module)."""
    x = states.hidden
    labels = cluster_fixed(
        x, method, eps_abs, order=order, moments=moments, seed=seed, options=options
    )
    machine, stats = build_quotient(states, labels, include_empty=include_empty, names=names)
    machine, minimal = minimal_of(machine, stats, states, include_empty)
    return Core(labels, machine, stats, minimal)
