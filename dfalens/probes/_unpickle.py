"""Read pickled torch files as data: a bounded, restricted unpickler that runs nothing from the file.

Formats: torch's zip archive (``<prefix>/data.pkl`` with storages in ``<prefix>/data/<key>``), torch's
legacy format (magic-number pickle, protocol, sys_info, the object pickle, the storage keys, then the raw
storage bytes) and a plain pickle. Nothing named by the file is imported or called. Tensors are rebuilt
by this module's own equivalents of ``torch._utils._rebuild_tensor_v2``/``_v3``/``_rebuild_parameter``
(views of the file's bytes, bounds-checked); ``collections.OrderedDict``, ``torch.Size``, ``torch.device``,
torch dtypes, storage types, ``set``/``frozenset``/``complex`` and ``copyreg``'s reconstructors map to safe
equivalents. Every other global becomes an inert class (one per qualified name, derived from
:class:`Inert`) whose instances only record their constructor arguments, state, appended and set items.

Every read is bounded (:class:`PickleLimits`): each pickle is first walked opcode by opcode with
:func:`pickletools.genops` (a stack simulation that counts opcodes, objects, memo entries and nesting depth)
before anything is built, and exceeding a bound raises a one-line :class:`~dfalens.errors.CheckpointError`.
"""

from __future__ import annotations

import io
import math
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dfalens.errors import CheckpointError
from dfalens.probes._inert import Inert, inert_class
from dfalens.probes._pickle_scan import COMPAT, Budget, PickleLimits, check_built, corrupt, scan

__all__ = ["Inert", "PickleLimits", "inert_class", "pickle_globals", "read_pickle"]  # re-exported

_ZIP_MAGIC = b"PK\x03\x04"
_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001
_STORAGES: dict[str, torch.dtype] = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexDoubleStorage": torch.complex128,
    "ComplexFloatStorage": torch.complex64,
    "UntypedStorage": torch.uint8,
}
_DTYPES = frozenset(
    [
        "float32",
        "float",
        "float64",
        "double",
        "float16",
        "half",
        "bfloat16",
        "int8",
        "int16",
        "short",
        "int32",
        "int",
        "int64",
        "long",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "bool",
        "complex32",
        "complex64",
        "cfloat",
        "complex128",
        "cdouble",
        "float8_e4m3fn",
        "float8_e5m2",
        "float8_e4m3fnuz",
        "float8_e5m2fnuz",
    ]
)


# ---------------------------------------------------------------------------------------------------
# safe building


class _Malformed(Exception):
    """A tensor or storage record that does not describe a valid tensor."""


@dataclass(frozen=True, eq=False)
class _StorageType:
    dtype: torch.dtype


@dataclass(frozen=True, eq=False)
class _Storage:
    data: Tensor  # 1-D uint8, the storage's bytes (filled later in the legacy format)
    dtype: torch.dtype


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) > 64:
        raise _Malformed(f"tensor {what} is not a short tuple")
    if not all(type(v) is int and v >= 0 for v in value):
        raise _Malformed(f"tensor {what} holds something other than non-negative ints")
    return tuple(value)


def _copy_reconstructor(cls: Any, base: Any = None, state: Any = None) -> Any:
    if isinstance(cls, type) and issubclass(cls, Inert):
        obj = cls.__new__(cls)
        if state is not None:
            obj.kwargs["base_state"] = state
        return obj
    return inert_class("copyreg", "_reconstructor")(cls, base, state)


def _copy_newobj(cls: Any, *args: Any) -> Any:
    if isinstance(cls, type) and issubclass(cls, Inert):
        return cls.__new__(cls, *args)
    return inert_class("copyreg", "__newobj__")(cls, *args)


def _copy_newobj_ex(cls: Any, args: Any = (), kwargs: Any = None) -> Any:
    if isinstance(cls, type) and issubclass(cls, Inert) and isinstance(args, tuple):
        obj = cls.__new__(cls, *args)
        obj.kwargs.update(kwargs if isinstance(kwargs, dict) else {})
        return obj
    return inert_class("copyreg", "__newobj_ex__")(cls, args, kwargs)


def _guarded(module: str, name: str, build: Callable[..., Any]) -> Callable[..., Any]:
    """``build`` on well-typed arguments, else an inert record of the call."""

    def call(*args: Any) -> Any:
        try:
            return build(*args)
        except (TypeError, ValueError, RuntimeError, _Malformed):
            return inert_class(module, name)(*args)

    return call


def _ordered_dict(*args: Any) -> OrderedDict[Any, Any]:
    if args and not (len(args) == 1 and isinstance(args[0], (list, tuple, dict))):
        raise TypeError("OrderedDict takes one list of pairs")
    return OrderedDict(*args)


def _collection(kind: type) -> Callable[..., Any]:
    def build(*args: Any) -> Any:
        if args and not (len(args) == 1 and isinstance(args[0], (list, tuple, set, frozenset))):
            raise TypeError(f"{kind.__name__} takes one list")
        return kind(*args)

    return build


def _complex(real: Any = 0.0, imag: Any = 0.0) -> complex:
    if not all(type(v) in (int, float) for v in (real, imag)):
        raise TypeError("complex takes two numbers")
    return complex(real, imag)


def _encode(text: Any, encoding: Any = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "ascii"):
        raise TypeError("_codecs.encode takes a str and a standard encoding")
    return text.encode(encoding)


def _size(dims: Any = ()) -> torch.Size:
    return torch.Size(_ints(dims, "size"))


def _device(kind: Any, index: Any = None) -> torch.device:
    if not isinstance(kind, str) or len(kind) > 64 or not (index is None or type(index) is int):
        raise TypeError("torch.device takes a name and an optional index")
    return torch.device(kind) if index is None else torch.device(kind, index)


_SAFE: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): _guarded("collections", "OrderedDict", _ordered_dict),
    ("builtins", "set"): _guarded("builtins", "set", _collection(set)),
    ("builtins", "frozenset"): _guarded("builtins", "frozenset", _collection(frozenset)),
    ("builtins", "complex"): _guarded("builtins", "complex", _complex),
    ("_codecs", "encode"): _guarded("_codecs", "encode", _encode),
    ("torch", "Size"): _guarded("torch", "Size", _size),
    ("torch", "device"): _guarded("torch", "device", _device),
    ("copyreg", "_reconstructor"): _copy_reconstructor,
    ("copyreg", "__newobj__"): _copy_newobj,
    ("copyreg", "__newobj_ex__"): _copy_newobj_ex,
}


class _Reader(pickle.Unpickler):
    """The C unpickler with every global and persistent id resolved by :meth:`find_class`."""

    def __init__(
        self, stream: io.BytesIO, budget: Budget, storage: Callable[[tuple[Any, ...]], Any]
    ) -> None:
        super().__init__(stream)
        self._budget = budget
        self._storage = storage
        self._rebuilders: dict[tuple[str, str], Callable[..., Any]] = {
            ("torch._utils", "_rebuild_tensor"): self._rebuild_tensor,
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_tensor_v3"): self._rebuild_tensor_v3,
            ("torch._utils", "_rebuild_parameter"): self._rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): self._rebuild_parameter,
            ("torch._tensor", "_rebuild_from_type_v2"): self._rebuild_from_type,
            ("torch.storage", "_load_from_bytes"): self._load_from_bytes,
        }

    def find_class(self, module: str, name: str) -> Any:
        if len(module) > 1000 or len(name) > 1000:
            raise _Malformed("a global name longer than 1000 characters")
        module = COMPAT.get(module, module)
        key = (module, name)
        if key in self._rebuilders:
            return self._rebuilders[key]
        if key in _SAFE:
            return _SAFE[key]
        if module in ("torch", "torch.storage") and name in _STORAGES:
            return _StorageType(_STORAGES[name])
        if (
            module == "torch"
            and name in _DTYPES
            and isinstance(getattr(torch, name, None), torch.dtype)
        ):
            return getattr(torch, name)
        return inert_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise _Malformed("a persistent id that is not a tuple")
        return self._storage(pid)

    def _load_from_bytes(self, blob: Any) -> Any:
        """A storage that a plain pickle embeds as a legacy torch file (one level, never nested)."""
        if not isinstance(blob, bytes) or self._budget.embedded:
            return inert_class("torch.storage", "_load_from_bytes")(blob)
        self._budget.embedded = True
        try:
            return _parse_stream(blob, "an embedded storage", self._budget)
        finally:
            self._budget.embedded = False

    # -- tensors ------------------------------------------------------------------------------------

    def _tensor(
        self, storage: Any, offset: Any, size: Any, stride: Any, dtype: torch.dtype | None = None
    ) -> Tensor:
        if not isinstance(storage, _Storage):
            raise _Malformed("a tensor whose storage is not a storage record")
        dtype = dtype or storage.dtype
        dims, steps = _ints(size, "size"), _ints(stride, "stride")
        if type(offset) is not int or offset < 0 or len(dims) != len(steps):
            raise _Malformed("a tensor with a bad offset or stride")
        numel = math.prod(dims)
        lim = self._budget.limits
        self._budget.elements += numel
        if self._budget.elements > lim.max_elements:
            raise self._budget.exceeded("tensor elements", lim.max_elements)
        itemsize = torch.empty((), dtype=dtype).element_size()
        n_items = storage.data.numel() // itemsize
        if numel and offset + sum((d - 1) * s for d, s in zip(dims, steps, strict=True)) >= n_items:
            raise _Malformed("a tensor that reaches past the end of its storage")
        flat = storage.data[: n_items * itemsize].view(dtype)
        return torch.as_strided(flat, dims, steps, offset)

    def _rebuild_tensor(self, storage: Any, offset: Any, size: Any, stride: Any) -> Tensor:
        return self._tensor(storage, offset, size, stride)

    def _rebuild_tensor_v2(
        self,
        storage: Any,
        offset: Any,
        size: Any,
        stride: Any,
        requires_grad: Any = False,
        hooks: Any = None,
        metadata: Any = None,
    ) -> Tensor:
        return self._with_metadata(self._tensor(storage, offset, size, stride), metadata)

    def _rebuild_tensor_v3(
        self,
        storage: Any,
        offset: Any,
        size: Any,
        stride: Any,
        requires_grad: Any,
        hooks: Any,
        dtype: Any,
        metadata: Any = None,
    ) -> Tensor:
        if not isinstance(dtype, torch.dtype):
            raise _Malformed("a tensor whose dtype is not a torch dtype")
        return self._with_metadata(self._tensor(storage, offset, size, stride, dtype), metadata)

    @staticmethod
    def _with_metadata(tensor: Tensor, metadata: Any) -> Tensor:
        if not metadata:
            return tensor
        if not isinstance(metadata, dict) or not set(metadata) <= {"conj", "neg"}:
            raise _Malformed("tensor metadata other than the conj/neg bits")
        if metadata.get("conj"):
            tensor = tensor.conj()
        if metadata.get("neg"):
            tensor = torch._neg_view(tensor)
        return tensor

    @staticmethod
    def _rebuild_parameter(data: Any, *_rest: Any) -> Tensor:
        if not isinstance(data, Tensor):
            raise _Malformed("a parameter that holds no tensor")
        return data

    def _rebuild_from_type(self, func: Any, new_type: Any, args: Any, state: Any = None) -> Any:
        makers = [f for f in self._rebuilders.values() if f != self._rebuild_from_type]
        if not any(func is f for f in makers) or not isinstance(args, tuple):  # never itself
            return inert_class("torch._tensor", "_rebuild_from_type_v2")(
                func, new_type, args, state
            )
        return func(*args)


# ---------------------------------------------------------------------------------------------------
# file formats


def _load_one(
    data: bytes, pos: int, budget: Budget, name: str, storage: Callable[[tuple[Any, ...]], Any]
) -> tuple[Any, int]:
    """Scan, then build, the pickle that starts at ``pos``; returns it and its end offset."""
    stream = io.BytesIO(data)
    stream.seek(pos)
    end = scan(stream, budget, name)
    try:
        obj = _Reader(io.BytesIO(data[pos:end]), budget, storage).load()
    except CheckpointError:
        raise
    except _Malformed as exc:
        raise corrupt(name, str(exc)) from None
    except Exception as exc:  # the C unpickler on a malformed stream
        reason = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
        raise corrupt(name, reason) from None
    check_built(obj, budget)
    return obj, end


def _no_storage(pid: tuple[Any, ...]) -> Any:
    raise _Malformed("a persistent id outside a torch file")


def _storage_of(pid: tuple[Any, ...], n_fields: int) -> tuple[torch.dtype, str, int]:
    if len(pid) != n_fields or pid[0] not in ("storage", b"storage"):
        raise _Malformed(f"a persistent id other than a storage: {str(pid[0])[:40]!r}")
    stype, key, numel = pid[1], pid[2], pid[4]
    if not isinstance(stype, _StorageType):
        raise _Malformed("a storage of an unsupported type (quantized or unknown)")
    if not isinstance(key, str) or len(key) > 200 or type(numel) is not int or numel < 0:
        raise _Malformed("a storage with a bad key or size")
    return stype.dtype, key, numel


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _swap_bytes(data: Tensor, dtype: torch.dtype) -> Tensor:
    unit = _itemsize(dtype) // (2 if dtype.is_complex else 1)
    if unit <= 1 or data.numel() % unit:
        return data
    return data.view(-1, unit).flip(1).reshape(-1).contiguous()


@contextmanager
def _open_zip(
    path: Path, budget: Budget
) -> Iterator[tuple[zipfile.ZipFile, bool, Callable[[str, int], bytes]]]:
    """The archive, whether it is big-endian, and a bounded reader of its records."""
    lim = budget.limits
    try:
        zf = zipfile.ZipFile(path)
    except Exception as exc:  # zipfile raises BadZipFile, NotImplementedError, struct.error, ...
        raise corrupt(path.name, f"not a readable zip archive: {exc}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > lim.max_objects:
            raise budget.exceeded("archive entries", lim.max_objects)
        pkls = [i.filename for i in infos if i.filename.endswith("/data.pkl")]
        if len(pkls) != 1 or pkls[0].count("/") != 1:
            raise CheckpointError(
                f"{path.name} is a zip archive but not a torch.save file (no single */data.pkl); "
                "pass a file written by torch.save"
            )
        prefix = pkls[0][: -len("data.pkl")]

        def record(name: str, limit: int) -> bytes:
            info = zf.getinfo(prefix + name)
            if info.file_size > limit:
                raise budget.exceeded("bytes of storage data", lim.max_bytes)
            try:
                return zf.read(info)
            except Exception as exc:  # BadZipFile, NotImplementedError, zlib.error, ...
                raise corrupt(path.name, str(exc)[:100]) from None

        big = any(i.filename == f"{prefix}byteorder" for i in infos) and (
            record("byteorder", 16) == b"big"
        )
        yield zf, big, record


def _stored(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray | None:
    """An uncompressed entry's bytes read straight from the archive (one copy, no CRC pass, as
    torch's reader does); ``None`` for a compressed entry or an unexpected local header."""
    if info.compress_type != zipfile.ZIP_STORED or zf.fp is None:
        return None
    zf.fp.seek(info.header_offset)
    header = zf.fp.read(30)
    if len(header) < 30 or not header.startswith(_ZIP_MAGIC):
        return None
    skip = int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
    zf.fp.seek(info.header_offset + 30 + skip)
    out = np.empty(info.file_size, dtype=np.uint8)
    return out if zf.fp.readinto(memoryview(out)) == info.file_size else None


def _read_zip(path: Path, budget: Budget) -> Any:
    lim = budget.limits
    with _open_zip(path, budget) as (zf, big, record):
        prefix = next(i.filename for i in zf.infolist() if i.filename.endswith("/data.pkl"))[:-8]
        loaded: dict[tuple[str, torch.dtype], _Storage] = {}

        def storage(pid: tuple[Any, ...]) -> _Storage:
            dtype, key, numel = _storage_of(pid, 5)
            if (key, dtype) not in loaded:
                nbytes = numel * _itemsize(dtype)
                budget.storage_bytes += nbytes
                if budget.storage_bytes > lim.max_bytes:
                    raise budget.exceeded("bytes of storage data", lim.max_bytes)
                flat = torch.zeros(0, dtype=torch.uint8)
                if nbytes:
                    try:
                        info = zf.getinfo(f"{prefix}data/{key}")
                    except KeyError:
                        raise _Malformed(f"storage {key!r} is missing from the archive") from None
                    if info.file_size < nbytes:
                        raise _Malformed(f"storage {key!r} is shorter than its tensor")
                    raw = _stored(zf, info)
                    if raw is None:
                        raw = np.frombuffer(record(f"data/{key}", lim.max_bytes), np.uint8).copy()
                    flat = torch.from_numpy(raw[:nbytes])
                loaded[key, dtype] = _Storage(_swap_bytes(flat, dtype) if big else flat, dtype)
            return loaded[key, dtype]

        return _load_one(record("data.pkl", lim.max_bytes), 0, budget, path.name, storage)[0]


def _read_stream(path: Path, budget: Budget) -> Any:
    return _parse_stream(path.read_bytes(), path.name, budget)


def _parse_stream(data: bytes, name: str, budget: Budget) -> Any:
    """A legacy torch file (magic number first) or else a plain pickle."""
    first, pos = _load_one(data, 0, budget, name, _no_storage)
    if type(first) is not int or first != _MAGIC_NUMBER:
        return first  # a plain pickle (trailing bytes ignored, as pickle.load does)
    version, pos = _load_one(data, pos, budget, name, _no_storage)
    if version != _PROTOCOL_VERSION:
        raise corrupt(name, f"unknown legacy torch protocol {version!r}")
    _sys_info, pos = _load_one(data, pos, budget, name, _no_storage)
    roots: dict[str, _Storage] = {}
    views: dict[str, _Storage] = {}
    allocated = 0

    def storage(pid: tuple[Any, ...]) -> Any:
        if len(pid) == 4 and pid[0] in ("module", b"module"):
            return pid[1]  # the class of a pickled nn.Module (its source text is ignored)
        dtype, key, numel = _storage_of(pid, 6)
        nonlocal allocated
        if key not in roots:
            nbytes = numel * _itemsize(dtype)
            allocated += nbytes
            budget.storage_bytes += nbytes
            if allocated > len(data) or budget.storage_bytes > budget.limits.max_bytes:
                raise _Malformed("storages larger than the file")
            roots[key] = _Storage(torch.zeros(nbytes, dtype=torch.uint8), dtype)
        root, view = roots[key], pid[5]
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[0], str)):
            raise _Malformed("a storage view with bad metadata")
        offset, count = _ints(view[1:], "storage view")
        size = _itemsize(root.dtype)
        if (offset + count) * size > root.data.numel():
            raise _Malformed("a storage view past the end of its storage")
        views.setdefault(
            view[0], _Storage(root.data[offset * size : (offset + count) * size], dtype)
        )
        return views[view[0]]

    obj, pos = _load_one(data, pos, budget, name, storage)
    keys, pos = _load_one(data, pos, budget, name, _no_storage)
    if not isinstance(keys, list) or set(keys) != set(roots):
        raise corrupt(name, "its storage list does not match the tensors")
    for key in keys:
        root = roots[key]
        size = _itemsize(root.dtype)
        if pos + 8 > len(data):
            raise corrupt(name, "it ends inside the tensor data")
        numel = int.from_bytes(data[pos : pos + 8], "little")
        nbytes = root.data.numel()
        if numel * size != nbytes or pos + 8 + nbytes > len(data):
            raise corrupt(name, f"storage {key!r} does not match its recorded size")
        root.data.numpy()[:] = np.frombuffer(data, np.uint8, count=nbytes, offset=pos + 8)
        pos += 8 + nbytes
    return obj


def _head(path: Path, budget: Budget) -> bytes:
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise CheckpointError(
            f"cannot read {path}: {exc.strerror or exc}; check the path"
        ) from None
    if size > budget.limits.max_bytes:
        raise budget.exceeded("bytes of file", budget.limits.max_bytes)
    if not head.startswith(_ZIP_MAGIC) and (not head or head[0] != 0x80):
        raise CheckpointError(
            f"{path.name} is not a pickle (neither a torch.save file nor a binary pickle); pass a "
            ".pt/.pth/.ckpt file written by torch.save"
        )
    return head


def _read(path: Path, limits: PickleLimits) -> Any:
    budget = Budget(limits)
    if _head(path, budget).startswith(_ZIP_MAGIC):
        return _read_zip(path, budget)
    return _read_stream(path, budget)


def read_pickle(path: str | Path, *, limits: PickleLimits | None = None) -> Any:
    """Read a ``torch.save`` file (zip or legacy format) or a binary pickle as inert data.

    Nothing named by the file is imported or called: tensors come back as CPU tensors (views of the
    file's bytes; ``nn.Parameter`` as plain tensors), ``OrderedDict``/``set``/``torch.Size``/dtypes as
    themselves, and every other object as an :class:`Inert` record (see
    :func:`~dfalens.probes.module_record` for ``nn.Module`` records).

    Parameters
    ----------
    path : str or Path
    limits : PickleLimits, optional
        Bounds on the read (defaults: :class:`PickleLimits`).

    Returns
    -------
    Any
        The pickled object.

    Raises
    ------
    CheckpointError
        A bound exceeded, a truncated or corrupt file, or not a pickle.
    """
    return _read(Path(path), limits or PickleLimits())


def pickle_globals(path: str | Path, *, limits: PickleLimits | None = None) -> tuple[str, ...]:
    """Every global (``module.name``) the pickles in a torch file name, sorted.

    Read statically: the pickles are walked opcode by opcode (bounded as in :func:`read_pickle`);
    nothing is built except the object of a plain (non-torch) pickle, and nothing is run.

    Raises
    ------
    CheckpointError
        A bound exceeded, a truncated or corrupt pickle, or not a pickle.
    """
    p = Path(path)
    budget = Budget(limits or PickleLimits())
    head = _head(p, budget)
    if head.startswith(_ZIP_MAGIC):
        with _open_zip(p, budget) as (_zf, _big, record):
            scan(io.BytesIO(record("data.pkl", budget.limits.max_bytes)), budget, p.name)
        return tuple(sorted(budget.names))
    data = p.read_bytes()
    first, pos = _load_one(data, 0, budget, p.name, _no_storage)
    if type(first) is int and first == _MAGIC_NUMBER:
        for _ in range(4):  # protocol, sys_info, the object, the storage keys
            stream = io.BytesIO(data)
            stream.seek(pos)
            pos = scan(stream, budget, p.name)
    return tuple(sorted(budget.names))
