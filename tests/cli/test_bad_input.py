"""Every bad input gets a clear 'no': one line on stderr, exit 2, nothing lost, nothing half-written.

Each test builds its own tiny fixture (a file where a folder goes, /dev/full, a silent TCP server, a
stale lock, a damaged checkpoint), runs the command in-process and checks the exit code, that stderr is
one line without a traceback, that nothing was written or changed, and how long the refusal took.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from cli_invoke import invoke
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from dfalens._files import LOCK_NAME
from dfalens.cli import app
from dfalens.cli.extract import extract
from dfalens.trainers import checkpoints as ck
from dfalens.trainers import make_config, train

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bad") / "run"
    cfg = make_config(
        "paper", hidden=8, max_len=3, epochs=2, checkpoints="every", test_lengths=(10,), seed=0
    )
    train(cfg, out)
    return out


@pytest.fixture
def run_copy(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def refused(
    args: list[str], capsys: pytest.CaptureFixture[str], needle: str, seconds: float = 10
) -> str:
    """Run ``dfalens ARGS``; check exit 2, one line naming ``needle``, no traceback, within time."""
    start = time.perf_counter()
    code, _, err = invoke(args, capsys)
    elapsed = time.perf_counter() - start
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and needle in err, err
    assert elapsed < seconds, f"took {elapsed:.1f} s"
    return err


# -- 1. nothing overwritten, locks ------------------------------------------------------------------


def test_demo_refuses_to_replace_another_run(
    run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    shutil.move(run_copy, out / "run")
    before = _snapshot(out)
    refused(["demo", "-o", str(out)], capsys, "pass --retrain to replace it")
    assert _snapshot(out) == before


def test_a_run_being_written_is_locked(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": "dfalens train (test)"}
    (run_copy / LOCK_NAME).write_text(json.dumps(holder))
    before = _snapshot(run_copy)
    err = refused(
        ["train", "-o", str(run_copy), "--resume", "--epochs", "3"], capsys, "is being written"
    )
    assert f"pid {os.getpid()}" in err and "dfalens train (test)" in err
    assert _snapshot(run_copy) == before


def test_a_stale_lock_is_taken_over(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    stale = {"pid": proc.pid, "host": socket.gethostname(), "command": "killed"}
    (run_copy / LOCK_NAME).write_text(json.dumps(stale))
    code, _, err = invoke(["train", "-o", str(run_copy), "--resume", "--epochs", "3"], capsys)
    assert code == 0, err
    assert not (run_copy / LOCK_NAME).exists()
    assert [r["epoch"] for r in ck.read_metrics(run_copy / ck.METRICS)] == [0, 1, 2, 3]


def test_timeline_and_theory_refuse_to_replace_outputs(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "timeline.json").write_text("mine")
    (tmp_path / "theory.json").write_text("mine too")
    refused(["timeline", str(run_dir), "-o", str(tmp_path)], capsys, "pass --force")
    refused(["theory", str(run_dir), "-o", str(tmp_path)], capsys, "pass --force")
    assert (tmp_path / "timeline.json").read_text() == "mine"
    assert (tmp_path / "theory.json").read_text() == "mine too"


# -- 2. budgets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, needle",
    [
        (["tasks", "mod1000000000000"], "memory budget"),
        (["train", "--task", "parity", "--hidden", "100000", "-o", "{out}"], "memory budget"),
        (["train", "--task", "parity", "--max-len", "100000", "-o", "{out}"], "memory budget"),
        (["sweep", "grid", "--grid", "seed=0..99999999", "-o", "{out}"], "100,000,000 cells"),
        (["sweep", "phase-diagram", "--resolution", "100000", "-o", "{out}"], "cells"),
        (["timeline", "{run}", "--max-len", "40", "-o", "{out}"], "lower --max-len"),
    ],
)
def test_sizes_that_cannot_fit_are_refused_before_allocating(
    args: list[str],
    needle: str,
    run_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    refused([a.format(out=out, run=run_dir) for a in args], capsys, needle, seconds=5)
    assert not out.exists()


def test_checkpoint_metadata_claiming_a_huge_model_is_refused(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ck.checkpoint_path(run_copy, 1)
    data = path.read_bytes()
    header = ck.safetensors_metadata(data)
    config = json.loads(header["model_config"])
    config["hidden"] = 10**7
    header["model_config"] = json.dumps(config)
    path.write_bytes(st_save(st_load(data), metadata=header))
    refused(["timeline", str(run_copy), "-o", str(run_copy / "tl")], capsys, "memory budget")
    assert not (run_copy / "tl").exists()


# -- 3. outputs that cannot be written ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--task", "parity", "--epochs", "1", "-o", "{blocked}"],
        ["timeline", "{run}", "-o", "{blocked}"],
        ["theory", "{run}", "-o", "{blocked}"],
        ["sweep", "grid", "--grid", "seed=0", "-o", "{blocked}"],
        ["demo", "-o", "{blocked}"],
    ],
)
def test_outputs_under_a_file_are_refused_up_front(
    args: list[str], run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    blocked = blocker / "out"
    refused([a.format(blocked=blocked, run=run_dir) for a in args], capsys, "not a directory")
    assert blocker.read_text() == "x"


def test_disk_full_during_training_keeps_the_last_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dfalens.trainers import loop

    real = loop.atomic_write
    calls = {"n": 0}

    def filling(path: object, data: object) -> object:
        calls["n"] += 1
        if calls["n"] > 8:  # run.json, then a few checkpoints fit; then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(loop, "atomic_write", filling)
    out = tmp_path / "run"
    args = ["train", "--task", "parity", "--preset", "fast", "--hidden", "4", "--max-len", "3"]
    args += ["--epochs", "20", "--checkpoints", "every", "--test-lengths", "10", "-o", str(out)]
    err = refused(args, capsys, "the disk is full")
    assert "--resume" in err
    model, meta = ck.load_checkpoint(out / ck.CHECKPOINT_DIR / ck.LAST)
    assert meta["epoch"] >= 1
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


# -- 5. cluster addresses -----------------------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts and never speaks (an HTTP server waiting for a request)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_server_that_is_not_dask_fails_within_seconds(
    silent_server: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", "grid", "--grid", "seed=0", "--executor", f"dask://127.0.0.1:{silent_server}"]
    refused(args + ["-o", str(out)], capsys, "cannot reach a Dask scheduler at 127.0.0.1", 10)
    assert not out.exists()


# -- 6. damaged metadata ------------------------------------------------------------------------------


def _rewrite_meta(path: Path, **changes: str) -> None:
    data = path.read_bytes()
    header = ck.safetensors_metadata(data)
    header.update(changes)
    path.write_bytes(st_save(st_load(data), metadata=header))


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"format_version": "abc"}, "format_version must be a positive integer"),
        ({"alphabet": "5"}, "alphabet must be a list of strings"),
        ({"epoch": "-3"}, "epoch must be a non-negative integer"),
    ],
)
def test_corrupt_checkpoint_metadata_is_named_field_by_field(
    changes: dict[str, str], needle: str, run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _rewrite_meta(ck.checkpoint_path(run_copy, 1), **changes)
    refused(["timeline", str(run_copy), "-o", str(run_copy / "tl")], capsys, needle)


def test_a_bit_flipped_weight_file_is_refused(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ck.checkpoint_path(run_copy, 1)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10  # inside the last tensor's bytes
    path.write_bytes(bytes(data))
    refused(["timeline", str(run_copy), "-o", str(run_copy / "tl")], capsys, "checksum")


def test_checkpoints_whose_shapes_disagree_are_refused(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ck.checkpoint_path(run_copy, 2)
    data = path.read_bytes()
    tensors = st_load(data)
    tensors["rnn.weight_hh_l0"] = torch.zeros(9, 9)
    path.write_bytes(st_save(tensors, metadata=ck.safetensors_metadata(data)))
    refused(["timeline", str(run_copy), "-o", str(run_copy / "tl")], capsys, "has shape (9, 9)")


def test_run_json_with_wrong_types_fails_resume_in_one_line(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = json.loads((run_copy / ck.RUN_JSON).read_text())
    record["config"]["hidden"] = "eight"
    record["sessions"] = 7
    (run_copy / ck.RUN_JSON).write_text(json.dumps(record))
    before = _snapshot(run_copy)
    err = refused(["train", "-o", str(run_copy), "--resume", "--epochs", "3"], capsys, "sessions")
    assert "hidden must be a positive integer" in err
    assert _snapshot(run_copy) == before


# -- 7. devices, streams ------------------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_points_at_auto(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["train", "--task", "parity", "--device", "cuda", "-o", str(out)]
    refused(args, capsys, "--device auto")
    refused(["sweep", "phase-diagram", "--device", "cuda", "-o", str(out)], capsys, "--device auto")
    assert not out.exists()


def test_full_stdout_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with open("/dev/full", "w") as full:
        monkeypatch.setattr("sys.stdout", full)
        code = app._run(app.cli, ["tasks", "parity", "--json"])
        monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: cannot write to standard output (No space left on device)")


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_a_pipe_closed_by_its_reader_ends_quietly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    code = app._run(app.cli, ["tasks"])
    monkeypatch.undo()
    assert code == 0 and capsys.readouterr().err == ""


def test_closed_stdout_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdout", None)
    code = app._run(app.cli, ["tasks"])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 2 and err == "error: standard output is closed; redirect it (e.g. > out.txt)\n"


def test_extract_dfa_takes_dash_h(capsys: pytest.CaptureFixture[str]) -> None:
    assert app._run(extract, ["-h"], "extract-dfa") == 0
    assert capsys.readouterr().out.startswith("Usage: extract-dfa")


# -- 8. meaningless settings --------------------------------------------------------------------------


def test_a_data_fraction_that_leaves_no_word_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["train", "--task", "parity", "--data-fraction", "1e-9", "-o", str(out)]
    refused(args, capsys, "leaves no training words")
    assert not out.exists()


@pytest.mark.parametrize("command", ["timeline", "theory"])
def test_a_task_with_other_outputs_than_the_network_is_refused(
    command: str, run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    refused([command, str(run_dir), "--task", "mod3", "-o", str(out)], capsys, "output classes")
    assert not out.exists()


def test_a_write_error_in_the_timeline_leaves_no_half_pair(
    run_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dfalens.timeline import _result as timelines

    real = timelines.atomic_write

    def second_fails(path: Path, data: object) -> object:
        if Path(path).name == "timeline.json":
            raise OSError(errno.EIO, "Input/output error", str(path))
        return real(path, data)

    monkeypatch.setattr(timelines, "atomic_write", second_fails)
    out = tmp_path / "out"
    err = refused(["timeline", str(run_dir), "-o", str(out)], capsys, "input/output error")
    assert "kept: no timeline" in err
    assert sorted(p.name for p in out.iterdir()) == []


@pytest.mark.skipif(
    getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
    reason="needs a machine without an Apple GPU",
)
def test_mps_without_the_device_points_at_auto(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    refused(
        ["train", "--task", "parity", "--device", "mps", "-o", str(out)], capsys, "--device auto"
    )
    assert not out.exists()
