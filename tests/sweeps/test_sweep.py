"""Sweeps: grid parsing, the resumable results table, executors, the phase diagram and generic grids."""

from __future__ import annotations

import csv
import math
import time
import typing
from pathlib import Path

import pytest
import torch

from dfalens._executors import (
    DaskExecutor,
    JoblibExecutor,
    SerialExecutor,
    make_executor,
)
from dfalens.errors import ConfigError
from dfalens.plots import plot_phase_diagram, save_figure
from dfalens.sweeps.grid import parse_grid_items, run_grid
from dfalens.sweeps.phase_diagram import (
    PHASE_COLUMNS,
    axis_values,
    phase_config,
    read_results,
    run_phase_diagram,
)
from dfalens.sweeps.table import ResultsTable, expand_grid, parse_values
from dfalens.trainers.checkpoints import load_checkpoint

torch.set_num_threads(1)

TINY = {
    "hidden": 8,
    "max_len": 4,
    "test_lengths": (20,),
    "n_test_words": 5,
    "device": "cpu",
}


# -- grids -------------------------------------------------------------------------------------------
def test_parse_values_lists_ranges_and_types() -> None:
    assert parse_values("hidden", "32,64, 100", int) == [32, 64, 100]
    assert parse_values("seed", "0..3,10", int) == [0, 1, 2, 3, 10]
    assert parse_values("gain", "0.1..1.0:4", float) == [0.1, 0.4, 0.7, 1.0]
    assert parse_values("stop_loss", "none,1e-3", float | None) == [None, 0.001]
    assert parse_values("cell", "rnn,gru,rnn", typing.Literal["rnn", "gru"]) == ["rnn", "gru"]
    assert parse_values("flag", "true,0", bool) == [True, False]
    with pytest.raises(ConfigError, match="not a valid int"):
        parse_values("hidden", "3.5", int)
    with pytest.raises(ConfigError, match="is empty"):
        parse_values("seed", "5..2", int)
    with pytest.raises(ConfigError, match="no values"):
        parse_values("seed", " , ", int)


def test_parse_grid_items_against_train_config() -> None:
    axes = parse_grid_items(["hidden=32,64", "seed=0..2", "test_lengths=25+100,1000"])
    assert axes == {"hidden": [32, 64], "seed": [0, 1, 2], "test_lengths": [(25, 100), (1000,)]}
    assert len(expand_grid(axes)) == 12
    assert expand_grid({"a": [1, 2], "b": [3, 4]})[1] == {"a": 1, "b": 4}
    with pytest.raises(ConfigError, match=r"unknown grid key 'width'.*hidden"):
        parse_grid_items(["width=3"])
    with pytest.raises(ConfigError, match="grid is empty"):
        parse_grid_items([])
    with pytest.raises(ConfigError, match="not KEY=VALUES"):
        parse_grid_items(["hidden"])
    with pytest.raises(ConfigError, match="given twice"):
        parse_grid_items(["seed=1", "seed=2"])


# -- the table ---------------------------------------------------------------------------------------
def _table(path: Path, spec: dict | None = None) -> ResultsTable:
    cells = [(str(a), str(b)) for a in (1, 2) for b in (3, 4)]
    return ResultsTable(path, spec or {"kind": "t", "n": 2}, ["a", "b", "y"], ["a", "b"], cells)


def test_results_table_resumes_and_refuses_other_sweeps(tmp_path: Path) -> None:
    t = _table(tmp_path / "new")
    assert len(t.pending()) == 4 and not (tmp_path / "new").exists()  # opening writes nothing
    t = _table(tmp_path)
    t.add([{"a": 2, "b": 3, "y": 0.5}, {"a": 1, "b": 4, "y": True}])
    again = _table(tmp_path)
    assert again.pending() == [("1", "3"), ("2", "4")]
    assert [r["y"] for r in again.finish()] == ["true", "0.5"]  # grid order
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ConfigError, match=r"different sweep \(n: 2 there, 3 now\)"):
        _table(tmp_path, {"kind": "t", "n": 3})
    (tmp_path / "sweep.json").unlink()
    with open(tmp_path / "results.csv", "a") as fh:
        fh.write("9,9,1\n")
    with pytest.raises(ConfigError, match="cell outside this grid"):
        _table(tmp_path)
    assert (tmp_path / "results.csv").read_bytes() == before["results.csv"] + b"9,9,1\n"


def test_results_table_drops_a_row_cut_short(tmp_path: Path) -> None:
    _table(tmp_path).add([{"a": 1, "b": 3, "y": 1.0}])
    with open(tmp_path / "results.csv", "a") as fh:
        fh.write("2,4,0.12")  # killed mid-write
    t = _table(tmp_path)
    assert list(t.done) == [("1", "3")]
    t.start()
    assert (tmp_path / "results.csv").read_text().endswith("1,3,1\n")


# -- executors ---------------------------------------------------------------------------------------
def test_executor_specs_and_unreachable_scheduler() -> None:
    assert isinstance(make_executor("local", 1), SerialExecutor)
    assert isinstance(make_executor("local", 2), JoblibExecutor)
    with pytest.raises(ConfigError, match="unknown executor"):
        make_executor("slurm")
    with pytest.raises(ConfigError, match="out of range"):
        make_executor("dask://localhost:99999")
    with pytest.raises(ConfigError, match="at least 1"):
        make_executor("local", 0)
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"cannot reach a Dask scheduler at 127\.0\.0\.1:9 \("):
        make_executor("dask://127.0.0.1:9", timeout=1.0)
    assert time.perf_counter() - start < 10


@pytest.mark.slow
def test_joblib_executor_runs_in_processes() -> None:
    with JoblibExecutor(2) as ex:
        assert sorted(ex.map_unordered(math.factorial, [3, 4, 5])) == [6, 24, 120]


def test_map_indexed_tags_results_with_their_position() -> None:
    """The timeline's blocks run through this: results come back tagged, in any order."""
    with make_executor("local", 1) as ex:
        assert list(ex.map_indexed(math.factorial, [5, 3])) == [(0, 120), (1, 6)]


# -- the phase diagram -------------------------------------------------------------------------------
def _phase(directory: Path, **kw: object) -> list[dict[str, str]]:
    settings = {
        "fractions": axis_values(2, 0.5, 1.0),
        "gains": axis_values(2, 0.5, 1.0),
        "seeds": (0,),
        "config": phase_config(3, **TINY),
        "extract_len": 4,
        "executor": "local",
        "jobs": 1,
    }
    settings.update(kw)
    return run_phase_diagram(directory, **settings)


def test_phase_diagram_writes_table_and_figure_and_resumes(tmp_path: Path) -> None:
    rows = _phase(tmp_path, members=3)
    assert [(r["fraction"], r["gain"]) for r in rows] == [
        ("0.5", "0.5"),
        ("1", "0.5"),
        ("0.5", "1"),
        ("1", "1"),
    ]
    assert list(rows[0]) == list(PHASE_COLUMNS)
    assert all(r["epochs"] == "3" and r["converged"] == "false" for r in rows)
    assert rows[1]["n_train"] == "30" and int(rows[0]["n_train"]) < 30
    png = save_figure(plot_phase_diagram(rows), tmp_path / "phase_diagram.png")
    assert png.stat().st_size > 10_000
    typed = read_results(tmp_path)
    assert typed[0]["states_raw"] >= 1 and 0.0 <= typed[0]["val_accuracy"] <= 1.0
    model, meta = load_checkpoint(tmp_path / rows[2]["model"])
    assert rows[2]["model"] == "models/fraction0.5_gain1_seed0.safetensors"
    assert model.config.gain == 1.0 and meta["config"]["data_fraction"] == 0.5
    calls: list[tuple[int, int]] = []
    assert _phase(tmp_path, progress=lambda d, t: calls.append((d, t))) == rows
    assert calls == [(4, 4)]  # nothing trained again
    before = (tmp_path / "results.csv").read_bytes()
    with pytest.raises(ConfigError, match="different sweep"):
        _phase(tmp_path, fractions=axis_values(3))
    with pytest.raises(ConfigError, match="different sweep"):
        _phase(tmp_path, config=phase_config(4, **TINY))
    assert (tmp_path / "results.csv").read_bytes() == before


def test_phase_diagram_same_table_under_local_cluster(tmp_path: Path) -> None:
    serial = _phase(tmp_path / "serial", members=4, save_models=False)
    with DaskExecutor(None, 2, processes=False) as ex:
        dask = _phase(tmp_path / "dask", executor=ex, members=1, save_models=False)
    # A batch of 4 members and single-member runs are differently shaped computations: their floats
    # agree to a tolerance, not bit for bit; everything else in the table is identical.
    assert [list(r) for r in dask] == [list(r) for r in serial]
    for a, b in zip(dask, serial, strict=True):
        for key in a:
            try:
                x, y = float(a[key]), float(b[key])
            except ValueError:
                assert a[key] == b[key], key
            else:
                assert math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-7), (key, x, y)


def test_phase_diagram_plot_marks_capped_cells(tmp_path: Path) -> None:
    rows = [
        {
            "fraction": f,
            "gain": g,
            "seed": 0,
            "states_raw": s,
            "closed": c,
            "equivalent": c,
            "val_accuracy": a,
            "converged": conv,
        }
        for f, g, s, c, a, conv in [
            (0.1, 0.1, 900, False, 0.5, True),
            (1.0, 0.1, 7, True, 1.0, True),
            (0.1, 1.0, 1200, False, 0.4, False),
            (1.0, 1.0, 60, False, 0.7, True),
        ]
    ]
    fig = plot_phase_diagram(rows)
    assert len(fig.axes) == 6
    legend = fig.axes[0].get_legend()
    assert legend is not None and "epoch cap" in legend.get_texts()[0].get_text()


# -- generic grids -----------------------------------------------------------------------------------
def test_grid_sweep_rows_models_and_batched_agreement(tmp_path: Path) -> None:
    grid = ["hidden=6,8", "seed=0..1"]
    base = {"epochs": 2, "max_len": 4, "test_lengths": (20,), "n_test_words": 5, "device": "cpu"}
    rows = run_grid(tmp_path / "a", grid, preset="fast", base=base, eps=0.1, jobs=1)
    assert [(r["hidden"], r["seed"]) for r in rows] == [
        ("6", "0"),
        ("6", "1"),
        ("8", "0"),
        ("8", "1"),
    ]
    assert {"train_loss", "val_accuracy_20", "states_raw", "equivalent", "model"} <= set(rows[0])
    model, meta = load_checkpoint(tmp_path / "a" / rows[3]["model"])
    assert model.config.hidden == 8 and meta["seed"] == 1 and meta["epoch"] == 2
    batched = run_grid(
        tmp_path / "b", grid, preset="fast", base=base, eps=0.1, jobs=1, batched=True
    )
    for r, b in zip(rows, batched, strict=True):
        assert r["epochs_done"] == b["epochs_done"] == "2" and r["states_raw"] == b["states_raw"]
        assert float(r["train_loss"]) == pytest.approx(float(b["train_loss"]), rel=1e-4)
    with pytest.raises(ConfigError, match="different sweep"):
        run_grid(tmp_path / "a", ["hidden=6"], preset="fast", base=base, jobs=1)
    with pytest.raises(ConfigError, match="unknown grid key"):
        run_grid(tmp_path / "c", {"width": [1]}, jobs=1)
    with pytest.raises(ConfigError, match="must be a positive integer"):
        run_grid(tmp_path / "c", ["hidden=0"], jobs=1)
    assert not (tmp_path / "c").exists()


def test_read_results_rejects_other_tables(tmp_path: Path) -> None:
    from dfalens.errors import DataError

    with pytest.raises(DataError, match="not found"):
        read_results(tmp_path)
    with open(tmp_path / "results.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["a", "b"], [1, 2]])
    with pytest.raises(DataError, match="not a phase-diagram table"):
        read_results(tmp_path / "results.csv")
