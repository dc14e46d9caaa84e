"""dfalens._budget: sizes estimated and refused before anything is allocated."""

from __future__ import annotations

import time

import pytest

from dfalens._budget import (
    CELLS_ENV,
    DEFAULT_MEMORY_CAP,
    MEMORY_ENV,
    check_cells,
    check_memory,
    format_size,
    memory_budget,
    model_bytes,
    parse_size,
    word_symbols,
    words_up_to,
)
from dfalens.automata import get_task_machine
from dfalens.errors import BudgetError, ConfigError
from dfalens.trainers.models import ModelConfig


def test_sizes_parse_and_print_in_binary_units() -> None:
    assert parse_size("512M") == 512 * 2**20
    assert parse_size("1.5GiB") == int(1.5 * 2**30)
    assert parse_size(4096) == 4096
    for bad in ("lots", "-1G", "0", True):
        with pytest.raises(ConfigError):
            parse_size(bad)
    assert format_size(8 * 2**40 - 2**38) == "7.75 TiB"
    assert format_size(3) == "3 B"
    assert format_size(float("inf")) == "over 1024 EiB"


def test_default_budget_is_capped_and_the_environment_overrides_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MEMORY_ENV, raising=False)
    assert 0 < memory_budget() <= DEFAULT_MEMORY_CAP
    monkeypatch.setenv(MEMORY_ENV, "1M")
    assert memory_budget() == 2**20
    with pytest.raises(BudgetError) as info:
        check_memory(2 * 2**20, "a thing", "make it smaller")
    message = str(info.value)
    assert "2 MiB" in message and "1 MiB" in message and MEMORY_ENV in message
    assert "make it smaller" in message and "\n" not in message
    check_memory(2**19, "a thing", "x")
    monkeypatch.setenv(MEMORY_ENV, "a lot")
    with pytest.raises(ConfigError, match=MEMORY_ENV):
        memory_budget()


def test_cells_have_a_limit_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CELLS_ENV, "10")
    check_cells(10, "grid")
    with pytest.raises(BudgetError, match=rf"11 cells, over the limit of 10.*{CELLS_ENV}"):
        check_cells(11, "grid")


def test_counts_are_exact_and_huge_ones_do_not_overflow() -> None:
    assert words_up_to(2, 10) == 2046 and words_up_to(1, 5) == 5 and words_up_to(3, 0) == 0
    assert word_symbols(2, 3) == pytest.approx(2 + 8 + 24)
    assert word_symbols(2, 10**6) == float("inf")
    # rnn of 3 units over 2 symbols, 2 classes: w_ih 6, w_hh 9, two biases 6, head 8, h0 3
    assert model_bytes(3) == 4 * (3 * (2 + 3 + 2) + 2 * 4 + 2 * 3)


def test_task_and_model_sizes_are_refused_before_allocating() -> None:
    start = time.perf_counter()
    with pytest.raises(BudgetError, match="task mod1000000000000"):
        get_task_machine("mod1000000000000")
    with pytest.raises(BudgetError, match="hidden size"):
        ModelConfig(hidden=10**6)
    assert get_task_machine("mod1000").n_states == 1000
    assert time.perf_counter() - start < 2
