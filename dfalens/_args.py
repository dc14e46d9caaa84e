"""Argument checks for the public entry points: a wrong type is a :class:`ConfigError` naming the argument.

Python raises ``TypeError: '<' not supported between instances of 'str' and 'int'`` deep inside a
function when a string arrives where a number goes; these checks run first and say which argument was
wrong and what it should be.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from typing import Any

from dfalens.errors import ConfigError

__all__ = ["DeprecatedAlias", "check_path", "check_int", "check_number"]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_path(name: str, value: Any, *, optional: bool = False) -> None:
    """``value`` must be a path (``str`` or ``os.PathLike``), or None when ``optional``."""
    if value is None and optional:
        return
    if isinstance(value, bytes) or not isinstance(value, str | os.PathLike) or value == "":
        raise ConfigError(f"{name} must be a path, got {_show(value)}")


def check_int(name: str, value: Any, *, minimum: int | None = None, optional: bool = False) -> None:
    """``value`` must be an integer (not a bool) at least ``minimum``, or None when ``optional``."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be an integer, got {_show(value)}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
) -> None:
    """``value`` must be a finite real number inside the given bounds, or None when ``optional``."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {_show(value)}")
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ConfigError(f"{name} must be in {left}{lo}, {hi}{right}, got {value}")


class DeprecatedAlias:
    """A read-only attribute under an old name that warns and returns the attribute's new name.

    ``eps = DeprecatedAlias("eps_abs")`` in a class body (a plain class attribute: dataclasses do not make
    it a field); reading ``obj.eps`` warns with :class:`DeprecationWarning` and gives ``obj.eps_abs``.
    """

    def __init__(self, new: str) -> None:
        self.new = new
        self.old = ""
        self.owner = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.old, self.owner = name, owner.__name__

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        warnings.warn(
            f"{self.owner}.{self.old} is deprecated and will be removed in the next release; use "
            f".{self.new}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(obj, self.new)
