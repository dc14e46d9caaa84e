"""Budgets: refuse a request that cannot fit *before* allocating it.

Every size that comes from a user or a file (a task's number of states, a hidden size, a longest word, a
grid's number of cells, a checkpoint's metadata) is turned into an estimate of bytes (or cells) and
compared with a stated budget here. A request over budget raises :class:`dfalens.errors.BudgetError`
with one line naming the estimate, the limit and the way out.

The memory budget is ``min(8 GiB, 60 % of the available RAM)`` unless the environment variable
``DFALENS_MEMORY_BUDGET`` says otherwise (bytes, or a size such as ``512M``, ``16G``, ``1.5T``). The cell
budget of a sweep is 100,000 cells unless ``DFALENS_MAX_CELLS`` says otherwise.
"""

from __future__ import annotations

import math
import os
import re

from dfalens.errors import BudgetError, ConfigError

__all__ = [
    "MEMORY_ENV",
    "CELLS_ENV",
    "DEFAULT_MEMORY_CAP",
    "DEFAULT_MAX_CELLS",
    "parse_size",
    "format_size",
    "available_memory",
    "memory_budget",
    "cell_budget",
    "check_memory",
    "check_cells",
    "words_up_to",
    "word_symbols",
    "model_bytes",
]

MEMORY_ENV = "DFALENS_MEMORY_BUDGET"
CELLS_ENV = "DFALENS_MAX_CELLS"
DEFAULT_MEMORY_CAP = 8 * 2**30
"""The memory budget never exceeds this unless raised explicitly (8 GiB)."""
DEFAULT_MEMORY_SHARE = 0.6
"""Share of the available RAM the default budget may use."""
DEFAULT_MAX_CELLS = 100_000
"""Cells a sweep may hold unless raised explicitly."""

_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[kmgtp]?)(?:i?b)?\s*$", re.I)


def parse_size(text: str | int | float, what: str = MEMORY_ENV) -> int:
    """Bytes of a size: ``4096``, ``512M``, ``16G``, ``1.5TiB`` (binary units).

    Raises
    ------
    ConfigError
        For anything else, or a size that is not positive.
    """
    if isinstance(text, bool):
        raise ConfigError(f"{what} must be a size such as 512M or 16G, got {text!r}")
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _SIZE.match(str(text))
        if not match:
            raise ConfigError(f"{what} must be a size such as 512M or 16G, got {text!r}")
        value = float(match["number"]) * _UNITS[match["unit"].lower()]
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{what} must be a positive size such as 512M or 16G, got {text!r}")
    return int(value)


def format_size(n_bytes: float) -> str:
    """``7.28 TiB``, ``512 MiB``, ``3.07 EiB``: a size in binary units, three significant digits."""
    value = float(n_bytes)
    if not math.isfinite(value) or value >= 2.0**70:
        return "over 1024 EiB"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(value) < 1024 or unit == "EiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} EiB"  # pragma: no cover - the loop always returns


def available_memory() -> int | None:
    """The RAM available to new allocations (``MemAvailable``), or None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None


def memory_budget(budget: int | str | None = None) -> int:
    """The memory budget in bytes: ``budget`` if given, else ``$DFALENS_MEMORY_BUDGET``, else the default.

    The default is ``min(8 GiB, 60 % of the available RAM)``.
    """
    if budget is not None:
        return parse_size(budget, "memory budget")
    env = os.environ.get(MEMORY_ENV)
    if env:
        return parse_size(env, MEMORY_ENV)
    free = available_memory()
    if free is None:
        return DEFAULT_MEMORY_CAP
    return int(min(DEFAULT_MEMORY_CAP, DEFAULT_MEMORY_SHARE * free))


def cell_budget(budget: int | None = None) -> int:
    """The most cells a sweep may hold: ``budget``, else ``$DFALENS_MAX_CELLS``, else 100,000."""
    if budget is not None:
        value: object = budget
    else:
        value = os.environ.get(CELLS_ENV) or DEFAULT_MAX_CELLS
    try:
        number = int(str(value).replace("_", ""))
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"{CELLS_ENV} must be a positive integer, got {value!r}")
    return number


def check_memory(n_bytes: float, what: str, way_out: str, budget: int | str | None = None) -> None:
    """Refuse ``what`` when it needs more than the memory budget.

    Parameters
    ----------
    n_bytes : float
        Estimated bytes (may be astronomically large; it is never allocated).
    what : str
        The request, as the user would recognise it (``"task mod1000000000000"``).
    way_out : str
        What to change (``"choose a smaller K"``); the message adds how to raise the budget.
    budget : int or str, optional
        The budget in bytes (default: :func:`memory_budget`).

    Raises
    ------
    BudgetError
    """
    limit = memory_budget(budget)
    if not n_bytes <= limit:  # also catches NaN
        raise BudgetError(
            f"{what} needs {'about ' if n_bytes < 2.0**70 else ''}{format_size(n_bytes)}, over the "
            f"memory budget of "
            f"{format_size(limit)}; {way_out}, or raise the budget with {MEMORY_ENV}=SIZE"
        )


def check_cells(n_cells: int, what: str, budget: int | None = None) -> None:
    """Refuse a sweep of more than the cell budget (see :func:`cell_budget`).

    Raises
    ------
    BudgetError
    """
    limit = cell_budget(budget)
    if n_cells > limit:
        raise BudgetError(
            f"{what} has {n_cells:,} cells, over the limit of {limit:,}; shrink the grid, or raise "
            f"the limit with {CELLS_ENV}=N"
        )


def words_up_to(n_symbols: int, max_len: int) -> int:
    """The number of words of length 1..``max_len`` over ``n_symbols`` symbols (exact, unbounded int)."""
    k, n = int(n_symbols), int(max_len)
    if n < 1:
        return 0
    if k == 1:
        return n
    return (k ** (n + 1) - k) // (k - 1)


def word_symbols(n_symbols: int, max_len: int, fraction: float = 1.0) -> float:
    """Symbols in a ``fraction`` of the words of length 1..``max_len`` (a float; ``inf`` when huge)."""
    k, n = int(n_symbols), int(max_len)
    if n < 1 or k < 1:
        return 0.0
    if n * math.log2(max(k, 2)) > 1000:
        return math.inf
    return float(fraction) * sum(float(k) ** length * length for length in range(1, n + 1))


def model_bytes(
    hidden: int, layers: int = 1, n_symbols: int = 2, n_classes: int = 2, gates: int = 1
) -> int:
    """Bytes of a recurrent model's float32 parameters (weights only; training needs about four times).

    ``gates`` is 1 for an Elman cell, 3 for a GRU, 4 for an LSTM.
    """
    h, g = int(hidden), int(gates)
    first = g * h * (int(n_symbols) + h + 2)
    rest = (int(layers) - 1) * g * h * (2 * h + 2)
    readout = int(n_classes) * (h + 1) + 2 * h * int(layers)
    return 4 * (first + rest + readout)
