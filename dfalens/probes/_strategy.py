"""The default strategy of :func:`dfalens.probes.extract` and its fixed-method and k-means paths
(private; used by :mod:`dfalens.probes.extraction`): the ε ladder over one leader cover, the k-means
sweep, refinement of an inconsistent choice, and the settings each records."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from dfalens.errors import BudgetError, ConfigError
from dfalens.probes._checking import Candidate, Checker
from dfalens.probes._core import cluster_fixed
from dfalens.probes._costs import check_cluster
from dfalens.probes.clustering import (
    DEFAULT_EPS,
    Moments,
    ThresholdLadder,
    _eps_abs,
    canonical_labels,
    cluster,
    leader_cover,
)
from dfalens.probes.evidence import word_text
from dfalens.probes.refinement import refine
from dfalens.probes.stateset import StateSet

__all__ = ["EPS_LADDER", "DEFAULT_K_RANGE", "lexicographic_order"]

EPS_LADDER = (0.01, 0.0178, 0.0316, 0.0562, 0.1, 0.178, 0.316, 0.562, 1.0)
"""Relative ε values the default strategy tries, smallest first (geometric, 0.01 to 1)."""

DEFAULT_K_RANGE = range(2, 33)
"""k values of the k-means fallback and of ``method="kmeans"`` without ``k_range``."""


def lexicographic_order(states: StateSet) -> np.ndarray:
    """Node indices sorted by their words as strings (a prefix before its extensions: "", "0", "00",
    "01", "1", ...), the visiting order of the paper's code (it sorts its label strings)."""
    words, _ = states.words_matrix()
    if words.shape[1] == 0:
        return np.arange(states.n_nodes)
    return np.lexsort(words.T[::-1])


def _fixed(
    x: np.ndarray,
    states: StateSet,
    moments: Moments,
    unit: float,
    checker: Checker,
    method: str,
    eps: float | None,
    relative: bool,
    order: str | Sequence[int],
    seed: int,
    options: dict[str, Any],
) -> tuple[Candidate, dict[str, Any]]:
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
    settings["consistent"] = checker.reproduces(cand)
    settings["heldout"] = cand.heldout
    settings["trace"] = [cand.entry]
    return cand, settings


def _k_sweep(
    x: np.ndarray,
    checker: Checker,
    k_range: Iterable[int] | None,
    seed: int,
    earlier: list[Candidate],
) -> tuple[Candidate, dict[str, Any]]:
    ks = sorted({int(k) for k in (DEFAULT_K_RANGE if k_range is None else k_range)})
    if not ks or ks[0] < 1:
        raise ConfigError("k_range must hold positive integers")
    n = x.shape[0]
    tried: list[Candidate] = []
    for k in ks:
        if k > n:
            break
        try:
            labels = cluster(x, "kmeans", n_clusters=k, seed=seed)
        except BudgetError:  # refused before allocating; keep what was tried, if anything
            if not tried and not earlier:
                raise
            break
        cand = checker.evaluate(labels, {"method": "kmeans", "n_clusters": k}, lazy=True)
        tried.append(cand)
        if checker.accepts(cand):
            return cand, _settings_of(cand, earlier + tried, "k-sweep", checker)
    if not tried and not earlier:
        raise ConfigError(f"k_range {ks[0]}..{ks[-1]} has no k <= {n}, the number of states")
    chosen = checker.choose(earlier + tried)
    return chosen, _settings_of(chosen, earlier + tried, "k-sweep", checker)


def _settings_of(
    cand: Candidate, tried: list[Candidate], strategy: str, checker: Checker
) -> dict[str, Any]:
    entry = cand.entry
    out: dict[str, Any] = {
        "method": entry["method"],
        "strategy": strategy,
        "eps": entry.get("eps"),
        "eps_abs": entry.get("eps_abs"),
        "consistent": checker.reproduces(cand),
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
    checker: Checker,
    k_range: Iterable[int] | None,
    seed: int,
) -> tuple[Candidate, dict[str, Any]]:
    tried: list[Candidate] = []
    skipped: list[dict[str, Any]] = []
    ladder = None
    previous = -1
    for rel in EPS_LADDER:
        eps_abs = rel * unit
        if ladder is None:
            try:
                check_cluster("threshold", *x.shape)
            except BudgetError as exc:  # no eps fits: on to k-means (checked likewise)
                skipped.append({"method": "threshold", "skipped": f"over budget: {exc}"})
                break
            try:
                cover = leader_cover(x, eps_abs / 2, moments=moments)
            except BudgetError:
                skipped.append({"method": "threshold", "eps": rel, "skipped": "not merged"})
                continue
            ladder = ThresholdLadder(x, cover, max_eps=EPS_LADDER[-1] * unit)
        try:
            labels = canonical_labels(ladder.labels(eps_abs))
        except BudgetError as exc:  # a larger eps only needs more: on to k-means
            skipped.append({"method": "threshold", "eps": rel, "skipped": f"over budget: {exc}"})
            break
        n_clusters = int(labels.max()) + 1
        if n_clusters == previous:
            continue
        previous = n_clusters
        cand = checker.evaluate(
            labels, {"method": "threshold", "eps": rel, "eps_abs": eps_abs}, lazy=True
        )
        tried.append(cand)
        if checker.accepts(cand):
            break
        if n_clusters == 1:
            break
    if any(checker.accepts(c) for c in tried) or checker.pick(tried) is not None:
        chosen = checker.choose(tried)
        settings = _settings_of(chosen, tried, "auto", checker)
    else:
        chosen, settings = _k_sweep(x, checker, k_range, seed, tried)
        settings["strategy"] = "auto"
    settings["trace"] = skipped + settings["trace"]
    if checker.probe is not None and not checker.reproduces(chosen):
        chosen, settings = _refined(checker, chosen, tried, settings)
    return chosen, settings


def _refined(
    checker: Checker, chosen: Candidate, tried: list[Candidate], settings: dict[str, Any]
) -> tuple[Candidate, dict[str, Any]]:
    """Refine the chosen partition (a closed one) by the network's answers; the refined candidate
    is the result when it is consistent, or closed and better by :meth:`Checker.score` (worst
    agreement on the collected, held-out and given words first) than the chosen one."""
    closed = [c for c in tried if c.stats.closed]
    if chosen.stats.closed:
        start = chosen.labels
    elif closed:
        start = max(closed, key=checker.score).labels
    else:
        start = np.zeros(checker.states.n_nodes, dtype=np.int64)
    cand, info = refine(checker, start)
    settings["refinement"] = {
        "rounds": info.rounds,
        "suffixes": [_short(word_text(s, tuple(checker.states.alphabet))) for s in info.suffixes],
        "stopped": info.stopped,
        "start_clusters": info.start_clusters,
        "clusters": cand.machine.n_states,
    }
    settings["trace"] = settings["trace"] + [cand.entry]
    ok = checker.reproduces(cand)
    if not ok and not (cand.stats.closed and checker.score(cand) > checker.score(chosen)):
        # an unfinished refinement that explains no more than the clustering it started from
        settings["consistent"] = checker.reproduces(chosen)  # validation words may have been added
        return chosen, settings
    settings.update(path="white-box+refined", consistent=ok, heldout=cand.heldout)
    return cand, settings


def _short(text: str | None, limit: int = 40) -> str | None:
    """A word's text, cut to ``limit`` characters with its length said."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"
