"""Bounds on reading a pickle, and the opcode walk that enforces them before anything is built.

:func:`scan` simulates the pickle machine's stack with :func:`pickletools.genops`, counting opcodes,
objects and memo entries and tracking the nesting depth of every container (shared through the memo,
so growth after memoisation is seen); :func:`check_depth` measures the built object iteratively, which
also catches nesting built top-down. Exceeding a bound raises a one-line :class:`CheckpointError`.
"""

from __future__ import annotations

import io
import pickletools
from dataclasses import dataclass, field
from typing import Any

from dfalens.errors import CheckpointError
from dfalens.probes._inert import Inert

__all__ = ["Budget", "PickleLimits", "check_depth", "corrupt", "scan"]

COMPAT = {"__builtin__": "builtins", "copy_reg": "copyreg"}
_MARK_OPS = frozenset(
    [
        "TUPLE",
        "LIST",
        "DICT",
        "FROZENSET",
        "APPENDS",
        "SETITEMS",
        "ADDITEMS",
        "INST",
        "OBJ",
        "POP_MARK",
    ]
)


@dataclass(frozen=True)
class PickleLimits:
    """Bounds on reading one pickled file; exceeding one raises :class:`CheckpointError`.

    Attributes
    ----------
    max_bytes : int
        File size, and separately the bytes of all storages together.
    max_opcodes : int
        Pickle opcodes over all pickles in the file.
    max_memo : int
        Memo entries (and the largest memo index) of one pickle.
    max_objects : int
        Objects the pickles create; also containers visited when walking the result.
    max_depth : int
        Nesting depth of containers and records.
    max_elements : int
        Tensor elements over all tensors (a strided view counts its full size).
    """

    max_bytes: int = 2**31
    max_opcodes: int = 2_000_000
    max_memo: int = 1_000_000
    max_objects: int = 1_000_000
    max_depth: int = 1_000
    max_elements: int = 2**31


class _Node:
    __slots__ = ("depth", "value")

    def __init__(self, depth: int = 0, value: Any = None) -> None:
        self.depth, self.value = depth, value


@dataclass
class Budget:
    limits: PickleLimits
    opcodes: int = 0
    objects: int = 0
    elements: int = 0
    storage_bytes: int = 0
    embedded: bool = False  # reading a storage embedded in a plain pickle (not nested further)
    names: set[str] = field(default_factory=set)

    def exceeded(self, what: str, limit: int) -> CheckpointError:
        return CheckpointError(
            f"the pickle exceeds the reader's limit of {limit:,} {what}; it is malformed or hostile, "
            "or pass larger PickleLimits if you trust its size"
        )


def _qualified(module: str, name: str) -> str:
    return f"{COMPAT.get(module, module)}.{name}"


def corrupt(name: str, reason: str) -> CheckpointError:
    return CheckpointError(
        f"{name} is truncated or corrupt ({reason}); re-save it or use another checkpoint"
    )


def scan(stream: io.BytesIO, budget: Budget, name: str) -> int:
    """Walk one pickle from the stream's position without building it; returns its end offset."""
    lim = budget.limits
    stack: list[_Node] = []
    marks: list[list[_Node]] = []
    memo: dict[int, _Node] = {}

    def pop_mark() -> list[_Node]:
        nonlocal stack
        if not marks:
            raise corrupt(name, "a pickle opcode without its mark")
        items, stack = stack, marks.pop()
        return items

    def made(children: list[_Node], value: Any = None, leaf: bool = False) -> _Node:
        budget.objects += 1
        if budget.objects > lim.max_objects:
            raise budget.exceeded("objects", lim.max_objects)
        node = _Node(0 if leaf else 1 + max((c.depth for c in children), default=0), value)
        if node.depth > lim.max_depth:
            raise budget.exceeded("levels of nesting", lim.max_depth)
        return node

    def grow(target: _Node, children: list[_Node]) -> None:
        depth = 1 + max((c.depth for c in children), default=-1)
        if depth > target.depth:
            target.depth = depth
            if depth > lim.max_depth:
                raise budget.exceeded("levels of nesting", lim.max_depth)

    def pop(n: int) -> list[_Node]:
        if len(stack) < n:
            raise corrupt(name, "a pickle stack underflow")
        out = stack[len(stack) - n :]
        del stack[len(stack) - n :]
        return out

    try:
        for op, arg, _pos in pickletools.genops(stream):
            budget.opcodes += 1
            if budget.opcodes > lim.max_opcodes:
                raise budget.exceeded("pickle opcodes", lim.max_opcodes)
            code = op.name
            if code == "STOP":
                return stream.tell()
            if code in ("PROTO", "FRAME", "READONLY_BUFFER"):
                continue
            if code == "MARK":
                marks.append(stack)
                stack = []
            elif code in _MARK_OPS:
                items = pop_mark()
                if code in ("APPENDS", "SETITEMS", "ADDITEMS"):
                    if not stack:
                        raise corrupt(name, "a pickle stack underflow")
                    grow(stack[-1], items)
                elif code != "POP_MARK":
                    if code == "INST":
                        budget.names.add(_qualified(*f"{arg} ".split(" ")[:2]))
                    stack.append(made(items))
            elif code in ("APPEND", "SETITEM", "BUILD"):
                n = 2 if code == "SETITEM" else 1
                children = pop(n)
                if not stack:
                    raise corrupt(name, "a pickle stack underflow")
                grow(stack[-1], children)
            elif code in ("TUPLE1", "TUPLE2", "TUPLE3"):
                stack.append(made(pop(int(code[-1]))))
            elif code in ("REDUCE", "NEWOBJ"):
                stack.append(made(pop(2)))
            elif code == "NEWOBJ_EX":
                stack.append(made(pop(3)))
            elif code == "STACK_GLOBAL":
                mod, qual = pop(2)
                budget.names.add(_qualified(str(mod.value), str(qual.value)))
                stack.append(made([], leaf=True))
            elif code == "GLOBAL":
                budget.names.add(_qualified(*f"{arg} ".split(" ")[:2]))
                stack.append(made([], leaf=True))
            elif code == "BINPERSID":
                stack.append(made(pop(1)))
            elif code == "POP":
                if stack:
                    stack.pop()
                else:
                    pop_mark()
            elif code == "DUP":
                stack.append(pop(1)[0])
                stack.append(stack[-1])
            elif code in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                index = len(memo) if code == "MEMOIZE" else int(arg)
                if index > lim.max_memo or len(memo) >= lim.max_memo:
                    raise budget.exceeded("memo entries", lim.max_memo)
                if not stack:
                    raise corrupt(name, "a pickle stack underflow")
                memo[index] = stack[-1]
            elif code in ("GET", "BINGET", "LONG_BINGET"):
                if int(arg) not in memo:
                    raise corrupt(name, "a pickle refers to a missing memo entry")
                stack.append(memo[int(arg)])
            elif code == "NEXT_BUFFER":
                raise corrupt(name, "a pickle with out-of-band buffers")
            elif code in ("EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "EMPTY_TUPLE"):
                stack.append(made([]))
            else:  # a leaf: numbers, strings, bytes, None, booleans, PERSID
                stack.append(made([], arg if isinstance(arg, str) else None, leaf=True))
    except CheckpointError:
        raise
    except Exception as exc:  # genops: truncated or not a pickle
        reason = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
        raise corrupt(name, f"it ends inside a pickle: {reason}") from None
    raise corrupt(name, "it ends inside a pickle")


def check_depth(obj: Any, budget: Budget) -> None:
    """Raise when the built object nests deeper than the limit (iterative; shared parts once)."""
    limit = budget.limits.max_depth
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            continue
        if isinstance(node, (list, tuple, set, frozenset)):
            children: list[Any] = list(node)
        elif isinstance(node, dict):
            children = [*node.keys(), *node.values()]
        elif isinstance(node, Inert):
            children = [*node.args, *node.kwargs.values(), node.state, *node.items]
            children.extend(x for pair in node.entries for x in pair)
        else:
            continue
        if depth >= limit and children:
            raise budget.exceeded("levels of nesting", limit)
        seen.add(id(node))
        stack.extend((child, depth + 1) for child in children)
