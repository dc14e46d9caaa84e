"""Open checkpoints safely and turn them into probes.

dfalens checkpoints (``.safetensors`` with dfalens metadata) load exactly through the trainers' loader.
Foreign files are read as data: ``.safetensors`` with safetensors; ``.pt/.pth/.ckpt`` whose pickle names
only torch's weights-only globals with ``torch.load(..., weights_only=True)`` passed explicitly; any other
pickle (a whole ``torch.save(model)``, custom classes) with dfalens's restricted unpickler
(:func:`~dfalens.probes.read_pickle`), which runs nothing from the file and recovers the module tree
(:class:`~dfalens.probes.ModuleRecord`) and its weights. Only ``trust_pickle=True`` runs a file's own code.
An MLflow model folder (``MLmodel`` + ``data/model.pth``) is read as its ``data/model.pth``.

From a bare ``state_dict`` the recurrent module is inferred from its parameter shapes: ``weight_hh_l{k}``
has ``G × H`` rows with ``G`` = 1, 3, 4 for RNN, GRU, LSTM; ``weight_ih_l0`` gives the input width; the
highest ``k`` the number of layers; ``weight_hr_l{k}`` an LSTM projection; ``*_reverse`` keys a
bidirectional module (refused). The readout is the one 2-D ``*.weight`` whose input width is the hidden
size (or the one named by ``readout=``). Weights cannot tell a plain RNN's nonlinearity: tanh (torch's
default) unless ``nonlinearity="relu"`` is given.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dfalens.errors import CheckpointError, ConfigError
from dfalens.probes._pickle_scan import Budget, check_built
from dfalens.probes._unpickle import Inert, PickleLimits, pickle_globals, read_pickle
from dfalens.probes.module_records import ModuleRecord, module_record, module_state
from dfalens.probes.probe import Probe, as_alphabet, from_model, from_module

__all__ = [
    "Checkpoint",
    "RecurrentSpec",
    "from_checkpoint",
    "infer_recurrent",
    "read_checkpoint",
    "read_weights",
]

CONTAINERS = ("state_dict", "model_state_dict", "model", "net")
_HH = re.compile(r"^(?P<prefix>.*?)weight_hh_l(?P<layer>\d+)(?P<rev>_reverse)?$")
_PARAM = re.compile(r"^(weight|bias)_(ih|hh|hr)_l\d+(_reverse)?$")
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80
_CELLS = {1: "RNN", 3: "GRU", 4: "LSTM"}


# ---------------------------------------------------------------------------------------------------
# reading files


def _looks_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 0 < n <= size - 8 and head[8:9] == b"{"


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"{path.name} is a truncated or corrupt safetensors file ({reason}); re-save it or use "
            "another checkpoint"
        ) from None
    return tensors, meta


def _allowed_globals() -> set[str]:
    try:
        from torch import _weights_only_unpickler as wou

        return set(wou._get_allowed_globals()) | set(wou._get_user_allowed_globals())
    except Exception:  # private API: without it every global is reported
        return set()


def _torch_load(
    path: Path, head: bytes, trust: bool, limits: PickleLimits
) -> tuple[Any, tuple[str, ...]]:
    """The object in a torch file and the globals it names beyond torch's weights-only allow-list."""
    if not (head.startswith(_ZIP_MAGIC) or (head and head[0] == _PICKLE_PROTO)):
        raise CheckpointError(
            f"{path.name} is not a checkpoint (neither a torch.save file nor safetensors); pass a "
            ".pt/.pth/.ckpt state_dict or a .safetensors file"
        )
    allowed = _allowed_globals()
    needed = tuple(g for g in pickle_globals(path, limits=limits) if g not in allowed)
    if needed and trust:
        warnings.warn(
            f"{path.name}: running the pickle's own code because trust_pickle=True; it needs "
            f"{', '.join(needed)}",
            stacklevel=4,
        )
        try:
            # The one unrestricted load: reached only through the explicit opt-in trust_pickle=True.
            return torch.load(path, map_location="cpu", weights_only=False), needed  # opt-in only
        except Exception as exc:
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise CheckpointError(
                f"{path.name} failed to load even running its code ({reason}); make its classes "
                "importable or read it without trust_pickle"
            ) from None
    if not needed:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # torch's reader failed: ours says precisely why (or reads it)
            pass
        else:
            check_built(
                obj, Budget(limits)
            )  # depth, sizes, OrderedDict attributes shadowing methods
            return obj, ()
    return read_pickle(path, limits=limits), needed


def _resolve(path: Path) -> Path:
    """The checkpoint file a path names: itself, or an MLflow model folder's ``data/model.pth``."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such file; check the path")
    if not path.is_dir():
        return path
    inner = path / "data" / "model.pth"
    if inner.is_file():
        return inner
    if (path / "MLmodel").is_file():
        raise CheckpointError(
            f"{path} is an MLflow model folder without data/model.pth; pass the model file inside it"
        )
    raise CheckpointError(f"{path} is a directory; pass a checkpoint file inside it")


def _raw(
    path: Path, trust: bool = False, limits: PickleLimits | None = None
) -> tuple[Any, dict[str, str], tuple[str, ...]]:
    """The object stored in a checkpoint file, its safetensors metadata (empty for torch files) and
    the globals its pickle names beyond torch's weights-only allow-list."""
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(
            f"{path.name} is empty (0 bytes): the save was interrupted; use another checkpoint"
        )
    with path.open("rb") as f:
        head = f.read(16)
    if path.suffix == ".safetensors" or _looks_safetensors(head, size):
        tensors, meta = _read_safetensors(path)
        return tensors, meta, ()
    obj, needed = _torch_load(path, head, trust, limits or PickleLimits())
    return obj, {}, needed


def _has_tensor(obj: Mapping[Any, Any], limit: int) -> bool:
    """Whether a mapping holds a tensor or a module, at any depth (each mapping visited once)."""
    seen: set[int] = set()
    stack: list[Mapping[Any, Any]] = [obj]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if len(seen) > limit:
            return False
        for value in current.values():
            if isinstance(value, Tensor) or module_state(value) is not None:
                return True
            if isinstance(value, Mapping):
                stack.append(value)
    return False


def _flatten(
    obj: Mapping[Any, Any], limits: PickleLimits
) -> tuple[dict[str, Tensor], dict[str, ModuleRecord]]:
    """Tensors at any depth with dotted keys (a module contributes its state_dict), in order, and the
    modules met on the way. Iterative; a mapping or module reached along several paths (or a cycle)
    is read once, under its first path."""
    out: dict[str, Tensor] = {}
    modules: dict[str, ModuleRecord] = {}
    seen = {id(obj)}
    stack: list[tuple[str, Iterator[tuple[Any, Any]]]] = [("", iter(obj.items()))]
    while stack:
        prefix, items = stack[-1]
        entry = next(items, None)
        if entry is None:
            stack.pop()
            continue
        name = f"{prefix}{entry[0]}"
        value = entry[1]
        if isinstance(value, Tensor):
            out[name] = value
        elif id(value) in seen:
            continue
        elif module_state(value) is not None:
            seen.add(id(value))
            record = module_record(value, limits=limits)
            modules[name] = record
            out.update((f"{name}.{k}", v) for k, v in record.state_dict().items())
        elif isinstance(value, Mapping):
            seen.add(id(value))
            if len(seen) > limits.max_objects:
                raise CheckpointError(
                    f"the checkpoint nests more than {limits.max_objects:,} mappings; it is malformed "
                    "or hostile, or pass larger PickleLimits"
                )
            stack.append((f"{name}.", iter(value.items())))
    return out, modules


def _strip(key: str) -> str:
    key = re.sub(r"(^|\.)_orig_mod\.", r"\1", key)
    while key.startswith("module."):
        key = key[len("module.") :]
    return key


def _describe(obj: Any) -> str:
    return type(obj).name() if isinstance(obj, Inert) else type(obj).__name__


def _unwrap(
    obj: Any, name: str, limits: PickleLimits | None = None
) -> tuple[dict[str, Tensor], ModuleRecord | None]:
    """The flat ``state_dict`` a checkpoint object holds and, for a pickled model, its module tree."""
    limits = limits or PickleLimits()
    descended = True
    while descended and isinstance(obj, Mapping):
        descended = False
        for key in CONTAINERS:
            inner = obj.get(key)
            if module_state(inner) is not None or (
                isinstance(inner, Mapping) and _has_tensor(inner, limits.max_objects)
            ):
                obj, descended = inner, True
                break
    modules: ModuleRecord | None = None
    if module_state(obj) is not None:
        modules = module_record(obj, limits=limits).unwrapped()
        flat = modules.state_dict()
    elif isinstance(obj, Mapping):
        flat, found = _flatten(obj, limits)
        if found:
            modules = ModuleRecord(
                type_name="builtins.dict",
                attributes=MappingProxyType({}),
                parameters=MappingProxyType({}),
                buffers=MappingProxyType({}),
                children=MappingProxyType({_strip(f"{k}.")[:-1]: v for k, v in found.items()}),
            )
    else:
        raise CheckpointError(
            f"{name} holds a {_describe(obj)}, not a state_dict or a model; save model.state_dict() "
            "instead"
        )
    if not flat:
        raise CheckpointError(
            f"{name} holds no tensors; pass a checkpoint with the model's state_dict"
        )
    return {_strip(k): v for k, v in flat.items()}, modules


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """What a checkpoint file holds, read as data (see :func:`read_checkpoint`).

    Attributes
    ----------
    weights : dict of str to Tensor
        The flat ``state_dict`` (containers unwrapped, ``module.``/``_orig_mod.`` prefixes removed).
    metadata : dict of str to str
        The safetensors header metadata (empty for torch files).
    modules : ModuleRecord or None
        For a pickled model (``torch.save(model)``, or models inside a checkpoint dict): the module tree
        whose paths are the prefixes of ``weights`` (``modules.get("rnn").attributes["nonlinearity"]``
        for the weights ``rnn.*``); ``None`` for a plain ``state_dict``. Several models in one dict hang
        under a ``builtins.dict`` root, one child per key.
    pickle_globals : tuple of str
        Globals the file's pickle names beyond torch's weights-only allow-list (its classes, and any
        code it would call): read as inert records, never run, unless ``trust_pickle=True``.
    """

    weights: dict[str, Tensor]
    metadata: dict[str, str]
    modules: ModuleRecord | None
    pickle_globals: tuple[str, ...]


def read_checkpoint(
    path: str | Path, *, trust_pickle: bool = False, limits: PickleLimits | None = None
) -> Checkpoint:
    """Read a checkpoint's weights, metadata and (for a pickled model) its module tree, safely.

    Containers ``state_dict``, ``model_state_dict``, ``model`` and ``net`` are unwrapped (nested
    mappings are flattened with dotted keys); the prefixes ``module.`` (DataParallel/DDP) and
    ``_orig_mod.`` (torch.compile) are removed. A pickle that needs globals beyond torch's weights-only
    allow-list is read by the restricted unpickler (:func:`~dfalens.probes.read_pickle`): its classes
    become inert records, nothing is imported or run, and a pickled ``nn.Module`` yields its
    :class:`~dfalens.probes.ModuleRecord` tree and weights.

    Parameters
    ----------
    path : str or Path
        A ``.pt/.pth/.ckpt`` file written by ``torch.save``, a ``.safetensors`` file, or an MLflow model
        folder (read as its ``data/model.pth``).
    trust_pickle : bool, default False
        Run the file's own code with the normal unpickler (only for files you trust); warns with the
        globals it needed.
    limits : PickleLimits, optional
        Bounds on reading a pickle (defaults: :class:`~dfalens.probes.PickleLimits`).

    Raises
    ------
    CheckpointError
        Missing, empty, truncated or corrupt file; not a checkpoint; a reading bound exceeded; no
        tensors; a module tree that refers to itself.
    """
    p = _resolve(Path(path))
    obj, meta, needed = _raw(p, trust_pickle, limits)
    weights, modules = _unwrap(obj, p.name, limits)
    return Checkpoint(weights=weights, metadata=meta, modules=modules, pickle_globals=needed)


def read_weights(
    path: str | Path, *, trust_pickle: bool = False
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read a checkpoint's tensors safely, as a flat ``state_dict``.

    The weights and metadata of :func:`read_checkpoint` (which also gives a pickled model's module
    tree).

    Parameters
    ----------
    path : str or Path
        A ``.pt/.pth/.ckpt`` file written by ``torch.save``, a ``.safetensors`` file or an MLflow model
        folder.
    trust_pickle : bool, default False
        Run the file's own code (see :func:`read_checkpoint`).

    Returns
    -------
    weights : dict of str to Tensor
    metadata : dict of str to str
        The safetensors header metadata (empty for torch files).

    Raises
    ------
    CheckpointError
        As :func:`read_checkpoint`.
    """
    ckpt = read_checkpoint(path, trust_pickle=trust_pickle)
    return ckpt.weights, ckpt.metadata


# ---------------------------------------------------------------------------------------------------
# inference of the recurrent module


@dataclass(frozen=True)
class RecurrentSpec:
    """A ``torch.nn`` recurrent module inferred from parameter shapes.

    Attributes
    ----------
    prefix : str
        Key prefix of its parameters (``""`` for a bare module, else ending in ``"."``).
    cell : {"RNN", "GRU", "LSTM"}
    input_size, hidden_size, num_layers, proj_size : int
    bias : bool
    """

    prefix: str
    cell: str
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    proj_size: int = 0

    @property
    def out_size(self) -> int:
        """Width of the top layer's output (the readout's input)."""
        return self.proj_size or self.hidden_size

    def build(self, nonlinearity: str = "tanh") -> nn.RNNBase:
        """An untrained module of this shape (``nonlinearity`` only for plain RNNs)."""
        kw: dict[str, Any] = {"num_layers": self.num_layers, "bias": self.bias}
        if self.cell == "RNN":
            return nn.RNN(self.input_size, self.hidden_size, nonlinearity=nonlinearity, **kw)
        if self.cell == "GRU":
            return nn.GRU(self.input_size, self.hidden_size, **kw)
        return nn.LSTM(self.input_size, self.hidden_size, proj_size=self.proj_size, **kw)


def _show(prefix: str) -> str:
    return repr(prefix.rstrip(".")) if prefix else "(top level)"


def infer_recurrent(weights: Mapping[str, Tensor], module: str | None = None) -> RecurrentSpec:
    """Infer the recurrent module of a flat ``state_dict`` from its ``weight_hh_l{k}`` shapes.

    Parameters
    ----------
    weights : mapping of str to Tensor
        As returned by :func:`read_weights`.
    module : str, optional
        Key prefix of the recurrent module to use when there are several (e.g. ``"encoder.rnn"``).

    Raises
    ------
    CheckpointError
        No recurrent weights; several modules and no ``module``; bidirectional; shapes that fit no
        RNN/GRU/LSTM.
    """
    groups: dict[str, list[tuple[int, bool]]] = {}
    for key in weights:
        m = _HH.match(key)
        if m:
            groups.setdefault(m["prefix"], []).append((int(m["layer"]), bool(m["rev"])))
    if not groups:
        shown = ", ".join(list(weights)[:6]) + (", ..." if len(weights) > 6 else "")
        raise CheckpointError(
            f"no recurrent weights (no key like 'weight_hh_l0' among {len(weights)} tensors: {shown}); only "
            "torch.nn.RNN/GRU/LSTM state dicts are inferred: build your model and use from_module or from_step"
        )
    if module is not None:
        prefix = module if module == "" or module.endswith(".") else module + "."
        if prefix not in groups:
            found = ", ".join(_show(p) for p in groups)
            raise CheckpointError(
                f"no recurrent module {module!r} in the checkpoint; it has {found}"
            )
    elif len(groups) > 1:
        found = ", ".join(_show(p) for p in groups)
        raise CheckpointError(
            f"{len(groups)} recurrent modules ({found}); pass module=PREFIX (--module) to choose one"
        )
    else:
        prefix = next(iter(groups))
    layers = groups[prefix]
    if any(rev for _, rev in layers):
        raise CheckpointError(
            f"the recurrent module {_show(prefix)} is bidirectional (it has *_reverse weights): its state "
            "depends on the future of the word, so there is no left-to-right state to extract; use a "
            "unidirectional model"
        )
    n_layers = max(k for k, _ in layers) + 1
    if sorted(k for k, _ in layers) != list(range(n_layers)):
        raise CheckpointError(
            f"the recurrent module {_show(prefix)} is missing layers; re-save the full model"
        )
    hh = weights[f"{prefix}weight_hh_l0"]
    ih = weights.get(f"{prefix}weight_ih_l0")
    if hh.ndim != 2 or ih is None or ih.ndim != 2:
        raise CheckpointError(
            f"the recurrent module {_show(prefix)} lacks a 2-D weight_ih_l0/weight_hh_l0; re-save the model"
        )
    hr = weights.get(f"{prefix}weight_hr_l0")
    if hr is not None and hr.ndim == 2:
        proj, hidden = int(hr.shape[0]), int(hr.shape[1])
        if hh.shape[1] != proj:
            raise CheckpointError(
                f"weight_hh_l0 {tuple(hh.shape)} does not fit weight_hr_l0 {tuple(hr.shape)}; re-save the model"
            )
    else:
        proj, hidden = 0, int(hh.shape[1])
    rows = int(hh.shape[0])
    gates = rows // hidden if hidden and rows % hidden == 0 else 0
    if gates not in _CELLS or (proj and gates != 4):
        raise CheckpointError(
            f"weight_hh_l0 of {_show(prefix)} has {rows} rows for {hidden} units, not 1, 3 or 4 times as "
            "many, so it is no RNN/GRU/LSTM; build your model and use from_module or from_step"
        )
    return RecurrentSpec(
        prefix=prefix,
        cell=_CELLS[gates],
        input_size=int(ih.shape[1]),
        hidden_size=hidden,
        num_layers=n_layers,
        bias=f"{prefix}bias_ih_l0" in weights,
        proj_size=proj,
    )


def _check_finite(weights: Mapping[str, Tensor], keys: Sequence[str]) -> None:
    for key in keys:
        t = weights[key]
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(
                f"weight {key!r} contains NaN or inf: the training diverged; use an earlier checkpoint"
            )


def _find_readout(
    weights: Mapping[str, Tensor], width: int, exclude: set[str], key: str | None
) -> tuple[str, str | None]:
    two_d = [k for k, v in weights.items() if v.ndim == 2 and k not in exclude]
    if key is not None:
        key = _strip(key)
        wkey = key if key == "weight" or key.endswith(".weight") else f"{key.rstrip('.')}.weight"
        if wkey not in weights or weights[wkey].ndim != 2:
            raise CheckpointError(
                f"readout {key!r} names no 2-D weight in the checkpoint; 2-D weights: {', '.join(two_d) or 'none'}"
            )
        if int(weights[wkey].shape[1]) != width:
            raise CheckpointError(
                f"readout {wkey!r} takes {weights[wkey].shape[1]} inputs but the hidden state has {width} "
                "units; name the output layer that reads the recurrent state"
            )
    else:
        cands = [
            k
            for k in two_d
            if (k == "weight" or k.endswith(".weight")) and int(weights[k].shape[1]) == width
        ]
        if not cands:
            raise CheckpointError(
                f"no readout found: no 2-D '*.weight' reads the {width}-unit hidden state; pass "
                f"readout=KEY (--readout) naming the output layer (2-D weights: {', '.join(two_d) or 'none'})"
            )
        if len(cands) > 1:
            raise CheckpointError(
                f"several layers could be the readout ({', '.join(cands)}); pass readout=KEY (--readout) "
                "to choose one"
            )
        wkey = cands[0]
    bkey = wkey[: -len("weight")] + "bias"
    if bkey not in weights or weights[bkey].shape != (weights[wkey].shape[0],):
        return wkey, None
    return wkey, bkey


def _find_embedding(weights: Mapping[str, Tensor], spec: RecurrentSpec) -> str | None:
    cands = [
        k
        for k, v in weights.items()
        if k.endswith("weight")
        and "emb" in k.lower()
        and v.ndim == 2
        and int(v.shape[1]) == spec.input_size
        and not k.startswith(spec.prefix or "\0")
        and k[: -len("weight")] + "bias" not in weights
    ]
    if len(cands) > 1:
        raise CheckpointError(
            f"several embeddings could feed the network ({', '.join(cands)}); build the model and use "
            "from_module(rnn, readout, input_encoding=embedding)"
        )
    return cands[0] if cands else None


def _float_dtype(tensors: Sequence[Tensor]) -> torch.dtype:
    return torch.float64 if all(t.dtype == torch.float64 for t in tensors) else torch.float32


def _safetensors_header(path: Path) -> dict[str, str]:
    """The metadata of a readable safetensors file; empty for anything else (errors come later)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(9)
            if not _looks_safetensors(head, size):
                return {}
            f.seek(0)
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
        meta = header.get("__metadata__") if isinstance(header, dict) else None
        return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}
    except (OSError, ValueError):
        return {}


def _is_dfalens(meta: Mapping[str, str]) -> bool:
    return meta.get("format", "").startswith("dfalens") and "model_config" in meta


def _from_dfalens(
    path: Path, alphabet: str | Sequence[str] | None, device: str | torch.device
) -> Probe:
    from dfalens.trainers.checkpoints import load_checkpoint

    model, meta = load_checkpoint(path)
    model = model.to(device)
    model.eval()
    names = alphabet if alphabet is not None else meta.get("alphabet")
    probe = from_model(model, alphabet=names)
    extra = [f"task {meta['task']}"] if meta.get("task") else []
    if meta.get("epoch") is not None:
        extra.append(f"epoch {meta['epoch']}")
    return replace(
        probe, description=f"{path.name}: {probe.description}" + "".join(f", {e}" for e in extra)
    )


def from_checkpoint(
    path: str | Path,
    *,
    alphabet: str | Sequence[str] | None = None,
    readout: str | None = None,
    nonlinearity: str | None = None,
    module: str | None = None,
    device: str | torch.device = "cpu",
    h0: Tensor | np.ndarray | float | None = None,
    trust_pickle: bool = False,
) -> Probe:
    """Open a checkpoint as a :class:`~dfalens.probes.Probe`, never executing anything from it.

    dfalens ``.safetensors`` checkpoints are rebuilt exactly from their metadata. Foreign files (a
    ``state_dict`` saved by ``torch.save`` or as safetensors, a whole pickled model read as data, an
    MLflow model folder) are inferred from parameter shapes, see the module docstring;
    :attr:`Probe.description` says what was inferred.

    Parameters
    ----------
    path : str or Path
    alphabet : str or sequence of str, optional
        Symbol names. Default: the checkpoint's own (dfalens), else ``"0"``, ``"1"``, ... one per input
        unit (one-hot input) or per embedding row; a network with one input unit reads the symbol index
        as a number (default alphabet ``"01"``).
    readout : str, optional
        Key (or module prefix) of the output layer's weight, when it cannot be found alone.
    nonlinearity : {"tanh", "relu"}, optional
        For plain RNNs, whose weights cannot tell; default tanh (torch's default).
    module : str, optional
        Key prefix of the recurrent module when the checkpoint has several.
    device : str or torch.device, default "cpu"
    h0 : tensor, array or float, optional
        Initial state of a foreign network (zeros by default, torch's default); a float fills every unit.
    trust_pickle : bool, default False
        Run a pickled file's own code with the normal unpickler (only for files you trust; it warns with
        the globals it needed). By default a pickled model is read as data, nothing run.

    Raises
    ------
    CheckpointError
        Missing, empty, truncated or corrupt file; not a checkpoint; a reading bound exceeded; no
        recurrent weights; several recurrent modules and no ``module``;
        bidirectional; no readout; NaN or inf weights.
    ConfigError
        ``nonlinearity`` for a gated cell or not tanh/relu.
    DataError
        An alphabet whose size does not fit the input width.
    """
    if nonlinearity is not None and nonlinearity not in ("tanh", "relu"):
        raise ConfigError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    p = _resolve(Path(path))
    if _is_dfalens(_safetensors_header(p)):
        return _from_dfalens(p, alphabet, device)
    ckpt = read_checkpoint(p, trust_pickle=trust_pickle)
    weights = ckpt.weights
    spec = infer_recurrent(weights, module)
    if nonlinearity is not None and spec.cell != "RNN":
        raise ConfigError(
            f"nonlinearity applies to plain RNNs only; this checkpoint holds a {spec.cell}: drop it"
        )
    rec_keys = [
        k for k in weights if k.startswith(spec.prefix) and _PARAM.match(k[len(spec.prefix) :])
    ]
    emb_key = _find_embedding(weights, spec)
    wkey, bkey = _find_readout(weights, spec.out_size, set(rec_keys) | {emb_key}, readout)
    used = rec_keys + [wkey] + ([bkey] if bkey else []) + ([emb_key] if emb_key else [])
    _check_finite(weights, used)
    dtype = _float_dtype([weights[k] for k in used])

    rnn = spec.build(nonlinearity or "tanh").to(dtype)
    try:
        rnn.load_state_dict({k[len(spec.prefix) :]: weights[k] for k in rec_keys}, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise CheckpointError(
            f"the weights at {_show(spec.prefix)} do not fit an inferred {spec.cell} ({first}); build the "
            "model and use from_module"
        ) from None
    w = weights[wkey].to(dtype)
    head = nn.Linear(int(w.shape[1]), int(w.shape[0]), bias=bkey is not None).to(dtype)
    with torch.no_grad():
        head.weight.copy_(w)
        if bkey is not None:
            head.bias.copy_(weights[bkey].to(dtype))
    rnn.eval().requires_grad_(False).to(device)
    head.eval().requires_grad_(False).to(device)

    names = as_alphabet(alphabet) if alphabet is not None else None
    if emb_key is not None:
        encoding: str | nn.Embedding = nn.Embedding.from_pretrained(weights[emb_key].to(dtype)).to(
            device
        )
        enc_text = f"embedding {emb_key!r}"
    elif spec.input_size == 1 and (names is None or len(names) != 1):
        encoding, enc_text = "index", "one input unit: the symbol index is fed as a number"
    else:
        encoding, enc_text = "onehot", "one-hot input"
    probe = from_module(rnn, head, alphabet=names, h0=h0, input_encoding=encoding)
    cell = f"RNN({nonlinearity or 'tanh'})" if spec.cell == "RNN" else spec.cell
    parts = [
        f"{p.name}: inferred {cell} at {_show(spec.prefix)}",
        f"input {spec.input_size}, hidden {spec.hidden_size}"
        + (f", proj {spec.proj_size}" if spec.proj_size else "")
        + f", {spec.num_layers} layer{'s' if spec.num_layers > 1 else ''}"
        + ("" if spec.bias else ", no bias"),
        f"readout {wkey!r} ({probe.n_classes} outputs)",
        f"{enc_text}, alphabet {' '.join(probe.alphabet)}",
        "h0 zeros" if h0 is None else "custom h0",
    ]
    if ckpt.pickle_globals:
        parts.append(
            "pickle loaded running its code (trust_pickle)"
            if trust_pickle
            else f"{'pickled model' if ckpt.modules else 'pickle'} read as data (nothing in it run)"
        )
    if spec.cell == "RNN" and nonlinearity is None:
        parts.append(
            "nonlinearity tanh by default (weights cannot tell; pass nonlinearity='relu' if needed)"
        )
    return replace(probe, description="; ".join(parts))
