"""Refining a clustering of hidden states by the network's own answers (Weiss et al. 2018).

When no clustering of the collected states gives a machine that reproduces the network (redundant
states: one state of the automaton spread over distant points, so that every ε either leaves the
quotient open or merges distinct states), :func:`refine` starts from a closed partition and splits
clusters by behaviour. While the quotient disagrees with the network on a checked word (collected,
held-out, given or fidelity), the shortest such word ``u`` is analysed as in Rivest and Schapire: with
``q_i`` the quotient state after ``u[:i]`` and ``r(q)`` its shortest member word, a breakpoint ``i``
where ``r(q_i) + u[i:]`` gets the network's class on ``u`` and ``r(q_{i+1}) + u[i+1:]`` does not
gives the suffix ``u[i+1:]``. Every cluster whose members' classes on ``member + suffix`` differ is
split (one batched pass of the network over all members), the quotient is rebuilt, and the loop
repeats within a budget of rounds and states. The partition stays a map from collected words to
states, so the result keeps :attr:`Extraction.labels`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dfalens.automata import Machine, run
from dfalens.probes._checking import Candidate, Checker
from dfalens.probes._pumping import pumped_words
from dfalens.probes.clustering import canonical_labels
from dfalens.probes.collection import _classes, predict
from dfalens.probes.evidence import TreeRunner, WordSample
from dfalens.probes.hooks import PrefixProbe
from dfalens.probes.probe import Probe
from dfalens.probes.stateset import StateSet

__all__ = ["Refinement", "refine", "suffix_classes", "MAX_ROUNDS", "MAX_REFINED_STATES"]

MAX_ROUNDS = 40
"""Counterexamples analysed at most by one refinement."""

MAX_REFINED_STATES = 2000
"""Clusters a refinement may reach before it stops."""

PUMPED_WORDS = 512
"""Pumped collected words (see :mod:`dfalens.probes._pumping`) drawn as counterexample sources, and
as many again, fresh, to validate the result."""

MAX_COUNTEREXAMPLE_LEN = 4
"""Counterexamples are taken only among checked words at most this many times longer than the
collected words. A disagreement on a much longer word (a fidelity word) is a network that changes
its mind at long lengths, which splitting the collected words cannot explain; it still counts
against consistency."""

FALLBACK_SUFFIXES = 32
"""When the Rivest-Schapire suffix splits nothing, up to this many suffixes of the counterexample
(evenly spaced) are tried together."""

Word = tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Refinement:
    """How a refinement went.

    Attributes
    ----------
    labels : ndarray of int, shape (n_nodes,)
        The refined partition of the collected words (numbered by first appearance).
    rounds : int
        Counterexamples analysed.
    suffixes : tuple of tuple of int
        The suffixes that split clusters, in the order used.
    stopped : str
        ``"consistent"`` (no checked word separates quotient and network), ``"max_rounds"``,
        ``"long words"`` (it reproduces the network on every word short enough to refine on,
        but not on some longer fidelity word), ``"max_states"``, ``"no split"`` (the suffixes of none of the shortest counterexamples
        split a cluster), ``"open"`` (those that could not be analysed left the quotient's defined
        transitions) or
        ``"not validated"`` (consistent on the words it refined on, but not on the fresh
        validation words).
    start_clusters : int
        Clusters of the partition refined.
    """

    labels: np.ndarray
    rounds: int
    suffixes: tuple[Word, ...]
    stopped: str
    start_clusters: int


def suffix_classes(
    probe: Probe | PrefixProbe, states: StateSet, suffixes: Sequence[Word]
) -> np.ndarray:
    """The network's class on every collected word followed by each suffix.

    A :class:`Probe` continues from the collected hidden states (``len(suffix)`` batched steps); a
    :class:`PrefixProbe` reads the whole words.

    Returns
    -------
    ndarray of int64, shape (n_nodes, len(suffixes))
    """
    n = states.n_nodes
    out = np.empty((n, len(suffixes)), dtype=np.int64)
    if isinstance(probe, Probe):
        chunk = 65536
        for s in range(0, n, chunk):
            h0 = torch.from_numpy(np.array(states.hidden[s : s + chunk])).to(probe.device)
            for j, suffix in enumerate(suffixes):
                h = h0
                for a in suffix:
                    sym = torch.full((h.shape[0],), int(a), dtype=torch.long, device=probe.device)
                    h = probe.step(h, sym)
                out[s : s + chunk, j] = _classes(probe.readout(h).cpu().numpy())
        return out
    words, lengths = states.words_matrix()
    rows = [tuple(r[:m]) for r, m in zip(words.tolist(), lengths.tolist(), strict=True)]
    for j, suffix in enumerate(suffixes):
        out[:, j] = predict(probe, [r + tuple(suffix) for r in rows])
    return out


def _split(labels: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The partition ``labels`` split by equal rows of ``columns``."""
    key = np.concatenate([labels[:, None], columns], axis=1)
    _, inv = np.unique(key, axis=0, return_inverse=True)
    return canonical_labels(inv.reshape(-1))


def _representatives(
    labels: np.ndarray, n_states: int, runner_word: Callable[[int], Word]
) -> list[Word]:
    """The first (shortest, nodes being breadth-first) member word of every cluster."""
    ids, first = np.unique(labels, return_index=True)
    assert ids.size == n_states
    return [runner_word(int(i)) for i in first]


def _breakpoint_suffix(
    probe: Probe | PrefixProbe,
    machine: Machine,
    reps: list[Word],
    word: Word,
    label: int,
) -> Word | None:
    """Rivest-Schapire: a suffix of ``word`` that separates two words the quotient conflates; None
    when the word leaves the quotient's defined transitions."""
    path = [machine.start]
    for a in word:
        nxt = int(machine.delta[path[-1], a])
        if nxt < 0:
            return None
        path.append(nxt)
    last = reps[path[-1]]
    if int(predict(probe, [last])[0]) == label:
        return ()  # the cluster's own members disagree on their outputs
    lo, hi = 0, len(word)  # the network gives ``label`` on reps[q_lo] + word[lo:], not at hi
    while hi - lo > 1:
        points = list(range(lo + 1, hi, max(1, -(-(hi - lo - 1) // 16))))[:16]
        got = predict(probe, [reps[path[i]] + word[i:] for i in points])
        for i, g in zip(points, got.tolist(), strict=True):
            if g == label:
                lo = i
            else:
                hi = i
                break
    return word[lo + 1 :]


def _counterexamples(
    checker: Checker,
    cand: Candidate,
    more: Sequence[WordSample] = (),
    limit: int = 8,
    longest: int | None = None,
) -> list[tuple[Word, int]]:
    """The shortest checked words (up to ``limit`` from the tree and from each sample, none longer
    than ``longest``) on which the candidate and the network differ, with the network's class,
    shortest first."""
    ref = cand.minimal if cand.stats.closed else cand.machine
    assert ref is not None
    found: list[tuple[int, Word, int]] = []
    tree_ok = checker.voters
    bad = np.flatnonzero(tree_ok & (checker.tree_outputs(ref) != checker.pred))
    if bad.size:
        bad = bad[np.argsort(checker.states.depth[bad], kind="stable")[:limit]]
        for i in bad.tolist():
            w = checker.runner.word(i)
            found.append((len(w), w, int(checker.pred[i])))
    samples = [s for s in (checker.held(), checker.given, *checker.long(), *more) if s is not None]
    for sample in samples:
        if sample.words.shape[0] == 0:
            continue
        counted = sample.lengths >= (0 if checker.include_empty else 1)
        if longest is not None:
            counted &= sample.lengths <= longest
        bad = np.flatnonzero(counted & (run(ref, sample.words) != sample.network))
        bad = bad[np.argsort(sample.lengths[bad], kind="stable")[:limit]]
        for i in bad.tolist():
            w = sample.word(i)
            found.append((len(w), w, int(sample.network[i])))
    found.sort()
    return [(w, y) for _, w, y in dict.fromkeys(found)]


def _split_by_counterexamples(
    probe: Probe | PrefixProbe,
    states: StateSet,
    cand: Candidate,
    labels: np.ndarray,
    cexs: list[tuple[Word, int]],
    used: list[Word],
) -> tuple[np.ndarray, list[Word], str]:
    """Split ``labels`` by the suffixes of the first counterexample whose analysis splits a
    cluster: its Rivest-Schapire suffix, else (for words not much longer than the collected ones)
    up to FALLBACK_SUFFIXES of its suffixes. Returns the new labels, the suffixes that split (empty
    when none did) and why nothing split ("open" or "no split")."""
    reps = _representatives(
        labels, cand.machine.n_states, TreeRunner(states.parent, states.symbol, states.depth).word
    )
    depth = max(1, int(states.depth.max()))
    reason = "no split"
    for word, label in cexs:
        suffix = _breakpoint_suffix(probe, cand.machine, reps, word, label)
        if suffix is None:
            reason = "open"
            continue
        tries = [[suffix]]
        if 0 < len(word) <= MAX_COUNTEREXAMPLE_LEN * depth:
            step = max(1, -(-len(word) // FALLBACK_SUFFIXES))
            tries.append([word[i:] for i in range(0, len(word), step)] + [()])
        for group in tries:
            group = [s for s in dict.fromkeys(group) if s not in used]
            if not group:
                continue
            cols = suffix_classes(probe, states, group)
            new = _split(labels, cols)
            if new.max() > labels.max():
                kept = [
                    s
                    for j, s in enumerate(group)
                    if _split(labels, cols[:, j : j + 1]).max() > labels.max()
                ]
                return new, kept, ""
    return labels, [], reason


def refine(
    checker: Checker,
    start: np.ndarray,
    *,
    max_rounds: int = MAX_ROUNDS,
    max_states: int = MAX_REFINED_STATES,
) -> tuple[Candidate, Refinement]:
    """Split the clusters of ``start`` by the network's classes on distinguishing suffixes until
    the quotient reproduces the network on every checked word, or a budget is reached.

    Parameters
    ----------
    checker : Checker
        Holds the collected states, the network and the checked words (it needs a probe).
    start : ndarray of int, shape (n_nodes,)
        The partition to refine (a closed one: refinement only splits).
    max_rounds, max_states : int
        Budgets: counterexamples analysed, clusters reached.

    Returns
    -------
    (Candidate, Refinement)
        The last quotient (scored by ``checker``) and how the refinement went.

    Notes
    -----
    Counterexamples come from the checker's words and from pumped collected words (segments
    repeated, see :mod:`dfalens.probes._pumping`), which reach the longer words where a machine
    fitted to a counting network fails. Afterwards a fresh draw of pumped words is added to
    ``checker.extra``: every later consistency decision (this candidate's and the others') must
    also reproduce the network on those words, which the refinement never saw.
    """
    probe = checker.probe
    if probe is None:
        raise ValueError("refinement needs the network")
    states = checker.states
    labels = canonical_labels(start)
    start_clusters = int(labels.max()) + 1
    used: list[Word] = []
    rounds = 0
    stopped = "max_rounds"
    pumped = pumped_words(states, probe, PUMPED_WORDS, np.random.default_rng(checker.seed + 4))
    more = [] if pumped is None else [pumped]
    cand = checker.evaluate(labels, {"method": "refined", "round": 0})
    longest = MAX_COUNTEREXAMPLE_LEN * max(1, int(states.depth.max()))
    while rounds < max_rounds:
        cexs = _counterexamples(checker, cand, more, longest=longest)
        if not cexs:
            stopped = "consistent" if not _counterexamples(checker, cand, more) else "long words"
            break
        rounds += 1
        new, kept, stopped = _split_by_counterexamples(probe, states, cand, labels, cexs, used)
        if not kept:
            break
        used.extend(kept)
        labels = new
        if int(labels.max()) + 1 > max_states:
            stopped = "max_states"
            break
        cand = checker.evaluate(labels, {"method": "refined", "round": rounds})
    else:
        if not _counterexamples(checker, cand, more, longest=longest):
            stopped = "consistent" if not _counterexamples(checker, cand, more) else "long words"
    if stopped == "max_states":
        cand = checker.evaluate(labels, {"method": "refined", "round": rounds})
    # validation on words the refinement never saw: a fresh draw of pumped words
    fresh = pumped_words(states, probe, PUMPED_WORDS, np.random.default_rng(checker.seed + 5))
    if fresh is not None:
        checker.extra.append(WordSample("validation", fresh.words, fresh.lengths, fresh.network))
        if stopped == "consistent" and not checker.reproduces(cand):
            stopped = "not validated"
    info = Refinement(labels, rounds, tuple(used), stopped, start_clusters)
    return cand, info
