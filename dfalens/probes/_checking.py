"""Checking candidate machines against the network (private; used by :mod:`dfalens.probes.extraction`).

A :class:`Checker` builds the quotient of a clustering, minimises it and measures its agreement with the
network on the collected words, the held-out words, the user's words and the fidelity words; it decides
which candidates are consistent and ranks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dfalens.automata import Machine, reachable, run
from dfalens.errors import ConfigError
from dfalens.probes._core import minimal_of
from dfalens.probes.collection import encode_words, predict
from dfalens.probes.evidence import TreeRunner, WordSample
from dfalens.probes.probe import Probe
from dfalens.probes.quotients import QuotientStats, build_quotient
from dfalens.probes.stateset import StateSet
from dfalens.probes.wordlists import fidelity_samples, padded, sample_like

__all__ = ["Candidate", "Checker", "given_words"]


@dataclass
class Candidate:
    labels: np.ndarray
    machine: Machine
    stats: QuotientStats
    minimal: Machine | None  # None until finished (open candidates are finished only when needed)
    agreement: float | None
    heldout: float | None
    entry: dict[str, Any]
    words: float | None = None
    long: dict[int, float] | None = None  # agreement on the fidelity words, per length


def _rows(words: np.ndarray, lengths: np.ndarray) -> list[tuple[int, ...]]:
    return [tuple(r[:n]) for r, n in zip(words.tolist(), lengths.tolist(), strict=True)]


def _predict_padded(probe: Probe, words: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The network's class on words padded with -1 (ragged words go through as lists)."""
    if words.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    if np.all(lengths == words.shape[1]):
        return predict(probe, words)
    return predict(probe, _rows(words, lengths))


def _answers(m: Machine, include_empty: bool) -> np.ndarray:
    """The outputs ``m`` can give on words (non-empty ones unless ``include_empty``)."""
    targets = m.delta[reachable(m)].ravel()
    after_one = np.zeros(m.n_states, dtype=bool)
    after_one[targets[targets >= 0]] = True
    if include_empty:
        after_one[m.start] = True
    return np.unique(m.output[after_one])


class Checker:
    """Builds and scores quotients of one state set against the network: on the collected words,
    the held-out words (drawn once, cached) and the given words."""

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
        given: WordSample | None = None,
        fidelity_lengths: Sequence[int] = (),
        fidelity_words: int = 0,
    ) -> None:
        self.states = states
        self.probe = probe
        self.include_empty = include_empty
        self.tolerance = tolerance
        self.ok = 1.0 - tolerance - 1e-12
        self.seed = seed
        self.holdout_len = holdout_len
        self.holdout_words = holdout_words
        self.given = given
        self.pred = states.predicted
        self.runner = TreeRunner(states.parent, states.symbol, states.depth)
        voters = np.ones(states.n_nodes, dtype=bool)
        if not include_empty:
            voters &= states.parent >= 0
        self.voters = voters
        self._held: WordSample | None = None
        self._held_done = False
        self._labels: np.ndarray | None = None
        self.fidelity_lengths = tuple(int(n) for n in fidelity_lengths)
        self.fidelity_words = fidelity_words
        self._long: list[WordSample] | None = None
        self.extra: list[WordSample] = []  # validation words added later (refinement)

    def tree_outputs(self, m: Machine) -> np.ndarray:
        """Output of ``m`` on every collected word, one vectorised step per depth level."""
        return self.runner.outputs(m)

    def agreement(self, m: Machine) -> float:
        out = self.tree_outputs(m)
        v = self.voters
        n = int(v.sum())
        return 1.0 if n == 0 else float(np.count_nonzero(out[v] == self.pred[v])) / n

    def held(self) -> WordSample | None:
        """The held-out words and the network's classes on them (drawn on first use): uniform
        random words of length ``holdout_len``, or, with given words, words that follow their
        lengths and symbol frequencies."""
        if self._held_done:
            return self._held
        self._held_done = True
        if self.probe is None or self.holdout_words <= 0:
            return None
        rng = np.random.default_rng(self.seed + 1)
        k = len(self.states.alphabet)
        if self.given is None:
            words = rng.integers(0, k, size=(self.holdout_words, self.holdout_len))
            lengths = np.full(self.holdout_words, self.holdout_len, dtype=np.int64)
        else:
            words, lengths = sample_like(
                self.given.words, self.given.lengths, k, self.holdout_words, rng
            )
        self._held = WordSample(
            "held-out", words, lengths, _predict_padded(self.probe, words, lengths)
        )
        return self._held

    def long(self) -> list[WordSample]:
        """The fidelity words (long random words; drawn on first use) and the network's classes
        on them; empty without a network or fidelity lengths."""
        if self._long is None:
            self._long = []
            if self.probe is not None and self.fidelity_lengths and self.fidelity_words > 0:
                probe = self.probe
                self._long = fidelity_samples(
                    lambda words: predict(probe, words),
                    probe.n_symbols,
                    self.fidelity_lengths,
                    self.fidelity_words,
                    self.seed,
                    None if self.given is None else (self.given.words, self.given.lengths),
                )
        return self._long

    def sample_agreement(self, sample: WordSample | None, m: Machine) -> float | None:
        """Fraction of the sample's words (non-empty unless ``include_empty``) on which ``m`` gives
        the network's class; None for no sample or no such word."""
        if sample is None:
            return None
        mask = np.ones(sample.lengths.shape[0], dtype=bool)
        if not self.include_empty:
            mask &= sample.lengths > 0
        if not mask.any():
            return None
        return float(np.mean(run(m, sample.words)[mask] == sample.network[mask]))

    def network_labels(self) -> np.ndarray:
        """The distinct classes the network gives on the checked words."""
        if self._labels is None:
            parts = [self.pred[self.voters]]
            for sample in (self.held(), self.given, *self.long()):
                if sample is not None:
                    keep = sample.lengths >= (0 if self.include_empty else 1)
                    parts.append(sample.network[keep])
            self._labels = np.unique(np.concatenate(parts))
        return self._labels

    def evaluate(
        self, labels: np.ndarray, entry: dict[str, Any], names: bool = False, lazy: bool = False
    ) -> Candidate:
        """Quotient of ``labels``; minimised and scored at once unless ``lazy`` and open."""
        machine, stats = build_quotient(
            self.states, labels, include_empty=self.include_empty, names=names
        )
        entry.update(n_clusters=machine.n_states, closed=stats.closed)
        cand = Candidate(labels, machine, stats, None, None, None, entry)
        if stats.closed or not lazy:
            self.finish(cand)
        return cand

    def finish(self, c: Candidate) -> Candidate:
        """Minimise a candidate and measure its agreement on the collected, held-out and given
        words."""
        if c.minimal is not None:
            return c
        machine, minimal = minimal_of(c.machine, c.stats, self.states, self.include_empty)
        c.machine, c.minimal = machine, minimal
        c.agreement = self.agreement(minimal)
        # an open quotient answers nothing where its transitions run out: the sink of ``minimal``
        # is a guess, so such a word counts as a disagreement (run gives -1 there)
        ref = minimal if c.stats.closed else machine
        c.heldout = self.sample_agreement(self.held(), ref)
        c.words = self.sample_agreement(self.given, ref)
        long = {
            n: self.sample_agreement(sample, ref)
            for n, sample in zip(self.fidelity_lengths, self.long(), strict=False)
        }
        c.long = {n: v for n, v in long.items() if v is not None} or None
        c.entry.update(
            n_minimal=minimal.n_states,
            agreement=round(c.agreement, 6),
            heldout=None if c.heldout is None else round(c.heldout, 6),
        )
        if self.given is not None:
            c.entry["words"] = None if c.words is None else round(c.words, 6)
        return c

    def tree_ok(self, c: Candidate) -> bool:
        """Reproduces the network on the collected words (within the tolerance)."""
        self.finish(c)
        assert c.agreement is not None
        return c.agreement >= self.ok

    def trivial(self, c: Candidate) -> bool:
        """Gives one class on every word while the network gives several on the checked words."""
        self.finish(c)
        assert c.minimal is not None
        return _answers(c.minimal, self.include_empty).size < 2 <= self.network_labels().size

    def reproduces(self, c: Candidate) -> bool:
        """Consistent: reproduces the network on every checked word (collected, held-out, given,
        fidelity and any :attr:`extra` validation words; each within the tolerance), and is not a
        one-class machine for a network of several."""
        self.finish(c)
        checks = (c.agreement, c.heldout, c.words, *(c.long or {}).values())
        if any(v is not None and v < self.ok for v in checks):
            return False
        ref = c.minimal if c.stats.closed else c.machine
        assert ref is not None
        for sample in self.extra:
            v = self.sample_agreement(sample, ref)
            if v is not None and v < self.ok:
                return False
        return not self.trivial(c)

    def accepts(self, c: Candidate) -> bool:
        """Where a search stops: closed and consistent."""
        return c.stats.closed and self.reproduces(c)

    def pick(self, cands: Sequence[Candidate]) -> Candidate | None:
        """Among closed candidates that reproduce the collected words, the first whose held-out,
        given-word and fidelity agreements are each within one word (or the tolerance) of the best
        one: a network that does not generalise perfectly to longer words caps the held-out
        agreement of every candidate alike. Such a candidate is not consistent; it is the best
        explanation."""
        ok = [c for c in cands if c.stats.closed and self.tree_ok(c) and not self.trivial(c)]
        if not ok:
            return None
        n_given = 1 if self.given is None else int(self.given.lengths.shape[0])
        checks = (
            (lambda c: c.heldout, self.holdout_words),
            (lambda c: c.words, n_given),
            (lambda c: None if not c.long else min(c.long.values()), self.fidelity_words),
        )
        near: list[bool] = [True] * len(ok)
        for value, n in checks:
            vals = [value(c) for c in ok]
            known = [v for v in vals if v is not None]
            if not known:
                continue
            slack = max(self.tolerance, 1.0 / max(n, 1)) + 1e-12
            top = max(known)
            near = [f and (v is None or v >= top - slack) for f, v in zip(near, vals, strict=True)]
        for c, f in zip(ok, near, strict=True):
            if f:
                return c
        return max(ok, key=self.worst)

    def worst(self, c: Candidate, long: bool = True) -> float:
        """The lowest agreement over the collected, held-out and given words (and, with
        ``long``, the fidelity words)."""
        self.finish(c)
        assert c.agreement is not None
        checks = (c.agreement, c.heldout, c.words, *((c.long or {}).values() if long else ()))
        return min(v for v in checks if v is not None)

    def score(self, c: Candidate) -> tuple[Any, ...]:
        """Ranking of candidates when none is consistent: not a one-class machine for a network
        of several classes, then the worst agreement on the collected, held-out and given words,
        then closed, then the worst agreement on the fidelity words, then fewer states."""
        self.finish(c)
        assert c.minimal is not None
        return (
            not self.trivial(c),
            self.worst(c, long=False),
            c.stats.closed,
            self.worst(c),
            -c.minimal.n_states,
            -c.machine.n_states,
        )

    def choose(self, cands: Sequence[Candidate]) -> Candidate:
        """The result among the candidates tried: the first closed consistent one; else the
        consistent open one with the fewest minimal states; else :meth:`pick`; else the best
        :meth:`score`. A consistent candidate always ranks above an inconsistent one."""
        for c in cands:
            if c.stats.closed and self.reproduces(c):
                return c
        open_ok = [c for c in cands if not c.stats.closed and self.reproduces(c)]
        if open_ok:
            return min(open_ok, key=lambda c: (c.minimal.n_states, c.machine.n_states))  # type: ignore[union-attr]
        picked = self.pick(cands)
        if picked is not None:
            return picked
        return max(cands, key=self.score)


def given_words(
    probe: Probe, words: Sequence[str] | Sequence[Sequence[int]] | np.ndarray, include_empty: bool
) -> WordSample:
    """The user's words, encoded, with the network's class on each."""
    mat, lengths = encode_words(words, probe.alphabet)
    if mat.shape[0] == 0:
        raise ConfigError("words= is empty; give at least one word (or leave it unset)")
    if not include_empty and not (lengths > 0).any():
        raise ConfigError(
            "words= holds only the empty word, whose output is ignored; give non-empty words "
            "(or include_empty=True)"
        )
    mat, lengths = padded(_rows(mat, lengths))
    return WordSample("given", mat, lengths, _predict_padded(probe, mat, lengths))
