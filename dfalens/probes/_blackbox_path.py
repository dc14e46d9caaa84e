"""The black-box path of :func:`dfalens.probes.extract` (private): a :class:`Classifier` learned with
L* (:func:`dfalens.probes.learn`), its check words turned into :class:`Evidence`.

A classifier has no hidden states, so there is no prefix tree: the evidence holds an empty tree and
the learner's check words (the user's words first, then the random ones), each with the
classifier's label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dfalens.automata import Machine, minimize, run
from dfalens.probes._pumping import pump
from dfalens.probes.blackbox import Classifier, Learned, learn
from dfalens.probes.evidence import Evidence, WordSample
from dfalens.probes.wordlists import fidelity_samples, padded

__all__ = ["BlackBoxResult", "learn_path"]

PUMPED_WORDS = 512
"""Check words with segments repeated (see :mod:`dfalens.probes._pumping`) that validate the
learned machine: a sampling oracle alone passes a machine that counts only as far as the check
words go."""

DEFAULT_MAX_STATES = 1000
"""Largest hypothesis the black-box path builds unless ``max_states`` says otherwise."""


@dataclass(frozen=True, eq=False)
class BlackBoxResult:
    """What the black-box path found: the learner's result, its evidence and its scores."""

    learned: Learned
    evidence: Evidence
    agreement: float
    words_agreement: float | None
    fidelity: dict[int, float] | None
    consistent: bool
    settings: dict[str, Any]


def _samples(learned: Learned, n_given: int) -> tuple[WordSample, ...]:
    out = []
    for i, (arr, labels) in enumerate(learned.checked):
        lengths = (arr >= 0).sum(axis=1).astype(np.int64)
        name = "given" if i == 0 and n_given else "check"
        out.append(WordSample(name, arr.astype(np.int64), lengths, labels.astype(np.int64)))
    return tuple(out)


def _agreement(
    samples: tuple[WordSample, ...], learned: Learned, include_empty: bool
) -> tuple[int, int]:
    right = total = 0
    for s in samples:
        mask = np.ones(s.lengths.shape[0], dtype=bool) if include_empty else s.lengths > 0
        if not mask.any():
            continue
        out = run(learned.machine, s.words)
        right += int(np.count_nonzero((out == s.network)[mask]))
        total += int(mask.sum())
    return right, total


def _free_start(m: Machine, n_classes: int) -> Machine:
    """When no transition re-enters the start state, its output is the empty word's alone; with
    the empty word ignored it is a don't-care: the class that makes the minimal machine smallest
    (ties keep the learned one)."""
    if np.any(m.delta == m.start):
        return m
    best = m
    for c in range(n_classes):
        output = m.output.copy()
        output[m.start] = c
        alt = minimize(Machine(m.delta, output, m.start, m.alphabet, m.state_names))
        if alt.n_states < best.n_states:
            best = alt
    return best


def learn_path(
    classifier: Classifier,
    *,
    words: Any,
    max_len: int,
    max_states: int | None,
    seed: int,
    include_empty: bool,
    tolerance: float,
    fidelity_lengths: Sequence[int] = (),
    fidelity_words: int = 0,
) -> BlackBoxResult:
    """Learn ``classifier`` with :func:`learn` and score the machine on every check word.

    ``consistent`` is False when a budget stopped the learner or the machine disagrees with the
    classifier on more than ``tolerance`` of the counted check words (the empty word counted only
    with ``include_empty``), of the random words of any fidelity length, or of the pumped check
    words (``settings["pumped"]``: check words with segments repeated).
    """
    learned = learn(
        classifier,
        words=words,
        max_len=max(2 * max_len, 1),
        max_states=DEFAULT_MAX_STATES if max_states is None else max_states,
        seed=seed,
    )
    if not include_empty:
        top = max([int(lab.max(initial=0)) for _, lab in learned.checked] + [1])
        machine = _free_start(learned.machine, top + 1)
        if machine is not learned.machine:
            learned = replace(learned, machine=machine)
    encoded = [] if words is None else list(dict.fromkeys(classifier.encode(words)))
    n_given = len(encoded)
    samples = _samples(learned, n_given)
    long = []
    if fidelity_words > 0:
        given = padded(encoded) if encoded else None
        long = fidelity_samples(
            classifier,
            classifier.n_symbols,
            fidelity_lengths,
            fidelity_words,
            seed,
            given,
        )
    rows: list[tuple[int, ...]] = []
    labels = []
    for arr, lab in learned.checked:
        rows += [tuple(r[r >= 0].tolist()) for r in arr]
        labels.append(lab)
    pumped = pump(
        rows,
        np.concatenate(labels) if labels else np.zeros(0, np.int64),
        PUMPED_WORDS,
        np.random.default_rng(seed + 5),
    )
    if pumped:
        mat, lens = padded(pumped)
        long.append(WordSample("pumped", mat, lens, classifier(pumped)))
    pumped_ok = None
    if pumped:
        r, t = _agreement(long[-1:], learned, True)
        pumped_ok = r / t if t else 1.0
    fidelity = None
    n_fidelity = len(long) - bool(pumped)
    if n_fidelity:
        fidelity = {}
        for length, sample in zip(fidelity_lengths, long[:n_fidelity], strict=True):
            r, t = _agreement((sample,), learned, True)
            fidelity[int(length)] = r / t if t else 1.0
    right, total = _agreement(samples, learned, include_empty)
    agreement = 1.0 if total == 0 else right / total
    words_agreement = None
    if n_given:
        r, t = _agreement(samples[:1], learned, include_empty)
        words_agreement = None if t == 0 else r / t
    ok = 1.0 - tolerance - 1e-12
    consistent = (
        not learned.budget_hit
        and agreement >= ok
        and (words_agreement is None or words_agreement >= ok)
        and all(v >= ok for v in (fidelity or {}).values())
        and (pumped_ok is None or pumped_ok >= ok)
    )
    empty = np.zeros(0, dtype=np.int64)
    evidence = Evidence(
        parent=empty,
        symbol=empty,
        depth=empty,
        tree_network=empty,
        samples=samples + tuple(long),
        alphabet=classifier.alphabet,
        include_empty=include_empty,
    )
    settings: dict[str, Any] = {
        "path": "black-box",
        "method": "lstar",
        "strategy": "active",
        "queries": learned.queries,
        "check_words": learned.check_words,
        "calls": learned.calls,
        "rounds": learned.rounds,
        "counterexamples": learned.counterexamples,
        "stopped": learned.stopped,
        "budget_hit": learned.budget_hit,
        "heldout": None,
        "pumped": pumped_ok,
        "trace": [],
    }
    return BlackBoxResult(
        learned, evidence, agreement, words_agreement, fidelity, consistent, settings
    )
