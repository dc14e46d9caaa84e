"""Recurrent models with one-hot input and a linear readout, and the probe protocol on each.

Every model is a :class:`RecurrentModel` around ``torch.nn.RNN``, ``nn.GRU`` or ``nn.LSTM``
(``batch_first=True``, so cuDNN runs it on the GPU) plus ``nn.Linear`` from the last layer's hidden units
to ``n_classes`` raw scores. On the CPU the Elman cell runs through the fused recurrence of
:mod:`dfalens.trainers.fused` instead of ``nn.RNN`` (same parameters, same values up to float32 rounding,
4-14% less CPU time than ``nn.RNN``, measured; seeded runs keep the bits they had).

The state vector
----------------
``state_dim`` is ``layers * hidden`` for ``rnn`` and ``gru`` and ``2 * layers * hidden`` for ``lstm``. The
vector concatenates the hidden vectors of layers 1..L, then (LSTM only) the cell vectors of layers 1..L::

    [h_1, ..., h_L]                 rnn, gru
    [h_1, ..., h_L, c_1, ..., c_L]  lstm

The readout reads ``h_L``. On the CPU, ``step`` reproduces ``forward`` bit for bit for every
single-layer model and for Elman networks of any depth; for multi-layer GRU and LSTM the two agree to
float32 rounding (torch's kernels project the inputs of upper layers for all steps in one product). The initial state is the same for every word: all ones (``h0="ones"``, the
paper's choice, which keeps a ReLU network off the zero fixed point), all zeros, or a learned vector that
starts at ones. For an LSTM it covers the cell vectors too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dfalens._budget import check_memory, model_bytes
from dfalens.errors import ConfigError
from dfalens.trainers.fused import elman_final, elman_scan

__all__ = ["CELLS", "NONLINEARITIES", "H0_MODES", "ModelConfig", "RecurrentModel", "build_model"]

CELLS = ("rnn", "gru", "lstm")
NONLINEARITIES = ("relu", "tanh")
H0_MODES = ("ones", "zeros", "learned")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
"""Gate blocks of each cell's weight matrices (rows = gates x hidden)."""
_TIME_CHUNK = 512


@dataclass(frozen=True)
class ModelConfig:
    """The architecture of a :class:`RecurrentModel`; stored in every checkpoint.

    Parameters
    ----------
    cell : {"rnn", "gru", "lstm"}
        ``rnn`` is the Elman network of the paper.
    hidden : int
        Units per layer.
    layers : int
        Number of stacked recurrent layers.
    nonlinearity : {"relu", "tanh"}
        Activation of the Elman cell (ignored by GRU and LSTM, which use their own gates).
    n_symbols : int
        Input alphabet size (inputs are one-hot).
    n_classes : int
        Number of output scores.
    h0 : {"ones", "zeros", "learned"}
        Initial state.
    gain : float
        Xavier-normal gain of every weight matrix at initialisation (biases start at zero).
    """

    cell: str = "rnn"
    hidden: int = 100
    layers: int = 1
    nonlinearity: str = "relu"
    n_symbols: int = 2
    n_classes: int = 2
    h0: str = "ones"
    gain: float = 0.1

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ConfigError(f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        if self.nonlinearity not in NONLINEARITIES:
            raise ConfigError(
                f"nonlinearity must be one of {', '.join(NONLINEARITIES)}, got {self.nonlinearity!r}"
            )
        if self.h0 not in H0_MODES:
            raise ConfigError(f"h0 must be one of {', '.join(H0_MODES)}, got {self.h0!r}")
        for name in ("hidden", "layers", "n_symbols"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int):
            raise ConfigError(f"n_classes must be an integer, got {self.n_classes!r}")
        if self.n_classes < 2:
            raise ConfigError(f"n_classes must be at least 2, got {self.n_classes}")
        if not isinstance(self.gain, int | float) or not self.gain > 0:
            raise ConfigError(f"gain must be a positive number, got {self.gain!r}")
        check_memory(
            4
            * model_bytes(
                self.hidden, self.layers, self.n_symbols, self.n_classes, GATES[self.cell]
            ),
            f"a {self.cell} network of {self.layers} x {self.hidden:,} units (weights, gradients and "
            "optimizer state)",
            "choose a smaller hidden size or fewer layers",
        )

    @property
    def state_dim(self) -> int:
        """Length of the state vector (see the module docstring for its layout)."""
        per_layer = 2 * self.hidden if self.cell == "lstm" else self.hidden
        return self.layers * per_layer

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys raise :class:`ConfigError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"unknown model config keys {unknown}; expected some of {sorted(names)}"
            )
        return cls(**dict(data))


class RecurrentModel(nn.Module):
    """A recurrent network over one-hot symbols with a linear readout; see the module docstring.

    Parameters
    ----------
    config : ModelConfig

    Attributes
    ----------
    rnn : nn.RNN or nn.GRU or nn.LSTM
        The recurrent layers (``batch_first=True``).
    head : nn.Linear
        Readout from the last layer's hidden vector to ``n_classes`` scores.
    h0 : Tensor, shape (state_dim,)
        The initial state (a parameter when ``config.h0 == "learned"``, else a buffer).
    fused : bool
        Use the fused Elman recurrence when the model is on the CPU (default True; no effect for GRU/LSTM).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        kind = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[config.cell]
        kwargs: dict[str, Any] = (
            {"nonlinearity": config.nonlinearity} if config.cell == "rnn" else {}
        )
        self.rnn = kind(config.n_symbols, config.hidden, config.layers, batch_first=True, **kwargs)
        self.head = nn.Linear(config.hidden, config.n_classes)
        start = (
            torch.ones(config.state_dim) if config.h0 != "zeros" else torch.zeros(config.state_dim)
        )
        if config.h0 == "learned":
            self.h0 = nn.Parameter(start)
        else:
            self.register_buffer("h0", start)
        self.register_buffer("eye", torch.eye(config.n_symbols), persistent=False)
        self.fused = True

    # -- initialisation -------------------------------------------------------------------------
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Xavier-normal with ``config.gain`` on every weight matrix, zeros on every bias.

        GRU and LSTM weights stack their gates; each gate block is initialised as its own matrix. The
        initial state is reset to its starting value (ones, or zeros for ``h0="zeros"``).
        """
        gain = float(self.config.gain)
        gates = GATES[self.config.cell]
        with torch.no_grad():
            for name, param in self.rnn.named_parameters():
                if name.startswith("weight"):
                    for block in param.chunk(gates, dim=0):
                        nn.init.xavier_normal_(block, gain=gain, generator=generator)
                else:
                    param.zero_()
            nn.init.xavier_normal_(self.head.weight, gain=gain, generator=generator)
            self.head.bias.zero_()
            self.h0.fill_(0.0 if self.config.h0 == "zeros" else 1.0)

    # -- the probe protocol ----------------------------------------------------------------------
    def initial(self, batch: int) -> Tensor:
        """The initial state of ``batch`` words, shape ``(batch, state_dim)``."""
        return self.h0.unsqueeze(0).expand(batch, -1).contiguous()

    def step(self, state: Tensor, symbols: Tensor) -> Tensor:
        """Read one symbol per word: ``(batch, state_dim)`` and ``(batch,)`` -> ``(batch, state_dim)``."""
        if self._use_fused(state):
            return self._fused_step(state, symbols)
        out_state = self._module_run(self.eye[symbols].unsqueeze(1), state)[1]
        return out_state

    def readout(self, state: Tensor) -> Tensor:
        """Raw scores ``(batch, n_classes)`` from states ``(batch, state_dim)`` (reads the last layer)."""
        hidden = self.config.hidden
        last = (self.config.layers - 1) * hidden
        return self.head(state[:, last : last + hidden])

    # -- whole words -----------------------------------------------------------------------------
    def forward(self, words: Tensor, state: Tensor | None = None) -> Tensor:
        """Scores after the last symbol: ``(batch, T)`` int words -> ``(batch, n_classes)``."""
        return self.readout(self.final_state(words, state))

    def forward_all(self, words: Tensor, state: Tensor | None = None) -> Tensor:
        """Scores after every symbol (streaming): ``(batch, T)`` -> ``(batch, T, n_classes)``."""
        return self.head(self.hidden_sequence(words, state))

    def hidden_sequence(self, words: Tensor, state: Tensor | None = None) -> Tensor:
        """The last layer's hidden vector after every symbol, ``(batch, T, hidden)``."""
        state = self.initial(words.shape[0]) if state is None else state
        if words.shape[1] == 0:
            return state.new_empty((words.shape[0], 0, self.config.hidden))
        if self._use_fused(state):
            seq = self._fused_layers(words, state)[0]
            assert seq is not None
            return seq.transpose(0, 1)
        return self._module_run(self.eye[words], state)[0]

    def final_state(self, words: Tensor, state: Tensor | None = None) -> Tensor:
        """The state after reading each word, ``(batch, state_dim)``.

        Differentiable; long words are read in chunks of time steps when gradients are off, so memory
        stays bounded whatever the length.
        """
        state = self.initial(words.shape[0]) if state is None else state
        steps = words.shape[1]
        if steps == 0:
            return state
        if not torch.is_grad_enabled() and steps > _TIME_CHUNK:
            for start in range(0, steps, _TIME_CHUNK):
                state = self.final_state(words[:, start : start + _TIME_CHUNK], state)
            return state
        if self._use_fused(state):
            if not torch.is_grad_enabled() and self.config.layers == 1:
                h0 = state
                pre = self._first_input(words)
                return elman_final(pre, h0, self.rnn.weight_hh_l0, self._relu)
            return self._fused_layers(words, state, last_only=True)[1]
        return self._module_run(self.eye[words], state)[1]

    # -- internals -------------------------------------------------------------------------------
    @property
    def _relu(self) -> bool:
        return self.config.nonlinearity == "relu"

    def _use_fused(self, state: Tensor) -> bool:
        return self.fused and self.config.cell == "rnn" and state.device.type == "cpu"

    def _input_table(self, layer: int) -> Tensor:
        """Layer-1 input term of each symbol: ``W_ih.T`` plus both biases, ``(n_symbols, hidden)``."""
        bias = getattr(self.rnn, f"bias_ih_l{layer}") + getattr(self.rnn, f"bias_hh_l{layer}")
        return getattr(self.rnn, f"weight_ih_l{layer}").t() + bias

    def _first_input(self, words: Tensor) -> Tensor:
        """Time-major layer-1 input terms ``(T, B, hidden)`` of words ``(B, T)``.

        A one-hot matrix product: on the CPU it is several times faster than an embedding lookup, forward
        and backward, for the small alphabets used here.
        """
        onehot = self.eye[words.t()]
        return torch.matmul(onehot, self._input_table(0))

    def _layer_states(self, state: Tensor) -> Tensor:
        """``(batch, state_dim)`` -> ``(layers or 2*layers, batch, hidden)``."""
        return state.view(state.shape[0], -1, self.config.hidden).transpose(0, 1)

    def _fused_step(self, state: Tensor, symbols: Tensor) -> Tensor:
        hs = self._layer_states(state)
        new = []
        x = None
        for layer in range(self.config.layers):
            w_hh = getattr(self.rnn, f"weight_hh_l{layer}")
            pre = self._input_table(0)[symbols] if layer == 0 else self._deep_input(layer, x)
            x = torch.addmm(pre, hs[layer], w_hh.t())
            x = torch.relu(x) if self._relu else torch.tanh(x)
            new.append(x)
        return torch.cat(new, dim=1)

    def _deep_input(self, layer: int, below: Tensor) -> Tensor:
        """Input term of layer >= 2 from the layer below, ``(..., hidden)``."""
        bias = getattr(self.rnn, f"bias_ih_l{layer}") + getattr(self.rnn, f"bias_hh_l{layer}")
        w_ih = getattr(self.rnn, f"weight_ih_l{layer}")
        flat = below.reshape(-1, below.shape[-1])
        return torch.addmm(bias, flat, w_ih.t()).view(below.shape)

    def _fused_layers(
        self, words: Tensor, state: Tensor, last_only: bool = False
    ) -> tuple[Tensor | None, Tensor]:
        """Time-major last-layer states ``(T, B, H)`` (None when ``last_only``) and the final state."""
        hs0 = self._layer_states(state)
        pre = self._first_input(words)
        finals = []
        seq: Tensor | None = None
        top = self.config.layers - 1
        for layer in range(self.config.layers):
            if layer > 0:
                assert seq is not None
                pre = self._deep_input(layer, seq)
            w_hh = getattr(self.rnn, f"weight_hh_l{layer}")
            if layer == top and last_only:
                finals.append(elman_scan(pre, hs0[layer], w_hh, self._relu, last_only=True))
                seq = None
            else:
                seq = elman_scan(pre, hs0[layer], w_hh, self._relu)
                finals.append(seq[-1])
        return seq, torch.cat(finals, dim=1)

    def _module_run(self, inputs: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """Run the torch module on one-hot inputs ``(B, T, n_symbols)`` from flat states."""
        layers = self.config.layers
        per_layer = self._layer_states(state)
        if self.config.cell == "lstm":
            hx: Any = (per_layer[:layers].contiguous(), per_layer[layers:].contiguous())
        else:
            hx = per_layer.contiguous()
        if self.config.cell == "lstm" and inputs.device.type == "cpu":
            # oneDNN's LSTM kernel (used without gradients) rounds differently from the step-by-step
            # kernel; turning it off keeps step() and forward() bit-identical on the CPU.
            previous = torch.backends.mkldnn.enabled
            torch.backends.mkldnn.enabled = False
            try:
                out, hn = self.rnn(inputs, hx)
            finally:
                torch.backends.mkldnn.enabled = previous
        else:
            out, hn = self.rnn(inputs, hx)
        if self.config.cell == "lstm":
            hn = torch.cat([hn[0], hn[1]], dim=0)
        return out, hn.transpose(0, 1).reshape(state.shape[0], -1)


def build_model(config: ModelConfig, seed: int | None = 0) -> RecurrentModel:
    """A freshly initialised model on the CPU.

    Parameters
    ----------
    config : ModelConfig
    seed : int or None
        Seeds the Xavier draws (a private generator, so the global torch RNG is left untouched);
        None draws from the global RNG.

    Returns
    -------
    RecurrentModel
        In training mode, on the CPU; move it with ``.to(device)``.
    """
    with torch.random.fork_rng(devices=[]):
        model = RecurrentModel(config)
    generator = None
    if seed is not None:
        generator = torch.Generator().manual_seed(int(seed))
    model.reset_parameters(generator)
    return model
