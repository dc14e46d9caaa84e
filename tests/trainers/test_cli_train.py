"""``dfalens train``: success, summary, resume, and one-line errors with exit 2 for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dfalens.cli.app import main
from dfalens.trainers import checkpoints as ck

TINY = [
    "--hidden",
    "12",
    "--max-len",
    "5",
    "--batch-size",
    "8",
    "--gain",
    "0.5",
    "--lr",
    "0.05",
    "--test-lengths",
    "20,30",
    "--n-test-words",
    "3",
    "--device",
    "cpu",
]


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    return int(info.value.code), out, err


def test_train_writes_a_run_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code, text, err = cli(
        ["train", "--task", "parity", "--epochs", "3", *TINY, "-o", str(out)], capsys
    )
    assert code == 0, err
    assert "trained 3 epochs" in text
    assert "first epoch with training loss < 0.001: never" in text
    assert "first epoch with accuracy 1.0 at length 30:" in text
    assert [e for e, _ in ck.list_checkpoints(out)] == [0, 1, 2, 3]
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["hidden"] == 12 and record["config"]["test_lengths"] == [20, 30]

    code, text, _ = cli(["train", "--epochs", "5", "-o", str(out), "--resume", "--json"], capsys)
    assert code == 0
    summary = json.loads(text)
    assert summary["epochs"] == 5 and summary["accuracy_length"] == 30
    assert [r["epoch"] for r in ck.read_metrics(out / "metrics.jsonl")] == [0, 1, 2, 3, 4, 5]


def _snapshot(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # --force lets the run through the existing-run check: validation must still come first
        (["--task", "nosuchtask", "--force"], "unknown task"),
        (["--task", "parity", "--preset", "nosuch", "--force"], "unknown preset"),
        (["--task", "parity", "--hidden", "0", "--force"], "hidden must be a positive integer"),
        (["--task", "parity", "--gain", "-1", "--force"], "gain must be a positive number"),
        (["--task", "parity", "--lr", "0", "--force"], "lr must be a positive number"),
        (["--task", "parity", "--epochs", "-3", "--force"], "epochs must be a non-negative"),
        (["--task", "parity", "--hidden", "abc", "--force"], "abc"),
        (["--force"], "--task is required"),
        (["--task", "parity"], "already holds a run"),
        (["--task", "parity", "--lr", "0.3", "--resume"], "settings differ in lr"),
        (["--task", "parity", "--resume", "--force"], "exclude"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "run"
    code, _, err = cli(
        ["train", "--task", "parity", "--epochs", "1", *TINY, "-o", str(out)], capsys
    )
    assert code == 0, err
    before = _snapshot(out)
    code, _, err = cli(["train", *TINY, "--epochs", "2", *extra, "-o", str(out)], capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert _snapshot(out) == before


def test_divergence_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--task", "parity", "--epochs", "20", *TINY, "-o", str(tmp_path / "r")]
    args[args.index("--lr") + 1] = "100"
    code, _, err = cli(args, capsys)
    assert code == 2 and err.count("\n") == 1
    assert "training diverged at epoch" in err and "Lower --lr or --gain" in err
    assert "Traceback" not in err


def test_unwritable_output_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    code, _, err = cli(["train", "--task", "parity", *TINY, "-o", str(blocker / "run")], capsys)
    assert code == 2 and "cannot write" in err and err.count("\n") == 1
    assert blocker.read_text() == "keep"


def test_force_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert (
        cli(["train", "--task", "parity", "--epochs", "2", *TINY, "-o", str(out)], capsys)[0] == 0
    )
    code, text, _ = cli(
        ["train", "--task", "mod3", "--epochs", "1", *TINY, "-o", str(out), "--force"], capsys
    )
    assert code == 0 and "trained 1 epochs" in text
    assert [e for e, _ in ck.list_checkpoints(out)] == [0, 1]
    assert json.loads((out / "run.json").read_text())["config"]["task"] == "mod3"
