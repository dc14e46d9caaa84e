"""Never a silent wrong automaton: ``Extraction.consistent``, ``words=``, and the verdict of the
network (not only of the extracted machine) against a task. Hand-built probes with known answers."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from counting_probes import anbn_probe

from dfalens.automata import Machine, equivalent, parity, run
from dfalens.errors import ConfigError, DataError
from dfalens.probes import (
    Probe,
    StateSet,
    collect,
    extract,
    from_step,
    parse_words,
    predict,
    read_words,
    verdict,
)
from dfalens.probes.verdicts import exit_code


def counting_probe() -> Probe:
    """Class 1 iff the word has more a's than b's: an unbounded counter, not a regular language."""

    def step(h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        d = h[:, 0] - h[:, 1] + torch.where(s == 0, 1.0, -1.0)
        return torch.stack([d.clamp(min=0), (-d).clamp(min=0)], dim=1)

    def readout(h: torch.Tensor) -> torch.Tensor:
        more = (h[:, 0] > 0.5).float()[:, None]
        return torch.cat([1 - more, more], dim=1)

    return from_step(torch.zeros(2), step, readout, alphabet="ab")


WRONG_WORD = "110100101"  # the one word (length 9) on which the network below is not parity


def parity_but_one_probe() -> Probe:
    """Parity, except on WRONG_WORD; the state that reads it differs from its parity state only by
    1e-3, so every ε worth using merges them and the extracted machine is exactly parity."""
    target = torch.tensor([int(c) for c in WRONG_WORD])

    def step(h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        odd = (h[:, 0].round().long() + s) % 2
        m = torch.round(h[:, 1] / 1e-4).long()  # symbols of WRONG_WORD matched so far, -1 = no
        ok = (m >= 0) & (m < len(WRONG_WORD))
        nxt = torch.where(ok & (s == target[m.clamp(0, len(WRONG_WORD) - 1)]), m + 1, -1)
        flag = (nxt == len(WRONG_WORD)).float() * 1e-3
        return torch.stack([odd.float(), nxt.float() * 1e-4, flag], dim=1)

    def readout(h: torch.Tensor) -> torch.Tensor:
        odd = (h[:, 0].round().long() ^ (h[:, 2] > 5e-4).long()).float()[:, None]
        return torch.cat([1 - odd, odd], dim=1)

    return from_step(torch.zeros(3), step, readout, alphabet="01")


def constant_probe() -> Probe:
    def step(h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return torch.tanh(h + s[:, None].float())

    def readout(h: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.ones_like(h[:, :1]), torch.zeros_like(h[:, :1])], dim=1)

    return from_step(torch.zeros(1), step, readout, alphabet="01")


@pytest.mark.slow
def test_parity_machine_of_a_network_that_is_not_parity_is_not_equivalent() -> None:
    # the reported bug: the machine is parity, so "equivalent" was printed with exit 0
    probe = parity_but_one_probe()
    ex = extract(probe, method="threshold", eps=0.05)
    assert equivalent(ex.minimal, parity(), include_empty=False).equal
    assert not ex.consistent and ex.agreement == pytest.approx(2045 / 2046)
    assert "consistent=False" in repr(ex)
    tv = verdict(ex, parity(), probe)
    assert tv.result == "not equivalent" and tv.exit_code == 3 and not tv.equal
    assert tv.network_word_str == WRONG_WORD
    assert (tv.network_output, tv.task_output) == (1 - WRONG_WORD.count("1") % 2, 1)
    assert tv.machine.equal and WRONG_WORD in str(tv)
    assert exit_code(ex, tv) == 3 and exit_code(ex) == 4
    # the default strategy finds the network's real machine (parity but one word): consistent,
    # and still not equivalent to parity, on the same word
    auto = extract(probe, k_range=range(2, 13))
    tv = verdict(auto, parity(), probe)
    assert tv.exit_code == 3 and tv.network_word_str == WRONG_WORD


def test_an_exact_network_is_consistent_and_equivalent() -> None:
    probe = parity_but_one_probe()
    # up to length 8 WRONG_WORD is never read: the network is parity on every word checked...
    ex = extract(probe, max_len=8, method="threshold", eps=0.05, fidelity_lengths=(50,))
    assert ex.consistent and ex.agreement == 1.0
    tv = verdict(ex, parity(), probe)
    assert tv.equal and tv.exit_code == 0 and tv.network_word is None
    assert tv.words_checked == ex.evidence.n_words == 510 + 256 + 256
    # ...until the user's words hold it
    words = ["0110", WRONG_WORD, "1" * 12]
    ex = extract(probe, max_len=8, method="threshold", eps=0.05, words=words)
    assert not ex.consistent and ex.words_agreement == pytest.approx(2 / 3)
    tv = verdict(ex, parity(), probe)
    assert tv.exit_code == 3 and tv.network_word_str == WRONG_WORD


@pytest.mark.slow
def test_a_counter_is_never_consistent() -> None:
    probe = counting_probe()
    ex = extract(probe, max_len=8, k_range=range(2, 8))
    # every collected word is reproduced, yet the machine is not the network's
    assert not ex.consistent and exit_code(ex) == 4
    assert ex.settings["consistent"] is False
    words = ["a" * n + "b" * (n - 1) for n in range(1, 25)] + ["b" * n for n in range(1, 10)]
    with_words = extract(probe, max_len=8, words=words, k_range=range(2, 8))
    assert not with_words.consistent and with_words.words_agreement is not None
    assert with_words.words_agreement < 1.0
    assert with_words.settings["words"] == len(words)
    # the words are where the machine and the network part
    assert np.any(run(with_words.minimal, words) != predict(probe, words))


def test_one_class_machine_is_not_consistent_for_a_network_of_two() -> None:
    probe = anbn_probe()
    # with a tolerance the one-cluster machine (always 0) would pass every count: 28/30 collected
    # words, all held-out and fidelity words (the network says 0 on almost every random word)
    ex = extract(probe, max_len=4, method="threshold", eps=1e6, tolerance=0.2)
    assert ex.n_minimal == 1 and ex.agreement == pytest.approx(28 / 30)
    assert ex.settings["heldout"] > 0.98 and ex.fidelity == {100: 1.0, 1000: 1.0}
    assert not ex.consistent
    # the network's own words show it plainly
    words = ["a" * n + "b" * n for n in range(1, 12)]
    ex = extract(probe, max_len=4, method="threshold", eps=1e6, tolerance=0.2, words=words)
    assert not ex.consistent and ex.words_agreement == 0.0
    default = extract(probe, max_len=6, words=words, k_range=range(2, 8))
    assert not default.consistent and default.words_agreement < 1.0
    # even without the words: the memorising open quotient runs out of transitions on some
    # held-out words, and no closed machine reproduces a^n b^n
    assert not extract(probe, max_len=6, k_range=range(2, 8)).consistent
    # a network that really gives one class everywhere: the one-state machine is right
    const = extract(constant_probe(), max_len=6)
    assert const.n_minimal == 1 and const.consistent and exit_code(const) == 0


def test_consistent_outranks_closed() -> None:
    # a network that is parity up to length 5 and answers 0 on every longer word; checked only on
    # the collected words (no held-out or fidelity words), the open quotient that reproduces them
    # all ranks above every closed candidate, none of which does
    def step(h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return torch.stack([(h[:, 0] + s) % 2, h[:, 1] + 1], dim=1)

    def readout(h: torch.Tensor) -> torch.Tensor:
        odd = ((h[:, 0] > 0.5) & (h[:, 1] <= 5)).float()[:, None]
        return torch.cat([1 - odd, odd], dim=1)

    probe = from_step(torch.zeros(2), step, readout, alphabet="01")
    only_tree = {"holdout_words": 0, "fidelity_lengths": (), "k_range": range(2, 8)}
    ex = extract(probe, max_len=6, **only_tree)
    assert ex.consistent and not ex.closed and ex.agreement == 1.0
    closed = [e for e in ex.settings["trace"] if e["closed"]]
    assert closed and all(e["agreement"] < 1.0 for e in closed)
    # checked on longer words, the open quotient runs out of transitions and no clustering is
    # consistent; refinement by the network's answers finds the network's (regular) language:
    # parity up to length 5, then 0, an 11-state machine, right on longer words too
    longer = extract(probe, max_len=6, k_range=range(2, 8))
    assert longer.settings["path"] == "white-box+refined"
    assert longer.consistent and longer.closed and exit_code(longer) == 0
    assert longer.n_minimal == 11
    words = np.random.default_rng(5).integers(0, 2, size=(300, 9))
    np.testing.assert_array_equal(run(longer.minimal, words), predict(probe, words))


def test_words_file_format(tmp_path) -> None:
    f = tmp_path / "w.txt"
    f.write_text("0110\n\n  1 0 1 \nε\n1\n", encoding="utf-8")
    assert read_words(f, ("0", "1")) == [(0, 1, 1, 0), (1, 0, 1), (), (1,)]
    assert parse_words(["open close", "close"], ("open", "close")) == [(0, 1), (1,)]
    with pytest.raises(DataError, match=r"line 3: symbol '2'"):
        parse_words(["01", "", "0120"], "01", source="w.txt")
    with pytest.raises(DataError, match="line 1: symbol 'x'"):
        parse_words(["open x"], ("open", "close"))
    with pytest.raises(DataError, match="holds no words"):
        parse_words(["", "  "], "01")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(DataError, match="holds no words"):
        read_words(empty, "01")
    with pytest.raises(DataError, match="does not exist"):
        read_words(tmp_path / "missing.txt", "01")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="UTF-8"):
        read_words(binary, "01")


def test_words_argument_errors() -> None:
    probe = parity_but_one_probe()
    states = collect(probe, 4)
    with pytest.raises(ConfigError, match="Probe instead of a StateSet"):
        extract(states, words=["01"])
    with pytest.raises(DataError, match="not in the alphabet"):
        extract(probe, max_len=4, words=["012"])
    with pytest.raises(ConfigError, match="only the empty word"):
        extract(probe, max_len=4, words=[""])
    with pytest.raises(ConfigError, match="empty"):
        extract(probe, max_len=4, words=[])


def test_unknown_and_misplaced_options_raise() -> None:
    states = collect(parity_but_one_probe(), 4)
    with pytest.raises(TypeError):
        extract(states, epsilon=0.1)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="n_clusters applies to method='kmeans'"):
        extract(states, n_clusters=2)
    with pytest.raises(ConfigError, match="linkage"):
        extract(states, method="threshold", linkage="average")
    with pytest.raises(ConfigError, match="min_cluster_size"):
        extract(states, eps=0.1, min_cluster_size=3)
    ex = extract(states, method="kmeans", n_clusters=2)
    assert ex.settings["n_clusters"] == 2 and ex.consistent


def test_json_fields_and_statesets() -> None:
    probe = parity_but_one_probe()
    ex = extract(probe, method="threshold", eps=0.05, words=["0110", WRONG_WORD])
    d = json.loads(json.dumps(ex.to_dict()))
    assert d["consistent"] is False and d["words_agreement"] == 0.5
    assert d["settings"]["consistent"] is False and d["settings"]["words"] == 2
    assert "words=0.5000" in repr(ex)
    # a bare StateSet: only the collected words can be checked, and nobody can be asked
    states = collect(probe, 10)
    bare = extract(states, method="threshold", eps=0.05)
    assert bare.words_agreement is None and not bare.consistent
    tv = verdict(bare, parity())
    assert tv.exit_code == 3 and tv.network_word_str == WRONG_WORD


def test_empty_word_convention_is_shared() -> None:
    # parity whose output before any input is wrong: ignored by default, counted with include_empty
    probe = parity_but_one_probe()
    states = collect(probe, 6)
    out = states.output.copy()
    out[0] = [0.0, 1.0]
    bent = StateSet(states.hidden, states.parent, states.symbol, states.depth, out, states.alphabet)
    ex = extract(bent, method="threshold", eps=0.05)
    assert ex.consistent and verdict(ex, parity()).equal
    with_empty = extract(bent, method="threshold", eps=0.05, include_empty=True)
    tv = verdict(with_empty, parity())
    assert tv.exit_code == 3 and tv.network_word == () and tv.network_output == 1


def test_verdict_asks_the_network_about_the_machines_counterexample() -> None:
    # a machine that is wrong where nothing was checked: the network is asked, and agrees with
    # the task there, so the extraction does not reproduce the network (exit 4, not 3)
    probe = parity_but_one_probe()
    ex = extract(probe, max_len=6, method="threshold", eps=0.05, fidelity_lengths=())
    task = Machine([[0, 1], [1, 2], [2, 2]], [0, 1, 1], alphabet=("0", "1"))  # "has a 1"
    tv = verdict(ex, task, probe)
    assert tv.exit_code == 3 and tv.network_word_str == "11"  # the network says even, task 1
    fake = replace(ex, minimal=task, consistent=True)
    tv = verdict(fake, parity(), probe)  # the machine claims "has a 1"; the network is parity
    assert tv.result == "not reproduced" and tv.exit_code == 4 and not tv.consistent
    assert tv.network_word is None and tv.machine.word_str == "11"
