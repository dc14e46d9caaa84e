"""Conventions read from a checkpoint besides the recurrent weights: vocabulary, padding, learned h0, heads.

Each function reads data only (tensors, plain mappings, lists and strings); nothing is executed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from dfalens.errors import CheckpointError

__all__ = [
    "HeadLayers",
    "PAD_NAMES",
    "START_END_NAMES",
    "VOCAB_KEYS",
    "find_h0",
    "find_head",
    "find_vocab",
    "padding_rows",
]

VOCAB_KEYS = (
    "vocab",
    "stoi",
    "token_to_idx",
    "token2idx",
    "tok2idx",
    "char2idx",
    "char_to_idx",
    "word2idx",
    "symbol_to_idx",
    "itos",
    "idx_to_token",
    "vocabulary",
    "alphabet",
    "symbols",
)
START_END_NAMES = frozenset(
    {
        "<bos>",
        "<eos>",
        "<s>",
        "</s>",
        "<sos>",
        "<start>",
        "<end>",
        "[cls]",
        "[sep]",
        "<|endoftext|>",
    }
)
PAD_NAMES = frozenset({"<pad>", "[pad]", "<padding>", "pad", "<blank>", "_pad_", "<p>"})
_H0 = re.compile(
    r"^(h_?0|h_?init|init_?h|init(ial)?_?(hidden|state|h)(_?0)?|hidden_?0|start_?state|h_?zero)$",
    re.IGNORECASE,
)
_C0 = re.compile(
    r"^(c_?0|c_?init|init_?c|init(ial)?_?(cell|c)(_?state)?(_?0)?|cell_?0)$", re.IGNORECASE
)
_SEQ = re.compile(r"^(?P<base>(?:.*\.)?)(?P<idx>\d+)\.weight$")


# ---------------------------------------------------------------------------------------------------
# vocabulary


def _as_names(value: Any, key: str) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return tuple(value) if value else None
    if isinstance(value, Mapping):
        if not value:
            return None
        items = list(value.items())
        if all(isinstance(v, int) and not isinstance(v, bool) for _, v in items):
            pairs = [(int(v), str(k)) for k, v in items]
        elif all(isinstance(k, int) and not isinstance(k, bool) for k, _ in items):
            pairs = [(int(k), str(v)) for k, v in items]
        else:
            return None
        idx = sorted(i for i, _ in pairs)
        if idx != list(range(len(pairs))):
            raise CheckpointError(
                f"the checkpoint's vocabulary {key!r} maps to indices {idx[:8]}...; expected 0..{len(pairs) - 1} "
                "once each: fix the saved vocabulary or pass --alphabet"
            )
        return tuple(name for _, name in sorted(pairs))
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (str, int)) for v in value):
        names = tuple(str(v) for v in value)
        if len(set(names)) != len(names):
            raise CheckpointError(
                f"the checkpoint's vocabulary {key!r} repeats a symbol; fix it or pass --alphabet"
            )
        return names
    return None


def _walk(obj: Any, depth: int) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if depth > 3 or not isinstance(obj, Mapping):
        return found
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() in VOCAB_KEYS:
            found.append((key, value))
    for value in obj.values():
        if isinstance(value, Mapping):
            found.extend(_walk(value, depth + 1))
    return found


def find_vocab(
    obj: Any, metadata: Mapping[str, str] | None = None
) -> tuple[str, tuple[str, ...]] | None:
    """A vocabulary saved next to the weights: ``(key, names by index)``, or ``None``.

    Looks in the checkpoint object (keys such as ``vocab``, ``stoi``, ``token_to_idx``, ``alphabet``,
    ``itos``; a token -> index mapping, an index -> token mapping, a list, or a string of one-character
    symbols) and in safetensors metadata holding such a key as JSON.
    """
    cands = _walk(obj, 0)
    for key, text in (metadata or {}).items():
        if key.lower() in VOCAB_KEYS:
            try:
                cands.append((key, json.loads(text)))
            except ValueError:
                cands.append((key, text))
    cands.sort(key=lambda kv: VOCAB_KEYS.index(kv[0].lower()))
    for key, value in cands:
        names = _as_names(value, key)
        if names is not None:
            return key, names
    return None


def padding_rows(
    names: Sequence[str] | None, emb: Tensor | None, padding_idx: int | None
) -> dict[int, str]:
    """Padding rows and why: a known ``padding_idx``, a padding name, or an all-zero embedding row."""
    rows: dict[int, str] = {}
    if padding_idx is not None:
        n = int(emb.shape[0]) if emb is not None else len(names or ())
        if n:
            rows[int(padding_idx) % n] = "padding_idx"
    for i, name in enumerate(names or ()):
        if name.lower() in PAD_NAMES:
            rows.setdefault(i, f"named {name!r}")
    if emb is not None and emb.ndim == 2 and int(emb.shape[0]) > 2:
        zero = (emb == 0).all(dim=1)
        for i in zero.nonzero().flatten().tolist():
            rows.setdefault(int(i), "all-zero embedding row")
    return rows


# ---------------------------------------------------------------------------------------------------
# learned initial state


def find_h0(
    weights: Mapping[str, Tensor], exclude: set[str]
) -> tuple[tuple[str, Tensor] | None, tuple[str, Tensor] | None]:
    """A learned initial hidden state (and cell state) among the weights: ``((key, tensor), (key, tensor))``.

    Matches parameters named like ``h0``, ``h_0``, ``init_hidden``, ``initial_state``, ``hidden0``
    (and ``c0``, ``init_cell`` for an LSTM's cell state), at any prefix.

    Raises
    ------
    CheckpointError
        When several tensors could be the initial state.
    """
    hs = [k for k in weights if k not in exclude and _H0.match(k.rsplit(".", 1)[-1])]
    cs = [k for k in weights if k not in exclude and _C0.match(k.rsplit(".", 1)[-1])]
    for found, what in ((hs, "initial state"), (cs, "initial cell state")):
        if len(found) > 1:
            raise CheckpointError(
                f"several tensors could be the {what} ({', '.join(found)}); pass --h0 (h0=...) explicitly"
            )
    h = (hs[0], weights[hs[0]]) if hs else None
    c = (cs[0], weights[cs[0]]) if cs else None
    return h, c


# ---------------------------------------------------------------------------------------------------
# heads


@dataclass(frozen=True)
class HeadLayers:
    """The linear layers of a readout head, in order, and what lies between them.

    Attributes
    ----------
    keys : tuple of (weight key, bias key or None)
    gaps : tuple of tuple of str
        For each pair of consecutive layers, the module paths between them (parameter-free modules).
    after : tuple of str
        Module paths after the last layer inside the same ``Sequential`` (known only from attributes).
    """

    keys: tuple[tuple[str, str | None], ...]
    gaps: tuple[tuple[str, ...], ...]
    after: tuple[str, ...] = ()


def _bias(weights: Mapping[str, Tensor], wkey: str) -> str | None:
    bkey = wkey[: -len("weight")] + "bias"
    if bkey in weights and weights[bkey].shape == (weights[wkey].shape[0],):
        return bkey
    return None


def _chain(weights: Mapping[str, Tensor], wkey: str, exclude: set[str]) -> HeadLayers:
    """Follow a ``Sequential``: later indexed ``*.weight`` layers whose input is this one's output."""
    keys = [(wkey, _bias(weights, wkey))]
    gaps: list[tuple[str, ...]] = []
    m = _SEQ.match(wkey)
    if m is None:
        return HeadLayers(tuple(keys), ())
    base, idx = m["base"], int(m["idx"])
    later = sorted(
        (int(mm["idx"]), k)
        for k in weights
        if k not in exclude
        and (mm := _SEQ.match(k)) is not None
        and mm["base"] == base
        and int(mm["idx"]) > idx
        and weights[k].ndim == 2
    )
    out = int(weights[wkey].shape[0])
    for j, k in later:
        if int(weights[k].shape[1]) != out:
            break
        gaps.append(tuple(f"{base}{g}" for g in range(idx + 1, j)))
        keys.append((k, _bias(weights, k)))
        idx, out = j, int(weights[k].shape[0])
    return HeadLayers(tuple(keys), tuple(gaps), (f"{base}{idx + 1}", f"{base}{idx + 2}"))


def _strip_key(key: str) -> str:
    key = re.sub(r"(^|\.)_orig_mod\.", r"\1", key)
    while key.startswith("module."):
        key = key[len("module.") :]
    return key


def find_head(
    weights: Mapping[str, Tensor], width: int, exclude: set[str], key: str | None
) -> HeadLayers:
    """The readout head: its first layer reads the ``width``-unit top hidden state.

    ``key`` names the first layer's weight, or a module prefix (a ``Sequential`` prefix means its first
    indexed layer).

    Raises
    ------
    CheckpointError
        No layer reads the hidden state; several could; ``key`` names no fitting weight.
    """
    two_d = [k for k, v in weights.items() if v.ndim == 2 and k not in exclude]
    if key is not None:
        key = _strip_key(key).rstrip(".")
        wkey = key if key == "weight" or key.endswith(".weight") else f"{key}.weight"
        if wkey not in weights:
            seq = sorted(
                (int(mm["idx"]), k)
                for k in two_d
                if (mm := _SEQ.match(k)) is not None and mm["base"] == f"{key}."
            )
            if seq:
                wkey = seq[0][1]
        if wkey not in weights or weights[wkey].ndim != 2:
            raise CheckpointError(
                f"readout {key!r} names no 2-D weight in the checkpoint; 2-D weights: {', '.join(two_d) or 'none'}"
            )
        if int(weights[wkey].shape[1]) != width:
            raise CheckpointError(
                f"readout {wkey!r} takes {weights[wkey].shape[1]} inputs but the hidden state has {width} "
                "units; name the output layer that reads the recurrent state"
            )
        return _chain(weights, wkey, exclude)
    cands = [
        k
        for k in two_d
        if (k == "weight" or k.endswith(".weight")) and int(weights[k].shape[1]) == width
    ]
    chains = {k: _chain(weights, k, exclude) for k in cands}
    inner = {k2 for k, ch in chains.items() for k2, _ in ch.keys[1:]}
    cands = [k for k in cands if k not in inner]
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
    return chains[cands[0]]
