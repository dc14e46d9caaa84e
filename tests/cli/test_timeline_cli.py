"""``dfalens timeline``: files written, the printed epochs, one-line errors with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_invoke import invoke
from click.testing import CliRunner

from dfalens.cli.app import cli
from dfalens.trainers import make_config, train

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    cfg = make_config(
        "paper", hidden=16, max_len=4, epochs=3, checkpoints="every", test_lengths=(25,), seed=0
    )
    train(cfg, out)
    return out


def test_writes_files_and_prints_epochs(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = invoke(
        ["timeline", str(run_dir), "-o", str(tmp_path), "--jobs", "1", "--plot"], capsys
    )
    assert code == 0, err
    assert "merger epoch" in out and "memorisation epoch" in out and "generalisation epoch" in out
    data = json.loads((tmp_path / "timeline.json").read_text())
    assert len(data["rows"]) == 4 and data["merger_epoch"] is None
    assert (tmp_path / "timeline.csv").read_text().startswith("epoch,")
    assert (tmp_path / "timeline.png").stat().st_size > 1000


def test_json_output_and_default_location(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = invoke(
        [
            "timeline",
            str(run_dir),
            "--jobs",
            "1",
            "--json",
            "--method",
            "threshold",
            "--per-checkpoint-eps",
        ],
        capsys,
    )
    assert code == 0
    data = json.loads(out)
    assert data["task"] == "parity" and "merger_epoch" in data and data["last"]["epoch"] == 3
    assert (run_dir / "timeline.json").is_file()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["timeline", "{missing}"], "not a directory"),
        (["timeline", "{empty}"], "checkpoints"),
        (["timeline", "{run}", "--task", "mod3x"], "unknown task"),
        (["timeline", "{run}", "--task", "{abc}"], "alphabet"),
        (["timeline", "{run}", "--method", "kmeans"], "method"),
        (["timeline", "{run}", "--eps", "0"], "eps"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    from dfalens.automata import Machine, to_json

    (tmp_path / "empty").mkdir()
    abc = tmp_path / "abc.json"
    abc.write_text(to_json(Machine([[0, 0, 0]], [0], alphabet=("a", "b", "c"))))
    subst = {
        "missing": str(tmp_path / "missing"),
        "empty": str(tmp_path / "empty"),
        "run": str(run_dir),
        "abc": str(abc),
    }
    argv = [a.format(**subst) for a in args] + ["--jobs", "1", "-o", str(tmp_path / "out")]
    code, out, err = invoke(argv, capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert needle in err


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(cli, ["timeline", "--help"])
    assert result.exit_code == 0
    for opt in ("--task", "--out", "--method", "--eps", "--per-checkpoint-eps", "--jobs"):
        assert opt in result.output
