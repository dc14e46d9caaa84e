"""A flat ``state_dict`` to a probe: the recurrent modules, head, inputs and conventions it implies.

From parameter shapes: ``weight_hh_l{k}`` (a module) or ``weight_hh`` (a cell) has ``G x H`` rows with
``G`` = 1, 3, 4 for RNN, GRU, LSTM; ``weight_ih_l0`` the input width; the highest ``k`` the number of
layers; ``weight_hr_l{k}`` an LSTM projection; ``*_reverse`` a bidirectional module (refused). Several
modules or cells under one indexed prefix (``mach.0.``, ``mach.1.``; ``layers.0.rnn.``, ...) whose widths
chain are one stacked network. The head is the layer that reads the top hidden state, followed through a
``Sequential`` (``head.0``, ``head.2``, ...). A plain RNN's nonlinearity and the activations inside a head
cannot be read from weights: module attributes decide when the reader has them (``attributes``), else
tanh and ReLU are assumed, said in :attr:`Probe.assumptions` and warned about.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from dfalens.errors import CheckpointError, ConfigError
from dfalens.probes._conventions import (
    START_END_NAMES,
    HeadLayers,
    find_h0,
    find_head,
    padding_rows,
)
from dfalens.probes._heads import build_head, describe_head
from dfalens.probes._inputs import H0, describe_h0
from dfalens.probes.assumptions import AssumptionWarning, Choice
from dfalens.probes.probe import Probe, as_alphabet, from_module

__all__ = ["RecurrentSpec", "from_state_dict", "infer_recurrent", "infer_stack"]

_HH = re.compile(r"^(?P<prefix>.*?)weight_hh_l(?P<layer>\d+)(?P<rev>_reverse)?$")
_HH_CELL = re.compile(r"^(?P<prefix>(?:.*\.)?)weight_hh$")
_PARAM = re.compile(r"^(weight|bias)_(ih|hh|hr)_l\d+(_reverse)?$")
_CELL_PARAM = re.compile(r"^(weight|bias)_(ih|hh)$")
_INDEXED = re.compile(r"^(?P<base>(?:.*\.)?)(?P<idx>\d+)\.(?P<rest>(?:.*\.)?)$")
_CELLS = {1: "RNN", 3: "GRU", 4: "LSTM"}
_EMBEDDING_HINTS = ("emb", "wte", "token", "lookup")
Attributes = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class RecurrentSpec:
    """A ``torch.nn`` recurrent module or cell inferred from parameter shapes.

    Attributes
    ----------
    prefix : str
        Key prefix of its parameters (``""`` for a bare module, else ending in ``"."``).
    cell : {"RNN", "GRU", "LSTM"}
    input_size, hidden_size, num_layers, proj_size : int
    bias : bool
    is_cell : bool
        An ``nn.RNNCell/GRUCell/LSTMCell`` (keys ``weight_hh`` without a layer suffix).
    """

    prefix: str
    cell: str
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    proj_size: int = 0
    is_cell: bool = False

    @property
    def out_size(self) -> int:
        """Width of the top layer's output (the readout's input)."""
        return self.proj_size or self.hidden_size

    @property
    def state_dim(self) -> int:
        """Width of this module's part of the probe state."""
        h = self.num_layers * self.out_size
        return h + (self.num_layers * self.hidden_size if self.cell == "LSTM" else 0)

    def param_keys(self, weights: Mapping[str, Tensor]) -> list[str]:
        """This module's own keys in ``weights``."""
        pat = _CELL_PARAM if self.is_cell else _PARAM
        n = len(self.prefix)
        return [k for k in weights if k.startswith(self.prefix) and pat.match(k[n:])]

    def build(self, nonlinearity: str = "tanh") -> nn.Module:
        """An untrained module of this shape (``nonlinearity`` only for plain RNNs)."""
        if self.is_cell:
            if self.cell == "RNN":
                return nn.RNNCell(self.input_size, self.hidden_size, self.bias, nonlinearity)
            cls = nn.GRUCell if self.cell == "GRU" else nn.LSTMCell
            return cls(self.input_size, self.hidden_size, self.bias)
        kw: dict[str, Any] = {"num_layers": self.num_layers, "bias": self.bias}
        if self.cell == "RNN":
            return nn.RNN(self.input_size, self.hidden_size, nonlinearity=nonlinearity, **kw)
        if self.cell == "GRU":
            return nn.GRU(self.input_size, self.hidden_size, **kw)
        return nn.LSTM(self.input_size, self.hidden_size, proj_size=self.proj_size, **kw)


def _show(prefix: str) -> str:
    return repr(prefix.rstrip(".")) if prefix else "(top level)"


def _spec(
    weights: Mapping[str, Tensor], prefix: str, layers: list[tuple[int, bool]] | None
) -> RecurrentSpec:
    """The spec of one module (``layers`` given) or one cell (``layers`` None) at ``prefix``."""
    is_cell = layers is None
    if layers is not None:
        if any(rev for _, rev in layers):
            raise CheckpointError(
                f"the recurrent module {_show(prefix)} is bidirectional (it has *_reverse weights): its state "
                "depends on the future of the word, so the white-box path refuses it; probe it as a black "
                "box with dfalens.probes.from_classifier(classify, alphabet)"
            )
        n_layers = max(k for k, _ in layers) + 1
        if sorted(k for k, _ in layers) != list(range(n_layers)):
            raise CheckpointError(
                f"the recurrent module {_show(prefix)} is missing layers; re-save the full model"
            )
        suffix = "_l0"
    else:
        n_layers, suffix = 1, ""
    hh = weights[f"{prefix}weight_hh{suffix}"]
    ih = weights.get(f"{prefix}weight_ih{suffix}")
    if hh.ndim != 2 or ih is None or ih.ndim != 2:
        raise CheckpointError(
            f"the recurrent module {_show(prefix)} lacks a 2-D weight_ih{suffix}/weight_hh{suffix}; "
            "re-save the model"
        )
    hr = None if is_cell else weights.get(f"{prefix}weight_hr_l0")
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
            f"weight_hh{suffix} of {_show(prefix)} has {rows} rows for {hidden} units, not 1, 3 or 4 times "
            "as many, so it is no RNN/GRU/LSTM; build your model and use from_module or from_step"
        )
    return RecurrentSpec(
        prefix=prefix,
        cell=_CELLS[gates],
        input_size=int(ih.shape[1]),
        hidden_size=hidden,
        num_layers=n_layers,
        bias=f"{prefix}bias_ih{suffix}" in weights,
        proj_size=proj,
        is_cell=is_cell,
    )


def _groups(weights: Mapping[str, Tensor]) -> dict[str, list[tuple[int, bool]] | None]:
    groups: dict[str, list[tuple[int, bool]] | None] = {}
    for key in weights:
        m = _HH.match(key)
        if m:
            layers = groups.setdefault(m["prefix"], [])
            if layers is not None:
                layers.append((int(m["layer"]), bool(m["rev"])))
            continue
        c = _HH_CELL.match(key)
        if c and f"{c['prefix']}weight_ih" in weights:
            groups.setdefault(c["prefix"], None)
    return groups


def _as_stack(prefixes: Sequence[str]) -> list[str] | None:
    """The prefixes in stack order when they are ``BASE{i}.REST`` for i = 0, 1, ... (else None)."""
    parsed = [_INDEXED.match(p) for p in prefixes]
    if len(prefixes) < 2 or any(m is None for m in parsed):
        return None
    bases = {(m["base"], m["rest"]) for m in parsed if m is not None}
    if len(bases) != 1:
        return None
    order = sorted(
        (int(m["idx"]), p) for m, p in zip(parsed, prefixes, strict=True) if m is not None
    )
    idx = [i for i, _ in order]
    if idx != list(range(idx[0], idx[0] + len(idx))):
        return None
    return [p for _, p in order]


def infer_stack(
    weights: Mapping[str, Tensor], module: str | None = None
) -> tuple[RecurrentSpec, ...]:
    """The recurrent modules of a ``state_dict`` in the order the network applies them.

    One module or cell gives one spec. Modules or cells saved separately under one indexed prefix
    (``mach.0.``, ``mach.1.``) whose widths chain form a stack, in index order.

    Parameters
    ----------
    weights : mapping of str to Tensor
    module : str, optional
        Key prefix of the recurrent module (or of the stack, e.g. ``"mach"``) when there are several.

    Raises
    ------
    CheckpointError
        No recurrent weights; several unrelated modules and no ``module``; bidirectional; shapes that fit
        no RNN/GRU/LSTM; stacked modules whose widths do not chain.
    """
    groups = _groups(weights)
    if not groups:
        shown = ", ".join(list(weights)[:6]) + (", ..." if len(weights) > 6 else "")
        raise CheckpointError(
            f"no recurrent weights (no key like 'weight_hh_l0' or 'weight_hh' among {len(weights)} tensors: "
            f"{shown}); only torch.nn.RNN/GRU/LSTM and their cells are inferred: build your model and use "
            "from_module or from_step"
        )
    chosen = list(groups)
    if module is not None:
        prefix = module if module == "" or module.endswith(".") else module + "."
        chosen = [p for p in groups if p == prefix] or [p for p in groups if p.startswith(prefix)]
        if not chosen:
            found = ", ".join(_show(p) for p in groups)
            raise CheckpointError(
                f"no recurrent module {module!r} in the checkpoint; it has {found}"
            )
    if len(chosen) == 1:
        return (_spec(weights, chosen[0], groups[chosen[0]]),)
    order = _as_stack(chosen)
    if order is None:
        found = ", ".join(_show(p) for p in chosen)
        raise CheckpointError(
            f"{len(chosen)} recurrent modules ({found}); pass module=PREFIX (--module) to choose one"
        )
    specs = tuple(_spec(weights, p, groups[p]) for p in order)
    for below, above in zip(specs, specs[1:], strict=False):
        if above.input_size != below.out_size:
            found = ", ".join(_show(p) for p in order)
            raise CheckpointError(
                f"{len(specs)} recurrent modules ({found}) do not chain: {_show(above.prefix)} reads "
                f"{above.input_size} inputs but {_show(below.prefix)} gives {below.out_size}; pass "
                "module=PREFIX (--module) to choose one"
            )
    return specs


def infer_recurrent(weights: Mapping[str, Tensor], module: str | None = None) -> RecurrentSpec:
    """Infer the one recurrent module of a flat ``state_dict`` (see :func:`infer_stack` for stacks).

    Raises
    ------
    CheckpointError
        As :func:`infer_stack`, and when the weights hold a stack of several modules.
    """
    specs = infer_stack(weights, module)
    if len(specs) > 1:
        raise CheckpointError(
            f"the checkpoint holds a stack of {len(specs)} recurrent modules; use infer_stack"
        )
    return specs[0]


def _check_finite(weights: Mapping[str, Tensor], keys: Sequence[str]) -> None:
    for key in keys:
        t = weights[key]
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(
                f"weight {key!r} contains NaN or inf: the training diverged; use an earlier checkpoint"
            )


def _find_embedding(weights: Mapping[str, Tensor], spec: RecurrentSpec) -> str | None:
    cands = [
        k
        for k, v in weights.items()
        if k.endswith("weight")
        and any(hint in k.lower() for hint in _EMBEDDING_HINTS)
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


def _attr(attributes: Attributes, path: str, name: str) -> Any:
    return (attributes.get(path.rstrip(".")) or {}).get(name)


def _class(attributes: Attributes, path: str) -> str | None:
    value = _attr(attributes, path, "class")
    return None if value is None else str(value).rsplit(".", 1)[-1]


def _nonlinearity(
    specs: Sequence[RecurrentSpec], given: str | None, attributes: Attributes
) -> tuple[str, Choice | None]:
    if not any(s.cell == "RNN" for s in specs):
        if given is not None:
            kinds = ", ".join(sorted({s.cell for s in specs}))
            raise ConfigError(
                f"nonlinearity applies to plain RNNs only; this checkpoint holds a {kinds}: drop it"
            )
        return "tanh", None
    if given is not None:
        return given, Choice(given, "given")
    known = set()
    for s in specs:
        if s.cell != "RNN":
            continue
        nl = _attr(attributes, s.prefix, "nonlinearity")
        mode = _attr(attributes, s.prefix, "mode")
        if nl is None and isinstance(mode, str) and mode.startswith("RNN_"):
            nl = mode[4:].lower()
        if nl is not None:
            known.add(str(nl))
    if len(known) == 1 and next(iter(known)) in ("tanh", "relu"):
        value = next(iter(known))
        return value, Choice(value, "inferred", "module attribute")
    warnings.warn(
        "assuming a tanh RNN: the weights cannot tell tanh from ReLU and a wrong guess gives a wrong "
        "machine; pass nonlinearity='relu' (--nonlinearity relu) if the network was trained with ReLU",
        AssumptionWarning,
        stacklevel=3,
    )
    return "tanh", Choice("tanh", "default", "torch's default; the weights cannot tell")


def _head(
    weights: Mapping[str, Tensor], head_keys: HeadLayers, attributes: Attributes, dtype: torch.dtype
) -> tuple[nn.Module, Choice | None]:
    """The head module, and its description when it has several layers (activations stated)."""
    acts: list[str] = []
    sources: list[str] = []
    for gap in head_keys.gaps:
        classes = [c for c in (_class(attributes, g) for g in gap) if c is not None]
        acts_known = [c.lower() for c in classes if c.lower() not in ("dropout", "identity")]
        if acts_known:
            acts.append(acts_known[0])
            sources.append("inferred")
        elif classes or not gap:
            acts.append("identity")
            sources.append("inferred")
        else:
            acts.append("relu")
            sources.append("default")
    layers = [(weights[w], None if b is None else weights[b]) for w, b in head_keys.keys]
    head = build_head(layers, acts, dtype)
    if any(_class(attributes, a) == "Sigmoid" for a in head_keys.after[:1]):
        head = nn.Sequential(*head, nn.Sigmoid())
    if len(layers) == 1:
        return (head[0] if len(head) == 1 else head), None
    if "default" in sources:
        warnings.warn(
            f"assuming ReLU between the head's layers ({', '.join(w for w, _ in head_keys.keys)}): the "
            "weights do not say which activation a Sequential used; check the printed network line",
            AssumptionWarning,
            stacklevel=3,
        )
    source = "default" if "default" in sources else "inferred"
    note = "activation not in the weights" if source == "default" else "module attributes"
    return head, Choice(describe_head(head), source, note)


def _h0_from_weights(
    weights: Mapping[str, Tensor],
    specs: Sequence[RecurrentSpec],
    exclude: set[str],
    dtype: torch.dtype,
) -> tuple[Any, Choice | None]:
    found_h, found_c = find_h0(weights, exclude)
    if found_h is None:
        return None, None
    key, t = found_h
    _check_finite(weights, [key] + ([found_c[0]] if found_c is not None else []))
    state_dim = sum(s.state_dim for s in specs)
    one_lstm = len(specs) == 1 and specs[0].cell == "LSTM" and not specs[0].is_cell
    h_dim = specs[0].num_layers * specs[0].out_size if one_lstm else state_dim
    n = t.numel()
    if one_lstm and n == h_dim:
        c = (
            found_c[1].to(dtype).reshape(-1)
            if found_c is not None
            else torch.zeros(state_dim - h_dim)
        )
        if c.numel() != state_dim - h_dim:
            raise CheckpointError(
                f"the learned initial cell state {found_c[0]!r} has {c.numel()} values, not "  # type: ignore[index]
                f"{state_dim - h_dim}; pass --h0 explicitly"
            )
        value: Any = (t.to(dtype).reshape(-1), c.to(dtype))
    elif n == state_dim:
        value = t.to(dtype).reshape(-1)
    else:
        raise CheckpointError(
            f"{key!r} looks like a learned initial state but has {n} values for a state of {state_dim}; pass "
            "--h0 (h0=...) explicitly"
        )
    return value, Choice("learned", "inferred", f"weights {key!r}")


def from_state_dict(
    weights: Mapping[str, Tensor],
    *,
    name: str = "state_dict",
    vocab: Sequence[str] | None = None,
    vocab_key: str = "vocab",
    attributes: Attributes | None = None,
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
    """Probe a flat ``state_dict`` of recurrent layers, a head and optionally an embedding.

    See the module docstring for what is inferred; :func:`dfalens.probes.from_checkpoint` documents
    every option. ``vocab`` names the input rows (padding names are left out of the alphabet);
    ``attributes`` maps module paths to their attributes read as data (``{"class": "ReLU"}``,
    ``{"nonlinearity": "relu"}``, ``{"padding_idx": 0}``), as a safe reader of pickled modules gives.
    """
    attributes = attributes or {}
    if nonlinearity is not None and nonlinearity not in ("tanh", "relu"):
        raise ConfigError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    specs = infer_stack(weights, module)
    nl, nl_choice = _nonlinearity(specs, nonlinearity, attributes)
    rec_keys = [k for s in specs for k in s.param_keys(weights)]
    emb_key = _find_embedding(weights, specs[0])
    exclude = set(rec_keys) | ({emb_key} if emb_key else set())
    head_keys = find_head(weights, specs[-1].out_size, exclude, readout)
    head_used = [k for pair in head_keys.keys for k in pair if k is not None]
    last_out = int(weights[head_keys.keys[-1][0]].shape[0])
    after = [
        k
        for k, v in weights.items()
        if k.endswith("weight")
        and v.ndim == 2
        and k not in exclude
        and k not in head_used
        and int(v.shape[1]) == last_out
    ]
    if after and readout is None:
        warnings.warn(
            f"the readout {head_keys.keys[-1][0]!r} gives {last_out} values and {', '.join(after)} reads "
            f"{last_out}: if the head has more layers, name its first with readout= (--readout) and check "
            "the outputs",
            AssumptionWarning,
            stacklevel=2,
        )
    used = rec_keys + head_used + ([emb_key] if emb_key else [])
    _check_finite(weights, used)
    dtype = _float_dtype([weights[k] for k in used])

    modules: list[nn.Module] = []
    for s in specs:
        mod = s.build(nl).to(dtype)
        n = len(s.prefix)
        try:
            mod.load_state_dict({k[n:]: weights[k] for k in s.param_keys(weights)}, strict=True)
        except RuntimeError as exc:
            lines = str(exc).splitlines()
            first = lines[1].strip() if len(lines) > 1 else str(exc)
            raise CheckpointError(
                f"the weights at {_show(s.prefix)} do not fit an inferred {s.cell} ({first}); build the "
                "model and use from_module"
            ) from None
        modules.append(mod.eval().requires_grad_(False).to(device))
    head, head_choice = _head(weights, head_keys, attributes, dtype)
    head = head.eval().requires_grad_(False).to(device)

    h0_choice: Choice | None = None
    if h0 is None:
        h0, h0_choice = _h0_from_weights(weights, specs, exclude | set(head_used), dtype)

    n_rows = int(weights[emb_key].shape[0]) if emb_key else specs[0].input_size
    fits = vocab is None or len(vocab) == n_rows or (specs[0].input_size == 1 and not emb_key)
    if not fits and alphabet is not None:
        vocab = None  # the given names replace a saved vocabulary that does not fit
    elif not fits:
        assert vocab is not None
        what = (
            f"the embedding {emb_key!r} has {n_rows} rows"
            if emb_key
            else f"the network reads {n_rows} inputs"
        )
        raise CheckpointError(
            f"the checkpoint's vocabulary {vocab_key!r} has {len(vocab)} entries but {what}; fix the saved "
            "vocabulary or pass --alphabet"
        )
    padding_idx = _attr(attributes, emb_key[: -len("weight")], "padding_idx") if emb_key else None
    pad = padding_rows(vocab, weights[emb_key] if emb_key else None, padding_idx)
    special = [v for v in vocab or () if v.lower() in START_END_NAMES and v not in (bos, eos)]
    if special and alphabet is None:
        warnings.warn(
            f"the vocabulary has {', '.join(repr(v) for v in special)}, which look like start and end "
            "symbols; they are read as ordinary symbols: pass bos=/eos= (--bos/--eos) if the network "
            "reads them around each word",
            AssumptionWarning,
            stacklevel=3,
        )
    names: Any = (
        as_alphabet(alphabet) if alphabet is not None else (tuple(vocab) if vocab else None)
    )
    if emb_key is not None:
        encoding: Any = nn.Embedding.from_pretrained(weights[emb_key].to(dtype)).to(device)
        enc_text = f"embedding {emb_key!r}"
    elif specs[0].input_size == 1 and (names is None or len(names) != 1):
        encoding, enc_text = "index", "one input unit: the symbol index fed as a number"
    else:
        encoding, enc_text = "onehot", f"one-hot over {specs[0].input_size} units"
    probe = from_module(
        modules if len(modules) > 1 else modules[0],
        head,
        alphabet=names,
        h0=h0,
        input_encoding=encoding,
        bos=bos,
        eos=eos,
        threshold=threshold,
        pad=sorted(pad),
    )
    a = probe.assumptions
    assert a is not None
    if alphabet is not None:
        alpha = Choice(" ".join(probe.alphabet), "given")
    elif vocab is not None:
        alpha = Choice(" ".join(probe.alphabet), "inferred", f"checkpoint key {vocab_key!r}")
    else:
        alpha = Choice(" ".join(probe.alphabet), "default", "one symbol per input row")
    pads = sorted(pad)
    excluded = (
        tuple(
            e.replace("(padding)", f"(padding: {pad[i]})")
            for e, i in zip(a.excluded[: len(pads)], pads, strict=False)
        )
        + a.excluded[len(pads) :]
    )
    if h0_choice is None:
        h0_choice = (
            Choice(describe_h0(h0), "given")
            if h0 is not None
            else Choice("zeros", "default", "torch's default")
        )
    a = a.with_(
        nonlinearity=nl_choice,
        h0=h0_choice,
        head=head_choice,
        inputs=Choice(enc_text, "inferred", "weight shapes"),
        alphabet=alpha,
        excluded=excluded,
    )
    kinds = " -> ".join(
        ("RNN(" + nl + ")" if s.cell == "RNN" else s.cell)
        + ("Cell" if s.is_cell else "")
        + f" at {_show(s.prefix)}"
        for s in specs
    )
    top = specs[-1]
    n_layers = sum(s.num_layers for s in specs)
    parts = [
        f"{name}: inferred {kinds}",
        f"input {specs[0].input_size}, hidden {top.hidden_size}"
        + (f", proj {top.proj_size}" if top.proj_size else "")
        + f", {n_layers} layer{'s' if n_layers > 1 else ''}"
        + ("" if top.bias else ", no bias"),
        f"readout {' -> '.join(repr(w) for w, _ in head_keys.keys)} ({probe.n_classes} output{'s' if probe.n_classes != 1 else ''})",
        a.summary(),
    ]
    return replace(probe, description="; ".join(parts), assumptions=a)
