"""Budgets of every extraction stage: collection, clustering (each method), quotient; and large
alphabets extracted from the prefixes of given words and their one-symbol extensions."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest
import torch

import dfalens.probes._components as _components
from dfalens._budget import format_size, memory_budget
from dfalens.automata import equivalent, minimize, mod_count, random_machine
from dfalens.automata.machine import Machine
from dfalens.errors import BudgetError
from dfalens.probes import cluster, collect, collect_extended, collect_words, extract, quotient
from dfalens.probes._costs import cluster_cost
from dfalens.probes.clustering import METHODS
from dfalens.probes.collection import ALL_WORDS, EXTENDED, _check_budget
from dfalens.probes.probe import Probe, from_step


def machine_probe(machine: Machine, dim: int = 8, seed: int = 0, noise: float = 0.0) -> Probe:
    """A probe whose states are a random embedding of the machine's states (an exact network);
    with ``noise``, each state also carries a small fading trace of the symbols read."""
    rng = np.random.default_rng(seed)
    embed = torch.as_tensor(rng.normal(size=(machine.n_states, dim)), dtype=torch.float32)
    offset = torch.as_tensor(
        noise * rng.normal(size=(len(machine.alphabet), dim)), dtype=torch.float32
    )
    delta = torch.tensor(machine.delta)
    out = torch.tensor(machine.output)
    n_out = int(machine.output.max()) + 1

    def state_of(h: torch.Tensor) -> torch.Tensor:
        return torch.cdist(h, embed).argmin(dim=1)

    def step(h: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
        q = state_of(h)
        return embed[delta[q, symbols]] + 0.5 * (h - embed[q]) + offset[symbols]

    def readout(h: torch.Tensor) -> torch.Tensor:
        return 5.0 * torch.nn.functional.one_hot(out[state_of(h)], n_out).float()

    return from_step(embed[machine.start], step, readout, alphabet=machine.alphabet)


def merged_states(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, d))
    return (centres[rng.integers(0, 8, n)] + 1e-4 * rng.normal(size=(n, d))).astype(np.float32)


# -- clustering -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_every_method_refuses_over_budget_before_allocating(
    monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    x = merged_states(3000, 16)  # float32: 188 KiB; the float64 copy any method makes is 375 KiB
    monkeypatch.setenv("DFALENS_MEMORY_BUDGET", "256K")
    kwargs = {"n_clusters": 8} if method == "kmeans" else {}
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(BudgetError) as info:
            cluster(x, method, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 2.0
    assert peak < 200 * 1024, f"{method} allocated {format_size(peak)} before refusing"
    message = str(info.value)
    assert "\n" not in message
    assert "over the memory budget of 256 KiB" in message and "DFALENS_MEMORY_BUDGET" in message
    assert "max_len" in message and "words=" in message
    if method not in ("leader", "threshold"):
        assert "method='threshold'" in message  # the linear-memory alternative


def test_methods_run_within_a_budget_that_fits_their_estimate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x = merged_states(600, 8)
    for method in METHODS:
        kwargs = {"n_clusters": 8} if method == "kmeans" else {}
        need = cluster_cost(method, 600, 8, n_clusters=kwargs.get("n_clusters")).bytes
        monkeypatch.setenv("DFALENS_MEMORY_BUDGET", str(int(need) + 1))
        labels = cluster(x, method, **kwargs)
        assert labels.max() + 1 == 8, method


def test_dbscan_budget_counts_neighbourhoods_not_n_squared() -> None:
    # 8 merged groups: about n^2 / 8 neighbour pairs, far below the worst case n^2
    x = merged_states(4000, 8)
    budget = cluster_cost("dbscan", 4000, 8, neighbour_pairs=4000**2 / 4).bytes
    assert cluster_cost("dbscan", 4000, 8).bytes > budget  # the worst case would be refused
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DFALENS_MEMORY_BUDGET", str(int(budget)))
        assert cluster(x, "dbscan").max() + 1 == 8


def test_quadratic_time_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DFALENS_TIME_BUDGET", "0.001")
    x = merged_states(3000, 16)
    with pytest.raises(BudgetError, match=r"time budget.*method='threshold'.*DFALENS_TIME_BUDGET"):
        cluster(x, "agglomerative")
    assert cluster(x, "threshold").max() + 1 == 8  # linear: no time estimate


def test_threshold_pairs_are_checked_as_they_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.random.default_rng(0).normal(size=(400, 2))
    monkeypatch.setattr(_components, "_PAIR_BYTES", 1e15)  # any leader pair is over budget
    with pytest.raises(BudgetError, match="threshold clustering of 400 states"):
        cluster(x, "threshold", 0.3)


def test_extract_skips_an_over_budget_ladder_for_kmeans(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = machine_probe(mod_count(3), noise=0.03)
    monkeypatch.setattr(_components, "_PAIR_BYTES", 1e15)
    ex = extract(probe, max_len=6, holdout_words=32, fidelity_lengths=())
    assert any("over budget" in str(t.get("skipped", "")) for t in ex.settings["trace"])
    assert ex.settings["method"] == "kmeans"
    assert ex.consistent and equivalent(ex.minimal, mod_count(3), include_empty=False).equal


# -- quotient and collection ----------------------------------------------------------------------
def test_quotient_refuses_over_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    states = collect(machine_probe(mod_count(3)), 8)
    labels = np.arange(states.n_nodes)
    monkeypatch.setenv("DFALENS_MEMORY_BUDGET", "64K")
    with pytest.raises(BudgetError, match=r"^the quotient of 511 states.*words=\.\.\."):
        quotient(states, labels)


def test_collection_default_follows_the_budget_module(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    probe = from_step(
        torch.zeros(100), lambda h, s: calls.append(1) or h, lambda h: h[:, :2], alphabet="01"
    )
    monkeypatch.setenv("DFALENS_MEMORY_BUDGET", "1M")  # 2,047 states x 100 units need ~1.7 MiB
    with pytest.raises(BudgetError, match=r"memory budget of 1 MiB.*DFALENS_MEMORY_BUDGET=SIZE"):
        collect(probe, 10)
    assert not calls
    assert collect(probe, 10, max_memory=1e9).n_nodes == 2047  # the parameter still overrides
    monkeypatch.setenv("DFALENS_MEMORY_BUDGET", "16M")
    assert collect(probe, 10).n_nodes == 2047
    monkeypatch.delenv("DFALENS_MEMORY_BUDGET")
    limit = memory_budget()
    n = int(limit // (2 * 100 * 4 + 12 * 2 + 64)) + 1  # one state over the default budget
    with pytest.raises(BudgetError, match=format_size(limit)):
        _check_budget(n, probe, 10**12, None, "test", "way out")
    _check_budget(n - 2, probe, 10**12, None, "test", "way out")


# -- large alphabets ------------------------------------------------------------------------------
def test_extension_tree_of_all_short_words_is_all_longer_words() -> None:
    probe = machine_probe(random_machine(4, n_symbols=3, seed=1))
    words = [[a, b] for a in range(3) for b in range(3)]
    full = collect(probe, 3)
    ext = collect_extended(probe, words)
    for name in ("parent", "symbol", "depth"):
        np.testing.assert_array_equal(getattr(ext, name), getattr(full, name))
    np.testing.assert_allclose(ext.hidden, full.hidden)
    assert collect_words(probe, words).n_nodes == 13


def test_sixteen_symbols_recovered_exactly_from_words_only() -> None:
    task = random_machine(6, n_symbols=16, seed=3)
    probe = machine_probe(task)
    rng = np.random.default_rng(0)
    words = [rng.integers(0, 16, size=int(rng.integers(1, 9))).tolist() for _ in range(300)]
    t0 = time.perf_counter()
    ex = extract(probe, words=words, max_len=8, holdout_words=64, fidelity_words=32)
    assert time.perf_counter() - t0 < 10
    assert ex.settings["collection"] == EXTENDED
    assert ex.settings["collected"] < 40_000  # 16^8 words up to length 8 would be 4.6e9
    assert ex.consistent and ex.closed
    assert equivalent(ex.minimal, minimize(task), include_empty=False).equal


def test_large_alphabet_without_words_is_refused_naming_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    task = random_machine(4, n_symbols=16, seed=0)
    probe = machine_probe(task)
    counting = from_step(
        torch.zeros(8),
        lambda h, s: calls.append(1) or probe.step(h, s),
        probe.readout,
        alphabet=task.alphabet,
    )
    t0 = time.perf_counter()
    with pytest.raises(BudgetError) as info:
        extract(counting, max_len=8)
    assert time.perf_counter() - t0 < 1.0 and not calls
    message = str(info.value)
    assert "\n" not in message and "words=" in message and "max_len <= 5" in message


def test_small_alphabet_with_words_still_collects_all_words() -> None:
    probe = machine_probe(mod_count(3))
    ex = extract(probe, words=["0110", "111"], max_len=5, holdout_words=16, fidelity_lengths=())
    assert ex.settings["collection"] == ALL_WORDS and ex.settings["collected"] == 63


def test_extract_refuses_when_no_method_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    states = collect(machine_probe(mod_count(3)), 8)
    monkeypatch.setenv("DFALENS_MEMORY_BUDGET", "64K")  # below the cover's and k-means' estimates
    with pytest.raises(BudgetError, match=r"^kmeans clustering of 511 states x 8 units"):
        extract(states)
