"""Pair observables over shared continuations, merger prediction and its scoring."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dfalens.errors import ConfigError, DataError
from dfalens.probes.collection import tree_arrays
from dfalens.theory import equations as th
from dfalens.theory.fit import PairObservables
from dfalens.theory.predict import (
    pair_index,
    pair_observables,
    predict_mergers,
    score_mergers,
)


def _words(max_len: int) -> list[tuple[int, ...]]:
    out: list[tuple[int, ...]] = [()]
    for n in range(1, max_len + 1):
        out += list(itertools.product((0, 1), repeat=n))
    return out


def test_pair_observables_match_a_brute_force_over_continuations():
    max_len = 4
    parent, symbol, depth = tree_arrays(2, max_len)
    words = _words(max_len)
    node = {w: k for k, w in enumerate(words)}
    rng = np.random.default_rng(0)
    c, n = 3, len(words)
    hidden = rng.normal(size=(c, n, 5))
    output = rng.normal(size=(c, n, 2))
    targets = np.eye(2)[[sum(w) % 2 for w in words]]
    in_data = depth > 0
    in_data[node[(1, 1, 0, 1)]] = False  # a missing training word drops that continuation
    i = np.array([1, 3, 4, 7, 2, 5])
    j = np.array([2, 6, 9, 12, 20, 17])
    index = pair_index(parent, symbol, depth, targets, i, j, in_data)
    obs = pair_observables(index, hidden, output)
    for p, (a, b) in enumerate(zip(i, j, strict=True)):
        wa, wb = words[a], words[b]
        conts = [
            cont
            for cont in _words(max_len - max(len(wa), len(wb)))
            if in_data[node[wa + cont]] and in_data[node[wb + cont]]
        ]
        assert index.n_cont[p] == len(conts)
        ua = [node[wa + cont] for cont in conts]
        ub = [node[wb + cont] for cont in conts]
        dys = targets[ub] - targets[ua]
        assert index.dy2[p] == pytest.approx(np.mean(np.sum(dys**2, axis=1)))
        for k in range(c):
            dyh = output[k, ub] - output[k, ua]
            Y = np.mean(np.sum(dyh**2, axis=1))
            W = np.mean(np.sum(dyh**2, axis=1) - np.sum(dyh * dys, axis=1))
            assert obs.H[p, k] == pytest.approx(np.sum((hidden[k, b] - hidden[k, a]) ** 2))
            assert obs.Y[p, k] == pytest.approx(Y)
            assert obs.W[p, k] == pytest.approx(W)


def test_pair_index_rejects_bad_input():
    parent, symbol, depth = tree_arrays(2, 2)
    t = np.eye(2)[np.zeros(7, int)]
    with pytest.raises(DataError):
        pair_index(parent, symbol, depth, t[:5], [1], [2])
    with pytest.raises(DataError):
        pair_index(parent, symbol, depth, t, [1], [9])
    index = pair_index(parent, symbol, depth, t, [1], [2])
    with pytest.raises(DataError, match="outputs"):
        pair_observables(index, np.zeros((2, 7, 3)), np.zeros((2, 7, 3)))


def _theory_world(seed: int, n: int = 60):
    """Pairs that follow the pair system exactly, with the RNN rate scaling; some of them merge."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 11, size=(n, 2))
    n_cont = rng.integers(1, 8, size=n)
    kh = 2e-3 * lengths.sum(axis=1)
    ky = 3e-2 / n_cont
    H0 = rng.uniform(0.2, 1.0, n)
    Y0 = rng.uniform(0.05, 1.5, n)
    dy2 = np.where(np.arange(n) % 2 == 0, 0.0, rng.uniform(0.5, 2.0, n))
    W0 = Y0 - np.sqrt(Y0 * dy2) * rng.uniform(-1, 1, n)
    t = np.linspace(0, 1000, 101)
    sol = th.integrate_pairs(t, H0, Y0, W0, kh, ky, dy2)
    return PairObservables(t, sol.H, sol.Y, sol.W, dy2), lengths, n_cont


@pytest.mark.parametrize("rates", ["pooled", "pair"])
def test_prediction_is_exact_when_the_network_follows_the_theory(rates):
    obs, lengths, n_cont = _theory_world(0)
    eps = 0.05
    pred = predict_mergers(obs, eps, fraction=0.4, rates=rates, lengths=lengths, n_cont=n_cont)
    assert pred.fitted.all()
    assert pred.measured_merge.sum() >= 5 and (~pred.measured_merge).sum() >= 5
    assert np.array_equal(pred.predicted_merge, pred.measured_merge)
    assert pred.score.precision == 1.0 and pred.score.recall == 1.0
    assert pred.score.spearman > 0.99
    assert np.allclose(pred.predicted_h, pred.measured_h, rtol=1e-3, atol=1e-6)
    if rates == "pooled":
        assert pred.fit.group_rates[0] == pytest.approx([2e-3, 3e-2], rel=1e-3)
    c = pred.score.confusion
    assert sum(c.values()) == pred.score.n == obs.n_pairs
    # only same-target pairs can satisfy the strict predicate
    assert not (pred.predicted_merge_inf & ~pred.agree).any()


def test_prediction_reports_unfit_pairs_and_too_few_checkpoints():
    obs, lengths, n_cont = _theory_world(1, n=10)
    n_cont = n_cont.copy()
    n_cont[0] = 0
    H = obs.H.copy()
    H[1, 0] = 0.0
    obs2 = PairObservables(obs.t, H, obs.Y, obs.W, obs.dy2)
    pred = predict_mergers(obs2, 0.05, fraction=0.4, rates="pair", n_cont=n_cont)
    assert not pred.fitted[0] and "no shared continuation" in pred.reason[0]
    assert not pred.fitted[1] and "zero distance" in pred.reason[1]
    assert pred.fitted[2:].all()
    assert np.isnan(pred.predicted_h[:2]).all() and not pred.predicted_merge[:2].any()
    assert pred.score.n == 8
    short = PairObservables(obs.t[:4], obs.H[:, :4], obs.Y[:, :4], obs.W[:, :4], obs.dy2)
    with pytest.raises(DataError, match="at least 3"):
        predict_mergers(short, 0.05, fraction=0.3, rates="pair")
    with pytest.raises(ConfigError):
        predict_mergers(obs, 0.05, fraction=1.5)
    with pytest.raises(ConfigError, match="lengths"):
        predict_mergers(obs, 0.05, rates="pooled")


def test_score_mergers_counts():
    s = score_mergers(
        np.array([1, 1, 0, 0, 1], bool),
        np.array([1, 0, 1, 0, 1], bool),
        np.array([0.1, 0.2, 0.3, 0.4, 0.5]),
        np.array([0.1, 0.2, 0.3, 0.4, 0.6]),
    )
    assert s.confusion == {"tp": 2, "fp": 1, "fn": 1, "tn": 1}
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(2 / 3)
    assert s.spearman == pytest.approx(1.0)
    none = score_mergers(np.zeros(3, bool), np.zeros(3, bool))
    assert none.precision is None and none.recall is None and none.accuracy == 1.0
