"""The one place figure files are written: render to bytes, then write atomically."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

from dfalens._files import atomic_write
from dfalens.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

__all__ = ["save_figure"]

_FORMATS = ("png", "svg", "pdf")


def save_figure(
    figure: Figure | SubFigure | Axes, path: str | os.PathLike[str], *, dpi: int = 100
) -> Path:
    """Write a figure (or the figure an Axes belongs to) to ``path`` and release it.

    Parameters
    ----------
    figure : Figure or Axes
        What a plot function returned.
    path : path-like
        ``.png``, ``.svg`` or ``.pdf``; written atomically, folders created.
    dpi : int
        Resolution of a PNG.

    Returns
    -------
    Path
        ``path``.
    """
    target = Path(path)
    fmt = target.suffix.lower().lstrip(".")
    if fmt not in _FORMATS:
        raise ConfigError(f"cannot save a figure as {target.name!r}: use a .png, .svg or .pdf name")
    import matplotlib.pyplot as plt  # here, not at import: importing dfalens.plots stays light

    fig = figure.get_figure(root=True) if hasattr(figure, "get_figure") else figure
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi)
    atomic_write(target, buffer.getvalue())
    plt.close(fig)
    return target
