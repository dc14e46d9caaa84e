"""The :class:`Probe` protocol and its adapters: any recurrent model as three batched functions.

A probe turns a recurrent model into ``initial(batch) -> h``, ``step(h, symbols) -> h`` and
``readout(h) -> scores`` over a finite alphabet, with the state ``h`` a flat ``(batch, state_dim)`` tensor.
Everything downstream (state collection, exploration, extraction) talks to models only through a probe.

Adapters:

- :func:`from_model` for dfalens models (exact: they already implement the three functions);
- :func:`from_module` for ``torch.nn.RNN``, ``GRU``, ``LSTM``, their cells and stacks of them, plus a
  readout module;
- :func:`from_step` for any callables.

State layout for ``torch.nn`` modules: the per-layer hidden vectors concatenated in layer order,
``[h_0, h_1, ..., h_{L-1}]``; for an LSTM the cell vectors follow, ``[h_0, ..., h_{L-1}, c_0, ...,
c_{L-1}]`` (with ``proj_size > 0`` each ``h_k`` has ``proj_size`` units and each ``c_k`` ``hidden_size``);
a cell's state is ``h`` (``[h; c]`` for ``LSTMCell``); a stack of modules concatenates their states in
order. The readout sees the top layer's ``h`` only, as the network's head would.

Every adapter records what it assumed (initial state, nonlinearity, decision rule, start/end symbols,
padding) in :attr:`Probe.assumptions`, see :mod:`dfalens.probes.assumptions`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dfalens.errors import ConfigError, DataError
from dfalens.probes._heads import decision_rule, describe_head, split_sigmoid
from dfalens.probes._inputs import H0, describe_h0, h0_vector, input_table, select_symbols
from dfalens.probes._layers import Layer, adapt, stack_step
from dfalens.probes.assumptions import Assumptions, Choice

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
    assumptions : Assumptions or None
        What the adapter assumed about the network and where each choice came from.

    Notes
    -----
    A one-output readout is a score read as class 1 above 0.5; :func:`from_module` and
    :func:`dfalens.probes.from_checkpoint` put one-output heads on that scale by their decision rule
    (``assumptions.decision``).
    """

    initial_fn: InitialFn
    step_fn: StepFn
    readout_fn: ReadoutFn
    alphabet: tuple[str, ...]
    state_dim: int
    n_classes: int | None
    device: torch.device
    description: str
    assumptions: Assumptions | None = None

    @property
    def n_symbols(self) -> int:
        """Size of the alphabet."""
        return len(self.alphabet)

    def renamed(self, alphabet: str | Sequence[str], note: str = "") -> Probe:
        """The same probe with other symbol names (same number, same order), recorded as given.

        Raises
        ------
        DataError
            When the number of names differs.
        """
        names = as_alphabet(alphabet)
        if len(names) != len(self.alphabet):
            raise DataError(
                f"{len(names)} names for the probe's {len(self.alphabet)} symbols; give one name per symbol"
            )
        a = self.assumptions
        if a is None:
            return replace(self, alphabet=names)
        new = a.with_(alphabet=Choice(" ".join(names), "given", note))
        desc = self.description.replace(a.summary(), new.summary())
        return replace(self, alphabet=names, assumptions=new, description=desc)

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
    nonlin = (
        getattr(config, "nonlinearity", None) if getattr(config, "cell", "rnn") == "rnn" else None
    )
    h0_kind = getattr(config, "h0", None)
    assumptions = Assumptions(
        nonlinearity=None if nonlin is None else Choice(str(nonlin), "inferred", "model config"),
        h0=Choice(str(h0_kind or "the model's own"), "inferred", "model config"),
        decision=Choice("argmax", "inferred", f"{n_classes} outputs")
        if int(n_classes) >= 2
        else Choice("score > 0.5", "default", "one output"),
        alphabet=Choice(" ".join(names), "given" if alphabet is not None else "default"),
    )
    return Probe(
        initial_fn=model.initial,
        step_fn=model.step,
        readout_fn=model.readout,
        alphabet=names,
        state_dim=int(h.shape[1]),
        n_classes=int(n_classes),
        device=device,
        description=", ".join(parts),
        assumptions=assumptions,
    )


# ---------------------------------------------------------------------------------------------------
# torch.nn.RNN / GRU / LSTM and their cells


def _nonlinearity_choice(layers: Sequence[Layer]) -> Choice | None:
    found = [layer.nonlinearity for layer in layers if layer.nonlinearity is not None]
    if not found:
        return None
    value = found[0] if len(set(found)) == 1 else ", ".join(found)
    return Choice(value, "inferred", "module attribute")


def from_module(
    rnn: nn.Module | Sequence[nn.Module],
    readout: nn.Module | ReadoutFn | None = None,
    alphabet: str | Sequence[str] | None = "01",
    batch_first: bool | None = None,
    h0: H0 = None,
    input_encoding: str | nn.Embedding | Callable[[Tensor], Tensor] = "onehot",
    *,
    bos: str | None = None,
    eos: str | None = None,
    threshold: float | None = None,
    pad: Sequence[int] = (),
) -> Probe:
    """Probe ``torch.nn.RNN``, ``GRU``, ``LSTM``, their cells, or a stack of them, with a readout.

    Each module steps through its own forward on a length-1 sequence (a cell through its own call), so
    the probe reproduces the network exactly (any number of layers, with or without biases, LSTM
    projections included). A sequence of modules is a stack: each reads the top ``h`` of the one below.

    Parameters
    ----------
    rnn : module or sequence of modules
        ``nn.RNN/GRU/LSTM`` (unidirectional) or ``nn.RNNCell/GRUCell/LSTMCell``, or several chained in
        order. The state is every module's state concatenated in order (module docstring).
    readout : module or callable, optional
        Applied to the top layer's ``h`` ``(batch, units)``, as the network's head sees it. A head ending in
        ``nn.Sigmoid`` is read as a probability. Without it the probe has no outputs (``n_classes == 0``).
    alphabet : str or sequence of str or None, default "01"
        Names of the input rows (the vocabulary), or of the rows other than padding. ``None`` takes
        ``"0"``, ``"1"``, ... as many as the encoding needs.
    batch_first : bool, optional
        Checked against ``rnn.batch_first`` when given (the module's own setting is always used).
    h0 : "zeros", "ones", float, tensor, array or (h0, c0), optional
        Initial state (before ``bos``); zeros by default (torch's default). A float fills every unit; an
        array has ``state_dim`` values in the state layout; ``(h0, c0)`` is for a single LSTM.
    input_encoding : {"onehot", "index"} or nn.Embedding or callable, default "onehot"
        How an input row becomes the network's input vector: a one-hot vector (``input_size`` rows), the
        index itself as one number (``input_size == 1``), an embedding (its ``padding_idx`` is padding), or
        a function mapping a LongTensor of indices ``(n,)`` to vectors ``(n, input_size)``.
    bos, eos : str, optional
        Start and end symbols (vocabulary names): the initial state is the state after ``bos``, and the
        readout reads the state after ``eos``. Both are left out of the alphabet.
    threshold : float, optional
        For one-output heads: class 1 when the output exceeds it (a probability after a sigmoid). Default
        0 for a logit, 0.5 after a sigmoid. Refused for heads with several outputs (argmax).
    pad : sequence of int
        Input rows that are padding, left out of the alphabet.

    Raises
    ------
    ConfigError
        A bidirectional module, a module other than RNN/GRU/LSTM or their cells, active dropout,
        modules that do not chain, ``bos == eos``, ``bos``/``eos`` not in the vocabulary, a threshold for a
        multi-output head.
    DataError
        When the alphabet size does not fit the input width (both numbers are named).
    """
    modules = list(rnn) if isinstance(rnn, (Sequence, nn.ModuleList)) else [rnn]
    if not modules:
        raise ConfigError("from_module needs at least one recurrent module")
    layers = [adapt(m) for m in modules]
    first_mod = modules[0]
    if (
        batch_first is not None
        and isinstance(first_mod, nn.RNNBase)
        and bool(batch_first) != bool(first_mod.batch_first)
    ):
        raise ConfigError(
            f"batch_first={batch_first} but the module was built with "
            f"batch_first={first_mod.batch_first}; leave batch_first unset to use the module's setting"
        )
    first = next(iter(first_mod.parameters()))
    device, dtype = first.device, first.dtype
    step_x, top, state_dim = stack_step(layers)
    h_dim = layers[0].top.stop if len(layers) == 1 and layers[0].is_lstm else state_dim
    vocab, table, enc_text, pad_rows = input_table(
        layers[0].input_size, alphabet, input_encoding, pad, device, dtype
    )
    names, keep, bos_row, eos_row, excluded = select_symbols(vocab, pad_rows, bos, eos)
    pair_ok = len(layers) == 1 and layers[0].is_lstm and isinstance(first_mod, nn.RNNBase)
    h0_vec = h0_vector(h0, state_dim, h_dim, pair_ok, device, dtype)
    sym_rows = torch.as_tensor(keep, dtype=torch.long, device=device)

    def raw_step(h: Tensor, rows: Tensor) -> Tensor:
        return step_x(h, table[rows])

    if bos_row is None:
        start = h0_vec
    else:
        with torch.no_grad():
            start = raw_step(h0_vec[None], torch.tensor([bos_row], device=device))[0]

    def initial(batch: int) -> Tensor:
        return start.expand(batch, state_dim).clone()

    def step(h: Tensor, symbols: Tensor) -> Tensor:
        return raw_step(h, sym_rows[symbols])

    head, sigmoid = split_sigmoid(readout)
    if readout is None:
        readout_fn: ReadoutFn = _no_readout
        n_classes = 0
    else:
        head_fn = head

        def top_out(h: Tensor) -> Tensor:
            if eos_row is not None:
                h = raw_step(h, torch.full((h.shape[0],), eos_row, dtype=torch.long, device=device))
            y = head_fn(h[:, top])
            return y[:, None] if y.ndim == 1 else y

        n_classes = _n_outputs(top_out, initial(1))
        transform, decision = decision_rule(n_classes, sigmoid, threshold)
        if transform is None:
            readout_fn = top_out
        else:
            rule = transform

            def readout_fn(h: Tensor) -> Tensor:
                return rule(top_out(h))

    if readout is None:
        _, decision = decision_rule(0, False, threshold)
    h0_text = describe_h0(h0)
    assumptions = Assumptions(
        nonlinearity=_nonlinearity_choice(layers),
        h0=Choice(h0_text, "default", "torch's default")
        if h0 is None
        else Choice(h0_text, "given"),
        decision=decision,
        inputs=Choice(enc_text, "default" if input_encoding == "onehot" else "given"),
        head=None if readout is None else Choice(describe_head(readout), "given"),
        alphabet=Choice(
            " ".join(names), "default" if alphabet is None or alphabet == "01" else "given"
        ),
        bos=bos,
        eos=eos,
        excluded=excluded,
    )
    kinds = " -> ".join(
        f"{layer.kind} {layer.input_size}->{layer.hidden}"
        + (f"x{layer.n_layers}" if layer.n_layers > 1 else "")
        for layer in layers
    )
    desc = (
        f"torch {kinds}; state {state_dim} units; "
        + (
            f"readout {describe_head(readout)} ({n_classes} output{'s' if n_classes != 1 else ''})"
            if readout is not None
            else "no readout"
        )
        + f"; {assumptions.summary()}"
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
        assumptions=assumptions,
    )


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
        assumptions=Assumptions(
            h0=Choice("the given initial state", "given"),
            decision=None
            if n_classes == 0
            else Choice("argmax", "inferred", f"{n_classes} outputs")
            if n_classes >= 2
            else Choice("score > 0.5", "default", "one output, read as given"),
            alphabet=Choice(" ".join(names), "given"),
        ),
    )
