"""Writing files safely: the one atomic writer, the one JSON cleaner, output-path checks and
directory locks.

A file is written to a temporary sibling, flushed to disk and renamed over its target, so a reader (or a
killed process) never sees half a file. The result gets the permissions any other tool's output gets
(``0666`` under the user's umask), not the ``0600`` of a bare temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dfalens.errors import LockError, OutputError

__all__ = [
    "atomic_write",
    "jsonable",
    "file_mode",
    "check_output_dir",
    "check_output_file",
    "write_failure",
    "refuse_existing",
    "writing",
    "DirectoryLock",
    "LOCK_NAME",
]

_UMASK_LOCK = threading.Lock()


def file_mode() -> int:
    """The mode a new regular file gets under the current umask (``0o644`` under the usual ``022``)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename).

    On any error, KeyboardInterrupt included, the temporary file is removed and ``path`` is untouched.

    Parameters
    ----------
    path : path-like
        The file to create or replace; missing folders above it are created.
    data : bytes or str
        The content; text is encoded as UTF-8.

    Returns
    -------
    Path
        ``path``.
    """
    target = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def jsonable(value: Any, *, finite: bool = False) -> Any:
    """``value`` with numpy scalars and arrays, tuples and ranges made plain JSON types, recursively.

    Dict keys become strings, tuples and arrays lists, numpy integers/floats/bools Python ones, and a
    ``range`` its ``[start, stop]``. Anything else is returned as it is (``json.dumps`` judges it).

    Parameters
    ----------
    value : Any
    finite : bool, default False
        Write NaN and infinities (Python or numpy floats) as None (JSON ``null``), so the text is strict
        JSON; otherwise they stay floats.

    Returns
    -------
    Any
        A value that :func:`json.dumps` writes without a ``default``.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v, finite=finite) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, finite=finite) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), finite=finite)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return None if finite and not math.isfinite(v) else v
    if isinstance(value, range):
        return [value.start, value.stop]
    return value


# -- output paths ----------------------------------------------------------------------------------

_WRITE_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EIO: "an input/output error",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EISDIR: "it is a directory",
    errno.EFBIG: "the file is too large",
}


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (``.`` at worst)."""
    current = path
    while not os.path.lexists(current):
        parent = current.parent
        if parent == current:
            break
        current = parent
    return current


def _writable_dir(folder: Path, target: Path, what: str) -> None:
    if not folder.is_dir():
        raise OutputError(
            f"cannot write {what} {target}: {folder} is not a directory; choose another output path"
        )
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:  # pragma: no cover - statvfs is missing only on exotic systems
        read_only = False
    if read_only or not os.access(folder, os.W_OK | os.X_OK):
        reason = "the file system is read-only" if read_only else "permission denied"
        raise OutputError(
            f"cannot write {what} {target}: {folder} is not writable ({reason}); choose another "
            "output path"
        )


def check_output_dir(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Check, before any work, that ``path`` is (or can become) a writable folder.

    The folder itself, or its nearest existing ancestor, must be a folder, writable, on a writable file
    system. Nothing is created.

    Raises
    ------
    OutputError
        With one line naming the path and the way out.
    """
    target = Path(path)
    if os.path.lexists(target) and not target.is_dir():
        raise OutputError(
            f"{what} {target} exists and is not a directory; choose another output path"
        )
    _writable_dir(_nearest_existing(target), target, what)
    return target


def check_output_file(
    path: str | os.PathLike[str],
    what: str = "output file",
    suffixes: tuple[str, ...] | None = None,
) -> Path:
    """Check, before any work, that ``path`` can be written as a regular file (not a device or a folder).

    Parameters
    ----------
    path : path-like
    what : str
        The output as the user knows it (``"the report"``), for the message.
    suffixes : tuple of str, optional
        File name endings the output may have (``(".html", ".htm")``).

    Raises
    ------
    OutputError
    """
    target = Path(path)
    if suffixes is not None and target.suffix.lower() not in suffixes:
        raise OutputError(
            f"cannot write {what} to {target.name!r}: use a file name ending in {' or '.join(suffixes)}"
        )
    if os.path.lexists(target) and not target.is_file():
        kind = "a directory" if target.is_dir() else "not a regular file"
        raise OutputError(f"{what} {target} is {kind}; choose another output path")
    _writable_dir(_nearest_existing(target.parent), target, what)
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(
            f"cannot write {what} {target}: the file is read-only; choose another path"
        )
    return target


def refuse_existing(
    directory: str | os.PathLike[str], names: list[str], force: bool, flag: str = "--force"
) -> None:
    """Refuse to replace outputs already in ``directory`` unless ``force`` (names the first one found).

    Raises
    ------
    OutputError
    """
    if force:
        return
    found = [name for name in names if os.path.lexists(Path(directory) / name)]
    if found:
        raise OutputError(
            f"{Path(directory) / found[0]} already exists; pass {flag} to replace it or choose "
            "another output directory"
        )


def write_failure(exc: OSError, target: str | os.PathLike[str], kept: str = "") -> OutputError:
    """One-line :class:`OutputError` for an ``OSError`` met while writing ``target``.

    ``kept`` says what survives (``"the run up to its last checkpoint"``).
    """
    reason = _WRITE_ERRNOS.get(exc.errno or 0) or exc.strerror or type(exc).__name__
    tail = f"; kept: {kept}" if kept else ""
    return OutputError(
        f"cannot write {target}: {reason}{tail}; free space or choose another output"
    )


@contextlib.contextmanager
def writing(
    target: str | os.PathLike[str], kept: str = "", remove: Iterable[str | os.PathLike[str]] = ()
) -> Iterator[None]:
    """Turn a failure to write ``target`` into a one-line :class:`OutputError`.

    Disk full, quota, I/O errors, read-only file systems and permissions are converted; other
    ``OSError`` s (a missing input, say) pass through unchanged.

    Parameters
    ----------
    target : path
        What is being written (named in the message unless the error names a file).
    kept : str
        What survives a failure, for the message.
    remove : iterable of paths
        Files that belong together: on a failure every one of them is removed, so no set of outputs
        is left half-written.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in _WRITE_ERRNOS:
            raise  # not a write failure (a missing input, say): the caller reports it
        for path in remove:
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise write_failure(exc, getattr(exc, "filename", None) or target, kept) from exc


# -- locks -----------------------------------------------------------------------------------------

LOCK_NAME = ".dfalens.lock"
"""The lock file of a run or sweep directory."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _take_over(path: Path, stale: dict[str, Any] | None) -> None:
    """Move a stale lock aside; put it back if a live process replaced it meanwhile."""
    aside = path.with_name(f"{path.name}.stale.{os.getpid()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if _read_lock(aside) != stale:  # another process took over first: its lock stays
        with contextlib.suppress(OSError):
            os.link(aside, path)
    with contextlib.suppress(OSError):
        os.unlink(aside)


def _stale(path: Path, holder: dict[str, Any] | None) -> bool:
    """A lock whose process is gone (same host), or an unreadable one older than a minute."""
    if holder is None:
        try:
            return time.time() - path.stat().st_mtime > 60
        except FileNotFoundError:
            return True
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False  # cannot tell for another machine: ask the user
    return not _pid_alive(pid)


class DirectoryLock:
    """An exclusive lock on a directory, held by one writing process at a time.

    The lock is a file (``.dfalens.lock`` by default) created with ``O_CREAT | O_EXCL`` and holding the
    pid, host, command and start time of its holder as JSON. A second writer is refused with a
    :class:`LockError` naming the holder; a lock left by a dead process of this host is taken over.
    Use it as a context manager; the directory is created if needed.

    Parameters
    ----------
    directory : path
        The directory to lock.
    command : str
        What the holder is doing (``"dfalens train -o runs/a"``), for the message a second writer gets.
    name : str
        The lock file's name (separate names let different writers share a directory).
    """

    def __init__(
        self, directory: str | os.PathLike[str], command: str = "", name: str = LOCK_NAME
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / name
        self.command = command or " ".join(["dfalens", *sys.argv[1:]])[:300]
        self._token: str | None = None

    def acquire(self) -> DirectoryLock:
        """Take the lock (see the class docstring); raises :class:`LockError` when it is held."""
        check_output_dir(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": self.command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        payload = json.dumps(record).encode()
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode())
            except FileExistsError:
                holder = _read_lock(self.path)
                if _stale(self.path, holder):
                    _take_over(self.path, holder)
                    continue
                raise LockError(_held_message(self.directory, self.path, holder)) from None
            except OSError as exc:
                raise write_failure(exc, self.path) from None
            try:
                os.write(fd, payload)
            finally:
                os.close(fd)
            self._token = payload.decode()
            return self
        raise LockError(_held_message(self.directory, self.path, _read_lock(self.path)))

    def release(self) -> None:
        """Remove the lock file if it is still this process's (idempotent)."""
        if self._token is None:
            return
        try:
            if self.path.read_text(encoding="utf-8") == self._token:
                self.path.unlink()
        except OSError:
            pass
        self._token = None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _held_message(directory: Path, path: Path, holder: dict[str, Any] | None) -> str:
    if holder is None:
        who = "another process"
    else:
        who = (
            f"pid {holder.get('pid')} on {holder.get('host')} "
            f"({holder.get('command', '?')}, since {holder.get('started', '?')})"
        )
    return (
        f"{directory} is being written by {who}; wait for it to finish, or remove {path} if that "
        "process is gone"
    )
