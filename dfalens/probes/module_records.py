"""A pickled ``torch.nn.Module`` as plain data: its type, attributes, weights and children.

:func:`module_record` turns a module read by :func:`~dfalens.probes.read_pickle` (an
:class:`~dfalens.probes.Inert` record, nothing run) or a live ``nn.Module`` into a frozen
:class:`ModuleRecord` tree. A module is recognised by its state, not its class name: any object whose
attributes hold the ``_parameters``, ``_buffers`` and ``_modules`` tables (so custom subclasses count).
Every walk is iterative and visits each module once, so shared submodules and hostile files cost
time linear in the number of modules.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from torch import Tensor, nn

from dfalens.errors import CheckpointError
from dfalens.probes._unpickle import Inert, PickleLimits

__all__ = ["ModuleRecord", "module_record", "module_state"]

_TABLES = ("_parameters", "_buffers", "_modules")
_WRAPPERS = ("module", "_orig_mod")


def module_state(obj: Any) -> Mapping[str, Any] | None:
    """The attribute dict of an ``nn.Module`` (inert record or live), ``None`` for anything else."""
    if isinstance(obj, Inert):
        state: Mapping[str, Any] = obj.attrs
    elif isinstance(obj, nn.Module):
        state = vars(obj)
    else:
        return None
    return state if all(isinstance(state.get(k), Mapping) for k in _TABLES) else None


def _type_name(obj: Any) -> str:
    if isinstance(obj, Inert):
        return type(obj).name()
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


@dataclass(frozen=True, eq=False)
class ModuleRecord:
    """One ``nn.Module`` read as data.

    Attributes
    ----------
    type_name : str
        Qualified class name as the file gave it, e.g. ``"torch.nn.modules.rnn.RNN"``.
    attributes : mapping of str to Any
        The module's other attributes as stored (``nonlinearity``, ``batch_first``, ``hidden_size``,
        ``padding_idx``, ``in_features``, custom ones, ...): plain values, tensors or
        :class:`~dfalens.probes.Inert` records. Hook tables are left out.
    parameters : mapping of str to Tensor
        Registered parameters, in order (``None`` entries, e.g. ``bias=False``, left out).
    buffers : mapping of str to Tensor
        Registered buffers, in order.
    children : mapping of str to ModuleRecord
        Submodules, in order; a submodule shared by several names is the same record under each.
    """

    type_name: str
    attributes: Mapping[str, Any]
    parameters: Mapping[str, Tensor]
    buffers: Mapping[str, Tensor]
    children: Mapping[str, ModuleRecord]

    def __repr__(self) -> str:  # shallow: a tree can be deep
        return (
            f"<ModuleRecord {self.type_name}: {len(self.parameters)} parameters, "
            f"{len(self.buffers)} buffers, children {list(self.children)[:8]}>"
        )

    @property
    def kind(self) -> str:
        """The class name without its module, e.g. ``"RNN"``."""
        return self.type_name.rsplit(".", 1)[-1]

    def get(self, path: str) -> ModuleRecord | None:
        """The submodule at a dotted ``path`` (``""`` is this module, a trailing dot is ignored), or
        ``None``. Paths as in the stripped weight keys: a lone ``module`` (DataParallel) or
        ``_orig_mod`` (torch.compile) wrapper on the way is passed through."""
        node: ModuleRecord | None = self
        for part in [p for p in path.split(".") if p]:
            while node is not None and part not in node.children and len(node.children) == 1:
                wrapper = next(iter(node.children))
                if wrapper not in _WRAPPERS:
                    break
                node = node.children[wrapper]
            node = node.children.get(part) if node is not None else None
        return node

    def unwrapped(self) -> ModuleRecord:
        """The module inside DataParallel/DDP (``module``) and torch.compile (``_orig_mod``) wrappers
        (this one when it is no wrapper)."""
        record = self
        while not record.parameters and not record.buffers and len(record.children) == 1:
            name, child = next(iter(record.children.items()))
            if name not in _WRAPPERS:
                break
            record = child
        return record

    def named_modules(self) -> Iterator[tuple[str, ModuleRecord]]:
        """``(dotted path, record)`` for this module and every submodule, depth first, each once."""
        seen: set[int] = set()
        stack: list[tuple[str, ModuleRecord]] = [("", self)]
        while stack:
            path, rec = stack.pop()
            if id(rec) in seen:
                continue
            seen.add(id(rec))
            yield path, rec
            stack.extend(
                (f"{path}.{name}" if path else name, child)
                for name, child in reversed(list(rec.children.items()))
            )

    def state_dict(self) -> dict[str, Tensor]:
        """The flat ``state_dict`` (``"rnn.weight_hh_l0"`` -> tensor), parameters then persistent
        buffers of each module, in torch's order; a shared submodule is listed once, under its first
        path."""
        out: dict[str, Tensor] = {}
        for path, rec in self.named_modules():
            skip = rec.attributes.get("_non_persistent_buffers_set")
            skip = skip if isinstance(skip, (set, frozenset)) else set()
            tensors = [
                *rec.parameters.items(),
                *((k, v) for k, v in rec.buffers.items() if k not in skip),
            ]
            for name, tensor in tensors:
                out[f"{path}.{name}" if path else name] = tensor
        return out


def _tensors(table: Mapping[Any, Any]) -> Mapping[str, Tensor]:
    return MappingProxyType({str(k): v for k, v in table.items() if isinstance(v, Tensor)})


def module_record(obj: Any, *, limits: PickleLimits | None = None) -> ModuleRecord:
    """The :class:`ModuleRecord` tree of an ``nn.Module``, read as data (nothing of it is called).

    Parameters
    ----------
    obj : Inert or nn.Module
        A module as returned by :func:`~dfalens.probes.read_pickle`, or a live module.
    limits : PickleLimits, optional
        ``max_objects`` bounds the number of modules.

    Raises
    ------
    CheckpointError
        ``obj`` is no module; its modules refer to themselves (a cycle); too many modules.
    """
    if module_state(obj) is None:
        raise CheckpointError(
            f"{_type_name(obj)} is not a torch module (no _parameters/_buffers/_modules); pass the "
            "model or its state_dict"
        )
    max_modules = (limits or PickleLimits()).max_objects
    done: dict[int, ModuleRecord] = {}
    open_: set[int] = set()
    stack: list[Any] = [obj]
    while stack:
        node = stack[-1]
        key = id(node)
        state = module_state(node)
        assert state is not None
        kids = [(str(n), c) for n, c in state["_modules"].items() if module_state(c) is not None]
        if key not in open_ and key not in done:
            open_.add(key)
            if len(open_) + len(done) > max_modules:
                raise CheckpointError(
                    f"the model has more than {max_modules:,} modules; it is malformed or hostile, or "
                    "pass larger PickleLimits"
                )
            for name, child in reversed(kids):
                if id(child) in open_:
                    raise CheckpointError(
                        f"the module tree refers to itself (submodule {name!r} of a "
                        f"{_type_name(node)} is one of its ancestors); re-save model.state_dict()"
                    )
                if id(child) not in done:
                    stack.append(child)
            continue
        stack.pop()
        if key in done:
            continue
        open_.discard(key)
        done[key] = ModuleRecord(
            type_name=_type_name(node),
            attributes=MappingProxyType(
                {
                    k: v
                    for k, v in state.items()
                    if k not in _TABLES and not (k.startswith("_") and "hook" in k)
                }
            ),
            parameters=_tensors(state["_parameters"]),
            buffers=_tensors(state["_buffers"]),
            children=MappingProxyType({name: done[id(child)] for name, child in kids}),
        )
    return done[id(obj)]
