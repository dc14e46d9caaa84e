"""Bounds on reading a pickle, and the opcode walk that enforces them before anything is built.

:func:`scan` simulates the pickle machine's stack with :func:`pickletools.genops`, counting opcodes,
objects and memo entries and tracking the nesting depth of every container (shared through the memo,
so growth after memoisation is seen); :func:`check_built` measures the built object iteratively, which
also catches nesting built top-down. Tensors, storages and globals are sealed: a pickle that sets state
or items on one (which would reach ``Tensor.__setstate__``/``__setitem__``) is refused. Exceeding a bound raises a one-line :class:`CheckpointError`.
"""

from __future__ import annotations

import io
import pickletools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from dfalens.errors import CheckpointError
from dfalens.probes._inert import Inert

__all__ = ["SEALED_CALLS", "Budget", "PickleLimits", "check_built", "corrupt", "scan"]

COMPAT = {"__builtin__": "builtins", "copy_reg": "copyreg"}
#: Globals whose calls build tensors, storages or other real objects that must not be mutated.
SEALED_CALLS = frozenset(
    [
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type_v2",
        "torch.storage._load_from_bytes",
        "torch.Size",
        "torch.device",
    ]
)
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
    """A simulated stack entry: nesting depth, a string literal's value, the global it names, and
    whether it is sealed (a global, a persistent id or a tensor: no state or items may be set on it)."""

    __slots__ = ("depth", "value", "glob", "sealed")

    def __init__(
        self, depth: int = 0, value: Any = None, glob: str | None = None, sealed: bool = False
    ) -> None:
        self.depth, self.value, self.glob, self.sealed = depth, value, glob, sealed


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

    def made(
        children: list[_Node],
        value: Any = None,
        leaf: bool = False,
        glob: str | None = None,
        sealed: bool = False,
    ) -> _Node:
        budget.objects += 1
        if budget.objects > lim.max_objects:
            raise budget.exceeded("objects", lim.max_objects)
        depth = 0 if leaf else 1 + max((c.depth for c in children), default=0)
        if depth > lim.max_depth:
            raise budget.exceeded("levels of nesting", lim.max_depth)
        return _Node(depth, value, glob, sealed)

    def call(callee: _Node, children: list[_Node]) -> _Node:
        return made(children, sealed=callee.glob in SEALED_CALLS)

    def grow(target: _Node, children: list[_Node]) -> None:
        if target.sealed:
            raise corrupt(name, "state or items set on a tensor, storage or global")
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
                elif code == "INST":
                    glob = _qualified(*f"{arg} ".split(" ")[:2])
                    budget.names.add(glob)
                    stack.append(call(_Node(glob=glob), items))
                elif code == "OBJ":
                    if not items:
                        raise corrupt(name, "a pickle stack underflow")
                    stack.append(call(items[0], items))
                elif code != "POP_MARK":
                    stack.append(made(items))
            elif code in ("APPEND", "SETITEM", "BUILD"):
                n = 2 if code == "SETITEM" else 1
                children = pop(n)
                if not stack:
                    raise corrupt(name, "a pickle stack underflow")
                grow(stack[-1], children)
            elif code in ("TUPLE1", "TUPLE2", "TUPLE3"):
                stack.append(made(pop(int(code[-1]))))
            elif code in ("REDUCE", "NEWOBJ", "NEWOBJ_EX"):
                children = pop(3 if code == "NEWOBJ_EX" else 2)
                stack.append(call(children[0], children))
            elif code in ("GLOBAL", "STACK_GLOBAL"):
                if code == "GLOBAL":
                    glob = _qualified(*f"{arg} ".split(" ")[:2])
                else:
                    mod, qual = pop(2)
                    glob = _qualified(str(mod.value), str(qual.value))
                budget.names.add(glob)
                stack.append(made([], leaf=True, glob=glob, sealed=True))
            elif code in ("PERSID", "BINPERSID"):
                stack.append(made(pop(1) if code == "BINPERSID" else [], sealed=True))
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
            else:  # a leaf: numbers, strings, bytes, None, booleans
                stack.append(made([], arg if isinstance(arg, str) else None, leaf=True))
    except CheckpointError:
        raise
    except Exception as exc:  # genops: truncated or not a pickle
        reason = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
        raise corrupt(name, f"it ends inside a pickle: {reason}") from None
    raise corrupt(name, "it ends inside a pickle")


def check_built(obj: Any, budget: Budget) -> None:
    """Check a built object, iteratively and visiting shared parts once: its nesting depth and its
    tensors' total size against the limits; drops instance attributes of an ``OrderedDict`` that would
    shadow its methods (``items``, ``get``, ...), which BUILD could have set."""
    lim = budget.limits
    seen: set[int] = set()
    elements = 0
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, Tensor):
            elements += node.numel()
            if elements > lim.max_elements:
                raise budget.exceeded("tensor elements", lim.max_elements)
            continue
        if isinstance(node, (list, tuple, set, frozenset)):
            children: list[Any] = list(node)
        elif isinstance(node, dict):
            if isinstance(node, OrderedDict):
                extra = vars(node)
                for key in [k for k in extra if not isinstance(k, str) or hasattr(OrderedDict, k)]:
                    del extra[key]
                children = [*node.keys(), *node.values(), *extra.values()]
            else:
                children = [*node.keys(), *node.values()]
        elif isinstance(node, Inert):
            children = [*node.args, *node.kwargs.values(), node.state, *node.items]
            children.extend(x for pair in node.entries for x in pair)
        else:
            continue
        if depth >= lim.max_depth and children:
            raise budget.exceeded("levels of nesting", lim.max_depth)
        stack.extend((child, depth + 1) for child in children)
