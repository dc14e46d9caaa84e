"""Many recurrent networks with stacked parameters: forward passes, losses and optimizer steps.

Parameters carry a leading *member* axis ``R`` and are named as in a
:class:`~dfalens.trainers.models.RecurrentModel` state dict (``rnn.weight_hh_l0`` has shape ``(R, G*H, H)``),
so one ``bmm`` per step advances every network at once. The batched trainer
(:mod:`dfalens.trainers.batched`) trains members this way and the timeline
(:mod:`dfalens.timeline.history`) computes many checkpoints' states and predictions this way.

The Elman recurrence ``h[t+1] = act(pre[t] + h[t] @ W_hh.T)`` is written once here
(:func:`elman_scan`, with backpropagation through time by hand); :func:`stacked_tree_states` applies the
same update to a whole prefix tree, one product per parent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from dfalens.errors import ConfigError

__all__ = [
    "activate_",
    "elman_scan",
    "stack_state_dicts",
    "stacked_forward",
    "stacked_final_scores",
    "stacked_loss",
    "stacked_tree_states",
    "per_example_loss",
    "StackedOptimizer",
]

_TIME_CHUNK = 256


def activate_(x: Tensor, relu: bool) -> Tensor:
    """The Elman nonlinearity in place: ReLU, or tanh when ``relu`` is False."""
    return x.clamp_(min=0.0) if relu else x.tanh_()


def stack_state_dicts(
    state_dicts: Sequence[Mapping[str, Tensor]], keys: Sequence[str]
) -> dict[str, Tensor]:
    """Stacked float32 parameters ``keys`` of several networks' state dicts (leading axis: network)."""
    return {k: torch.stack([sd[k] for sd in state_dicts]).float() for k in keys}


# -- the stacked cell ---------------------------------------------------------------------------------
def _layer_update(
    params: Mapping[str, Tensor], inp: Tensor, h: Tensor, k: int, cell: str, nonlinearity: str
) -> Tensor:
    """One recurrent update of layer ``k``; ``inp`` (R, B, G*H) is the input term including ``bias_ih``."""
    gh = torch.baddbmm(
        params[f"rnn.bias_hh_l{k}"].unsqueeze(1), h, params[f"rnn.weight_hh_l{k}"].mT
    )
    if cell == "rnn":
        pre = inp + gh
        return torch.relu(pre) if nonlinearity == "relu" else torch.tanh(pre)
    ir, iz, i_n = inp.chunk(3, dim=-1)
    hr, hz, h_n = gh.chunk(3, dim=-1)
    r = torch.sigmoid(ir + hr)
    z = torch.sigmoid(iz + hz)
    n = torch.tanh(i_n + r * h_n)
    return n + z * (h - n)


class _StackedElmanScan(torch.autograd.Function):
    """All hidden states of one stacked Elman layer, with backpropagation through time by hand.

    Inputs: ``pre`` (T, R, B, H) the input term of every step (input projection plus both biases), ``h0``
    (R, B, H), ``w_hh`` (R, H, H) and ``relu`` (tanh when False). Output: (T, R, B, H). Forward is one
    ``baddbmm`` and an in-place activation per step into one buffer; backward is one ``bmm`` per step and
    one ``bmm`` over all steps for the weight gradient (no autograd graph per step).
    """

    @staticmethod
    def forward(ctx: Any, pre: Tensor, h0: Tensor, w_hh: Tensor, relu: bool) -> Tensor:
        hs = pre.new_empty((pre.shape[0] + 1, *h0.shape))
        hs[0].copy_(h0)
        w_t = w_hh.mT
        for t in range(pre.shape[0]):
            activate_(torch.baddbmm(pre[t], hs[t], w_t, out=hs[t + 1]), relu)
        ctx.save_for_backward(hs, w_hh)
        ctx.relu = relu
        return hs[1:]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor | None, Tensor, None]:
        hs, w_hh = ctx.saved_tensors
        steps = grad.shape[0]
        dpre = torch.empty_like(grad, memory_format=torch.contiguous_format)
        dh = None
        for t in range(steps - 1, -1, -1):
            dh = grad[t] if dh is None else dh + grad[t]
            h = hs[t + 1]
            if ctx.relu:
                dpre[t] = torch.ops.aten.threshold_backward(dh, h, 0.0)
            else:
                torch.mul(dh, 1.0 - h * h, out=dpre[t])
            if t > 0 or ctx.needs_input_grad[1]:
                dh = torch.bmm(dpre[t], w_hh)
        r_, b_, h_ = hs.shape[1:]
        flat_d = dpre.permute(1, 3, 0, 2).reshape(r_, h_, steps * b_)
        flat_h = hs[:-1].permute(1, 0, 2, 3).reshape(r_, steps * b_, h_)
        d_w = torch.bmm(flat_d, flat_h)
        return dpre, (dh if ctx.needs_input_grad[1] else None), d_w, None


def elman_scan(pre: Tensor, h0: Tensor, w_hh: Tensor, relu: bool) -> Tensor:
    """Stacked Elman layer over time: ``pre`` (T, R, B, H) -> hidden states (T, R, B, H)."""
    if torch.is_grad_enabled() and (pre.requires_grad or h0.requires_grad or w_hh.requires_grad):
        return _StackedElmanScan.apply(pre.contiguous(), h0.contiguous(), w_hh, relu)
    with torch.no_grad():
        hs = pre.new_empty(pre.shape)
        h = h0
        w_t = w_hh.mT
        for t in range(pre.shape[0]):
            activate_(torch.baddbmm(pre[t], h, w_t, out=hs[t]), relu)
            h = hs[t]
        return hs


def _elman_states(
    params: Mapping[str, Tensor], words: Tensor, hs: list[Tensor], layers: int, relu: bool
) -> tuple[list[Tensor], Tensor]:
    """Stacked Elman network over ``words`` (R, B, L) from per-layer states ``hs`` (R, B, H): the final
    states and the top layer's states after every symbol, time-major (L, R, B, H)."""
    r_, b_, length = words.shape
    rows = torch.arange(r_, device=words.device).view(1, r_, 1)
    seq = None
    finals = []
    for k in range(layers):
        bias = params[f"rnn.bias_ih_l{k}"] + params[f"rnn.bias_hh_l{k}"]
        w_ih = params[f"rnn.weight_ih_l{k}"]
        if k == 0:
            table = _input_table(params)
            n_sym = table.shape[1]
            flat = (words.permute(2, 0, 1) + rows * n_sym).reshape(-1)
            pre = F.embedding(flat, table.reshape(r_ * n_sym, -1)).view(length, r_, b_, -1)
        else:
            flat = seq.permute(1, 0, 2, 3).reshape(r_, length * b_, -1)
            pre = torch.baddbmm(bias.unsqueeze(1), flat, w_ih.mT)
            pre = pre.view(r_, length, b_, -1).permute(1, 0, 2, 3)
        seq = elman_scan(pre, hs[k], params[f"rnn.weight_hh_l{k}"], relu)
        finals.append(seq[-1])
    return finals, seq


def _input_table(params: Mapping[str, Tensor]) -> Tensor:
    """Layer-1 input term of each symbol, ``W_ih.T`` plus both biases: (R, n_symbols, H)."""
    bias = params["rnn.bias_ih_l0"] + params["rnn.bias_hh_l0"]
    return params["rnn.weight_ih_l0"].mT + bias.unsqueeze(1)


@torch.no_grad()
def stacked_tree_states(
    params: Mapping[str, Tensor], max_len: int, relu: bool, outputs: bool = True
) -> tuple[Tensor, Tensor | None]:
    """One-layer Elman networks on every word up to ``max_len`` (the full prefix tree, breadth-first,
    symbols in index order: the order of :func:`dfalens.probes.collect`), one ``bmm`` per depth.

    Parameters
    ----------
    params : mapping of str to Tensor
        Stacked parameters of ``R`` one-layer Elman networks (see :func:`stacked_forward`).
    max_len : int
    relu : bool
        ReLU, else tanh.
    outputs : bool
        Also compute the readout.

    Returns
    -------
    hidden : Tensor, shape (R, n_words, H)
    output : Tensor, shape (R, n_words, C), or None without ``outputs``
    """
    w_t, table, h0 = params["rnn.weight_hh_l0"].mT, _input_table(params), params["h0"]
    c, hdim = h0.shape
    k = table.shape[1]
    n = sum(k**length for length in range(max_len + 1))
    hidden = h0.new_empty((c, n, hdim))
    hidden[:, 0] = h0
    start, count, off = 0, 1, 1
    for _ in range(max_len):  # one level of the tree per step
        pre = torch.bmm(hidden[:, start : start + count], w_t)  # W_hh h once per parent
        child = hidden[:, off : off + count * k].view(c, count, k, hdim)
        activate_(torch.add(pre[:, :, None, :], table[:, None, :, :], out=child), relu)
        start, off, count = off, off + count * k, count * k
    return hidden, (_head(params, hidden) if outputs else None)


def _initial_states(params: Mapping[str, Tensor], batch: int, layers: int) -> list[Tensor]:
    h0 = params["h0"]
    per = h0.view(h0.shape[0], layers, -1)
    return [per[:, k, :].unsqueeze(1).expand(-1, batch, -1) for k in range(layers)]


def _advance(
    params: Mapping[str, Tensor],
    words: Tensor,
    hs: list[Tensor],
    *,
    cell: str,
    layers: int,
    nonlinearity: str,
    n_symbols: int,
    every: bool = False,
    fused: bool = True,
) -> tuple[list[Tensor], list[Tensor]]:
    """Read ``words`` (R, B, L) from the per-layer states ``hs``; return the new states (and the top
    layer after every symbol when ``every``)."""
    r_, b_, length = words.shape
    tops: list[Tensor] = []
    if length == 0:
        return hs, tops
    if cell == "rnn" and fused:
        finals, seq = _elman_states(params, words, hs, layers, nonlinearity == "relu")
        return finals, list(seq.unbind(0)) if every else tops
    hs = list(hs)
    w_ih0 = params["rnn.weight_ih_l0"]
    x = F.one_hot(words, n_symbols).to(w_ih0.dtype).reshape(r_, b_ * length, n_symbols)
    gi0 = torch.baddbmm(params["rnn.bias_ih_l0"].unsqueeze(1), x, w_ih0.mT)
    gi0 = gi0.view(r_, b_, length, -1)
    for t in range(length):
        inp = gi0[:, :, t, :]
        for k in range(layers):
            if k > 0:
                w_ih, b_ih = params[f"rnn.weight_ih_l{k}"], params[f"rnn.bias_ih_l{k}"]
                inp = torch.baddbmm(b_ih.unsqueeze(1), hs[k - 1], w_ih.mT)
            hs[k] = _layer_update(params, inp, hs[k], k, cell, nonlinearity)
        if every:
            tops.append(hs[-1])
    return hs, tops


def _head(params: Mapping[str, Tensor], h: Tensor) -> Tensor:
    return torch.baddbmm(params["head.bias"].unsqueeze(1), h, params["head.weight"].mT)


def stacked_forward(
    params: Mapping[str, Tensor],
    words: Tensor,
    *,
    cell: str,
    layers: int,
    nonlinearity: str,
    n_symbols: int,
    every: bool = False,
    fused: bool = True,
) -> Tensor:
    """Run ``R`` stacked networks over one batch of equal-length words each; return their scores.

    Parameters
    ----------
    params : mapping of str to Tensor
        Stacked parameters with leading member axis ``R``, named as in a
        :class:`~dfalens.trainers.models.RecurrentModel` state dict: ``rnn.weight_ih_l{k}`` (R, G*H, in),
        ``rnn.weight_hh_l{k}`` (R, G*H, H), ``rnn.bias_ih_l{k}`` and ``rnn.bias_hh_l{k}`` (R, G*H),
        ``head.weight`` (R, C, H), ``head.bias`` (R, C) and ``h0`` (R, layers*H). ``G`` is 1 (Elman)
        or 3 (GRU, gates in torch's order r, z, n).
    words : Tensor of int64, shape (R, B, L)
        Symbol indices; member ``r`` reads ``words[r]``. ``L`` may be 0 (the readout of ``h0``).
    cell : {"rnn", "gru"}
    layers : int
    nonlinearity : {"relu", "tanh"}
        Elman activation (ignored for GRU).
    n_symbols : int
        Alphabet size; inputs are one-hot.
    every : bool
        Return the scores after every symbol instead of after the last one.
    fused : bool
        Run Elman layers through the hand-written recurrence (one ``baddbmm`` per step forward, one
        ``bmm`` per step backward, no per-step autograd graph); False records every step with autograd
        (the reference; same values up to float rounding). GRU layers always use autograd.

    Returns
    -------
    Tensor, shape (R, B, C), or (R, B, L, C) when ``every``
    """
    r_, b_, length = words.shape
    hs = _initial_states(params, b_, layers)
    hs, tops = _advance(
        params,
        words,
        hs,
        cell=cell,
        layers=layers,
        nonlinearity=nonlinearity,
        n_symbols=n_symbols,
        every=every,
        fused=fused,
    )
    if every:
        if not tops:
            return hs[-1].new_zeros((r_, b_, 0, params["head.bias"].shape[-1]))
        seq = torch.stack(tops, dim=2).reshape(r_, b_ * length, -1)
        return _head(params, seq).view(r_, b_, length, -1)
    return _head(params, hs[-1])


@torch.no_grad()
def stacked_final_scores(
    params: Mapping[str, Tensor], words: Tensor, *, chunk: int = _TIME_CHUNK, **shape: Any
) -> Tensor:
    """Scores after the last symbol of long words, reading time in chunks (no gradients).

    Parameters
    ----------
    params : mapping of str to Tensor
        Stacked parameters (see :func:`stacked_forward`).
    words : Tensor of int64, shape (R, B, L)
    chunk : int
        Time steps read per chunk (bounds memory for long words).
    **shape
        ``cell``, ``layers``, ``nonlinearity``, ``n_symbols``.

    Returns
    -------
    Tensor, shape (R, B, C)
    """
    hs = _initial_states(params, words.shape[1], shape["layers"])
    for start in range(0, words.shape[2], chunk):
        hs, _ = _advance(params, words[:, :, start : start + chunk], hs, **shape)
    return _head(params, hs[-1])


def per_example_loss(logits: Tensor, targets: Tensor, loss: str) -> Tensor:
    """Loss of each example: ``logits`` (R, B, [L,] C), ``targets`` (R, B[, L]) -> (R, B).

    ``mse`` is the squared error against one-hot targets averaged over classes; with per-symbol targets
    an example's loss is the mean over its positions.
    """
    if loss == "ce":
        per = F.cross_entropy(logits.flatten(0, -2), targets.flatten(), reduction="none")
        per = per.view(targets.shape)
    else:
        onehot = F.one_hot(targets, logits.shape[-1]).to(logits.dtype)
        per = (logits - onehot).square().mean(dim=-1)
    return per.mean(dim=2) if per.dim() > 2 else per


def stacked_loss(logits: Tensor, targets: Tensor, weights: Tensor, loss: str) -> Tensor:
    """Per-member weighted mean loss.

    Parameters
    ----------
    logits : Tensor, shape (R, B, C) or (R, B, L, C)
    targets : Tensor of int64, shape (R, B) or (R, B, L)
        Class indices (after the last symbol, or after every symbol).
    weights : Tensor, shape (R, B)
        1 for a real example, 0 for padding; every row needs at least one real example.
    loss : {"ce", "mse"}
        Cross-entropy on the scores, or the squared error against one-hot targets averaged over classes
        (``nn.MSELoss`` on one-hot targets), as :func:`dfalens.trainers.evaluate.loss_terms`.

    Returns
    -------
    Tensor, shape (R,)
    """
    per = per_example_loss(logits, targets, loss)
    return (per * weights).sum(dim=1) / weights.sum(dim=1)


class StackedOptimizer:
    """SGD or Adam over stacked tensors, acting as one independent optimizer per member.

    Each update names the rows (members) it applies to; the other rows keep their parameters and
    optimizer state untouched, and every member counts its own steps for Adam's bias correction. The
    update formulas are those of ``torch.optim.SGD`` (dampening 0, no Nesterov) and ``torch.optim.Adam``
    (L2 ``weight_decay`` added to the gradient, not AdamW).

    Parameters
    ----------
    params : dict of str to Tensor
        Stacked parameters to update in place (leading member axis ``M``).
    kind : {"sgd", "adam"}
    lr : Tensor, shape (M,)
        Learning rate of each member.
    momentum : float
        SGD momentum (0 for plain SGD).
    weight_decay : float
    betas : tuple of float
        Adam coefficients.
    eps : float
        Adam denominator term.
    """

    def __init__(
        self,
        params: dict[str, Tensor],
        kind: str,
        lr: Tensor,
        *,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        if kind not in ("sgd", "adam"):
            raise ConfigError(f"unknown optimizer {kind!r}; use 'sgd' or 'adam'")
        self.params = params
        self.kind = kind
        self.lr = lr
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.betas = betas
        self.eps = eps
        self.steps = torch.zeros(lr.shape[0], dtype=torch.int64, device=lr.device)
        self.state: dict[str, list[Tensor]] = {}
        if kind == "adam":
            self.state = {k: [torch.zeros_like(v), torch.zeros_like(v)] for k, v in params.items()}
        elif self.momentum:
            self.state = {k: [torch.zeros_like(v)] for k, v in params.items()}

    @torch.no_grad()
    def step(self, rows: Tensor, grads: Mapping[str, Tensor]) -> None:
        """Update members ``rows`` (int64, distinct) with their gradients ``grads[name]`` of shape (R, ...)."""
        self.steps[rows] += 1
        lr = self.lr[rows]
        steps = self.steps[rows]
        for name, g in grads.items():
            p = self.params[name]
            shape = (-1,) + (1,) * (g.dim() - 1)
            pr = p[rows]
            if self.weight_decay:
                g = g.add(pr, alpha=self.weight_decay)
            if self.kind == "sgd":
                if self.momentum:
                    buf = self.state[name][0]
                    first = (steps == 1).view(shape)
                    g = torch.where(first, g, buf[rows].mul_(self.momentum).add_(g))
                    buf[rows] = g
                p[rows] = pr.sub_(lr.view(shape) * g)
                continue
            b1, b2 = self.betas
            m_all, v_all = self.state[name]
            m = m_all[rows].lerp_(g, 1 - b1)
            v = v_all[rows].mul_(b2).addcmul_(g, g, value=1 - b2)
            m_all[rows] = m
            v_all[rows] = v
            t = steps.to(torch.float64)
            bc1 = (1 - b1**t).to(g.dtype).view(shape)
            bc2_sqrt = (1 - b2**t).sqrt().to(g.dtype).view(shape)
            denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
            p[rows] = pr.sub_((lr.view(shape) / bc1) * m / denom)


# -- members and their data ---------------------------------------------------------------------------
