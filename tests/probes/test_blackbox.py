"""Black-box extraction: ground-truth machines and a bidirectional GRU learned through their labels alone."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from dfalens.automata import (
    Machine,
    equivalent,
    minimize,
    mod_count,
    parity,
    random_machine,
    run,
    tomita,
)
from dfalens.errors import ClassifierError, ConfigError, DataError, DfalensError
from dfalens.probes import Classifier, Learned, extract, from_classifier, learn, verdict
from dfalens.probes._lstar import add_suffixes, close, distinguishing_suffixes, new_table
from dfalens.probes.verdicts import exit_code


class Counting:
    """A machine as a classifier that records every batch it was asked."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.batches: list[list[tuple[int, ...]]] = []

    def __call__(self, words: list[tuple[int, ...]]) -> np.ndarray:
        self.batches.append(list(words))
        return run(self.machine, [list(w) for w in words])


def as_classifier(machine: Machine, **kwargs: Any) -> Classifier:
    return from_classifier(Counting(machine), machine.alphabet, **kwargs)


LIBRARY = [("parity", parity()), *((f"tomita{i}", tomita(i)) for i in range(1, 8))]
LIBRARY += [("mod_count3", mod_count(3)), ("mod_count5", mod_count(5))]


@pytest.mark.parametrize(("name", "truth"), LIBRARY, ids=[n for n, _ in LIBRARY])
def test_recovers_library_machines(name: str, truth: Machine) -> None:
    result = learn(as_classifier(truth))
    assert equivalent(result.machine, truth).equal, name
    assert result.machine == minimize(truth)  # minimal and canonically numbered
    assert (result.stopped, result.budget_hit, result.agreement) == ("agreed", False, 1.0)
    assert result.disagreement is None


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(3, 4), st.integers(2, 3), st.integers(0, 2**31 - 1))
def test_recovers_random_machines(states: int, symbols: int, outputs: int, seed: int) -> None:
    truth = random_machine(max_states=states, n_symbols=symbols, n_outputs=outputs, seed=seed)
    result = learn(as_classifier(truth), seed=seed)
    assert equivalent(result.machine, truth).equal
    assert result.machine.alphabet == truth.alphabet
    assert not result.budget_hit


def test_counts_match_what_the_classifier_saw() -> None:
    truth = random_machine(max_states=8, n_symbols=3, n_outputs=3, seed=5)
    clf = as_classifier(truth, batch_size=500)
    counting = clf.classify
    result = learn(clf, n_check=2000)
    seen = [w for batch in counting.batches for w in batch]
    assert result.calls == len(counting.batches)
    assert max(len(b) for b in counting.batches) <= 500
    assert len(seen) == len(set(seen)) == result.labelled  # every word labelled once
    assert result.queries <= result.labelled and result.check_words <= result.labelled
    assert result.n_checked == result.check_words
    assert result.rounds >= 1 and result.counterexamples >= result.rounds - 1


def test_given_words_are_checked_first_and_shape_the_random_ones() -> None:
    truth = tomita(4)
    words = ["1" * 12, "0101001011", "110011001100", "000", "0010010010"]
    clf = as_classifier(truth)
    result = learn(clf, words=words + words[:2], n_check=300)
    assert equivalent(result.machine, truth).equal
    assert result.agreement_words == 1.0
    assert result.n_checked >= len(words)
    first = clf.classify.batches[0]
    assert first == [clf.encode([w])[0] for w in words]  # the user's words, deduplicated, first
    checks = [batch for batch in clf.classify.batches[1:] if len(batch) > 150]  # tables ask fewer
    assert checks  # random check words copy the given lengths
    assert {len(w) for batch in checks for w in batch} == {3, 10, 12}


def test_budget_on_states_is_reported() -> None:
    truth = tomita(3)  # 5 states
    result = learn(as_classifier(truth), max_states=2)
    assert result.budget_hit and result.stopped == "max_states"
    assert result.machine.n_states <= 2
    assert result.agreement < 1.0
    word = result.disagreement
    assert word is not None
    assert run(result.machine, [word])[0] != run(truth, [word])[0]


def test_budget_on_queries_is_reported() -> None:
    truth = random_machine(max_states=12, n_symbols=4, seed=3)
    result = learn(as_classifier(truth), max_queries=30)
    assert result.budget_hit and result.stopped == "max_queries"
    assert result.queries <= 30
    assert result.machine.is_complete


def test_non_regular_classifier_stops_on_a_budget() -> None:
    def balanced(words: list[tuple[int, ...]]) -> list[int]:
        return [int(w.count(0) == w.count(1)) for w in words]

    result = learn(from_classifier(balanced, "01"), max_states=6, max_len=16)
    assert result.budget_hit and result.stopped == "max_states"
    assert result.machine.n_states <= 6  # the unclosed hypothesis has at most max_states states
    assert result.agreement < 1.0


def test_rivest_schapire_search_finds_a_breakpoint() -> None:
    truth = tomita(4)  # no 000: the first hypothesis accepts everything
    asks: list[int] = []

    def ask(words: list[tuple[int, ...]]) -> np.ndarray:
        asks.append(len(words))
        return run(truth, [list(w) for w in words])

    u = (1, 0) * 20 + (0, 0, 0, 1)
    for probes, max_calls in ((64, 1), (2, 8)):
        table = new_table(2, ask)
        assert not close(table, ask, 10) and len(table.access) == 1
        delta = np.zeros((1, 2), dtype=np.int64)
        asks.clear()
        (v,) = distinguishing_suffixes(table, delta, [(u, 0)], ask, probes=probes)
        assert 1 <= len(asks) <= max_calls
        i = len(u) - len(v) - 1
        assert u[i + 1 :] == v
        assert run(truth, [list(u[i:]), list(u[i + 1 :])]).tolist() == [0, 1]  # the breakpoint
        assert add_suffixes(table, [v], ask) == 1
        close(table, ask, 10)
        assert len(table.access) > 1


def test_multi_symbol_names_and_padded_arrays() -> None:
    clf = from_classifier(lambda ws: [len(w) % 3 for w in ws], ["go", "stop"])
    assert clf([(0, 1, 1), ()]).tolist() == [0, 0]
    assert clf(np.array([[0, 1, -1], [1, -1, -1]])).tolist() == [2, 1]
    result = learn(clf, max_len=8)
    assert result.machine.alphabet == ("go", "stop")
    truth = Machine([[1, 1], [2, 2], [0, 0]], [0, 1, 2], 0, ("go", "stop"))  # length mod 3
    assert equivalent(result.machine, truth).equal


# -- the classifier's contract --------------------------------------------------------------------


def _raises(fn: Callable[[], object], kind: type[DfalensError], match: str) -> None:
    with pytest.raises(kind, match=match) as info:
        fn()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("classify", "match"),
    [
        (lambda ws: [0] * (len(ws) - 1), "returned 2 labels for 3 words"),
        (lambda ws: np.zeros((len(ws), 2)), r"object of shape \(3, 2\)"),
        (lambda ws: 1, "shape ()"),
        (lambda ws: [0.5] * len(ws), "non-integer label 0.5"),
        (lambda ws: [float("nan")] * len(ws), "non-integer label"),
        (lambda ws: ["yes"] * len(ws), "labels of type <U3"),
        (lambda ws: [0, -1, 0], "negative label -1 for word \\(1,\\)"),
        (lambda ws: 1 / 0, "classify raised ZeroDivisionError: division by zero"),
    ],
)
def test_bad_labels_raise_one_line(classify: Callable[..., Any], match: str) -> None:
    clf = from_classifier(classify, "01")
    _raises(lambda: clf([(), (1,), (0, 1)]), ClassifierError, match)
    _raises(lambda: learn(clf), ClassifierError, match.split(" for")[0])


def test_raising_classify_message_is_one_line() -> None:
    def broken(words: list[tuple[int, ...]]) -> list[int]:
        raise RuntimeError("line one\nline two")

    _raises(lambda: from_classifier(broken, "ab")([(0,)]), ClassifierError, "line one line two")


@pytest.mark.parametrize(
    ("words", "match"),
    [
        ([(0, 2)], r"not made of symbol indices 0..1"),
        ([(0, -1)], r"not made of symbol indices"),
        ([(0, 1.0)], r"not made of symbol indices"),
        (["0a"], "symbol 'a', which is not in the alphabet"),
        ([5], "not a sequence of symbol indices"),
        ("01", "not one word"),
        (7, "must be a sequence of words"),
    ],
)
def test_bad_words_raise_one_line(words: Any, match: str) -> None:
    clf = from_classifier(lambda ws: [0] * len(ws), "01")
    _raises(lambda: clf(words), DataError, match)
    _raises(lambda: learn(clf, words=words), DataError, match)


def test_accepted_label_forms_and_batching() -> None:
    sizes: list[int] = []

    def classify(words: list[tuple[int, ...]]) -> torch.Tensor:
        sizes.append(len(words))
        assert all(isinstance(w, tuple) and all(type(s) is int for s in w) for w in words)
        return torch.tensor([w.count(1) % 2 for w in words], dtype=torch.float32)

    clf = from_classifier(classify, "01", batch_size=3)
    labels = clf([[1], (np.int64(1), 1), "011", (), "1", [0, 0, 1]])
    assert labels.dtype == np.int64 and labels.tolist() == [1, 0, 0, 0, 1, 1]
    assert sizes == [3, 3]
    assert from_classifier(lambda ws: [True, False], "01")([(), ()]).tolist() == [1, 0]


def test_bad_settings_raise_one_line() -> None:
    _raises(lambda: from_classifier(42, "01"), ConfigError, "classify must be a function")
    _raises(lambda: from_classifier(len, "01", batch_size=0), ConfigError, "batch_size")
    _raises(lambda: from_classifier(len, ""), DataError, "alphabet is empty")
    clf = as_classifier(parity())
    _raises(lambda: learn(len), ConfigError, "learn takes a Classifier")
    _raises(lambda: learn(clf, max_states=0), ConfigError, "max_states")
    _raises(lambda: learn(clf, max_queries=2), ConfigError, "max_queries must be an integer >= 3")
    _raises(lambda: learn(clf, n_check=0), ConfigError, "give words or n_check")


# -- a network with no left-to-right state ---------------------------------------------------------

CONTAINS_AB = Machine([[1, 0, 0], [1, 2, 0], [2, 2, 2]], [0, 0, 1], 0, ("a", "b", "c"))


class BiGRU(nn.Module):
    """A bidirectional GRU word classifier: both directions' final states feed a linear head."""

    def __init__(self, n_symbols: int, hidden: int) -> None:
        super().__init__()
        self.n_symbols = n_symbols
        self.gru = nn.GRU(n_symbols, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, 2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        onehot = nn.functional.one_hot(x.clamp(min=0), self.n_symbols).float()
        packed = pack_padded_sequence(
            onehot, lengths.clamp(min=1), batch_first=True, enforce_sorted=False
        )
        _, h = self.gru(packed)
        return self.head(torch.cat([h[0], h[1]], -1) * (lengths > 0)[:, None])  # () -> zero state


def _pad(words: list[tuple[int, ...]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(w) for w in words])
    x = torch.zeros(len(words), max(1, int(lengths.max())), dtype=torch.long)
    for i, w in enumerate(words):
        x[i, : len(w)] = torch.tensor(w, dtype=torch.long)
    return x, lengths


def _all_words(n_symbols: int, max_len: int) -> list[tuple[int, ...]]:
    return [w for m in range(max_len + 1) for w in itertools.product(range(n_symbols), repeat=m)]


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny networks run far faster on one torch thread when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def bigru(one_thread: None) -> BiGRU:
    """Trained on every word up to length 6 and 3000 random ones of lengths 7-12 ("contains ab")."""
    rng = np.random.default_rng(0)
    words = _all_words(3, 6)
    words += [tuple(rng.integers(3, size=rng.integers(7, 13)).tolist()) for _ in range(3000)]
    x, lengths = _pad(words)
    y = torch.as_tensor(run(CONTAINS_AB, [list(w) for w in words]))
    torch.manual_seed(0)
    net = BiGRU(3, 12)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(10):
        for idx in torch.randperm(len(words)).split(256):
            loss = nn.functional.cross_entropy(net(x[idx], lengths[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@pytest.mark.slow
def test_bidirectional_gru_is_extracted_exactly(bigru: BiGRU, one_thread: None) -> None:
    words = _all_words(3, 8)
    with torch.no_grad():
        labels = bigru(*_pad(words)).argmax(-1).numpy()
    assert np.array_equal(labels, run(CONTAINS_AB, [list(w) for w in words]))  # 100% up to length 8

    def classify(batch: list[tuple[int, ...]]) -> torch.Tensor:
        with torch.no_grad():
            return bigru(*_pad(batch)).argmax(-1)

    result: Learned = learn(from_classifier(classify, "abc"), max_len=8)
    assert equivalent(result.machine, CONTAINS_AB).equal
    assert (result.agreement, result.budget_hit, result.n_states) == (1.0, False, 3)
    assert result.calls < 20


@pytest.mark.slow
def test_bidirectional_gru_is_extracted_through_extract(bigru: BiGRU, one_thread: None) -> None:
    def classify(batch: list[tuple[int, ...]]) -> torch.Tensor:
        with torch.no_grad():
            return bigru(*_pad(batch)).argmax(-1)

    clf = from_classifier(classify, "abc")
    ex = extract(clf, max_len=4, fidelity_lengths=(12,))
    assert ex.settings["path"] == "black-box" and ex.settings["budget_hit"] is False
    assert ex.consistent and exit_code(ex) == 0
    assert equivalent(ex.minimal, CONTAINS_AB).equal and ex.n_minimal == 3
    assert ex.labels.size == 0 and ex.conflicts == {} and ex.fidelity == {12: 1.0}
    tv = verdict(ex, CONTAINS_AB, clf)
    assert tv.equal and tv.exit_code == 0
    record = ex.to_dict()
    assert record["settings"]["queries"] > 0 and record["settings"]["rounds"] >= 1
