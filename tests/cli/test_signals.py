"""SIGINT ends a command with exit 130 and SIGTERM with 143, saying what was kept; workers are stopped.

These tests start ``dfalens`` as a child process in its own session and signal the whole process group,
as a terminal's Ctrl-C does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dfalens.trainers import checkpoints as ck

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", "from dfalens.cli.app import main; main()", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _signal(proc: subprocess.Popen[str], sig: int) -> tuple[int, str]:
    os.killpg(proc.pid, sig)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc.returncode, err


@pytest.mark.parametrize(
    "sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_train_says_how_to_resume(sig: int, code: int, word: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--task", "parity", "--preset", "fast", "--hidden", "4", "--max-len", "4"]
    proc = _start(args + ["--epochs", "100000", "--test-lengths", "10", "-o", str(out)], tmp_path)
    _wait_for(out / ck.STATE_FILE, proc)
    start = time.perf_counter()
    returncode, err = _signal(proc, sig)
    assert returncode == code, err
    assert (
        err == f"{word}; the run is saved up to its last checkpoint: continue it with "
        f"`dfalens train -o {out} --resume`\n"
    )
    assert time.perf_counter() - start < 10
    ck.load_checkpoint(out / ck.CHECKPOINT_DIR / ck.LAST)
    assert not (out / ".dfalens.lock").exists()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_a_sweep_with_workers_stops_them_and_says_what_was_kept(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", "grid", "--grid", "seed=0,1", "--grid", "epochs=100000", "--preset", "fast"]
    proc = _start(args + ["--jobs", "2", "--no-extract", "-o", str(out)], tmp_path)
    _wait_for(out / "results.csv", proc)
    time.sleep(3)  # the workers are training
    returncode, err = _signal(proc, signal.SIGINT)
    assert returncode == 130, err
    assert err.strip().splitlines()[-1] == (
        f"interrupted; the finished cells in {out / 'results.csv'}; rerun the same command to resume"
    )
    assert "Traceback" not in err and "resource_tracker" not in err and "leaked" not in err, err
    assert not (out / ".dfalens.lock").exists()


def test_a_timeline_with_workers_is_interrupted_cleanly(tmp_path: Path) -> None:
    from dfalens.trainers import make_config, train

    run = tmp_path / "run"
    config = make_config("paper", hidden=16, max_len=6, epochs=200, test_lengths=(20,), seed=0)
    train(config, run)
    out = tmp_path / "timeline"
    args = ["timeline", str(run), "--jobs", "2", "--max-len", "12", "-o", str(out)]
    proc = _start(args, tmp_path)
    deadline = time.monotonic() + 30
    while len(_children(proc.pid)) < 2:  # the loky workers are up
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    time.sleep(1)  # they collect states (the whole timeline takes far longer)
    assert proc.poll() is None, "the timeline finished before it could be interrupted"
    returncode, err = _signal(proc, signal.SIGINT)
    assert returncode == 130, err
    assert err == "interrupted; nothing was written; rerun the same command\n"
    assert not out.exists()
