"""Extraction: a probed network (or its collected states) to a quotient machine and its minimal
automaton.

:func:`extract` collects the network's states on every word up to ``max_len``, clusters them, builds
the majority-vote quotient (:func:`dfalens.probes.quotient`), minimises it, and checks the result
against the network: on the collected words, on held-out random words, on the user's words when given,
and, when the quotient is closed, on long random words (fidelity). :attr:`Extraction.consistent` says
whether the machine reproduces the network on every word it was checked on.

With no ``method`` it runs the default strategy (see :func:`extract`): threshold clustering over an
increasing ε ladder that reuses one leader cover, stopping at the first closed quotient whose
minimal machine reproduces the network, with a k-means sweep as fallback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from dfalens.automata import Machine, dead_states
from dfalens.errors import ConfigError
from dfalens.probes._blackbox_path import learn_path
from dfalens.probes._checking import Candidate, Checker, given_words
from dfalens.probes._eps import accepts_relative, pick_eps
from dfalens.probes._result import Extraction
from dfalens.probes._strategy import (
    DEFAULT_K_RANGE as DEFAULT_K_RANGE,
)
from dfalens.probes._strategy import (
    EPS_LADDER,
    _auto,
    _fixed,
    _k_sweep,
    lexicographic_order,
)
from dfalens.probes.blackbox import Classifier
from dfalens.probes.clustering import METHODS, _as_array, _moments
from dfalens.probes.collection import DEFAULT_MAX_STATES, collect_for_extraction
from dfalens.probes.evidence import Evidence, WordSample
from dfalens.probes.hooks import PrefixProbe
from dfalens.probes.probe import Probe
from dfalens.probes.quotients import (
    MAX_NAMED_STATES,
    _state_names,
)
from dfalens.probes.stateset import StateSet

__all__ = ["Extraction", "extract", "EPS_LADDER", "lexicographic_order", "empty_word_counts"]

FIDELITY_LENGTHS = (100, 1000)


def empty_word_counts(source: object, include_empty: bool | None = None) -> bool:
    """Whether the network's output on the empty word counts (``include_empty=None``: auto).

    The empty word is a trained word when the network reads a start symbol first (a probe whose
    assumptions or :class:`PrefixProbe` name a ``bos``), so it counts; a network with no start
    symbol (and a classifier or a bare state set, where none is known) gives an output before any
    input that is usually untrained, so it does not. An explicit ``True``/``False`` wins.
    """
    if include_empty is not None:
        return bool(include_empty)
    if isinstance(source, Probe):
        return source.assumptions is not None and source.assumptions.bos is not None
    if isinstance(source, PrefixProbe):
        return source.bos is not None
    return False


# -- the public function ---------------------------------------------------------------------------
@accepts_relative
def extract(
    source: Probe | PrefixProbe | StateSet | Classifier,
    *,
    max_len: int = 10,
    method: str | None = None,
    eps: float | None = None,
    eps_abs: float | None = None,
    scale: float | None = None,
    seed: int = 0,
    include_empty: bool | None = None,
    k_range: Iterable[int] | None = None,
    order: str | Sequence[int] = "bfs",
    tolerance: float = 0.0,
    fidelity_lengths: Sequence[int] = FIDELITY_LENGTHS,
    fidelity_words: int = 256,
    holdout_words: int = 256,
    max_states: int | None = None,
    progress: bool = False,
    words: Sequence[str] | Sequence[Sequence[int]] | np.ndarray | None = None,
    n_clusters: int | None = None,
    linkage: str | None = None,
    min_samples: int | None = None,
    min_cluster_size: int | None = None,
) -> Extraction:
    """Extract the automaton a recurrent network implements.

    Parameters
    ----------
    source : Probe, PrefixProbe, StateSet or Classifier
        A probed network (its states are collected on every word up to ``max_len``), states
        collected already (then ``max_len`` is ignored and no fidelity or held-out check is
        possible), or a :class:`~dfalens.probes.Classifier` from
        :func:`~dfalens.probes.from_classifier` (a network with no left-to-right state:
        learned with active learning, :func:`~dfalens.probes.learn`; only ``max_len``,
        ``max_states``, ``seed``, ``include_empty``, ``tolerance``, ``words`` and the fidelity
        options apply; random check
        words have lengths up to ``2 x max_len`` and ``max_states`` bounds the hypothesis, default
        1000; ``consistent`` is False when a budget stopped the learner or a check word disagrees).
    max_len : int, default 10
        Longest word collected (the paper uses all words up to length 10: 2,047 states over 2
        symbols).
    method : {None, "leader", "threshold", "agglomerative", "kmeans", "hdbscan", "dbscan"}
        Clustering method (see :func:`dfalens.probes.cluster`). None (default) runs the default
        strategy below, or ``threshold`` at ``eps`` when ``eps`` is given.
    eps : float, optional
        Merge distance relative to the states' scale. Default per method (0.01 for the threshold
        methods, the paper's cutoff).
    eps_abs : float, optional
        Merge distance as an absolute Euclidean distance, instead of ``eps`` (give at most one).
        The ``relative=False`` of earlier versions is a deprecated spelling of this.
    scale : float, optional
        Unit of a relative eps; default the norm of the per-unit std of the collected states. A
        timeline passes one scale pooled over all checkpoints.
    seed : int, default 0
        Seeds k-means and the random words of the held-out and fidelity checks.
    include_empty : bool or None, default None
        Let the empty word's output count (its vote in the quotient, in ``agreement`` and in the
        verdicts). None (auto, see :func:`empty_word_counts`): it counts when the network reads a
        start symbol first (``bos``), where the empty word is a trained word; without one, a
        network's output before any input is usually untrained and is ignored. The value used is
        ``settings["include_empty"]``.
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
    words : sequence of str, sequence of int sequences, or int array, optional
        The network's own words (a validation set): the network's class on each is compared with the
        extracted machine (:attr:`Extraction.words_agreement`, part of :attr:`Extraction.consistent`
        and of the evidence for :func:`dfalens.probes.verdict`), and the held-out and fidelity words
        are drawn like them (held-out lengths from their lengths, symbols of both with their symbol
        frequencies) instead of uniformly. Strings are read as in
        :func:`dfalens.probes.encode_words`. Needs a Probe. With 8 or more symbols, or when all
        words up to ``max_len`` are over ``max_states`` or the memory budget, the states are
        collected on the words' prefixes and their one-symbol extensions
        (:func:`dfalens.probes.collect_extended`) instead; without words that case is refused
        (:class:`dfalens.errors.BudgetError`).
    n_clusters, linkage, min_samples, min_cluster_size
        Options of :func:`dfalens.probes.cluster` for the method they belong to (``n_clusters``:
        kmeans; ``linkage``: agglomerative; ``min_samples``: dbscan and hdbscan;
        ``min_cluster_size``: hdbscan). Giving one to another method is an error.

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
    3. A candidate is *consistent* when its minimal machine gives the network's class on every
       collected non-empty word, on 256 random words of length ``2 x max_len`` that were not
       collected (*held-out*) and on every given word (each within ``tolerance``), and is not a
       one-class machine for a network that gives several classes on those words.
    4. The ladder stops at the first closed consistent candidate.
    5. If none, and no closed candidate reproduces the collected words, k-means over ``k_range``
       (smallest k first), stopping likewise.
    6. If no candidate is consistent and a network can be asked: *refinement*
       (:func:`dfalens.probes.refine`). The chosen candidate's partition (or the closed one that
       scores best, or one cluster) is split by the network's classes on distinguishing suffixes
       of counterexamples until the quotient reproduces every checked word, or a budget (40
       counterexamples, 2,000 clusters) stops it. ``settings["path"]`` is
       ``"white-box+refined"`` when the refined partition is the result (when it is consistent,
       or closed and ranks above the candidate of step 7 by the score below, e.g. right on every
       short word where the network errs only on long fidelity words), and
       ``settings["refinement"]`` records the rounds, suffixes and why it stopped.
       Counterexamples are the shortest disagreeing words among the collected, held-out, given
       and fidelity words no longer than 4 x ``max_len``, and pumped collected words (segments
       repeated, which reach where a machine fitted to a counting network fails); a refined
       result fits those by construction, so a fresh draw of pumped words, never used as
       counterexamples, is added to the checked words (``evidence`` holds it) and every
       consistency decision after refinement must also pass it. Longer fidelity words are never
       counterexamples but still count against consistency.
    7. The result, among all candidates tried: the first closed consistent one; else the
       consistent open one with the fewest states; else the first closed candidate that reproduces
       the collected words with held-out agreement within one word of the best such (a network that
       errs on some longer words caps every candidate's held-out agreement alike), reported with
       ``consistent=False``; else the best by (not one-class, worst agreement on the collected,
       held-out and given words, closed, worst fidelity, fewest states), also
       ``consistent=False``. A consistent candidate always ranks above an
       inconsistent one, closed or not.

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
    eps, relative = pick_eps(eps, eps_abs)
    if method is not None and method not in METHODS:
        raise ConfigError(
            f"unknown clustering method {method!r}; choose one of {', '.join(METHODS)} "
            "(or leave it unset for the default strategy)"
        )
    if not 0.0 <= tolerance < 1.0:
        raise ConfigError(f"tolerance must be in [0, 1), got {tolerance}")
    include_empty = empty_word_counts(source, include_empty)
    if isinstance(source, Classifier):
        return _black_box(
            source,
            max_len,
            method,
            eps,
            seed,
            include_empty,
            tolerance,
            max_states,
            words,
            (fidelity_lengths, fidelity_words),
        )
    options = _cluster_options(
        method,
        eps,
        n_clusters=n_clusters,
        linkage=linkage,
        min_samples=min_samples,
        min_cluster_size=min_cluster_size,
    )
    probe: Probe | PrefixProbe | None
    if isinstance(source, StateSet):
        if words is not None:
            raise ConfigError(
                "words= needs the network to answer them; pass the Probe instead of a StateSet"
            )
        states, probe = source, None
        max_len = int(states.depth.max())
    elif isinstance(source, Probe | PrefixProbe):
        probe = source
        if probe.n_classes == 0:
            raise ConfigError(
                "the probe has no readout, so its states have no outputs to extract; build it with "
                "readout=..."
            )
    else:
        raise ConfigError(
            f"extract takes a Probe, a StateSet or a Classifier, got {type(source).__name__}; wrap a torch "
            "module with dfalens.probes.from_module(rnn, readout=..., alphabet=...)"
        )
    given: WordSample | None = None
    if words is not None and probe is not None:
        given = given_words(probe, words, include_empty)
    collection = "given states"
    if probe is not None:
        states, collection = collect_for_extraction(
            probe,
            max_len,
            words,
            max_states=DEFAULT_MAX_STATES if max_states is None else max_states,
            progress=progress,
        )
    x = _as_array(states)
    moments = _moments(x)
    unit = moments.scale if scale is None else float(scale)
    if relative and (not np.isfinite(unit) or unit < 0):
        raise ConfigError(f"scale must be a finite number >= 0, got {unit}")
    checker = Checker(
        states,
        probe,
        include_empty=include_empty,
        tolerance=tolerance,
        seed=seed,
        holdout_len=max(2 * max_len, 1),
        holdout_words=holdout_words,
        given=given,
        fidelity_lengths=fidelity_lengths,
        fidelity_words=fidelity_words,
    )
    base = {
        "relative": relative,
        "scale": unit,
        "max_len": max_len,
        "include_empty": include_empty,
        "seed": seed,
        "words": None if given is None else int(given.lengths.shape[0]),
        "collection": collection,
        "collected": int(states.n_nodes),
        "path": "white-box",
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
    if not relative:
        settings["eps"] = None  # eps is relative; the absolute distance is settings["eps_abs"]
    final = checker.finish(best)
    assert final.minimal is not None and final.agreement is not None
    consistent = checker.reproduces(final)
    settings["consistent"] = consistent
    if final.machine.state_names is None and final.machine.n_states <= MAX_NAMED_STATES:
        # candidates of a sweep are built without names
        m = final.machine
        names = _state_names(states, final.labels, m.n_states, 3)
        named = Machine(m.delta, m.output, m.start, m.alphabet, names)
        final = Candidate(
            final.labels,
            named,
            final.stats,
            final.minimal,
            final.agreement,
            final.heldout,
            final.entry,
            final.words,
            final.long,
        )
    fidelity = None
    samples = [s for s in (checker.held(), given, *checker.long(), *checker.extra) if s is not None]
    if final.stats.closed and final.long is not None:
        fidelity = dict(final.long)
    evidence = Evidence(
        parent=states.parent,
        symbol=states.symbol,
        depth=states.depth,
        tree_network=checker.pred,
        samples=tuple(samples),
        alphabet=tuple(states.alphabet),
        include_empty=include_empty,
    )
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
        # a minimal machine has at most one dead state (automata's one definition)
        n_minimal_trimmed=final.minimal.n_states - int(dead_states(final.minimal).any()),
        consistent=consistent,
        words_agreement=final.words,
        evidence=evidence,
    )


_OPTION_METHODS = {
    "n_clusters": ("kmeans",),
    "linkage": ("agglomerative",),
    "min_samples": ("dbscan", "hdbscan"),
    "min_cluster_size": ("hdbscan",),
}


def _cluster_options(method: str | None, eps: float | None, **given: Any) -> dict[str, Any]:
    """The clustering options that were given, each checked against the method it belongs to."""
    options = {k: v for k, v in given.items() if v is not None}
    effective = method or ("threshold" if eps is not None else None)
    for name in options:
        allowed = _OPTION_METHODS[name]
        if effective not in allowed:
            which = "the default strategy" if effective is None else f"method={effective!r}"
            raise ConfigError(
                f"{name} applies to method={' or '.join(repr(m) for m in allowed)}, not to "
                f"{which}; drop it or choose that method"
            )
    return options


def _black_box(
    clf: Classifier,
    max_len: int,
    method: str | None,
    eps: float | None,
    seed: int,
    include_empty: bool,
    tolerance: float,
    max_states: int | None,
    words: Any,
    fidelity: tuple[Sequence[int], int],
) -> Extraction:
    """The black-box path: learn the classifier, wrap the result as an Extraction."""
    if method is not None or eps is not None:
        raise ConfigError(
            "method and eps choose a clustering of hidden states; a Classifier has none, so drop "
            "them (it is learned with L*)"
        )
    res = learn_path(
        clf,
        words=words,
        max_len=max_len,
        max_states=max_states,
        seed=seed,
        include_empty=include_empty,
        tolerance=tolerance,
        fidelity_lengths=fidelity[0],
        fidelity_words=fidelity[1],
    )
    m = res.learned.machine
    settings = {
        "max_len": max_len,
        "include_empty": include_empty,
        "seed": seed,
        "words": None if words is None else len(clf.encode(words)),
        **res.settings,
        "consistent": res.consistent,
    }
    return Extraction(
        labels=np.zeros(0, dtype=np.int64),
        machine=m,
        minimal=m,
        closed=True,
        conflicts={},
        undefined=0,
        agreement=res.agreement,
        fidelity=res.fidelity,
        settings=settings,
        n_raw=m.n_states,
        n_minimal=m.n_states,
        n_minimal_trimmed=m.n_states - int(dead_states(m).any()),
        consistent=res.consistent,
        words_agreement=res.words_agreement,
        evidence=res.evidence,
    )
