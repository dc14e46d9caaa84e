"""A fused Elman recurrence for the CPU: one autograd node for a whole sequence.

On the CPU, ``torch.nn.RNN`` runs each time step as several small ops (an input ``addmm``, a hidden
``addmm``, an add, the nonlinearity) and autograd records every one, so a 10-step batch costs about 6T
matrix products forward and backward. For one-hot inputs the input term is a row lookup, and the weight
gradient of the recurrent matrix is one product over all steps at once. :class:`ElmanScan` computes

    h[t+1] = act(pre[t] + h[t] @ W_hh.T)

forward in place into one buffer and backpropagates through time by hand: T small products forward, T
backward, and one ``(H, T*B) @ (T*B, H)`` product for the weight gradient. The values agree with
``nn.RNN`` to float32 rounding (the input and bias terms are summed in a different order); the models use it
only on the CPU, and ``nn.RNN`` (cuDNN) on the GPU. It is the single-network form of
:func:`dfalens.trainers.stacked.elman_scan` (many networks, one ``bmm`` per step), kept apart because the
stacked scan at one network costs 1.18x CPU time per training epoch and 1.27x on long evaluations.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dfalens.trainers.stacked import activate_ as _activate_

__all__ = ["ElmanScan", "elman_scan", "elman_final"]


class ElmanScan(torch.autograd.Function):
    """Autograd function: the hidden states of one Elman layer given its input terms.

    Inputs: ``pre`` (T, B, H) the input term of every step (input projection plus both biases), ``h0``
    (B, H), ``w_hh`` (H, H), ``relu`` (bool; tanh when False), ``last_only`` (bool). Output: (T, B, H)
    hidden states after each step (time-major), or only the last one (B, H) when ``last_only``, which
    spares the backward pass a gradient full of zeros.
    """

    @staticmethod
    def forward(
        ctx: Any, pre: Tensor, h0: Tensor, w_hh: Tensor, relu: bool, last_only: bool
    ) -> Tensor:
        steps, batch, hidden = pre.shape
        hs = pre.new_empty((steps + 1, batch, hidden))
        hs[0].copy_(h0)
        hs[1:].copy_(pre)  # one copy, then every step accumulates in place
        w_t = w_hh.t()
        for t in range(steps):
            _activate_(hs[t + 1].addmm_(hs[t], w_t), relu)
        ctx.save_for_backward(hs, w_hh)
        ctx.relu = relu
        ctx.last_only = last_only
        return hs[-1] if last_only else hs[1:]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor | None, Tensor, None, None]:
        hs, w_hh = ctx.saved_tensors
        steps = hs.shape[0] - 1
        batch, hidden = hs.shape[1:]
        if not ctx.last_only:
            grad = grad.contiguous()
        dpre = hs.new_empty((steps, batch, hidden))
        dh = grad if ctx.last_only else grad[steps - 1]
        buffers = (hs.new_empty((batch, hidden)), hs.new_empty((batch, hidden)))
        for t in range(steps - 1, -1, -1):
            if t < steps - 1 and not ctx.last_only:
                dh = dh + grad[t]
            h = hs[t + 1]
            if ctx.relu:
                torch.ops.aten.threshold_backward.grad_input(dh, h, 0.0, grad_input=dpre[t])
            else:
                torch.mul(dh, 1.0 - h * h, out=dpre[t])
            if t > 0 or ctx.needs_input_grad[1]:
                dh = torch.mm(dpre[t], w_hh, out=buffers[t % 2])
        flat = dpre.view(steps * batch, hidden)
        d_w = flat.t() @ hs[:-1].reshape(steps * batch, hidden)
        d_h0 = dh.clone() if ctx.needs_input_grad[1] else None
        return dpre, d_h0, d_w, None, None


def elman_scan(
    pre: Tensor, h0: Tensor, w_hh: Tensor, relu: bool, last_only: bool = False
) -> Tensor:
    """Hidden states ``(T, B, H)`` of an Elman layer, or the last ``(B, H)`` (see :class:`ElmanScan`)."""
    if pre.shape[0] == 0:
        return h0 if last_only else pre.new_empty((0, *h0.shape))
    if torch.is_grad_enabled() and (pre.requires_grad or h0.requires_grad or w_hh.requires_grad):
        return ElmanScan.apply(pre.contiguous(), h0, w_hh, relu, last_only)
    with torch.no_grad():
        return ElmanScan.forward(_NoCtx(), pre.contiguous(), h0, w_hh, relu, last_only)


def elman_final(pre: Tensor, h0: Tensor, w_hh: Tensor, relu: bool) -> Tensor:
    """The last hidden state ``(B, H)`` of an Elman layer without keeping the others (no gradient)."""
    with torch.no_grad():
        h = h0.clone()
        buf = torch.empty_like(h)
        w_t = w_hh.t()
        for t in range(pre.shape[0]):
            torch.addmm(pre[t], h, w_t, out=buf)
            _activate_(buf, relu)
            h, buf = buf, h
        return h


class _NoCtx:
    """Stands in for the autograd context when the forward runs without gradients."""

    def save_for_backward(self, *tensors: Tensor) -> None:
        pass
