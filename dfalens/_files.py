"""Writing files safely: the one atomic writer every part of dfalens uses, and the one JSON cleaner.

A file is written to a temporary sibling, flushed to disk and renamed over its target, so a reader (or a
killed process) never sees half a file. The result gets the permissions any other tool's output gets
(``0666`` under the user's umask), not the ``0600`` of a bare temporary file.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_write", "file_mode", "jsonable"]

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
        The file to create or replace; its folder must exist.
    data : bytes or str
        The content; text is encoded as UTF-8.

    Returns
    -------
    Path
        ``path``.
    """
    target = Path(path)
    payload = data.encode() if isinstance(data, str) else data
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
