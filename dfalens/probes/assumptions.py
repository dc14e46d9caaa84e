"""What a probe assumed about a network, and whether each choice was given, inferred or defaulted.

A checkpoint's weights do not say everything a network does: a plain RNN's nonlinearity, its initial
state, the rule that turns its outputs into a class, start and end symbols. A :class:`Probe` built by an
adapter records each such choice in an :class:`Assumptions` record, so reports can show what was read
from the file (``inferred``), what the caller said (``given``) and what was guessed (``default``).
Guesses that change the answer when wrong are also raised as an :class:`AssumptionWarning`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["AssumptionWarning", "Assumptions", "Choice", "SOURCES"]

SOURCES = ("given", "inferred", "default")


class AssumptionWarning(UserWarning):
    """A default was used where the weights cannot tell and a wrong guess changes the extracted machine."""


@dataclass(frozen=True)
class Choice:
    """One assumption: its value, where it came from, and why.

    Attributes
    ----------
    value : str
        What was used, e.g. ``"relu"``, ``"ones"``, ``"logit > 0"``.
    source : {"given", "inferred", "default"}
        ``given`` by the caller, ``inferred`` from the file or module, or a ``default``.
    note : str
        A short reason, e.g. ``"weights 'h0'"`` or ``"one output, no sigmoid seen"``.
    """

    value: str
    source: str
    note: str = ""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")

    def __str__(self) -> str:
        why = f": {self.note}" if self.note else ""
        return f"{self.value} ({self.source}{why})"

    def to_dict(self) -> dict[str, str]:
        """``{"value", "source", "note"}``."""
        return {"value": self.value, "source": self.source, "note": self.note}


@dataclass(frozen=True)
class Assumptions:
    """The conventions a probe assumed about its network.

    Attributes
    ----------
    nonlinearity : Choice or None
        Of plain RNN layers (``None`` for gated cells and for step functions).
    h0 : Choice or None
        The initial state before any input (before the start symbol, when there is one).
    decision : Choice or None
        How outputs become a class: ``argmax`` for two or more outputs, a threshold for one.
    inputs : Choice or None
        How a symbol becomes the network's input (one-hot, embedding, scalar).
    head : Choice or None
        The readout layers, when more than one linear layer (with the activation between them).
    alphabet : Choice or None
        Where the symbol names came from.
    bos, eos : str or None
        Start and end symbols: the initial state is the state after ``bos``; the readout feeds ``eos``.
    excluded : tuple of str
        Vocabulary entries left out of the alphabet (padding, ``bos``, ``eos``), with the reason.
    """

    nonlinearity: Choice | None = None
    h0: Choice | None = None
    decision: Choice | None = None
    inputs: Choice | None = None
    head: Choice | None = None
    alphabet: Choice | None = None
    bos: str | None = None
    eos: str | None = None
    excluded: tuple[str, ...] = field(default=())

    def with_(self, **changes: Any) -> Assumptions:
        """A copy with some fields replaced."""
        return replace(self, **changes)

    def summary(self) -> str:
        """One line naming every assumption and its source."""
        parts = []
        for name in ("nonlinearity", "h0", "decision", "head", "inputs", "alphabet"):
            choice = getattr(self, name)
            if choice is not None:
                parts.append(f"{name} {choice}")
        if self.bos is not None:
            parts.append(f"bos {self.bos!r}")
        if self.eos is not None:
            parts.append(f"eos {self.eos!r}")
        if self.excluded:
            parts.append(f"excluded {', '.join(self.excluded)}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (``None`` for what does not apply)."""
        out: dict[str, Any] = {}
        for name in ("nonlinearity", "h0", "decision", "head", "inputs", "alphabet"):
            choice = getattr(self, name)
            out[name] = None if choice is None else choice.to_dict()
        out["bos"] = self.bos
        out["eos"] = self.eos
        out["excluded"] = list(self.excluded)
        return out
