"""Small pieces of text the commands print alike."""

from __future__ import annotations

__all__ = ["epoch_text"]


def epoch_text(value: int | None) -> str:
    """An epoch, or ``never`` when the event did not happen."""
    return "never" if value is None else str(value)
