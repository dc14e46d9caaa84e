"""One stepping adapter per ``torch.nn`` recurrent module, and stacks of them.

A layer adapter steps one module (``nn.RNN/GRU/LSTM`` with any number of layers, or an
``nn.RNNCell/GRUCell/LSTMCell``) on a flat state slice: ``step(x, state) -> (state', top_h)``. A stack
chains adapters: each module reads the top ``h`` of the one below, and the stack's state is every
module's state concatenated in order.

State layout of one module: ``nn.RNN/GRU``: ``[h_0, ..., h_{L-1}]``; ``nn.LSTM``: ``[h_0, ..., h_{L-1},
c_0, ..., c_{L-1}]`` (with ``proj_size > 0`` each ``h_k`` has ``proj_size`` units); ``RNNCell/GRUCell``:
``h``; ``LSTMCell``: ``[h; c]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dfalens.errors import ConfigError

__all__ = ["Layer", "adapt", "stack_step"]

StepOut = tuple[Tensor, Tensor]


@dataclass(frozen=True, eq=False)
class Layer:
    """A recurrent module as a step on a flat state slice.

    Attributes
    ----------
    module : nn.Module
    kind : str
        ``"RNN(tanh)"``, ``"RNN(relu)"``, ``"GRU"``, ``"LSTM"``, or those with ``"Cell"`` appended.
    input_size, out_size, state_dim, n_layers, hidden : int
    top : slice
        Where the top layer's ``h`` lies in this module's state.
    step : callable
        ``step(x, state) -> (state', top_h)`` for inputs ``x`` of shape ``(batch, input_size)``.
    """

    module: nn.Module
    kind: str
    input_size: int
    out_size: int
    state_dim: int
    n_layers: int
    hidden: int
    top: slice
    step: Callable[[Tensor, Tensor], StepOut]

    @property
    def is_lstm(self) -> bool:
        """Whether the state holds cell vectors too."""
        return self.kind.startswith("LSTM")

    @property
    def nonlinearity(self) -> str | None:
        """``tanh``/``relu`` for plain RNN layers, else ``None``."""
        if self.kind.startswith("RNN"):
            return self.kind[self.kind.index("(") + 1 : self.kind.index(")")]
        return None


def _rnn_kind(mode: str) -> str:
    return {"RNN_TANH": "RNN(tanh)", "RNN_RELU": "RNN(relu)"}.get(mode, mode)


def _adapt_module(rnn: nn.RNNBase) -> Layer:
    if rnn.bidirectional:
        raise ConfigError(
            "bidirectional networks are refused by the white-box path: their state depends on the future "
            "of the word, so there is no left-to-right state; probe them as a black box with "
            "dfalens.probes.from_classifier(classify, alphabet)"
        )
    if rnn.training and rnn.dropout > 0 and rnn.num_layers > 1:
        raise ConfigError(
            f"the module applies dropout {rnn.dropout} between layers in training mode, so steps are random; "
            "call rnn.eval() first"
        )
    is_lstm = rnn.mode == "LSTM"
    n_layers = int(rnn.num_layers)
    units = int(rnn.hidden_size)
    proj = int(getattr(rnn, "proj_size", 0) or 0)
    h_units = proj if proj > 0 else units
    h_dim = n_layers * h_units
    state_dim = h_dim + (n_layers * units if is_lstm else 0)
    bf = bool(rnn.batch_first)

    def split(h: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        b = h.shape[0]
        if n_layers == 1 and not is_lstm:
            return h[None]
        hh = h[:, :h_dim].reshape(b, n_layers, h_units).transpose(0, 1).contiguous()
        if not is_lstm:
            return hh
        cc = h[:, h_dim:].reshape(b, n_layers, units).transpose(0, 1).contiguous()
        return hh, cc

    def join(state: Tensor | tuple[Tensor, Tensor]) -> Tensor:
        if isinstance(state, tuple):
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

    def step(x: Tensor, h: Tensor) -> StepOut:
        seq = x[:, None, :] if bf else x[None, :, :]
        out, state = rnn(seq, split(h))
        return join(state), (out[:, 0] if bf else out[0])

    return Layer(
        module=rnn,
        kind=_rnn_kind(rnn.mode),
        input_size=int(rnn.input_size),
        out_size=h_units,
        state_dim=state_dim,
        n_layers=n_layers,
        hidden=units,
        top=slice((n_layers - 1) * h_units, h_dim),
        step=step,
    )


def _adapt_cell(cell: nn.RNNCellBase) -> Layer:
    units = int(cell.hidden_size)
    if isinstance(cell, nn.LSTMCell):

        def step(x: Tensor, h: Tensor) -> StepOut:
            hn, cn = cell(x, (h[:, :units], h[:, units:]))
            return torch.cat([hn, cn], dim=1), hn

        kind, state_dim = "LSTMCell", 2 * units
    else:

        def step(x: Tensor, h: Tensor) -> StepOut:
            hn = cell(x, h)
            return hn, hn

        kind = f"RNNCell({cell.nonlinearity})" if isinstance(cell, nn.RNNCell) else "GRUCell"
        state_dim = units
    return Layer(
        module=cell,
        kind=kind,
        input_size=int(cell.input_size),
        out_size=units,
        state_dim=state_dim,
        n_layers=1,
        hidden=units,
        top=slice(0, units),
        step=step,
    )


def adapt(module: nn.Module) -> Layer:
    """The layer adapter of one ``torch.nn`` recurrent module or cell.

    Raises
    ------
    ConfigError
        For anything other than RNN/GRU/LSTM and their cells, a bidirectional module, or active dropout.
    """
    if isinstance(module, nn.RNNBase):
        return _adapt_module(module)
    if isinstance(module, nn.RNNCellBase):
        return _adapt_cell(module)
    raise ConfigError(
        f"from_module takes torch.nn.RNN, GRU, LSTM or their cells, got {type(module).__name__}; use "
        "from_step to wrap your own step function"
    )


def stack_step(layers: Sequence[Layer]) -> tuple[Callable[[Tensor, Tensor], Tensor], slice, int]:
    """Chain layers: each reads the top ``h`` of the one below.

    Returns
    -------
    step : callable
        ``step(h, x) -> h'`` on the concatenated state.
    top : slice
        The top layer's ``h`` in the concatenated state (what a head reads).
    state_dim : int
    """
    for below, above in zip(layers, layers[1:], strict=False):
        if above.input_size != below.out_size:
            raise ConfigError(
                f"a {above.kind} reading {above.input_size} inputs cannot follow a {below.kind} with "
                f"{below.out_size} outputs; pass the layers in the order the network applies them"
            )
    offsets = [0]
    for layer in layers:
        offsets.append(offsets[-1] + layer.state_dim)
    state_dim = offsets[-1]
    last = layers[-1]
    top = slice(offsets[-2] + last.top.start, offsets[-2] + last.top.stop)
    if len(layers) == 1:
        only = layers[0]

        def step_one(h: Tensor, x: Tensor) -> Tensor:
            return only.step(x, h)[0]

        return step_one, top, state_dim

    def step(h: Tensor, x: Tensor) -> Tensor:
        parts = []
        for layer, a, b in zip(layers, offsets, offsets[1:], strict=False):
            state, x = layer.step(x, h[:, a:b])
            parts.append(state)
        return torch.cat(parts, dim=1)

    return step, top, state_dim
