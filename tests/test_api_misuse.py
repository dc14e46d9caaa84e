"""Misusing the main Python entry points raises the project's errors, naming the argument."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dfalens.errors import ConfigError, DataError, DfalensError
from dfalens.probes import cluster, from_checkpoint
from dfalens.sweeps.grid import run_grid
from dfalens.sweeps.phase_diagram import run_phase_diagram
from dfalens.theory.run import theory_run
from dfalens.timeline.timelines import timeline
from dfalens.trainers import make_config, train

CASES: list[tuple[str, Callable[[Path], Any], str]] = [
    ("make_config str int", lambda d: make_config(hidden="3"), "hidden"),
    ("make_config preset", lambda d: make_config(5), "preset"),
    ("make_config lengths", lambda d: make_config(test_lengths=5), "test_lengths"),
    ("train None", lambda d: train(None), "config must be a TrainConfig"),
    ("train str", lambda d: train("parity"), "config must be a TrainConfig"),
    ("train out_dir", lambda d: train(make_config("fast"), 5), "out_dir"),
    ("timeline None", lambda d: timeline(None), "source"),
    ("timeline int", lambda d: timeline(5), "source"),
    ("timeline eps", lambda d: timeline(d, eps="x"), "eps"),
    ("timeline jobs", lambda d: timeline(d, jobs="2"), "jobs"),
    ("timeline max_len", lambda d: timeline(d, max_len="3"), "max_len"),
    ("theory None", lambda d: theory_run(None), "source"),
    ("theory fraction", lambda d: theory_run(d, fraction="x"), "fraction"),
    ("theory max_pairs", lambda d: theory_run(d, max_pairs=None), "max_pairs"),
    ("grid directory", lambda d: run_grid(None, {"seed": [0]}), "directory"),
    ("grid str", lambda d: run_grid(d / "g", "seed=0..3"), "grid must be"),
    ("grid values", lambda d: run_grid(d / "g", {"seed": 3}), "grid values of 'seed'"),
    ("grid jobs", lambda d: run_grid(d / "g", {"seed": [0]}, jobs="2"), "jobs"),
    ("grid executor", lambda d: run_grid(d / "g", {"seed": [0]}, executor=5), "executor"),
    ("phase directory", lambda d: run_phase_diagram(None), "directory"),
    ("phase fractions", lambda d: run_phase_diagram(d / "p", fractions=0.5), "fractions"),
    ("phase config", lambda d: run_phase_diagram(d / "p", config="x"), "config"),
    ("phase eps", lambda d: run_phase_diagram(d / "p", eps="x"), "eps"),
    ("from_checkpoint None", lambda d: from_checkpoint(None), "path"),
    ("from_checkpoint int", lambda d: from_checkpoint(5), "path"),
    ("cluster eps", lambda d: cluster(np.zeros((3, 2)), eps="x"), "eps"),
    ("cluster None", lambda d: cluster(None), "hidden states"),
]


@pytest.mark.parametrize("name, call, needle", CASES, ids=[c[0] for c in CASES])
def test_misuse_names_the_argument(
    name: str, call: Callable[[Path], Any], needle: str, tmp_path: Path
) -> None:
    start = time.perf_counter()
    with pytest.raises((ConfigError, DataError)) as info:
        call(tmp_path)
    assert isinstance(info.value, DfalensError)
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert time.perf_counter() - start < 5
    assert not (tmp_path / "g").exists() and not (tmp_path / "p").exists()
