"""Open checkpoints safely and turn them into probes.

dfalens checkpoints (``.safetensors`` with dfalens metadata) load exactly through the trainers' loader.
Foreign files are read as weights only: ``.pt/.pth/.ckpt`` with ``torch.load(..., weights_only=True)``
passed explicitly, ``.safetensors`` with safetensors. Nothing in a file is ever executed: a pickle that
needs any global beyond torch's weights-only allow-list is refused, and its globals are listed by a static
scan of the pickle opcodes.

A foreign ``state_dict`` becomes a probe through :func:`dfalens.probes.inference.from_state_dict`
(recurrent modules, stacks and cells from parameter shapes; head, embedding, learned h0 and a saved
vocabulary alongside); ``from_checkpoint`` passes its options on.
"""

from __future__ import annotations

import json
import pickle
import pickletools
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dfalens.errors import CheckpointError, ConfigError
from dfalens.probes._conventions import find_vocab
from dfalens.probes._inputs import H0
from dfalens.probes.inference import RecurrentSpec, from_state_dict, infer_recurrent
from dfalens.probes.probe import Probe, from_model
from dfalens.trainers.checkpoints import load_checkpoint

__all__ = ["RecurrentSpec", "from_checkpoint", "infer_recurrent", "read_weights"]

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


def _scan_pickle(path: Path) -> tuple[list[str], bool]:
    """Globals a pickle file refers to, and whether it ends mid-pickle (read statically, never run)."""
    with path.open("rb") as f:
        is_zip = f.read(4) == _ZIP_MAGIC
    if is_zip:
        try:
            return sorted(
                set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
            ), False
        except Exception:
            return [], False
    found: list[str] = []
    strings: list[str] = []
    truncated = False
    size = path.stat().st_size
    with path.open("rb") as f:
        for _ in range(
            8
        ):  # a legacy torch file is several pickles in a row, then raw storage bytes
            if f.tell() >= size:
                break
            try:
                for op, arg, _pos in pickletools.genops(f):
                    if op.name in ("GLOBAL", "INST"):
                        found.append(".".join(str(arg).split(" ", 1)))
                    elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                        found.append(f"{strings[-2]}.{strings[-1]}")
                    elif isinstance(arg, str):
                        strings.append(arg)
            except Exception:
                truncated = f.tell() >= size
                break
    allowed = _allowed_globals()
    return sorted({g for g in found if g not in allowed}), truncated


def _torch_load(path: Path, head: bytes) -> Any:
    is_zip = head.startswith(_ZIP_MAGIC)
    is_pickle = bool(head) and head[0] == _PICKLE_PROTO
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        names, truncated = _scan_pickle(path)
        if truncated:
            raise CheckpointError(
                f"{path.name} is truncated or corrupt (it ends inside a pickle); re-save it or use "
                "another checkpoint"
            ) from None
        if names:
            raise CheckpointError(
                f"refused {path.name}: it is a pickle that needs code to load ({', '.join(names)}) and "
                "nothing in it was run; save model.state_dict() instead (torch.save(model.state_dict(), "
                "path)) or a safetensors file"
            ) from None
        reason = _weights_only_reason(str(exc))
        raise CheckpointError(
            f"{path.name} is not a weights-only torch checkpoint ({reason}); save it with "
            "torch.save(model.state_dict(), path)"
        ) from None
    except Exception as exc:
        if is_zip or is_pickle:
            reason = (
                str(exc).splitlines()[0].split(". ")[0][:120] if str(exc) else type(exc).__name__
            )
            raise CheckpointError(
                f"{path.name} is truncated or corrupt ({reason}); re-save it or use another checkpoint"
            ) from None
        raise CheckpointError(
            f"{path.name} is not a checkpoint (neither a torch.save file nor safetensors); pass a "
            ".pt/.pth/.ckpt state_dict or a .safetensors file"
        ) from None


def _weights_only_reason(message: str) -> str:
    for line in message.splitlines():
        line = line.strip()
        if (
            line.startswith(("Unsupported", "Trying to load", "WeightsUnpickler error:"))
            and len(line) > 24
        ):
            return line[:120]
    return "the weights-only unpickler rejected it"


def _raw(path: Path) -> tuple[Any, dict[str, str]]:
    """The object stored in a checkpoint file and its safetensors metadata (empty for torch files)."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; pass a checkpoint file inside it")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(
            f"{path.name} is empty (0 bytes): the save was interrupted; use another checkpoint"
        )
    with path.open("rb") as f:
        head = f.read(16)
    if path.suffix == ".safetensors" or _looks_safetensors(head, size):
        return _read_safetensors(path)
    return _torch_load(path, head), {}


def _has_tensor(obj: Mapping[Any, Any]) -> bool:
    return any(
        isinstance(v, Tensor) or (isinstance(v, Mapping) and _has_tensor(v)) for v in obj.values()
    )


def _flatten(obj: Mapping[Any, Any], prefix: str, out: dict[str, Tensor]) -> None:
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Tensor):
            out[name] = value
        elif isinstance(value, Mapping):
            _flatten(value, f"{name}.", out)


def _strip(key: str) -> str:
    key = re.sub(r"(^|\.)_orig_mod\.", r"\1", key)
    while key.startswith("module."):
        key = key[len("module.") :]
    return key


def _unwrap(obj: Any, name: str) -> dict[str, Tensor]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{name} holds a {type(obj).__name__}, not a state_dict; save model.state_dict() instead"
        )
    descended = True
    while descended:
        descended = False
        for key in CONTAINERS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and _has_tensor(inner):
                obj, descended = inner, True
                break
    flat: dict[str, Tensor] = {}
    _flatten(obj, "", flat)
    if not flat:
        raise CheckpointError(
            f"{name} holds no tensors; pass a checkpoint with the model's state_dict"
        )
    return {_strip(k): v for k, v in flat.items()}


def read_weights(path: str | Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read a checkpoint's tensors safely, as a flat ``state_dict``.

    Containers ``state_dict``, ``model_state_dict``, ``model`` and ``net`` are unwrapped (nested mappings
    are flattened with dotted keys); the prefixes ``module.`` (DataParallel/DDP) and ``_orig_mod.``
    (torch.compile) are removed.

    Parameters
    ----------
    path : str or Path
        A ``.pt/.pth/.ckpt`` file written by ``torch.save`` or a ``.safetensors`` file.

    Returns
    -------
    weights : dict of str to Tensor
    metadata : dict of str to str
        The safetensors header metadata (empty for torch files).

    Raises
    ------
    CheckpointError
        Missing, empty, truncated or corrupt file; not a checkpoint; a pickle that needs code to load.
    """
    p = Path(path)
    obj, meta = _raw(p)
    return _unwrap(obj, p.name), meta


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
) -> Probe:
    """Open a checkpoint as a :class:`~dfalens.probes.Probe`, never executing anything from it.

    dfalens ``.safetensors`` checkpoints are rebuilt exactly from their metadata. Foreign files (a
    ``state_dict`` saved by ``torch.save``, in a container with optimizer state, a Lightning checkpoint,
    or safetensors) are inferred from parameter shapes (:mod:`dfalens.probes.inference`); what was
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

    Raises
    ------
    CheckpointError
        Missing, empty, truncated or corrupt file; not a checkpoint; a pickle that needs code (with the
        globals it names); no recurrent weights; several unrelated recurrent modules and no ``module``;
        bidirectional; no readout; NaN or inf weights; a saved vocabulary that does not fit the input.
    ConfigError
        ``nonlinearity`` for a gated cell or not tanh/relu; ``bos == eos``; ``bos``/``eos`` not in the
        vocabulary; a threshold for a multi-output head; an unknown ``h0``.
    DataError
        An alphabet whose size does not fit the input width.
    """
    p = Path(path)
    if nonlinearity is not None and nonlinearity not in ("tanh", "relu"):
        raise ConfigError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
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
    obj, meta = _raw(p)
    weights = _unwrap(obj, p.name)
    found = find_vocab(obj, meta)
    return from_state_dict(
        weights,
        name=p.name,
        vocab=None if found is None else found[1],
        vocab_key="vocab" if found is None else found[0],
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
