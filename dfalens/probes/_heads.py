"""Readout heads: their decision rule, and multi-layer heads rebuilt from weights.

The library reads a one-output readout as a single score with class 1 above 0.5 (``StateSet.predicted``).
Adapters therefore put one-output heads on that scale: the score is ``sigmoid(margin)`` with ``margin``
the head's output minus its threshold (for a head ending in a sigmoid, its logit minus the threshold's
logit), kept strictly above 0.5 exactly when the margin is positive so that storage in float32 can never
flip a decision.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from dfalens.errors import ConfigError
from dfalens.probes.assumptions import Choice

__all__ = ["ACTIVATIONS", "build_head", "decision_rule", "split_sigmoid", "describe_head"]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leakyrelu": nn.LeakyReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "identity": nn.Identity,
    "dropout": nn.Identity,  # inert in evaluation
}
_ABOVE_HALF = 0.5 + 2.0**-24  # the float32 just above 0.5


def split_sigmoid(head: object) -> tuple[object, bool]:
    """A head without its final ``nn.Sigmoid`` and whether it had one (only when visibly so)."""
    if isinstance(head, nn.Sigmoid):
        return nn.Identity(), True
    if isinstance(head, nn.Sequential) and len(head) > 0 and isinstance(head[-1], nn.Sigmoid):
        return head[:-1], True
    return head, False


def _score(y: Tensor, shift: float) -> Tensor:
    """``sigmoid(y - shift)`` in float64, kept above 0.5 exactly when ``y > shift`` (any rounding after)."""
    d = y.double() - shift
    s = torch.sigmoid(d)
    s = torch.where(d > 0, s.clamp_min(_ABOVE_HALF), s.clamp_max(0.5))
    return s.to(y.dtype if y.dtype == torch.float64 else torch.float32)


def decision_rule(
    n_outputs: int, sigmoid: bool, threshold: float | None
) -> tuple[Callable[[Tensor], Tensor] | None, Choice | None]:
    """The rule that turns a head's outputs into a class, and the transform onto the library's scale.

    Parameters
    ----------
    n_outputs : int
        Width of the head's output (0: no head).
    sigmoid : bool
        Whether the head is known to end in a sigmoid (then it has been split off).
    threshold : float, optional
        Given threshold of a one-output head (a probability when the head ends in a sigmoid).

    Returns
    -------
    transform : callable or None
        Maps the head's output ``(batch, 1)`` to the score read as class 1 above 0.5; ``None`` for argmax.
    choice : Choice or None

    Raises
    ------
    ConfigError
        A threshold for a head with several outputs, or a probability threshold outside (0, 1).
    """
    if n_outputs == 0:
        if threshold is not None:
            raise ConfigError("threshold needs a readout; the probe has none")
        return None, None
    if n_outputs >= 2:
        if threshold is not None:
            raise ConfigError(
                f"--threshold applies to one-output heads; this head has {n_outputs} outputs and is read by "
                "argmax: drop --threshold"
            )
        return None, Choice("argmax", "inferred", f"{n_outputs} outputs")
    if sigmoid:
        t = 0.5 if threshold is None else float(threshold)
        if not 0.0 < t < 1.0:
            raise ConfigError(
                f"the head ends in a sigmoid, so --threshold is a probability in (0, 1), got {t}"
            )
        shift = math.log(t / (1.0 - t))
        source = "inferred" if threshold is None else "given"
        choice = Choice(f"probability > {t:g}", source, "one output after a sigmoid")
    else:
        t = 0.0 if threshold is None else float(threshold)
        if not math.isfinite(t):
            raise ConfigError(f"--threshold must be a finite number, got {t}")
        shift = t
        if threshold is None:
            choice = Choice(
                "logit > 0",
                "default",
                "one output, no sigmoid seen; pass --threshold 0.5 for a score",
            )
        else:
            choice = Choice(f"output > {t:g}", "given", "one output")

    def transform(y: Tensor) -> Tensor:
        return _score(y, shift)

    return transform, choice


def build_head(
    layers: Sequence[tuple[Tensor, Tensor | None]],
    activations: Sequence[str],
    dtype: torch.dtype,
) -> nn.Sequential:
    """``Linear, act, Linear, ...`` from weight/bias pairs and the activations between them."""
    mods: list[nn.Module] = []
    for i, (w, b) in enumerate(layers):
        lin = nn.Linear(int(w.shape[1]), int(w.shape[0]), bias=b is not None).to(dtype)
        with torch.no_grad():
            lin.weight.copy_(w.to(dtype))
            if b is not None:
                lin.bias.copy_(b.to(dtype))
        mods.append(lin)
        if i < len(activations):
            name = activations[i].lower()
            if name not in ACTIVATIONS:
                raise ConfigError(
                    f"unknown activation {activations[i]!r} in the head; known: {', '.join(ACTIVATIONS)}"
                )
            if name not in ("identity", "dropout"):
                mods.append(ACTIVATIONS[name]())
    return nn.Sequential(*mods)


def describe_head(head: object) -> str:
    """``Linear(8->1)`` or ``Linear(8->16), ReLU, Linear(16->1)``."""
    if isinstance(head, nn.Linear):
        return f"Linear({head.in_features}->{head.out_features})"
    if isinstance(head, nn.Sequential):
        return ", ".join(describe_head(m) for m in head)
    return type(head).__name__
