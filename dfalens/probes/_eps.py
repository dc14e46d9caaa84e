"""The one way a merge distance is given: ``eps`` (relative to the state scale) or ``eps_abs`` (absolute).

Every public function that takes a merge distance takes both keywords and accepts at most one of them.
The ``relative=`` keyword of earlier versions still works for one release through
:func:`accepts_relative`: it warns (``DeprecationWarning``) and maps ``relative=False, eps=x`` onto
``eps_abs=x`` (``relative=True`` is what ``eps`` means anyway); it is not part of any signature.
:func:`renamed` does the same for keywords that only changed name (an absolute ``eps=`` that is now
``eps_abs=``, ``include_root=`` that is now ``include_empty=``).
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from dfalens.errors import ConfigError

__all__ = ["accepts_relative", "pick_eps", "renamed"]

F = TypeVar("F", bound=Callable[..., Any])


def pick_eps(eps: float | None, eps_abs: float | None) -> tuple[float | None, bool]:
    """The distance given and whether it is relative: ``(eps, True)`` or ``(eps_abs, False)``.

    Returns ``(None, True)`` when neither is given (the caller's default, which is relative).

    Raises
    ------
    ConfigError
        When both are given.
    """
    if eps is not None and eps_abs is not None:
        raise ConfigError(
            "pass eps (relative to the state scale) or eps_abs (an absolute distance), not both"
        )
    if eps_abs is not None:
        return float(eps_abs), False
    return eps, True


def accepts_relative(fn: F) -> F:
    """Let ``fn`` (which takes ``eps`` and ``eps_abs``) accept the deprecated ``relative=`` keyword.

    ``relative=True`` is dropped; ``relative=False`` moves the given ``eps`` to ``eps_abs``. Either
    warns with :class:`DeprecationWarning`. ``inspect.signature`` of the result is ``fn``'s.
    """
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "relative" not in kwargs:
            return fn(*args, **kwargs)
        relative = kwargs.pop("relative")
        warnings.warn(
            f"{fn.__name__}(relative=...) is deprecated and will be removed in the next release; "
            "pass eps=... (relative to the state scale) or eps_abs=... (absolute)",
            DeprecationWarning,
            stacklevel=2,
        )
        if relative:
            return fn(*args, **kwargs)
        bound = sig.bind_partial(*args, **kwargs)
        eps = bound.arguments.pop("eps", None)
        if eps is None:
            raise ConfigError(f"{fn.__name__}(relative=False) needs a distance; pass eps_abs=...")
        if bound.arguments.get("eps_abs") is not None:
            raise ConfigError(
                "pass eps (relative to the state scale) or eps_abs (an absolute distance), not both"
            )
        bound.arguments["eps_abs"] = eps
        return fn(*bound.args, **bound.kwargs)

    return wrapper  # type: ignore[return-value]


def renamed(**old_to_new: str) -> Callable[[F], F]:
    """Let a function accept old keyword names for one release: ``@renamed(eps="eps_abs")``.

    An old name is passed on under its new one with a :class:`DeprecationWarning`; giving both is a
    :class:`ConfigError`. The old names are not part of the signature.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise ConfigError(f"{fn.__name__}: pass {new}= only ({old}= is its old name)")
                warnings.warn(
                    f"{fn.__name__}({old}=...) is deprecated and will be removed in the next "
                    f"release; pass {new}=... (same meaning)",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
