"""dfalens._files: output-path checks, write errors in one line, and directory locks."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dfalens._files import (
    LOCK_NAME,
    DirectoryLock,
    check_output_dir,
    check_output_file,
    refuse_existing,
    write_failure,
    writing,
)
from dfalens.errors import LockError, OutputError


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_output_dir_under_a_file_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="is not a directory"):
        check_output_dir(blocker)
    with pytest.raises(OutputError, match=r"file is not a directory"):
        check_output_dir(blocker / "a" / "b")
    assert blocker.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()


def test_output_file_must_not_be_a_device_or_a_directory(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="not a regular file"):
        check_output_file("/dev/full")
    with pytest.raises(OutputError, match="is a directory"):
        check_output_file(tmp_path)
    assert check_output_file(tmp_path / "out.csv") == tmp_path / "out.csv"


def test_read_only_file_system_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # tests run as root, so a chmod'ed folder stays writable: report a read-only mount instead
    real = os.statvfs

    class ReadOnly:
        def __init__(self, path: str) -> None:
            self.f_flag = real(path).f_flag | os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", ReadOnly)
    with pytest.raises(OutputError, match="read-only"):
        check_output_dir(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_write_errors_become_one_line_and_grouped_files_are_removed(tmp_path: Path) -> None:
    first = tmp_path / "a.csv"
    with pytest.raises(OutputError) as info, writing(tmp_path, "nothing", [first]):
        first.write_text("half of a pair")
        with open("/dev/full", "wb") as full:  # ENOSPC on every write
            full.write(b"x" * 10)
            full.flush()
    message = str(info.value)
    assert "disk is full" in message and "kept: nothing" in message and "\n" not in message
    assert not first.exists()
    assert "read-only" in str(write_failure(OSError(errno.EROFS, "ro"), "x"))
    assert "input/output error" in str(write_failure(OSError(errno.EIO, "io"), "x"))


def test_refuse_existing_names_the_file_and_the_flag(tmp_path: Path) -> None:
    (tmp_path / "timeline.csv").write_text("old")
    with pytest.raises(OutputError, match=r"timeline\.csv already exists; pass --force"):
        refuse_existing(tmp_path, ["timeline.json", "timeline.csv"], force=False)
    refuse_existing(tmp_path, ["timeline.csv"], force=True)
    assert (tmp_path / "timeline.csv").read_text() == "old"


def test_second_writer_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    start = time.perf_counter()
    with DirectoryLock(tmp_path / "run", "dfalens train -o run"):
        record = json.loads((tmp_path / "run" / LOCK_NAME).read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        with pytest.raises(LockError) as info:
            DirectoryLock(tmp_path / "run", "dfalens train -o run --resume").acquire()
        message = str(info.value)
        assert f"pid {os.getpid()}" in message and "dfalens train -o run" in message
        assert "\n" not in message
    assert not (tmp_path / "run" / LOCK_NAME).exists()
    DirectoryLock(tmp_path / "run").acquire().release()  # free again
    assert time.perf_counter() - start < 5


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    lock = tmp_path / LOCK_NAME
    stale = {"pid": _dead_pid(), "host": socket.gethostname(), "command": "dfalens x"}
    lock.write_text(json.dumps(stale))
    with DirectoryLock(tmp_path, "new holder"):
        assert json.loads(lock.read_text())["command"] == "new holder"
    assert not lock.exists()


def test_a_lock_of_another_host_or_a_fresh_unreadable_one_is_respected(tmp_path: Path) -> None:
    lock = tmp_path / LOCK_NAME
    lock.write_text(json.dumps({"pid": _dead_pid(), "host": "elsewhere.example", "command": "c"}))
    with pytest.raises(LockError, match="elsewhere.example"):
        DirectoryLock(tmp_path).acquire()
    lock.write_text("")  # a holder killed between creating and filling the file, just now
    with pytest.raises(LockError, match="another process"):
        DirectoryLock(tmp_path).acquire()
    old = time.time() - 3600
    os.utime(lock, (old, old))  # ... an hour ago: stale
    DirectoryLock(tmp_path).acquire().release()
    assert not lock.exists()


def test_release_leaves_a_lock_that_is_not_ours(tmp_path: Path) -> None:
    held = DirectoryLock(tmp_path).acquire()
    other = {"pid": 1, "host": socket.gethostname(), "command": "someone else"}
    (tmp_path / LOCK_NAME).write_text(json.dumps(other))
    held.release()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["command"] == "someone else"
