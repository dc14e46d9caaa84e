"""Training and test words: counts, order, subsampling statistics, uniqueness, targets."""

from __future__ import annotations

import numpy as np
import pytest

from dfalens.automata import get_task_machine, parity, run
from dfalens.errors import BudgetError, ConfigError, TaskError
from dfalens.trainers.data import (
    all_words,
    enumerate_words,
    make_task_data,
    n_classes,
    random_words,
    sample_words,
    word_targets,
)


def test_all_words_paper_count_and_order() -> None:
    groups = enumerate_words(2, 10)
    assert [g.shape for g in groups] == [(2**n, n) for n in range(1, 11)]
    assert sum(g.shape[0] for g in groups) == 2046
    three = all_words(2, 3)
    assert three.tolist()[:3] == [[0, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert len({tuple(r) for r in groups[-1].tolist()}) == 1024
    ternary = all_words(3, 2)
    assert ternary.shape == (9, 2) and ternary.max() == 2
    assert all_words(2, 0).shape == (1, 0)


def test_full_fraction_is_every_word() -> None:
    rng = np.random.default_rng(0)
    full = sample_words(2, 6, 1.0, rng)
    assert [g.tolist() for g in full] == [g.tolist() for g in enumerate_words(2, 6)]


def test_subsampling_counts_follow_the_binomial() -> None:
    p, trials = 0.3, 400
    counts = np.zeros((trials, 8))
    for seed in range(trials):
        for g in sample_words(2, 8, p, np.random.default_rng(seed)):
            counts[seed, g.shape[1] - 1] = g.shape[0]
    population = 2.0 ** np.arange(1, 9)
    mean, var = counts.mean(0), counts.var(0)
    expected_var = population * p * (1 - p)
    # the sample mean is within 5 standard errors of n p, the variance within 35 %
    assert np.all(np.abs(mean - population * p) < 5 * np.sqrt(expected_var / trials))
    assert np.allclose(var, expected_var, rtol=0.35)


def test_subsample_words_are_distinct_sorted_and_empty_lengths_skipped() -> None:
    rng = np.random.default_rng(5)
    groups = sample_words(2, 10, 0.05, rng)
    lengths = [g.shape[1] for g in groups]
    assert lengths == sorted(lengths) and all(g.shape[0] > 0 for g in groups)
    for g in groups:
        rows = [tuple(r) for r in g.tolist()]
        assert len(set(rows)) == len(rows) and rows == sorted(rows)
    # with p this small, the shortest lengths are usually empty, so fewer than 10 groups survive
    assert any(len(sample_words(2, 10, 0.05, np.random.default_rng(s))) < 10 for s in range(20))


def test_random_words_unique_seeded_and_impossible_requests() -> None:
    a = random_words(2, 25, 10, np.random.default_rng(1))
    b = random_words(2, 25, 10, np.random.default_rng(1))
    assert a.shape == (10, 25) and np.array_equal(a, b)
    short = random_words(2, 3, 8, np.random.default_rng(0))  # needs redraws: all 8 words
    assert len({tuple(r) for r in short.tolist()}) == 8
    with pytest.raises(ConfigError, match="only 8 exist"):
        random_words(2, 3, 9, np.random.default_rng(0))


def test_targets_last_and_streaming() -> None:
    m = parity()
    words = all_words(2, 4)
    last = word_targets(m, words)
    assert np.array_equal(last, words.sum(1) % 2)
    every = word_targets(m, words, streaming=True)
    assert every.shape == (16, 4)
    assert np.array_equal(every, np.cumsum(words, axis=1) % 2)
    assert np.array_equal(every[:, -1], last)


def test_partial_machine_is_refused() -> None:
    from dfalens.automata import Machine

    partial = Machine([[0, -1], [1, 0]], [0, 1])
    with pytest.raises(TaskError, match="complete"):
        make_task_data(partial, max_len=3, test_lengths=(5,))


def test_make_task_data_paper_shapes_and_seeding() -> None:
    data = make_task_data(parity(), seed=3)
    assert len(data.train) == 2046 and data.train.lengths == tuple(range(1, 11))
    assert data.test.lengths == (25, 100, 250, 1000, 2500, 10000)
    assert data.test.sizes == (10,) * 6
    assert data.n_classes == 2 and not data.streaming
    for w, t in zip(data.test.words, data.test.targets, strict=True):
        assert np.array_equal(t, run(parity(), w))
    again = make_task_data(parity(), seed=3)
    other = make_task_data(parity(), seed=4)
    assert np.array_equal(again.test.words[0], data.test.words[0])
    assert not np.array_equal(other.test.words[0], data.test.words[0])
    with pytest.raises(ValueError):
        data.train.words[0][0, 0] = 1  # read-only


def test_n_classes_for_multi_output_tasks() -> None:
    assert n_classes(get_task_machine("mod3")) == 3
    assert n_classes(parity()) == 2
    data = make_task_data(get_task_machine("mod3"), max_len=3, test_lengths=(20,), targets="every")
    assert data.n_classes == 3 and data.streaming
    assert data.train.targets[2].shape == (8, 3)


def test_bad_settings_and_budget() -> None:
    with pytest.raises(ConfigError):
        make_task_data(parity(), targets="sometimes")
    with pytest.raises(ConfigError):
        make_task_data(parity(), test_lengths=(0,))
    with pytest.raises(ConfigError):
        sample_words(2, 5, 0.0, np.random.default_rng(0))
    with pytest.raises(BudgetError, match="max_len"):
        enumerate_words(2, 30)
