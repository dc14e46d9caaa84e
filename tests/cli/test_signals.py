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
