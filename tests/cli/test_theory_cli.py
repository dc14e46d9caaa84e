"""``dfalens theory``: files written, theory.json keys, not-fitted runs exit 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_invoke import invoke

from dfalens.trainers import make_config, train

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("theory") / "run"
    cfg = make_config(
        "fast",
        hidden=16,
        max_len=5,
        epochs=40,
        checkpoints="every",
        test_lengths=(25,),
        seed=0,
    )
    train(cfg, out)
    return out


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("theory_short") / "run"
    cfg = make_config(
        "paper", hidden=8, max_len=3, epochs=2, checkpoints="every", test_lengths=(25,), seed=0
    )
    train(cfg, out)
    return out


@pytest.mark.slow
def test_theory_writes_json_report_and_figures(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = invoke(
        ["theory", str(run_dir), "-o", str(tmp_path), "--max-pairs", "150", "--rates", "pair"],
        capsys,
    )
    assert code == 0, err
    data = json.loads((tmp_path / "theory.json").read_text())
    for key in ("n_pairs", "precision", "recall", "confusion", "fit", "settings"):
        assert key in data
    assert data["n_pairs"] == 150 and data["fitted"] is True
    assert sum(data["confusion"].values()) == data["n_predicted"] > 0
    assert data["fit"]["method"] == "ode" and data["fit"]["n_fitted"] > 0
    assert data["settings"]["rates"] == "pair" and data["settings"]["task"] == "parity"
    assert "theory" in out and "baseline" in out
    for name in ("theory.txt", "theory_fig10.png", "theory_prediction.png", "theory_fits.png"):
        assert (tmp_path / name).stat().st_size > 500


def test_too_few_checkpoints_is_marked_not_fitted(
    short_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = invoke(["theory", str(short_run), "-o", str(tmp_path)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "not fitted" in err and "at least 3" in err
    data = json.loads((tmp_path / "theory.json").read_text())
    assert data["fitted"] is False and data["precision"] is None and data["n_pairs"] > 0
    assert data["confusion"] == {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    assert "NOT FITTED" in (tmp_path / "theory.txt").read_text()


def test_bad_input_is_one_line_exit_2(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = invoke(["theory", str(tmp_path / "nope"), "-o", str(tmp_path)], capsys)
    assert code == 2 and err.startswith("error:") and err.count("\n") == 1
    code, _, err = invoke(
        ["theory", str(run_dir), "-o", str(tmp_path), "--fraction", "1.5"], capsys
    )
    assert code == 2 and "fraction" in err


def test_figures_are_outputs_too(
    short_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "theory_fits.png"
    stale.write_bytes(b"an earlier run's figure")
    code, _, err = invoke(["theory", str(short_run), "-o", str(tmp_path)], capsys)
    assert code == 2 and "theory_fits.png already exists" in err and "--force" in err
    code, _, err = invoke(["theory", str(short_run), "-o", str(tmp_path), "--force"], capsys)
    assert code == 2 and "not fitted" in err  # unfitted: the earlier figure is gone, none new
    assert not stale.exists() and (tmp_path / "theory.json").is_file()
