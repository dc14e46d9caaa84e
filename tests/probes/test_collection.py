"""State collection: enumeration tree, word lists, budgets, prediction and exploration."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import torch
from torch import nn

from dfalens.errors import BudgetError, DataError
from dfalens.probes import (
    collect,
    collect_words,
    count_words,
    encode_words,
    explore,
    from_module,
    from_step,
    predict,
    scale,
)

torch.set_num_threads(1)


def _gru_probe(alphabet: str = "01", seed: int = 0, batch_first: bool = False):
    torch.manual_seed(seed)
    rnn = nn.GRU(len(alphabet), 5, num_layers=2, batch_first=batch_first)
    head = nn.Linear(5, 3)
    return from_module(rnn, head, alphabet=alphabet), rnn, head


def _forward(rnn: nn.RNNBase, words: np.ndarray, k: int) -> torch.Tensor:
    x = nn.functional.one_hot(torch.as_tensor(words), k).float()
    with torch.no_grad():
        _, h = rnn(x if rnn.batch_first else x.transpose(0, 1))
    return h.transpose(0, 1).reshape(words.shape[0], -1)


def _parity_probe(noise: float = 0.0):
    """Two exact points (even, odd); ``noise`` perturbs every step by a word-dependent tiny offset."""
    pts = torch.tensor([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])

    def step(h, s):
        odd = (h[:, 0] > 0.5).long() ^ s
        return pts[odd] + noise * torch.rand(h.shape[0], 3)

    return from_step(
        pts[0], step, lambda h: h[:, :2] @ torch.tensor([[0.0, 1.0], [0.0, 1.0]]), "01"
    )


@pytest.mark.parametrize("alphabet", ["01", "abc"])
def test_collect_tree_and_states(alphabet):
    probe, rnn, head = _gru_probe(alphabet, batch_first=alphabet == "abc")
    k, max_len = len(alphabet), 4
    ss = collect(probe, max_len, chunk_size=7)  # odd chunk size: chunks cross depth boundaries
    assert ss.n_nodes == count_words(k, max_len) == sum(k**i for i in range(max_len + 1))
    # BFS, lexicographic within a depth: the words of each length appear in itertools.product order
    expected = [()]
    for length in range(1, max_len + 1):
        expected += list(itertools.product(range(k), repeat=length))
    assert [ss.word(i) for i in range(ss.n_nodes)] == expected
    # explicit child arithmetic: node off[l] + i has child off[l+1] + i*k + a
    off = np.cumsum([0] + [k**i for i in range(max_len + 1)])
    for length in range(max_len):
        for i in range(k**length):
            for a in range(k):
                child = off[length + 1] + i * k + a
                assert ss.parent[child] == off[length] + i and ss.symbol[child] == a
    assert ss.parent[0] == -1 and ss.symbol[0] == -1
    np.testing.assert_array_equal(ss.depth, [len(w) for w in expected])
    assert ss.word_str(5) == "".join(alphabet[s] for s in expected[5])
    # hidden states equal the module's forward on every word; outputs equal the readout
    words, lengths = ss.words_matrix()
    for length in range(1, max_len + 1):
        idx = np.flatnonzero(lengths == length)
        ref = _forward(rnn, words[idx, :length], k)
        np.testing.assert_allclose(ss.hidden[idx], ref.numpy(), rtol=1e-5, atol=1e-6)
        with torch.no_grad():
            out = head(ref[:, -5:]).numpy()
        np.testing.assert_allclose(ss.output[idx], out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ss.hidden[0], 0.0)
    assert ss.alphabet == tuple(alphabet)


def test_collect_zero_length_and_chunk_independence():
    probe, _, _ = _gru_probe()
    assert collect(probe, 0).n_nodes == 1
    a, b = collect(probe, 6, chunk_size=3), collect(probe, 6)
    # batch shape changes float rounding only
    np.testing.assert_allclose(a.hidden, b.hidden, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.output, b.output, rtol=1e-5, atol=1e-6)


def test_budget_refusal_is_instant():
    calls = []
    probe = from_step(
        torch.zeros(100), lambda h, s: calls.append(1) or h, lambda h: h[:, :2], alphabet="01"
    )
    t0 = time.perf_counter()
    with pytest.raises(BudgetError, match=r"max_len <= 21.*explore.*collect_words"):
        collect(probe, 40)
    with pytest.raises(BudgetError, match="memory budget"):
        collect(probe, 20, max_memory=1e9)
    with pytest.raises(BudgetError, match="fewer or shorter words"):
        collect_words(probe, ["0" * 50, "1" * 50], max_states=60)
    assert time.perf_counter() - t0 < 0.5
    assert not calls  # refused before any step


def test_nan_states_are_refused():
    probe = from_step(
        torch.zeros(2), lambda h, s: h + torch.where(s[:, None] == 1, torch.nan, 1.0), alphabet="01"
    )
    with pytest.raises(DataError, match="NaN or inf at word length 1"):
        collect(probe, 3)
    with pytest.raises(DataError, match="NaN or inf"):
        explore(probe, eps_abs=0.1)


def test_collect_words_prefix_tree():
    probe, rnn, _ = _gru_probe()
    words = ["0110", "01", "1", "0111", ""]
    ss = collect_words(probe, words, chunk_size=2)
    got = {ss.word_str(i) for i in range(ss.n_nodes)}
    assert got == {"ε", "0", "1", "01", "011", "0110", "0111"}
    assert ss.n_nodes == 7
    assert list(ss.depth) == sorted(ss.depth)
    # lexicographic within a depth and parents before children
    assert [ss.word(i) for i in range(ss.n_nodes)] == sorted(
        (ss.word(i) for i in range(ss.n_nodes)), key=lambda w: (len(w), w)
    )
    full = collect(probe, 4)
    index = {full.word(i): i for i in range(full.n_nodes)}
    rows = [index[ss.word(i)] for i in range(ss.n_nodes)]
    np.testing.assert_allclose(ss.hidden, full.hidden[rows], rtol=1e-5, atol=1e-6)
    # the same from index sequences and from an int matrix
    same = collect_words(probe, [[0, 1, 1, 0], [0, 1], [1], [0, 1, 1, 1], []])
    np.testing.assert_array_equal(same.hidden, ss.hidden)
    mat = collect_words(probe, np.array([[0, 1, 1, 0], [0, 1, 1, 1]]))
    assert mat.n_nodes == 6


def test_encode_words_errors_and_names():
    mat, lengths = encode_words(["ab", "", "b"], ("a", "b"))
    np.testing.assert_array_equal(mat, [[0, 1], [-1, -1], [1, -1]])
    np.testing.assert_array_equal(lengths, [2, 0, 1])
    mat, _ = encode_words(["push pop", "pop"], ("push", "pop"))
    np.testing.assert_array_equal(mat, [[0, 1], [1, -1]])
    with pytest.raises(DataError, match="'2'.*not in the alphabet"):
        encode_words(["012"], ("0", "1"))
    with pytest.raises(DataError, match="index 5 is outside"):
        encode_words(np.array([[0, 5]]), ("0", "1"))
    with pytest.raises(DataError, match="single string"):
        encode_words("0101", ("0", "1"))


def test_predict_matches_collect_and_handles_long_ragged_words():
    probe, _, _ = _gru_probe()
    ss = collect(probe, 5)
    words, lengths = ss.words_matrix()
    idx = np.flatnonzero(lengths == 5)
    np.testing.assert_array_equal(predict(probe, words[idx], chunk_size=7), ss.predicted[idx])
    ragged = ["", "1", "0110", "01101"]
    expect = [
        ss.predicted[[i for i in range(ss.n_nodes) if ss.word_str(i) == (w or "ε")][0]]
        for w in ragged
    ]
    np.testing.assert_array_equal(predict(probe, ragged), expect)
    parity = _parity_probe()
    rng = np.random.default_rng(0)
    long = rng.integers(0, 2, size=(200, 1000))
    t0 = time.perf_counter()
    got = predict(parity, long)
    assert time.perf_counter() - t0 < 10
    np.testing.assert_array_equal(got, long.sum(1) % 2)


def test_explore_parity_closes_after_states_times_symbols():
    ex = explore(_parity_probe(), 0.01)
    assert ex.closed and ex.reason == "closed"
    assert ex.n_states == 2
    assert ex.steps == ex.n_states * 2
    np.testing.assert_array_equal(ex.delta, [[0, 1], [1, 0]])
    assert [ex.stateset.word_str(i) for i in range(2)] == ["ε", "1"]
    np.testing.assert_array_equal(ex.stateset.predicted, [0, 1])
    # with small noise the walk still closes onto two representatives when eps covers it
    noisy = explore(_parity_probe(noise=1e-4), 0.01)
    assert noisy.closed and noisy.n_states == 2 and noisy.steps == 4
    # eps smaller than the noise: every successor is new, so budgets stop the walk
    open_ = explore(_parity_probe(noise=1e-2), eps_abs=1e-6, max_states=20)
    assert not open_.closed and open_.reason == "max_states" and open_.n_states == 20
    deep = explore(_parity_probe(noise=1e-2), eps_abs=1e-6, max_depth=3)
    assert not deep.closed and deep.reason == "max_depth" and deep.n_states == 15
    assert (deep.delta[:7] >= 0).all() and (deep.delta[7:] == -1).all()


def test_explore_counter_grows_then_budget():
    # a counter of ones: infinitely many states, never closes
    probe = from_step(torch.zeros(1), lambda h, s: h + s[:, None].float(), lambda h: h, "01")
    ex = explore(probe, eps_abs=0.5, max_states=50)
    assert not ex.closed and ex.n_states == 50
    np.testing.assert_allclose(np.sort(ex.stateset.hidden[:, 0]), np.arange(50))
    assert all(ex.stateset.parent[i] < i for i in range(1, 50))


def test_scale_is_norm_of_per_unit_std():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(1000, 7)).astype(np.float32) * np.arange(1, 8)
    assert scale(h) == pytest.approx(
        float(np.linalg.norm(h.astype(np.float64).std(axis=0))), rel=1e-9
    )
    assert scale(torch.from_numpy(h)) == pytest.approx(scale(h))
    assert scale(np.ones((3, 2))) == 0.0
    with pytest.raises(DataError):
        scale(np.zeros((0, 3)))
