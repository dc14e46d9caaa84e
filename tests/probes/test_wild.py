"""Networks in the wild: trained networks with redundant states, start and end symbols, three or
more symbols, recovered exactly by both paths (white-box clustering and refinement, black-box L*
through ``extract``), and non-regular networks that never get a clean report."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from counting_probes import anbn_probe
from torch import nn

from dfalens.automata import Machine, equivalent, run
from dfalens.cli.extract import _summary
from dfalens.errors import ConfigError
from dfalens.probes import (
    Probe,
    collect,
    extract,
    from_classifier,
    from_module,
    from_step,
    predict,
    refine,
    verdict,
)
from dfalens.probes._checking import Checker
from dfalens.probes.verdicts import exit_code

# "the a's minus the b's is a multiple of 3" over a, b, c: three states, c does nothing
MOD3 = Machine([[1, 2, 0], [2, 0, 1], [0, 1, 2]], [1, 0, 0], 0, ("a", "b", "c"))
PARITY_AB = Machine([[0, 1], [1, 0]], [0, 1], 0, ("a", "b"))
# "contains ab" over a, b, c
CONTAINS_AB = Machine([[1, 0, 0], [1, 2, 0], [2, 2, 2]], [0, 0, 1], 0, ("a", "b", "c"))


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _all_words(k: int, n: int) -> list[tuple[int, ...]]:
    return [w for m in range(n + 1) for w in itertools.product(range(k), repeat=m)]


def train_wide_gru(
    task: Machine, hidden: int = 64, steps: int = 300, seed: int = 0, lr: float = 0.01
) -> Probe:
    """A wide GRU trained with Adam on <s> word </s> (the class read after </s>): a network whose
    states of one automaton state lie far apart (redundant states)."""
    k = len(task.alphabet)
    rng = np.random.default_rng(seed)
    words = _all_words(k, 6)
    words += [tuple(rng.integers(k, size=rng.integers(7, 16)).tolist()) for _ in range(2000)]
    width = max(len(w) for w in words) + 2
    x = torch.full((len(words), width), k + 1, dtype=torch.long)  # padded with </s>
    for i, w in enumerate(words):
        x[i, : len(w) + 1] = torch.tensor((k,) + w)  # <s> word, then </s> from len(w) + 1 on
    last = torch.tensor([len(w) + 1 for w in words])
    y = torch.as_tensor(run(task, [list(w) for w in words]))
    torch.manual_seed(seed)
    gru = nn.GRU(k + 2, hidden, batch_first=True)
    head = nn.Linear(hidden, 2)
    opt = torch.optim.Adam([*gru.parameters(), *head.parameters()], lr=lr)
    onehot = nn.functional.one_hot(x, k + 2).float()
    for _ in range(steps):
        idx = torch.randint(len(words), (256,))
        out, _ = gru(onehot[idx])
        logits = head(out[torch.arange(256), last[idx]])
        loss = nn.functional.cross_entropy(logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    names = [*task.alphabet, "<s>", "</s>"]
    return from_module(gru.eval(), head.eval(), alphabet=names, bos="<s>", eos="</s>")


def _black_box(probe: Probe) -> object:
    return from_classifier(lambda words: predict(probe, words), probe.alphabet)


@pytest.fixture(scope="module")
def contains_ab(one_thread: None) -> Probe:
    return train_wide_gru(CONTAINS_AB, steps=300)


@pytest.fixture(scope="module")
def mod3(one_thread: None) -> Probe:
    return train_wide_gru(MOD3, steps=600, lr=0.02)


# the networks were trained on words up to length 15 (the mod-3 one drifts on some words of
# length 50): they are checked up to length 20
RANGE = {"fidelity_lengths": (20,)}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["contains_ab", "mod3"])
def test_trained_networks_with_redundant_states_are_recovered_by_both_paths(
    name: str, request: pytest.FixtureRequest
) -> None:
    probe: Probe = request.getfixturevalue(name)
    task = {"contains_ab": CONTAINS_AB, "mod3": MOD3}[name]
    # a start symbol: the empty word is a trained word and counts by default
    assert probe.assumptions is not None and probe.assumptions.bos == "<s>"
    white = extract(probe, max_len=6, **RANGE)
    assert white.settings["include_empty"] is True
    assert white.settings["path"] in ("white-box", "white-box+refined")
    assert white.n_raw > white.n_minimal  # redundant states: several clusters per state
    assert white.labels.shape == (collect(probe, 6).n_nodes,)  # the timeline's node -> state map
    clf = _black_box(probe)
    black = extract(clf, max_len=6, **RANGE)
    assert black.settings["path"] == "black-box" and black.settings["include_empty"] is False
    for ex, asked in ((white, probe), (black, clf)):
        assert ex.consistent and exit_code(ex) == 0
        assert equivalent(ex.minimal, task).equal
        tv = verdict(ex, task, asked)
        assert tv.equal and tv.exit_code == 0, str(tv)


@pytest.mark.slow
def test_a_network_that_errs_on_long_words_is_not_reported_clean(mod3: Probe) -> None:
    # the mod-3 network drifts on words of length 1000: both paths find the task's machine but
    # neither calls it the network's
    for source in (mod3, _black_box(mod3)):
        ex = extract(source, max_len=5, fidelity_lengths=(1000,), fidelity_words=512)
        assert equivalent(ex.minimal, MOD3).equal
        assert ex.fidelity is not None and ex.fidelity[1000] < 1.0
        assert not ex.consistent and exit_code(ex) == 4
        assert verdict(ex, MOD3, source).exit_code == 3  # the network's own word says no


def anbn(word: tuple[int, ...]) -> int:
    n = len(word) // 2
    return int(n > 0 and word == (0,) * n + (1,) * n)


@pytest.mark.parametrize("short", [True, False])
def test_a_non_regular_network_never_exits_0(short: bool) -> None:
    # its own words: a^n b^n, short ones (inside the collected lengths) or longer ones
    top = 4 if short else 11
    words = ["a" * n + "b" * n for n in range(1, top + 1)]
    clf = from_classifier(lambda ws: [anbn(tuple(w)) for w in ws], "ab")
    black = extract(clf, words=words, max_len=6)
    assert not black.consistent and exit_code(black) == 4
    white = extract(anbn_probe(), words=words, max_len=8, k_range=range(2, 8))
    assert not white.consistent and exit_code(white) == 4
    # whatever the path, a refined machine that fits every word it refined on is validated on
    # fresh pumped words first
    if "refinement" in white.settings:
        assert white.settings["refinement"]["stopped"] != "consistent" or not white.consistent


def test_refinement_from_one_cluster_recovers_parity() -> None:
    def step(h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        # parity in the first unit, the length (far apart for every length) in the second
        return torch.stack([(h[:, 0] + s) % 2, h[:, 1] + 10.0], dim=1)

    def readout(h: torch.Tensor) -> torch.Tensor:
        odd = h[:, :1]
        return torch.cat([1 - odd, odd], dim=1)

    probe = from_step(torch.zeros(2), step, readout, alphabet="01")
    states = collect(probe, 6)
    checker = Checker(
        states,
        probe,
        include_empty=False,
        tolerance=0.0,
        seed=0,
        holdout_len=12,
        holdout_words=128,
        fidelity_lengths=(100,),
        fidelity_words=64,
    )
    cand, info = refine(checker, np.zeros(states.n_nodes, dtype=np.int64))
    assert info.stopped == "consistent" and info.rounds >= 1 and info.start_clusters == 1
    assert cand.stats.closed and checker.reproduces(cand)
    parity = np.array([sum(states.word(i)) % 2 for i in range(states.n_nodes)])
    # the refined partition is the parity of the collected words (two clusters, node 0 even)
    assert info.labels.max() == 1
    np.testing.assert_array_equal(info.labels, parity)
    assert len(checker.extra) == 1  # fresh validation words, never used as counterexamples


def test_the_empty_word_counts_when_the_network_reads_a_start_symbol() -> None:
    gru = nn.GRU(4, 3, batch_first=True)
    head = nn.Linear(3, 2)
    with_bos = from_module(gru, head, alphabet=["a", "b", "<s>", "</s>"], bos="<s>", eos="</s>")
    without = from_module(gru, head, alphabet=["a", "b", "<s>", "</s>"], eos="</s>")
    assert extract(with_bos, max_len=3, fidelity_lengths=()).settings["include_empty"] is True
    assert extract(without, max_len=3, fidelity_lengths=()).settings["include_empty"] is False
    forced = extract(with_bos, max_len=3, fidelity_lengths=(), include_empty=False)
    assert forced.settings["include_empty"] is False


def test_a_refined_extraction_is_summarised_by_the_cli() -> None:
    # parity up to length 5, then 0: no clustering is consistent, refinement finds the 11 states
    def step(h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return torch.stack([(h[:, 0] + s) % 2, h[:, 1] + 1], dim=1)

    def readout(h: torch.Tensor) -> torch.Tensor:
        odd = ((h[:, 0] > 0.5) & (h[:, 1] <= 5)).float()[:, None]
        return torch.cat([1 - odd, odd], dim=1)

    probe = from_step(torch.zeros(2), step, readout, alphabet="01")
    ex = extract(probe, max_len=6, k_range=range(2, 8))
    assert ex.settings["path"] == "white-box+refined" and ex.consistent
    refinement = ex.settings["refinement"]
    assert refinement["stopped"] == "consistent" and refinement["clusters"] == ex.n_raw
    assert ex.labels.shape == (collect(probe, 6).n_nodes,)
    lines = _summary(ex, "hand-made", None, None)
    assert any(line.startswith("refinement (used)") for line in lines)
    assert ex.to_dict()["settings"]["path"] == "white-box+refined"


def test_black_box_budget_and_settings() -> None:
    clf = from_classifier(lambda ws: [anbn(tuple(w)) for w in ws], "ab")
    ex = extract(clf, max_states=3, fidelity_lengths=())
    s = ex.settings
    assert s["path"] == "black-box" and s["budget_hit"] and s["stopped"] == "max_states"
    assert not ex.consistent and exit_code(ex) == 4
    assert s["include_empty"] is False and ex.fidelity is None and ex.labels.size == 0
    with pytest.raises(ConfigError, match="Classifier has none"):
        extract(clf, method="kmeans")
    # parity with a wrong answer on one word: the verdict names the classifier's word
    wrong = (1, 1, 0, 1)
    odd = from_classifier(lambda ws: [(sum(w) + (tuple(w) == wrong)) % 2 for w in ws], "ab")
    ex = extract(odd, words=[wrong, (0, 1)], max_len=3)
    assert not equivalent(ex.minimal, PARITY_AB).equal or not ex.consistent
    tv = verdict(ex, PARITY_AB, odd)
    assert tv.exit_code == 3 and tv.network_word == wrong
