"""Open checkpoints safely and turn them into probes.

dfalens checkpoints (``.safetensors`` with dfalens metadata) load exactly through the trainers' loader.
Foreign files are read as data: ``.safetensors`` with safetensors; ``.pt/.pth/.ckpt`` whose pickle names
only torch's weights-only globals with ``torch.load(..., weights_only=True)`` passed explicitly; any other
pickle (a whole ``torch.save(model)``, custom classes) with dfalens's restricted unpickler
(:func:`~dfalens.probes.read_pickle`), which runs nothing from the file and recovers the module tree
(:class:`~dfalens.probes.ModuleRecord`) and its weights. Only ``trust_pickle=True`` runs a file's own code.
An MLflow model folder (``MLmodel`` + ``data/model.pth``) is read as its ``data/model.pth``.

A foreign ``state_dict`` becomes a probe through :func:`dfalens.probes.inference.from_state_dict`
(recurrent modules, stacks and cells from parameter shapes; head, embedding, learned h0 and a saved
vocabulary alongside); ``from_checkpoint`` passes its options on.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from dfalens._args import check_path
from dfalens.errors import CheckpointError, ConfigError
from dfalens.probes._conventions import find_vocab
from dfalens.probes._inputs import H0
from dfalens.probes._pickle_scan import Budget, check_built
from dfalens.probes._unpickle import Inert, PickleLimits, pickle_globals, read_pickle
from dfalens.probes.inference import RecurrentSpec, from_state_dict, infer_recurrent
from dfalens.probes.module_records import ModuleRecord, module_record, module_state
from dfalens.probes.probe import Probe, from_model
from dfalens.trainers.checkpoints import load_checkpoint, safetensors_metadata

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
# opening checkpoints as probes


def _safetensors_header(path: Path) -> dict[str, str]:
    """The metadata of a readable safetensors file; empty for anything else (errors come later)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(9)
            if not _looks_safetensors(head, size):
                return {}
            f.seek(0)
            meta = safetensors_metadata(f.read(8 + int.from_bytes(head[:8], "little")))
        return {str(k): str(v) for k, v in meta.items()}
    except (OSError, ValueError):
        return {}


def _is_dfalens(meta: Mapping[str, str]) -> bool:
    return meta.get("format", "").startswith("dfalens") and "model_config" in meta


def _from_dfalens(
    path: Path, alphabet: str | Sequence[str] | None, device: str | torch.device
) -> Probe:
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
    h0: H0 = None,
    bos: str | None = None,
    eos: str | None = None,
    threshold: float | None = None,
    trust_pickle: bool = False,
) -> Probe:
    """Open a checkpoint as a :class:`~dfalens.probes.Probe`, never executing anything from it.

    dfalens ``.safetensors`` checkpoints are rebuilt exactly from their metadata. Foreign files (a
    ``state_dict`` saved by ``torch.save``, in a container with optimizer state, a Lightning checkpoint,
    or safetensors, a whole pickled model read as data, an MLflow model folder) are inferred from parameter shapes (:mod:`dfalens.probes.inference`); what was
    inferred, given or defaulted is in :attr:`Probe.assumptions` and :attr:`Probe.description`.

    Parameters
    ----------
    path : str or Path
    alphabet : str or sequence of str, optional
        Symbol names of the input rows (or of the rows other than padding). Default: the checkpoint's own
        (dfalens metadata, or a vocabulary saved next to the weights under a key such as ``vocab``,
        ``stoi``, ``token_to_idx`` or ``alphabet``), else ``"0"``, ``"1"``, ... one per input unit
        (one-hot) or embedding row; a network with one input unit reads the symbol index as a number.
    readout : str, optional
        Key (or module prefix) of the head's first layer, when it cannot be found alone. A
        ``Sequential`` head (``head.0``, ``head.2``) is followed to its last linear layer.
    nonlinearity : {"tanh", "relu"}, optional
        For plain RNNs, whose weights cannot tell; default tanh with an :class:`AssumptionWarning`.
    module : str, optional
        Key prefix of the recurrent module (or stack) when the checkpoint has several.
    device : str or torch.device, default "cpu"
    h0 : "zeros", "ones", float, tensor or array, optional
        Initial state of a foreign network. Default: a learned initial state found in the weights (a
        tensor named like ``h0``, ``h_0``, ``init_hidden``), else zeros (torch's default).
    bos, eos : str, optional
        Start and end symbols (names in the vocabulary): the initial state is the state after ``bos``
        and the readout reads the state after ``eos``; both are left out of the alphabet.
    threshold : float, optional
        Decision threshold of a one-output head (default: logit > 0; probability > 0.5 after a sigmoid).
    trust_pickle : bool, default False
        Run a pickled file's own code with the normal unpickler (only for files you trust; it warns with
        the globals it needed). By default a pickled model is read as data, nothing run, and its module
        attributes (nonlinearity, padding_idx, the head's activations) decide instead of guesses.

    Raises
    ------
    CheckpointError
        Missing, empty, truncated or corrupt file; not a checkpoint; a reading bound exceeded; no recurrent weights; several unrelated recurrent modules and no ``module``;
        bidirectional; no readout; NaN or inf weights; a saved vocabulary that does not fit the input.
    ConfigError
        ``nonlinearity`` for a gated cell or not tanh/relu; ``bos == eos``; ``bos``/``eos`` not in the
        vocabulary; a threshold for a multi-output head; an unknown ``h0``.
    DataError
        An alphabet whose size does not fit the input width.
    """
    check_path("path", path)
    p = Path(path)
    if nonlinearity is not None and nonlinearity not in ("tanh", "relu"):
        raise ConfigError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    p = _resolve(Path(path))
    if _is_dfalens(_safetensors_header(p)):
        extra = [
            n
            for n, v in (("h0", h0), ("bos", bos), ("eos", eos), ("threshold", threshold))
            if v is not None
        ]
        if extra:
            raise ConfigError(
                f"{p.name} is a dfalens checkpoint, rebuilt exactly from its metadata; drop "
                f"{', '.join(extra)}"
            )
        return _from_dfalens(p, alphabet, device)
    obj, meta, needed = _raw(p, trust_pickle, None)
    weights, modules = _unwrap(obj, p.name, None)
    found = find_vocab(obj, meta)
    probe = from_state_dict(
        weights,
        name=p.name,
        vocab=None if found is None else found[1],
        vocab_key="vocab" if found is None else found[0],
        attributes=_module_attributes(modules),
        alphabet=alphabet,
        readout=readout,
        nonlinearity=nonlinearity,
        module=module,
        device=device,
        h0=h0,
        bos=bos,
        eos=eos,
        threshold=threshold,
    )
    if not needed:
        return probe
    how = (
        "pickle loaded running its code (trust_pickle)"
        if trust_pickle
        else f"{'pickled model' if modules else 'pickle'} read as data (nothing in it run)"
    )
    return replace(probe, description=f"{probe.description}; {how}")


def _module_attributes(modules: ModuleRecord | None) -> dict[str, dict[str, Any]]:
    """Module paths to their class name and plain attributes, as the inference reads them."""
    if modules is None:
        return {}
    return {
        path: {"class": record.kind, **record.attributes}
        for path, record in modules.unwrapped().named_modules()
        if path
    }
