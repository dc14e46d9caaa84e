"""Inputs and initial states of ``torch.nn`` probes: symbol tables, vocabularies, h0.

A network reads rows of an input table (one-hot vectors, embedding rows, or scalar values); the
*vocabulary* names every row. The probe's alphabet is the vocabulary less padding rows and the start and
end symbols, which the probe feeds itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dfalens.errors import ConfigError, DataError

__all__ = ["H0", "describe_h0", "h0_vector", "input_table", "select_symbols"]

H0 = Tensor | np.ndarray | float | str | tuple[Any, Any] | None
PAD_NAME = "<pad>"


def _digits(n: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(n))


def _names(alphabet: str | Sequence[Any]) -> tuple[str, ...]:
    names = tuple(alphabet) if isinstance(alphabet, str) else tuple(str(a) for a in alphabet)
    if not names:
        raise DataError("the alphabet is empty; pass at least one symbol, e.g. alphabet='01'")
    if len(set(names)) != len(names):
        raise DataError(f"the alphabet {names!r} repeats a symbol; give each symbol once")
    return names


def _fit_names(
    names: tuple[str, ...] | None, n_rows: int, pad: Sequence[int]
) -> tuple[str, ...] | None:
    """Names of every row: ``names`` as given, or with placeholders at the padding rows."""
    if names is None or len(names) == n_rows or len(names) != n_rows - len(pad) or not pad:
        return names
    it = iter(names)
    out = [
        PAD_NAME if i == pad[0] else f"<pad{i}>" if i in pad else next(it) for i in range(n_rows)
    ]
    return tuple(out)


def input_table(
    width: int,
    alphabet: str | Sequence[str] | None,
    input_encoding: str | nn.Embedding | Callable[[Tensor], Tensor],
    pad: Sequence[int],
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[tuple[str, ...], Tensor, str, tuple[int, ...]]:
    """Every row's input vector ``(n_rows, width)``, the vocabulary, a phrase, and the padding rows.

    ``alphabet`` names every row, or every row but the padding rows (``pad`` and an embedding's
    ``padding_idx``), which then get placeholder names.
    """
    names = _names(alphabet) if alphabet is not None else None
    pad = tuple(sorted(set(int(p) for p in pad)))
    if isinstance(input_encoding, nn.Embedding):
        n_emb = int(input_encoding.num_embeddings)
        if int(input_encoding.embedding_dim) != width:
            raise DataError(
                f"the embedding gives {input_encoding.embedding_dim}-wide vectors but the network's input "
                f"width is {width}; pass the embedding that feeds this network"
            )
        if input_encoding.padding_idx is not None:
            pad = tuple(sorted(set(pad) | {int(input_encoding.padding_idx) % n_emb}))
        names = _fit_names(names, n_emb, pad)
        names = names if names is not None else _digits(n_emb)
        if len(names) != n_emb:
            rest = f" (or {n_emb - len(pad)} without the padding rows)" if pad else ""
            raise DataError(
                f"alphabet has {len(names)} symbols but the embedding has {n_emb} rows; "
                f"pass an alphabet of {n_emb} symbols{rest}"
            )
        with torch.no_grad():
            table = input_encoding(torch.arange(n_emb, device=input_encoding.weight.device))
        return names, table.to(device=device, dtype=dtype), f"embedding {n_emb}x{width}", pad
    if isinstance(input_encoding, str):
        if input_encoding == "onehot":
            names = _fit_names(names, width, pad)
            names = names if names is not None else _digits(width)
            if len(names) != width:
                hint = " or input_encoding='index'" if width == 1 else ""
                raise DataError(
                    f"alphabet has {len(names)} symbols but the network's input width is {width}; pass "
                    f"an alphabet of {width} symbols{hint} (one-hot input needs one unit per symbol)"
                )
            table = torch.eye(width, device=device, dtype=dtype)
            return names, table, f"one-hot over {width} units", pad
        if input_encoding == "index":
            if width != 1:
                raise DataError(
                    f"input_encoding='index' feeds one number per step but the network's input width is "
                    f"{width}; use input_encoding='onehot'"
                )
            names = names if names is not None else ("0", "1")
            table = torch.arange(len(names), device=device, dtype=dtype)[:, None]
            return (
                names,
                table,
                f"scalar input (symbol i fed as the value i, {len(names)} symbols)",
                pad,
            )
        raise ConfigError(
            f"unknown input_encoding {input_encoding!r}; use 'onehot', 'index', an nn.Embedding or a "
            "function from symbol indices to input vectors"
        )
    if not callable(input_encoding):
        raise ConfigError(
            f"input_encoding must be a string, an nn.Embedding or a callable, got {input_encoding!r}"
        )
    if names is None:
        raise ConfigError(
            "pass alphabet=... with a callable input_encoding (its size is not known)"
        )
    with torch.no_grad():
        table = input_encoding(torch.arange(len(names), device=device))
    table = torch.as_tensor(table)
    if table.shape != (len(names), width):
        raise DataError(
            f"input_encoding maps {len(names)} symbols to shape {tuple(table.shape)}; expected "
            f"({len(names)}, {width}) for the network's input width {width}"
        )
    return names, table.to(device=device, dtype=dtype), "custom input encoding", pad


def select_symbols(
    vocab: tuple[str, ...], pad: Sequence[int], bos: str | None, eos: str | None
) -> tuple[tuple[str, ...], list[int], int | None, int | None, tuple[str, ...]]:
    """The alphabet (vocabulary less padding, bos, eos), its rows, the bos/eos rows, what was left out.

    Raises
    ------
    ConfigError
        ``bos == eos``, or either not in the vocabulary, or naming a padding row.
    """
    if bos is not None and bos == eos:
        raise ConfigError(
            f"bos and eos are both {bos!r}; a network reads different start and end symbols, or pass one"
        )
    rows: dict[str, int] = {}
    for name, which in ((bos, "bos"), (eos, "eos")):
        if name is None:
            continue
        if name not in vocab:
            shown = ", ".join(repr(v) for v in vocab[:12]) + (", ..." if len(vocab) > 12 else "")
            raise ConfigError(
                f"{which} {name!r} is not in the vocabulary ({shown}); name one of its symbols with --{which}"
            )
        row = vocab.index(name)
        if row in pad:
            raise ConfigError(
                f"{which} {name!r} is a padding row; name the network's {which} symbol"
            )
        rows[which] = row
    excluded_rows = set(pad) | set(rows.values())
    keep = [i for i in range(len(vocab)) if i not in excluded_rows]
    alphabet = tuple(vocab[i] for i in keep)
    if not alphabet:
        raise DataError(
            "no symbols are left once padding, bos and eos are excluded; check the vocabulary"
        )
    excluded = tuple(f"{vocab[i]!r} (padding)" for i in sorted(pad)) + tuple(
        f"{vocab[r]!r} ({w})" for w, r in rows.items()
    )
    return alphabet, keep, rows.get("bos"), rows.get("eos"), excluded


def describe_h0(h0: H0) -> str:
    """``zeros``, ``ones``, ``0.5 in every unit``, or ``a given tensor``."""
    if h0 is None:
        return "zeros"
    if isinstance(h0, str):
        return h0
    if isinstance(h0, (int, float)):
        v = float(h0)
        return "zeros" if v == 0.0 else "ones" if v == 1.0 else f"{v:g} in every unit"
    return "a given tensor"


def h0_vector(
    h0: H0, state_dim: int, h_dim: int, pair_ok: bool, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """Flatten an initial state to the probe's layout (zeros when ``None``).

    ``h0`` is ``None``, ``"zeros"``, ``"ones"``, a float (every unit), ``(h0, c0)`` (single LSTM module:
    ``h_dim`` and ``state_dim - h_dim`` values) or any array of ``state_dim`` values in layout order.
    """
    if isinstance(h0, str):
        if h0 not in ("zeros", "ones"):
            try:
                h0 = float(h0)
            except ValueError:
                raise ConfigError(
                    f"h0 must be 'zeros', 'ones', a number or a tensor, got {h0!r}"
                ) from None
        else:
            h0 = 0.0 if h0 == "zeros" else 1.0
    if h0 is None:
        return torch.zeros(state_dim, device=device, dtype=dtype)
    if isinstance(h0, tuple):
        if not pair_ok or len(h0) != 2:
            raise ConfigError(
                "a tuple h0 means (h0, c0) and is only for one LSTM; pass one tensor instead"
            )
        h = torch.as_tensor(h0[0], dtype=dtype).reshape(-1)
        c = torch.as_tensor(h0[1], dtype=dtype).reshape(-1)
        if h.numel() != h_dim or c.numel() != state_dim - h_dim:
            raise DataError(
                f"(h0, c0) have {h.numel()} and {c.numel()} values; expected {h_dim} and "
                f"{state_dim - h_dim} (layers x units)"
            )
        return torch.cat([h, c]).to(device)
    if isinstance(h0, (int, float)):
        if not np.isfinite(float(h0)):
            raise ConfigError(f"h0 must be finite, got {h0}")
        return torch.full((state_dim,), float(h0), device=device, dtype=dtype)
    v = torch.as_tensor(h0, dtype=dtype).reshape(-1)
    if v.numel() != state_dim:
        raise DataError(
            f"h0 has {v.numel()} values but the state has {state_dim} (every layer's h, then c for LSTMs)"
        )
    return v.to(device)
