"""The one exception hierarchy of dfalens.

Every error a user can cause derives from :class:`DfalensError`. Its message is one line that says what was
wrong and what to do; the CLI prints it and exits 2 without a traceback.
"""

from __future__ import annotations

__all__ = [
    "DfalensError",
    "MachineError",
    "TaskError",
    "CheckpointError",
    "ConfigError",
    "BudgetError",
    "DataError",
    "ClassifierError",
    "LockError",
    "OutputError",
]


class DfalensError(Exception):
    """Base class of every user-facing dfalens error."""


class MachineError(DfalensError, ValueError):
    """A machine (automaton) or its serialised form is malformed."""


class TaskError(DfalensError, ValueError):
    """An unknown task name or a task that does not fit the data (for example its alphabet)."""


class CheckpointError(DfalensError):
    """A checkpoint file is missing, truncated, unsafe or not understood."""


class ConfigError(DfalensError, ValueError):
    """A training, extraction or sweep setting is out of range or inconsistent."""


class BudgetError(DfalensError):
    """A request would exceed a memory or size budget."""


class DataError(DfalensError, ValueError):
    """Input arrays (hidden states, words) have the wrong shape or contain NaN/inf."""


class ClassifierError(DfalensError, ValueError):
    """A user's classify function raised or returned something other than one label per word."""


class LockError(DfalensError):
    """Another process is writing the same run, sweep or output directory."""


class OutputError(ConfigError):
    """An output cannot be written: a bad path, or a write error (disk full, I/O error, read-only)."""
