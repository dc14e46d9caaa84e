"""Checking an output path before any work, so a bad one fails fast and nothing is half-written."""

from __future__ import annotations

import os
from pathlib import Path

from dfalens.errors import ConfigError

__all__ = ["check_output"]


def check_output(path: str | os.PathLike[str], suffixes: tuple[str, ...], what: str) -> Path:
    """``path`` as a Path when a file with one of ``suffixes`` can be written there, else ConfigError.

    Missing folders are fine when the nearest existing one is writable (they are created on writing).
    """
    target = Path(path)
    if target.suffix.lower() not in suffixes:
        raise ConfigError(
            f"cannot write {what} to {target.name!r}: use a file name ending in {' or '.join(suffixes)}"
        )
    if target.is_dir():
        raise ConfigError(
            f"{target} is a directory; give a file name such as {target / ('out' + suffixes[0])}"
        )
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cannot write {target}: {parent} is not a writable directory; choose another path"
        )
    if target.exists() and not os.access(target, os.W_OK):
        raise ConfigError(f"cannot write {target}: the file is read-only; choose another path")
    return target
