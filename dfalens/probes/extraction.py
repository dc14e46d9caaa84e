"""Extraction: a probed network (or its collected states) to a quotient machine and its minimal
automaton.

:func:`extract` collects the network's states on every word up to ``max_len``, clusters them, builds
the majority-vote quotient (:func:`dfalens.probes.quotient`), minimises it, and checks the result
against the network: on the collected words and, when the quotient is closed, on long random words
(fidelity).

With no ``method`` it runs the default strategy (see :func:`extract`): threshold clustering over an
increasing ε ladder that reuses one leader cover, stopping at the first closed quotient whose
minimal machine reproduces the network, with a k-means sweep as fallback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dfalens._files import jsonable
from dfalens.automata import Machine, dead_states, run, to_dict
from dfalens.errors import BudgetError, ConfigError
from dfalens.probes._core import cluster_fixed, minimal_of
from dfalens.probes.clustering import (
    DEFAULT_EPS,
    METHODS,
    Moments,
    ThresholdLadder,
    _as_array,
    _eps_abs,
    _moments,
    canonical_labels,
    cluster,
    leader_cover,
)
from dfalens.probes.collection import collect, predict
from dfalens.probes.probe import Probe
from dfalens.probes.quotients import (
    MAX_NAMED_STATES,
    QuotientStats,
    _state_names,
    build_quotient,
)
from dfalens.probes.stateset import StateSet

__all__ = ["Extraction", "extract", "EPS_LADDER", "lexicographic_order"]

EPS_LADDER = (0.01, 0.0178, 0.0316, 0.0562, 0.1, 0.178, 0.316, 0.562, 1.0)
"""Relative ε values the default strategy tries, smallest first (geometric, 0.01 to 1)."""

DEFAULT_K_RANGE = range(2, 33)
"""k values of the k-means fallback and of ``method="kmeans"`` without ``k_range``."""

FIDELITY_LENGTHS = (100, 1000)


@dataclass(frozen=True, eq=False)
class Extraction:
    """The automaton extracted from a network, with the evidence for it.

    Attributes
    ----------
    labels : ndarray of int, shape (n_nodes,)
        State of the quotient machine that every collected word (node) belongs to.
    machine : Machine
        The quotient: one state per cluster, majority-vote transitions and outputs, ``-1`` where no
        member had a child (partial unless ``closed``). States are named by their first member
        words.
    minimal : Machine
        ``minimize(machine)``: complete (undefined transitions go to a sink of output 0) and
        canonical.
    closed : bool
        Every state reachable in ``machine`` has every transition: a finite automaton that runs on
        words of any length. An open quotient's ``minimal`` is only a guess beyond ``max_len``.
    conflicts : dict
        ``transitions``: tree edges that disagree with their state's majority transition;
        ``outputs``: voting words whose network class disagrees with their state's output; ``edges``
        and ``voters``: how many voted.
    undefined : int
        Undefined transitions among reachable quotient states.
    agreement : float
        Fraction of the collected words (the empty word excluded unless ``include_empty``) on which
        ``minimal`` gives the network's class.
    fidelity : dict of int to float, or None
        For each length (100 and 1000 by default), the fraction of random words of that length on
        which ``minimal`` gives the network's class; None when the quotient is not closed or no
        network was given (a bare StateSet).
    settings : dict
        What produced this result: ``method``, ``eps`` (relative, or None), ``eps_abs``,
        ``relative``, ``scale``, ``max_len``, ``strategy`` ("fixed", "k-sweep" or "auto"),
        ``consistent`` (closed and reproducing the network on the collected words), ``heldout``
        (agreement on random words of length ``2 x max_len``, or None) and ``trace`` (one entry per
        candidate tried), plus method options.
    n_raw : int
        States of the quotient (clusters).
    n_minimal : int
        States of ``minimal`` (complete; a dead state counted).
    n_minimal_trimmed : int
        States of the minimal machine without its dead state.
    """

    labels: np.ndarray
    machine: Machine
    minimal: Machine
    closed: bool
    conflicts: dict[str, int]
    undefined: int
    agreement: float
    fidelity: dict[int, float] | None
    settings: dict[str, Any]
    n_raw: int
    n_minimal: int
    n_minimal_trimmed: int = field(default=0)

    def __repr__(self) -> str:
        fid = (
            "n/a"
            if self.fidelity is None
            else ", ".join(f"{k}: {v:.3f}" for k, v in self.fidelity.items())
        )
        return (
            f"Extraction({self.n_raw} -> {self.n_minimal} states, closed={self.closed}, "
            f"agreement={self.agreement:.4f}, fidelity={{{fid}}}, "
            f"method={self.settings.get('method')})"
        )

    def to_dict(self, *, labels: bool = False, quotient: bool = False) -> dict[str, Any]:
        """JSON-ready summary.

        Parameters
        ----------
        labels : bool, default False
            Include the per-word state labels (one int per collected word).
        quotient : bool, default False
            Include the quotient machine (in the automata JSON schema) besides the minimal one.

        Returns
        -------
        dict
            Keys ``states_raw``, ``states_minimal``, ``states_minimal_trimmed``, ``closed``,
            ``agreement``, ``fidelity`` (length as a string key, or None), ``conflicts``,
            ``undefined``, ``settings`` and ``machine`` (the minimal machine as
            :func:`dfalens.automata.to_dict`).
        """
        out: dict[str, Any] = {
            "states_raw": self.n_raw,
            "states_minimal": self.n_minimal,
            "states_minimal_trimmed": self.n_minimal_trimmed,
            "closed": self.closed,
            "agreement": self.agreement,
            "fidelity": None
            if self.fidelity is None
            else {str(k): v for k, v in self.fidelity.items()},
            "conflicts": dict(self.conflicts),
            "undefined": self.undefined,
            "settings": jsonable(self.settings),
            "machine": to_dict(self.minimal),
        }
        if quotient:
            out["quotient"] = to_dict(self.machine)
        if labels:
            out["labels"] = self.labels.tolist()
        return out


def lexicographic_order(states: StateSet) -> np.ndarray:
    """Node indices sorted by their words as strings (a prefix before its extensions: "", "0", "00",
    "01", "1", ...), the visiting order of the paper's code (it sorts its label strings)."""
    words, _ = states.words_matrix()
    if words.shape[1] == 0:
        return np.arange(states.n_nodes)
    return np.lexsort(words.T[::-1])


# -- checking a candidate against the network ------------------------------------------------------
@dataclass
class _Candidate:
    labels: np.ndarray
    machine: Machine
    stats: QuotientStats
    minimal: Machine | None  # None until finished (open candidates are finished only when needed)
    agreement: float | None
    heldout: float | None
    entry: dict[str, Any]


class _Checker:
    """Builds and scores quotients of one state set; caches the network's answers on held-out
    words."""

    def __init__(
        self,
        states: StateSet,
        probe: Probe | None,
        *,
        include_empty: bool,
        tolerance: float,
        seed: int,
        holdout_len: int,
        holdout_words: int,
    ) -> None:
        self.states = states
        self.probe = probe
        self.include_empty = include_empty
        self.tolerance = tolerance
        self.seed = seed
        self.holdout_len = holdout_len
        self.holdout_words = holdout_words
        self.pred = states.predicted
        depth = states.depth
        self.order = None if np.all(depth[1:] >= depth[:-1]) else np.argsort(depth, kind="stable")
        sorted_depth = depth if self.order is None else depth[self.order]
        self.bounds = np.searchsorted(sorted_depth, np.arange(int(depth.max()) + 2))
        voters = np.ones(states.n_nodes, dtype=bool)
        if not include_empty:
            voters &= states.parent >= 0
        self.voters = voters
        self._held: tuple[np.ndarray, np.ndarray] | None = None

    def tree_outputs(self, m: Machine) -> np.ndarray:
        """Output of ``m`` on every collected word, one vectorised step per depth level."""
        st = self.states
        state = np.empty(st.n_nodes, dtype=np.int64)
        delta = m.delta
        for level in range(len(self.bounds) - 1):
            a, b = int(self.bounds[level]), int(self.bounds[level + 1])
            if a == b:
                continue
            nodes = slice(a, b) if self.order is None else self.order[a:b]
            if level == 0:
                state[nodes] = m.start
            else:
                state[nodes] = delta[state[st.parent[nodes]], st.symbol[nodes]]
        return m.output[state]

    def agreement(self, m: Machine) -> float:
        out = self.tree_outputs(m)
        v = self.voters
        n = int(v.sum())
        return 1.0 if n == 0 else float(np.count_nonzero(out[v] == self.pred[v])) / n

    def heldout(self, m: Machine) -> float | None:
        if self.probe is None or self.holdout_words <= 0:
            return None
        if self._held is None:
            rng = np.random.default_rng(self.seed + 1)
            words = rng.integers(0, m.n_symbols, size=(self.holdout_words, self.holdout_len))
            self._held = (words, predict(self.probe, words))
        words, net = self._held
        return float(np.mean(run(m, words) == net))

    def evaluate(
        self, labels: np.ndarray, entry: dict[str, Any], names: bool = False, lazy: bool = False
    ) -> _Candidate:
        """Quotient of ``labels``; minimised and scored at once unless ``lazy`` and open."""
        machine, stats = build_quotient(
            self.states, labels, include_empty=self.include_empty, names=names
        )
        entry.update(n_clusters=machine.n_states, closed=stats.closed)
        cand = _Candidate(labels, machine, stats, None, None, None, entry)
        if stats.closed or not lazy:
            self.finish(cand)
        return cand

    def finish(self, c: _Candidate) -> _Candidate:
        """Minimise a candidate and measure its agreement (and held-out agreement when closed)."""
        if c.minimal is not None:
            return c
        machine, minimal = minimal_of(c.machine, c.stats, self.states, self.include_empty)
        c.machine, c.minimal = machine, minimal
        c.agreement = self.agreement(minimal)
        c.heldout = self.heldout(minimal) if c.stats.closed else None
        c.entry.update(
            n_minimal=minimal.n_states,
            agreement=round(c.agreement, 6),
            heldout=None if c.heldout is None else round(c.heldout, 6),
        )
        return c

    def consistent(self, c: _Candidate, heldout: bool = False) -> bool:
        """Closed and reproduces the network on the collected words (and, with ``heldout``, on the
        held-out words), within the tolerance."""
        ok = 1.0 - self.tolerance - 1e-12
        if not c.stats.closed:
            return False
        self.finish(c)
        assert c.agreement is not None
        if c.agreement < ok:
            return False
        return not heldout or c.heldout is None or c.heldout >= ok

    def pick(self, cands: Sequence[_Candidate]) -> _Candidate | None:
        """The first consistent candidate whose held-out agreement is within one word (or the
        tolerance) of the best consistent one: a network that does not generalise perfectly to
        longer words caps the held-out agreement of every candidate alike."""
        ok = [c for c in cands if self.consistent(c)]
        if not ok:
            return None
        held = [c.heldout for c in ok if c.heldout is not None]
        if not held:
            return ok[0]
        slack = max(self.tolerance, 1.0 / max(self.holdout_words, 1)) + 1e-12
        top = max(held)
        return next(c for c in ok if c.heldout is None or c.heldout >= top - slack)

    def score(self, c: _Candidate) -> tuple[Any, ...]:
        """Ranking of candidates when none is consistent: closed, then the worst agreement, then
        fewer states."""
        self.finish(c)
        assert c.minimal is not None and c.agreement is not None
        worst = min(c.agreement, 1.0 if c.heldout is None else c.heldout)
        return (c.stats.closed, worst, -c.minimal.n_states, -c.machine.n_states)


# -- the public function ---------------------------------------------------------------------------
def extract(
    source: Probe | StateSet,
    *,
    max_len: int = 10,
    method: str | None = None,
    eps: float | None = None,
    relative: bool = True,
    scale: float | None = None,
    seed: int = 0,
    include_empty: bool = False,
    k_range: Iterable[int] | None = None,
    order: str | Sequence[int] = "bfs",
    tolerance: float = 0.0,
    fidelity_lengths: Sequence[int] = FIDELITY_LENGTHS,
    fidelity_words: int = 256,
    holdout_words: int = 256,
    max_states: int | None = None,
    progress: bool = False,
    **options: Any,
) -> Extraction:
    """Extract the automaton a recurrent network implements.

    Parameters
    ----------
    source : Probe or StateSet
        A probed network (its states are collected on every word up to ``max_len``), or states
        collected already (then ``max_len`` is ignored and no fidelity or held-out check is
        possible).
    max_len : int, default 10
        Longest word collected (the paper uses all words up to length 10: 2,047 states over 2
        symbols).
    method : {None, "leader", "threshold", "agglomerative", "kmeans", "hdbscan", "dbscan"}
        Clustering method (see :func:`dfalens.probes.cluster`). None (default) runs the default
        strategy below, or ``threshold`` at ``eps`` when ``eps`` is given.
    eps : float, optional
        Merge distance; relative to the states' scale unless ``relative=False``. Default per method
        (0.01 for the threshold methods, the paper's cutoff).
    relative : bool, default True
        Interpret ``eps`` as a multiple of ``scale``.
    scale : float, optional
        Unit of a relative eps; default the norm of the per-unit std of the collected states. A
        timeline passes one scale pooled over all checkpoints.
    seed : int, default 0
        Seeds k-means and the random words of the held-out and fidelity checks.
    include_empty : bool, default False
        Let the empty word's output count (its vote in the quotient and in ``agreement``). Off by
        default: a network's output before any input is usually untrained.
    k_range : iterable of int, optional
        k values for ``method="kmeans"`` and the fallback of the default strategy (default 2..32);
        the smallest k whose quotient is closed and consistent wins. Pass ``n_clusters=k`` for a
        single k.
    order : "bfs", "lexicographic" or sequence of int, default "bfs"
        Visiting order of ``leader``: breadth-first (shorter words first, then by symbol indices),
        the paper code's string order, or an explicit permutation of the nodes.
    tolerance : float, default 0.0
        Fraction of words on which a candidate may disagree with the network and still count as
        consistent (in the default strategy and the k sweep).
    fidelity_lengths : sequence of int, default (100, 1000)
        Lengths of the random words for :attr:`Extraction.fidelity` (empty: skip).
    fidelity_words : int, default 256
        Random words per fidelity length.
    holdout_words : int, default 256
        Random words of length ``2 x max_len`` in the consistency check (0: only the collected
        words).
    max_states : int, optional
        Collection budget (see :func:`dfalens.probes.collect`).
    progress : bool, default False
        Progress bar while collecting.
    **options
        Passed to :func:`dfalens.probes.cluster` (``n_clusters``, ``linkage``, ``min_samples``,
        ``min_cluster_size``).

    Returns
    -------
    Extraction

    Notes
    -----
    **Default strategy** (``method=None`` and no ``eps``). Networks trained with Adam or by other
    code often keep equivalent states apart (redundant states) or let states drift slowly with
    length, so one fixed small ε can leave the quotient open. The strategy over-clusters, minimises
    and widens:

    1. One leader cover of radius ``0.005 x scale`` and one computation of the distances between
       leaders serve every step of the ladder :data:`EPS_LADDER` (0.01 to 1 x scale, geometric).
    2. At each ε: threshold clustering (connected components, exact), the majority quotient, its
       minimal machine. A step whose partition equals the previous one is skipped.
    3. A candidate is *consistent* when the quotient is closed and its minimal machine gives the
       network's class on every collected non-empty word (within ``tolerance``). It is also checked
       on 256 random words of length ``2 x max_len`` that were not collected (*held-out*).
    4. The ladder stops at the first consistent candidate that also matches every held-out word.
       Else the smallest ε whose consistent candidate is within one held-out word of the best
       consistent one wins: a network that errs on some longer words caps every candidate's held-out
       agreement alike, and that is the network's limit, not the automaton's.
    5. If no ε is consistent, k-means over ``k_range`` (smallest k first) with the same tests.
    6. If nothing is consistent, the candidate with the best (closed, worst agreement, fewest
       minimal states) is returned with ``settings["consistent"] = False``.

    ``settings`` records the method and parameters settled on, and ``settings["trace"]`` every
    candidate tried with its cluster count, closure, agreement and held-out agreement.

    Examples
    --------
    >>> import dfalens as dl                                              # doctest: +SKIP
    >>> probe = dl.probes.from_module(gru, readout=head, alphabet="01")   # doctest: +SKIP
    >>> ex = dl.extract(probe)                                            # doctest: +SKIP
    >>> ex.n_raw, ex.n_minimal, ex.closed, ex.settings["method"]          # doctest: +SKIP
    (6, 5, True, 'threshold')
    """
    if method is not None and method not in METHODS:
        raise ConfigError(
            f"unknown clustering method {method!r}; choose one of {', '.join(METHODS)} "
            "(or leave it unset for the default strategy)"
        )
    if not 0.0 <= tolerance < 1.0:
        raise ConfigError(f"tolerance must be in [0, 1), got {tolerance}")
    probe: Probe | None
    if isinstance(source, StateSet):
        states, probe = source, None
        max_len = int(states.depth.max())
    elif isinstance(source, Probe):
        probe = source
        if probe.n_classes == 0:
            raise ConfigError(
                "the probe has no readout, so its states have no outputs to extract; build it with "
                "readout=..."
            )
        kwargs: dict[str, Any] = {"progress": progress}
        if max_states is not None:
            kwargs["max_states"] = max_states
        states = collect(probe, max_len, **kwargs)
    else:
        raise ConfigError(
            f"extract takes a Probe or a StateSet, got {type(source).__name__}; wrap a torch "
            "module with dfalens.probes.from_module(rnn, readout=..., alphabet=...)"
        )
    x = _as_array(states)
    moments = _moments(x)
    unit = moments.scale if scale is None else float(scale)
    if relative and (not np.isfinite(unit) or unit < 0):
        raise ConfigError(f"scale must be a finite number >= 0, got {unit}")
    checker = _Checker(
        states,
        probe,
        include_empty=include_empty,
        tolerance=tolerance,
        seed=seed,
        holdout_len=max(2 * max_len, 1),
        holdout_words=holdout_words,
    )
    base = {
        "relative": relative,
        "scale": unit,
        "max_len": max_len,
        "include_empty": include_empty,
        "seed": seed,
    }
    if method is None and eps is None:
        best, settings = _auto(x, moments, unit, checker, k_range, seed)
    elif method == "kmeans" and "n_clusters" not in options:
        best, settings = _k_sweep(x, checker, k_range, seed, [])
    else:
        method = method or "threshold"
        best, settings = _fixed(
            x, states, moments, unit, checker, method, eps, relative, order, seed, options
        )
    settings = {**base, **settings}
    if not relative and settings.get("eps_abs") is not None:
        settings["eps"] = settings["eps_abs"]
    final = checker.finish(best)
    assert final.minimal is not None and final.agreement is not None
    if final.machine.state_names is None and final.machine.n_states <= MAX_NAMED_STATES:
        # candidates of a sweep are built without names
        m = final.machine
        names = _state_names(states, final.labels, m.n_states, 3)
        named = Machine(m.delta, m.output, m.start, m.alphabet, names)
        final = _Candidate(
            final.labels,
            named,
            final.stats,
            final.minimal,
            final.agreement,
            final.heldout,
            final.entry,
        )
    fidelity = None
    if final.stats.closed and probe is not None and len(fidelity_lengths):
        fidelity = _fidelity(probe, final.minimal, fidelity_lengths, fidelity_words, seed)
    return Extraction(
        labels=final.labels,
        machine=final.machine,
        minimal=final.minimal,
        closed=final.stats.closed,
        conflicts={
            "transitions": final.stats.transition_conflicts,
            "outputs": final.stats.output_conflicts,
            "edges": final.stats.n_edges,
            "voters": final.stats.n_voters,
        },
        undefined=final.stats.undefined,
        agreement=final.agreement,
        fidelity=fidelity,
        settings=settings,
        n_raw=final.machine.n_states,
        n_minimal=final.minimal.n_states,
        # a minimal machine has at most one dead state (automata's one definition, no re-minimising)
        n_minimal_trimmed=final.minimal.n_states - int(dead_states(final.minimal).any()),
    )


def _fidelity(
    probe: Probe, m: Machine, lengths: Sequence[int], n_words: int, seed: int
) -> dict[int, float]:
    rng = np.random.default_rng(seed + 2)
    out: dict[int, float] = {}
    for length in lengths:
        words = rng.integers(0, m.n_symbols, size=(n_words, int(length)))
        out[int(length)] = float(np.mean(run(m, words) == predict(probe, words)))
    return out


def _fixed(
    x: np.ndarray,
    states: StateSet,
    moments: Moments,
    unit: float,
    checker: _Checker,
    method: str,
    eps: float | None,
    relative: bool,
    order: str | Sequence[int],
    seed: int,
    options: dict[str, Any],
) -> tuple[_Candidate, dict[str, Any]]:
    visit: np.ndarray | None = None
    if method == "leader":
        if isinstance(order, str):
            if order not in ("bfs", "lexicographic"):
                raise ConfigError(
                    f"order must be 'bfs', 'lexicographic' or a permutation, got {order!r}"
                )
            visit = lexicographic_order(states) if order == "lexicographic" else None
        else:
            visit = np.asarray(order, dtype=np.int64)
    settings: dict[str, Any] = {"method": method, "strategy": "fixed"}
    if method == "kmeans":
        settings["eps"] = settings["eps_abs"] = None
        settings["n_clusters"] = int(options["n_clusters"])
    else:
        if eps is None:
            eps = DEFAULT_EPS[method]
        settings["eps"] = float(eps)
        settings["eps_abs"] = _eps_abs(eps, relative, unit)
    if method == "leader":
        settings["order"] = order if isinstance(order, str) else "custom"
    settings.update({k: v for k, v in options.items() if k != "n_clusters"})
    if visit is not None and (
        visit.shape != (x.shape[0],) or not np.array_equal(np.sort(visit), np.arange(x.shape[0]))
    ):
        raise ConfigError("order must be a permutation of the state indices")
    # the extraction core (shared with the timeline); the cover methods reuse the moments
    labels = cluster_fixed(
        x, method, settings["eps_abs"], order=visit, moments=moments, seed=seed, options=options
    )
    entry = {k: settings.get(k) for k in ("method", "eps", "n_clusters") if k in settings}
    cand = checker.evaluate(labels, entry, names=True)
    settings["consistent"] = checker.consistent(cand)
    settings["heldout"] = cand.heldout
    settings["trace"] = [cand.entry]
    return cand, settings


def _k_sweep(
    x: np.ndarray,
    checker: _Checker,
    k_range: Iterable[int] | None,
    seed: int,
    earlier: list[_Candidate],
) -> tuple[_Candidate, dict[str, Any]]:
    ks = sorted({int(k) for k in (DEFAULT_K_RANGE if k_range is None else k_range)})
    if not ks or ks[0] < 1:
        raise ConfigError("k_range must hold positive integers")
    n = x.shape[0]
    tried: list[_Candidate] = []
    for k in ks:
        if k > n:
            break
        labels = cluster(x, "kmeans", n_clusters=k, seed=seed)
        cand = checker.evaluate(labels, {"method": "kmeans", "n_clusters": k}, lazy=True)
        tried.append(cand)
        if checker.consistent(cand, heldout=True):
            return cand, _settings_of(cand, earlier + tried, "k-sweep", checker)
    if not tried and not earlier:
        raise ConfigError(f"k_range {ks[0]}..{ks[-1]} has no k <= {n}, the number of states")
    chosen = checker.pick(tried) or max(earlier + tried, key=checker.score)
    return chosen, _settings_of(chosen, earlier + tried, "k-sweep", checker)


def _settings_of(
    cand: _Candidate, tried: list[_Candidate], strategy: str, checker: _Checker
) -> dict[str, Any]:
    entry = cand.entry
    out: dict[str, Any] = {
        "method": entry["method"],
        "strategy": strategy,
        "eps": entry.get("eps"),
        "eps_abs": entry.get("eps_abs"),
        "consistent": checker.consistent(cand),
        "heldout": entry.get("heldout"),
        "trace": [c.entry for c in tried],
    }
    if entry["method"] == "kmeans":
        out["n_clusters"] = entry["n_clusters"]
    return out


def _auto(
    x: np.ndarray,
    moments: Moments,
    unit: float,
    checker: _Checker,
    k_range: Iterable[int] | None,
    seed: int,
) -> tuple[_Candidate, dict[str, Any]]:
    tried: list[_Candidate] = []
    skipped: list[dict[str, Any]] = []
    ladder = None
    previous = -1
    for rel in EPS_LADDER:
        eps_abs = rel * unit
        if ladder is None:
            try:
                cover = leader_cover(x, eps_abs / 2, moments=moments)
            except BudgetError:
                skipped.append({"method": "threshold", "eps": rel, "skipped": "not merged"})
                continue
            ladder = ThresholdLadder(x, cover, max_eps=EPS_LADDER[-1] * unit)
        labels = canonical_labels(ladder.labels(eps_abs))
        n_clusters = int(labels.max()) + 1
        if n_clusters == previous:
            continue
        previous = n_clusters
        cand = checker.evaluate(
            labels, {"method": "threshold", "eps": rel, "eps_abs": eps_abs}, lazy=True
        )
        tried.append(cand)
        if checker.consistent(cand, heldout=True):
            break
        if n_clusters == 1:
            break
    chosen = checker.pick(tried)
    if chosen is not None:
        settings = _settings_of(chosen, tried, "auto", checker)
    else:
        chosen, settings = _k_sweep(x, checker, k_range, seed, tried)
        settings["strategy"] = "auto"
    settings["trace"] = skipped + settings["trace"]
    return chosen, settings
