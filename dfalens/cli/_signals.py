"""What a command keeps when it is interrupted, and the signals that interrupt it.

A command says, before its long part starts, what survives an interruption and how to continue
(:func:`set_kept`); the runner in :mod:`dfalens.cli.app` prints that line when SIGINT (exit 130) or
SIGTERM (exit 143) ends the command.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType

__all__ = ["Terminated", "set_kept", "kept", "handle_sigterm", "stop_workers"]

_KEPT: dict[str, str] = {}


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM."""


def set_kept(text: str) -> None:
    """Say what an interruption from now on keeps and how to continue (one line)."""
    _KEPT["text"] = text


def kept() -> str | None:
    """The line set by :func:`set_kept` in this command, if any."""
    return _KEPT.get("text")


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextmanager
def handle_sigterm() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while the block runs (main thread only).

    The line of :func:`set_kept` is cleared on entry and stays readable after the block.
    """
    _KEPT.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_workers() -> None:
    """Shut down joblib's reusable worker processes, if this process started any (after an interrupt)."""
    module = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(module, "_executor", None)  # never start one just to stop it
    if executor is not None:
        with suppress(Exception):
            executor.shutdown(wait=True, kill_workers=True)
