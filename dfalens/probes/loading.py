"""Open checkpoints safely and turn them into probes.

dfalens checkpoints (``.safetensors`` with dfalens metadata) load exactly through the trainers' loader.
Foreign files are read as weights only: ``.pt/.pth/.ckpt`` with ``torch.load(..., weights_only=True)``
passed explicitly, ``.safetensors`` with safetensors. Nothing in a file is ever executed: a pickle that
needs any global beyond torch's weights-only allow-list is refused, and its globals are listed by a static
scan of the pickle opcodes.

From a bare ``state_dict`` the recurrent module is inferred from its parameter shapes: ``weight_hh_l{k}``
has ``G × H`` rows with ``G`` = 1, 3, 4 for RNN, GRU, LSTM; ``weight_ih_l0`` gives the input width; the
highest ``k`` the number of layers; ``weight_hr_l{k}`` an LSTM projection; ``*_reverse`` keys a
bidirectional module (refused). The readout is the one 2-D ``*.weight`` whose input width is the hidden
size (or the one named by ``readout=``). Weights cannot tell a plain RNN's nonlinearity: tanh (torch's
default) unless ``nonlinearity="relu"`` is given.
"""

from __future__ import annotations

import json
import pickle
import pickletools
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dfalens._args import check_path
from dfalens.errors import CheckpointError, ConfigError
from dfalens.probes.probe import Probe, as_alphabet, from_model, from_module
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
) -> Probe:
    """Open a checkpoint as a :class:`~dfalens.probes.Probe`, never executing anything from it.

    dfalens ``.safetensors`` checkpoints are rebuilt exactly from their metadata. Foreign files (a
    ``state_dict`` saved by ``torch.save`` or as safetensors) are inferred from parameter shapes, see
    the module docstring; :attr:`Probe.description` says what was inferred.

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

    Raises
    ------
    CheckpointError
        Missing, empty, truncated or corrupt file; not a checkpoint; a pickle that needs code (with the
        globals it names); no recurrent weights; several recurrent modules and no ``module``;
        bidirectional; no readout; NaN or inf weights.
    ConfigError
        ``nonlinearity`` for a gated cell or not tanh/relu.
    DataError
        An alphabet whose size does not fit the input width.
    """
    check_path("path", path)
    p = Path(path)
    if nonlinearity is not None and nonlinearity not in ("tanh", "relu"):
        raise ConfigError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    if _is_dfalens(_safetensors_header(p)):
        return _from_dfalens(p, alphabet, device)
    obj, _ = _raw(p)
    weights = _unwrap(obj, p.name)
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
    if spec.cell == "RNN" and nonlinearity is None:
        parts.append(
            "nonlinearity tanh by default (weights cannot tell; pass nonlinearity='relu' if needed)"
        )
    return replace(probe, description="; ".join(parts))
