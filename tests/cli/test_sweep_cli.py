"""``dfalens sweep``: the phase diagram and grids from the command line, and their one-line errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dfalens.cli import app

TINY_PHASE = ["--resolution", "2", "--max-epochs", "2", "--hidden", "6", "--jobs", "1"]
TINY_GRID = ["--preset", "fast", "--grid", "epochs=1", "--grid", "max_len=3", "--jobs", "1"]


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        app.main(argv)
    return int(info.value.code)


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    return err


def test_phase_diagram_runs_resumes_and_refuses_another_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pd"
    assert _run(["sweep", "phase-diagram", *TINY_PHASE, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "(4 cells)" in text and "converged 0/4" in text
    table = (out / "results.csv").read_text()
    assert table.count("\n") == 5 and (out / "phase_diagram.png").is_file()
    assert _run(["sweep", "phase-diagram", *TINY_PHASE, "-o", str(out)]) == 0
    assert "(4 cells)" in capsys.readouterr().out
    argv = ["sweep", "phase-diagram", *TINY_PHASE, "--resolution", "3", "-o", str(out)]
    assert _run(argv) == 2
    assert "holds a different sweep" in _one_line_error(capsys)
    assert (out / "results.csv").read_text() == table


def test_unreachable_dask_scheduler_fails_fast_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pd"
    start = time.perf_counter()
    argv = [
        "sweep",
        "phase-diagram",
        *TINY_PHASE,
        "--executor",
        "dask://127.0.0.1:9",
        "-o",
        str(out),
    ]
    assert _run(argv) == 2
    assert time.perf_counter() - start < 15
    assert "cannot reach a Dask scheduler at 127.0.0.1:9" in _one_line_error(capsys)
    assert not out.exists()
    assert _run(["sweep", "phase-diagram", "--executor", "ray", "-o", str(out)]) == 2
    assert "unknown executor 'ray'" in _one_line_error(capsys)


def test_grid_sweep_and_its_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g"
    argv = ["sweep", "grid", *TINY_GRID, "--grid", "hidden=4,5", "--eps", "0.1", "-o", str(out)]
    assert _run(argv) == 0
    assert "(2 rows)" in capsys.readouterr().out
    header = (out / "results.csv").read_text().splitlines()[0]
    assert header.split(",")[:4] == ["epochs", "max_len", "hidden", "epochs_done"]
    assert (out / "models" / "cell_0001.safetensors").is_file()
    assert _run(["sweep", "grid", "--grid", "width=3", "-o", str(tmp_path / "x")]) == 2
    assert "unknown grid key 'width'" in _one_line_error(capsys)
    assert _run(["sweep", "grid", "-o", str(tmp_path / "x")]) == 2
    assert "the grid is empty" in _one_line_error(capsys)
    assert _run(["sweep", "grid", "--grid", "seed=", "-o", str(tmp_path / "x")]) == 2
    assert "has no values" in _one_line_error(capsys)
    assert not (tmp_path / "x").exists()
    before = (out / "results.csv").read_text()
    argv = ["sweep", "grid", *TINY_GRID, "--grid", "hidden=4,6", "--eps", "0.1", "-o", str(out)]
    assert _run(argv) == 2
    assert "holds a different sweep" in _one_line_error(capsys)
    assert (out / "results.csv").read_text() == before
