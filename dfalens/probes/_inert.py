"""Inert records: what an object of a class named by a pickle becomes when nothing may run."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["Inert", "inert_class"]


class Inert:
    """An object of a class the file named: a record of how it was built, nothing run.

    The class of a record is a subclass of :class:`Inert`, one per qualified name (see
    :func:`inert_class`); ``type(record).module`` and ``type(record).qualname`` give the name.

    Attributes
    ----------
    args : tuple
        Positional constructor arguments (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ); for a call record
        (``qualname == "<call>"``) the callee first.
    kwargs : dict
        Keyword arguments (NEWOBJ_EX).
    state : Any
        The pickled state (BUILD / ``__setstate__``), usually the object's ``__dict__``; ``None`` when
        none was given.
    items : list
        Items appended (APPEND/APPENDS, ``extend``, ``add``).
    entries : list of (key, value)
        Items set (SETITEM/SETITEMS), in order.
    """

    __slots__ = ("args", "kwargs", "state", "items", "entries")
    module: str = ""
    qualname: str = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Inert:
        self = object.__new__(cls)
        self.args, self.kwargs, self.state = args, dict(kwargs), None
        self.items, self.entries = [], []
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def append(self, item: Any) -> None:
        self.items.append(item)

    def extend(self, items: Any) -> None:
        self.items.extend(items)

    def add(self, item: Any) -> None:
        self.items.append(item)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.entries.append((key, value))

    def __call__(self, *args: Any, **kwargs: Any) -> Inert:
        return _InertCall(self, *args, **kwargs)

    @classmethod
    def name(cls) -> str:
        """The qualified name the file gave, ``module.qualname``."""
        return f"{cls.module}.{cls.qualname}" if cls.module else cls.qualname

    @property
    def attrs(self) -> dict[str, Any]:
        """The state as attributes: the ``__dict__`` (and slot values) the file stored, str keys only."""
        state = self.state
        parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
        out: dict[str, Any] = {}
        for part in parts:
            if isinstance(part, dict):
                out.update((k, v) for k, v in part.items() if isinstance(k, str))
        return out

    def __repr__(self) -> str:
        state = self.state
        shown = f"{len(state)} attrs" if isinstance(state, dict) else type(state).__name__
        return (
            f"<inert {type(self).name()}: {len(self.args)} args, state {shown}, "
            f"{len(self.items)} items, {len(self.entries)} entries>"
        )


class _InertCall(Inert):
    __slots__ = ()
    qualname = "<call>"


def _identifier(text: str) -> str:
    tail = text.rsplit(".", 1)[-1]
    return "".join(c if c.isalnum() or c == "_" else "_" for c in tail)[:80] or "_"


@lru_cache(maxsize=4096)
def inert_class(module: str, qualname: str) -> type[Inert]:
    """The inert class standing for ``module.qualname`` (one class per name, cached)."""
    ns = {"__slots__": (), "module": module, "qualname": qualname, "__module__": __name__}
    return type(_identifier(qualname), (Inert,), ns)
