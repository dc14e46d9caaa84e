"""The :class:`Probe` protocol and its adapters: any recurrent model as three batched functions.

A probe turns a recurrent model into ``initial(batch) -> h``, ``step(h, symbols) -> h`` and
``readout(h) -> scores`` over a finite alphabet, with the state ``h`` a flat ``(batch, state_dim)`` tensor.
Everything downstream (state collection, exploration, extraction) talks to models only through a probe.

Adapters:

- :func:`from_model` for dfalens models (exact: they already implement the three functions);
- :func:`from_module` for ``torch.nn.RNN``, ``GRU`` and ``LSTM`` plus a readout module;
- :func:`from_step` for any callables.

State layout for ``torch.nn`` modules: the per-layer hidden vectors concatenated in layer order,
``[h_0, h_1, ..., h_{L-1}]``; for an LSTM the cell vectors follow, ``[h_0, ..., h_{L-1}, c_0, ...,
c_{L-1}]`` (with ``proj_size > 0`` each ``h_k`` has ``proj_size`` units and each ``c_k`` ``hidden_size``).
The readout sees the top layer's ``h`` only, as it would after the module's forward.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dfalens.errors import ConfigError, DataError

__all__ = ["Probe", "from_model", "from_module", "from_step", "as_alphabet"]

InitialFn = Callable[[int], Tensor]
StepFn = Callable[[Tensor, Tensor], Tensor]
ReadoutFn = Callable[[Tensor], Tensor]


def as_alphabet(alphabet: str | Sequence[Any]) -> tuple[str, ...]:
    """Normalise an alphabet to a tuple of distinct symbol names.

    A string is split into characters (``"01"`` -> ``("0", "1")``); any other sequence is converted
    element-wise with :func:`str`.

    Raises
    ------
    DataError
        When the alphabet is empty or has repeated symbols.
    """
    names = tuple(alphabet) if isinstance(alphabet, str) else tuple(str(a) for a in alphabet)
    if not names:
        raise DataError("the alphabet is empty; pass at least one symbol, e.g. alphabet='01'")
    if len(set(names)) != len(names):
        raise DataError(f"the alphabet {names!r} repeats a symbol; give each symbol once")
    return names


def _digits(n: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(n))


@dataclass(frozen=True, eq=False)
class Probe:
    """A recurrent model seen as batched ``initial``/``step``/``readout`` functions over an alphabet.

    Build one with :func:`from_model`, :func:`from_module`, :func:`from_step` or
    :func:`dfalens.probes.from_checkpoint` rather than directly. All three methods run under
    ``torch.no_grad()``.

    Parameters
    ----------
    initial_fn : callable
        ``initial_fn(batch) -> Tensor (batch, state_dim)``: the state before any input.
    step_fn : callable
        ``step_fn(h, symbols) -> Tensor (batch, state_dim)`` with ``symbols`` a LongTensor ``(batch,)`` of
        symbol indices on :attr:`device`.
    readout_fn : callable
        ``readout_fn(h) -> Tensor (batch, n_outputs)``: the network's output scores in state ``h``.
    alphabet : tuple of str
        Symbol names; symbol ``i`` is ``alphabet[i]``.
    state_dim : int
        Width of the flat state vector.
    n_classes : int or None
        Number of output scores, when known (0 when the probe has no readout).
    device : torch.device
        Where states live.
    description : str
        One line saying what was loaded or inferred.
    """

    initial_fn: InitialFn
    step_fn: StepFn
    readout_fn: ReadoutFn
    alphabet: tuple[str, ...]
    state_dim: int
    n_classes: int | None
    device: torch.device
    description: str

    @property
    def n_symbols(self) -> int:
        """Size of the alphabet."""
        return len(self.alphabet)

    def initial(self, batch: int) -> Tensor:
        """The initial state repeated ``batch`` times, shape ``(batch, state_dim)``."""
        with torch.no_grad():
            h = self.initial_fn(int(batch)).detach()
        if h.ndim != 2 or h.shape[0] != batch or h.shape[1] != self.state_dim:
            raise DataError(
                f"initial({batch}) returned shape {tuple(h.shape)}, expected ({batch}, {self.state_dim})"
            )
        return h

    def step(self, h: Tensor, symbols: Tensor | np.ndarray | Sequence[int] | int) -> Tensor:
        """Advance every state in ``h`` by one symbol.

        Parameters
        ----------
        h : Tensor, shape (batch, state_dim)
        symbols : int, or array-like of int, shape (batch,)
            Symbol indices in ``range(n_symbols)``; a single int applies to every row.

        Returns
        -------
        Tensor, shape (batch, state_dim)

        Raises
        ------
        DataError
            When a symbol is not an integer in ``range(n_symbols)`` or their number is not the batch size.
        """
        batch = h.shape[0]
        raw = torch.as_tensor(symbols)
        if raw.is_floating_point() or raw.is_complex() or raw.dtype == torch.bool:
            raise DataError(
                f"step takes integer symbol indices, got {raw.dtype}; pass indices in "
                f"range({self.n_symbols})"
            )
        sym = raw.to(dtype=torch.long, device=self.device)
        if sym.ndim == 0:
            sym = sym.expand(batch)
        if sym.shape != (batch,):
            raise DataError(f"step got {tuple(sym.shape)} symbols for a batch of {batch} states")
        if batch and not bool(((sym >= 0) & (sym < self.n_symbols)).all()):
            bad = int(sym[(sym < 0) | (sym >= self.n_symbols)][0])
            raise DataError(
                f"symbol index {bad} is outside the alphabet of {self.n_symbols} symbols; "
                f"pass indices in range({self.n_symbols})"
            )
        with torch.no_grad():
            out = self.step_fn(h, sym).detach()
        if out.shape != h.shape:
            raise DataError(
                f"step returned shape {tuple(out.shape)} for states of {tuple(h.shape)}"
            )
        return out

    def readout(self, h: Tensor) -> Tensor:
        """The network's output scores in each state, shape ``(batch, n_outputs)``."""
        with torch.no_grad():
            y = self.readout_fn(h).detach()
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[0] != h.shape[0]:
            raise DataError(f"readout returned shape {tuple(y.shape)} for {h.shape[0]} states")
        return y


def _no_readout(h: Tensor) -> Tensor:
    return h.new_zeros((h.shape[0], 0))


def _n_outputs(readout: ReadoutFn, h: Tensor) -> int:
    with torch.no_grad():
        y = readout(h)
    return 1 if y.ndim == 1 else int(y.shape[-1])


# ---------------------------------------------------------------------------------------------------
# dfalens models


def from_model(model: nn.Module, alphabet: str | Sequence[str] | None = None) -> Probe:
    """Probe a dfalens model (exact: it already implements ``initial``/``step``/``readout``).

    Parameters
    ----------
    model : torch.nn.Module
        A model from :mod:`dfalens.trainers.models`, with ``initial(batch)``, ``step(state, symbols)``,
        ``readout(state)`` and ``config``.
    alphabet : str or sequence of str, optional
        Symbol names; default ``"0"``, ``"1"``, ... for ``config.n_symbols`` symbols.

    Raises
    ------
    ConfigError
        When the model lacks the dfalens model interface.
    DataError
        When the alphabet size differs from the model's number of input symbols.
    """
    missing = [m for m in ("initial", "step", "readout") if not callable(getattr(model, m, None))]
    if missing:
        raise ConfigError(
            f"{type(model).__name__} has no {', '.join(missing)} method: from_model takes dfalens models; "
            "use from_module for torch.nn.RNN/GRU/LSTM or from_step for your own functions"
        )
    config = getattr(model, "config", None)
    n_symbols = getattr(config, "n_symbols", None)
    names = as_alphabet(alphabet) if alphabet is not None else None
    if names is None:
        if n_symbols is None:
            raise ConfigError("the model has no config.n_symbols: pass alphabet=... explicitly")
        names = _digits(int(n_symbols))
    elif n_symbols is not None and len(names) != int(n_symbols):
        raise DataError(
            f"alphabet has {len(names)} symbols but the model reads {int(n_symbols)}; "
            f"pass an alphabet of {int(n_symbols)} symbols"
        )
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    with torch.no_grad():
        h = model.initial(1)
    n_classes = getattr(config, "n_classes", None)
    if n_classes is None:
        n_classes = _n_outputs(model.readout, h)
    parts = [f"dfalens {type(model).__name__}"]
    if config is not None:
        cell = getattr(config, "cell", "?")
        hidden = getattr(config, "hidden", "?")
        layers = getattr(config, "layers", 1)
        nonlin = getattr(config, "nonlinearity", None)
        parts.append(f"{cell} {layers}x{hidden}" + (f" {nonlin}" if nonlin else ""))
    parts.append(f"{len(names)} symbols, {n_classes} outputs, state {int(h.shape[1])} units")
    return Probe(
        initial_fn=model.initial,
        step_fn=model.step,
        readout_fn=model.readout,
        alphabet=names,
        state_dim=int(h.shape[1]),
        n_classes=int(n_classes),
        device=device,
        description=", ".join(parts),
    )


# ---------------------------------------------------------------------------------------------------
# torch.nn.RNN / GRU / LSTM


def _input_table(
    rnn: nn.RNNBase,
    alphabet: str | Sequence[str] | None,
    input_encoding: str | nn.Embedding | Callable[[Tensor], Tensor],
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[tuple[str, ...], Tensor, str]:
    """The input vector of every symbol, ``(n_symbols, input_size)``, and a phrase describing it."""
    width = int(rnn.input_size)
    names = as_alphabet(alphabet) if alphabet is not None else None
    if isinstance(input_encoding, nn.Embedding):
        n_emb = int(input_encoding.num_embeddings)
        if int(input_encoding.embedding_dim) != width:
            raise DataError(
                f"the embedding gives {input_encoding.embedding_dim}-wide vectors but the network's input "
                f"width is {width}; pass the embedding that feeds this network"
            )
        names = names if names is not None else _digits(n_emb)
        if len(names) != n_emb:
            raise DataError(
                f"alphabet has {len(names)} symbols but the embedding has {n_emb} rows; "
                f"pass an alphabet of {n_emb} symbols"
            )
        with torch.no_grad():
            table = input_encoding(torch.arange(n_emb, device=input_encoding.weight.device))
        return names, table.to(device=device, dtype=dtype), f"embedding {n_emb}x{width}"
    if isinstance(input_encoding, str):
        if input_encoding == "onehot":
            names = names if names is not None else _digits(width)
            if len(names) != width:
                hint = " or input_encoding='index'" if width == 1 else ""
                raise DataError(
                    f"alphabet has {len(names)} symbols but the network's input width is {width}; pass "
                    f"an alphabet of {width} symbols{hint} (one-hot input needs one unit per symbol)"
                )
            table = torch.eye(width, device=device, dtype=dtype)
            return names, table, f"one-hot input over {width} symbols"
        if input_encoding == "index":
            if width != 1:
                raise DataError(
                    f"input_encoding='index' feeds one number per step but the network's input width is "
                    f"{width}; use input_encoding='onehot'"
                )
            names = names if names is not None else ("0", "1")
            table = torch.arange(len(names), device=device, dtype=dtype)[:, None]
            return names, table, f"scalar input (symbol i fed as the value i, {len(names)} symbols)"
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
    return names, table.to(device=device, dtype=dtype), "custom input encoding"


def _h0_vector(
    h0: Tensor | np.ndarray | float | tuple[Any, Any] | None,
    state_dim: int,
    h_dim: int,
    is_lstm: bool,
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """Flatten a user-given initial state to the probe's state layout (zeros when ``None``)."""
    if h0 is None:
        return torch.zeros(state_dim, device=device, dtype=dtype)
    if isinstance(h0, tuple):
        if not is_lstm or len(h0) != 2:
            raise ConfigError(
                "a tuple h0 means (h0, c0) and is only for LSTMs; pass one tensor instead"
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
        return torch.full((state_dim,), float(h0), device=device, dtype=dtype)
    v = torch.as_tensor(h0, dtype=dtype).reshape(-1)
    if v.numel() != state_dim:
        raise DataError(
            f"h0 has {v.numel()} values but the state has {state_dim} "
            f"({'[h; c] over layers' if is_lstm else 'layers x units'})"
        )
    return v.to(device)


def from_module(
    rnn: nn.RNNBase,
    readout: nn.Module | ReadoutFn | None = None,
    alphabet: str | Sequence[str] | None = "01",
    batch_first: bool | None = None,
    h0: Tensor | np.ndarray | float | tuple[Any, Any] | None = None,
    input_encoding: str | nn.Embedding | Callable[[Tensor], Tensor] = "onehot",
) -> Probe:
    """Probe a ``torch.nn.RNN``, ``GRU`` or ``LSTM`` with an optional readout.

    The step calls the module itself on a length-1 sequence with the state split back into its
    ``(layers, batch, units)`` form, so it reproduces the module's own forward pass (any number of
    layers, with or without biases, LSTM projections included).

    Parameters
    ----------
    rnn : torch.nn.RNN, GRU or LSTM
        Unidirectional; the state is the concatenation described in the module docstring.
    readout : module or callable, optional
        Applied to the top layer's hidden vector ``(batch, units)``; returns output scores. Without it the
        probe has no outputs (``n_classes == 0``): states can be collected but not labelled.
    alphabet : str or sequence of str or None, default "01"
        Symbol names. ``None`` takes ``"0"``, ``"1"``, ... as many as the encoding needs.
    batch_first : bool, optional
        Checked against ``rnn.batch_first`` when given (the module's own setting is always used).
    h0 : tensor, array, float or (h0, c0), optional
        Initial state; zeros by default (torch's default). Any shape with the right number of values in
        the layer order of the state layout; a float fills every unit.
    input_encoding : {"onehot", "index"} or nn.Embedding or callable, default "onehot"
        How a symbol index becomes the module's input vector: a one-hot vector (alphabet size must equal
        ``rnn.input_size``), the index itself as one number (``input_size == 1``), an embedding, or a
        function mapping a LongTensor of indices ``(n,)`` to vectors ``(n, input_size)``.

    Raises
    ------
    ConfigError
        For a bidirectional module, a module other than RNN/GRU/LSTM, or active dropout.
    DataError
        When the alphabet size does not fit the input width (both numbers are named).
    """
    if not isinstance(rnn, nn.RNNBase):
        raise ConfigError(
            f"from_module takes torch.nn.RNN, GRU or LSTM, got {type(rnn).__name__}; use from_step to wrap "
            "your own step function"
        )
    if rnn.bidirectional:
        raise ConfigError(
            "bidirectional networks are refused: their state depends on the future of the word, so there is "
            "no left-to-right state to extract; train or load a unidirectional model"
        )
    if batch_first is not None and bool(batch_first) != bool(rnn.batch_first):
        raise ConfigError(
            f"batch_first={batch_first} but the module was built with batch_first={rnn.batch_first}; "
            "leave batch_first unset to use the module's setting"
        )
    if rnn.training and rnn.dropout > 0 and rnn.num_layers > 1:
        raise ConfigError(
            f"the module applies dropout {rnn.dropout} between layers in training mode, so steps are random; "
            "call rnn.eval() first"
        )
    mode = rnn.mode
    is_lstm = mode == "LSTM"
    first = next(iter(rnn.parameters()))
    device, dtype = first.device, first.dtype
    n_layers = int(rnn.num_layers)
    units = int(rnn.hidden_size)
    proj = int(getattr(rnn, "proj_size", 0) or 0)
    h_units = proj if proj > 0 else units
    h_dim = n_layers * h_units
    state_dim = h_dim + (n_layers * units if is_lstm else 0)
    names, table, enc_text = _input_table(rnn, alphabet, input_encoding, device, dtype)
    h0_vec = _h0_vector(h0, state_dim, h_dim, is_lstm, device, dtype)
    bf = bool(rnn.batch_first)

    def initial(batch: int) -> Tensor:
        return h0_vec.expand(batch, state_dim).clone()

    def split(h: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        b = h.shape[0]
        if n_layers == 1 and not is_lstm:
            return h[None]  # (1, batch, units): a view, no copy
        hh = h[:, :h_dim].reshape(b, n_layers, h_units).transpose(0, 1).contiguous()
        if not is_lstm:
            return hh
        cc = h[:, h_dim:].reshape(b, n_layers, units).transpose(0, 1).contiguous()
        return hh, cc

    def join(state: Tensor | tuple[Tensor, Tensor]) -> Tensor:
        if is_lstm:
            hh, cc = state
            b = hh.shape[1]
            return torch.cat(
                [
                    hh.transpose(0, 1).reshape(b, h_dim),
                    cc.transpose(0, 1).reshape(b, n_layers * units),
                ],
                dim=1,
            )
        if n_layers == 1:
            return state[0]
        b = state.shape[1]
        return state.transpose(0, 1).reshape(b, h_dim)

    def step(h: Tensor, symbols: Tensor) -> Tensor:
        x = table[symbols]
        x = x[:, None, :] if bf else x[None, :, :]
        _, state = rnn(x, split(h))
        return join(state)

    top = slice((n_layers - 1) * h_units, h_dim)
    if readout is None:
        readout_fn: ReadoutFn = _no_readout
        n_classes = 0
    else:
        head = readout

        def readout_fn(h: Tensor) -> Tensor:
            return head(h[:, top])

        n_classes = _n_outputs(readout_fn, initial(1))
    kind = {"RNN_TANH": "RNN(tanh)", "RNN_RELU": "RNN(relu)"}.get(mode, mode)
    layout = "[h; c]" if is_lstm else "h"
    desc = (
        f"torch {kind}: input {rnn.input_size}, hidden {units}"
        + (f", proj {proj}" if proj else "")
        + f", {n_layers} layer{'s' if n_layers > 1 else ''}; {enc_text}; state {layout} = {state_dim} units; "
        + (
            f"readout {_describe(readout)} ({n_classes} outputs)"
            if readout is not None
            else "no readout"
        )
        + ("" if h0 is None else "; custom h0")
    )
    return Probe(
        initial_fn=initial,
        step_fn=step,
        readout_fn=readout_fn,
        alphabet=names,
        state_dim=state_dim,
        n_classes=n_classes,
        device=device,
        description=desc,
    )


def _describe(obj: object) -> str:
    if isinstance(obj, nn.Linear):
        return f"Linear({obj.in_features}->{obj.out_features})"
    return type(obj).__name__


# ---------------------------------------------------------------------------------------------------
# any callables


def from_step(
    initial: InitialFn | Tensor | np.ndarray,
    step: StepFn,
    readout: ReadoutFn | None = None,
    alphabet: str | Sequence[str] = "01",
    *,
    description: str | None = None,
) -> Probe:
    """Probe any recurrent computation given as functions.

    Parameters
    ----------
    initial : callable or 1-D tensor/array
        ``initial(batch) -> Tensor (batch, d)``, or the initial state vector itself.
    step : callable
        ``step(h, symbols) -> Tensor (batch, d)`` with ``symbols`` a LongTensor ``(batch,)``.
    readout : callable, optional
        ``readout(h) -> Tensor (batch, n_outputs)`` (or ``(batch,)``); none means no outputs.
    alphabet : str or sequence of str, default "01"
    description : str, optional
        One line for reports; a default names the sizes.
    """
    names = as_alphabet(alphabet)
    if callable(initial):
        initial_fn: InitialFn = initial
    else:
        vec = torch.as_tensor(initial)
        if vec.ndim != 1:
            raise DataError(f"an initial state vector must be 1-D, got shape {tuple(vec.shape)}")
        if not vec.is_floating_point():
            vec = vec.float()

        def initial_fn(batch: int) -> Tensor:
            return vec.expand(batch, vec.shape[0]).clone()

    with torch.no_grad():
        h = initial_fn(1)
    if not isinstance(h, Tensor) or h.ndim != 2 or h.shape[0] != 1:
        shape = tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__
        raise DataError(f"initial(1) must return a tensor of shape (1, d), got {shape}")
    readout_fn = readout if readout is not None else _no_readout
    n_classes = _n_outputs(readout_fn, h)
    desc = description or (
        f"step function: {len(names)} symbols, state {h.shape[1]} units, {n_classes} outputs"
    )
    return Probe(
        initial_fn=initial_fn,
        step_fn=step,
        readout_fn=readout_fn,
        alphabet=names,
        state_dim=int(h.shape[1]),
        n_classes=n_classes,
        device=h.device,
        description=desc,
    )
