"""What every figure shares: the output colours, the landmark-epoch styles, and a fresh Axes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["EPOCH_STYLE", "OUTPUT_COLOURS", "new_axes"]

OUTPUT_COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3")
EPOCH_STYLE = {
    "memorisation_epoch": ("memorisation", "#7f7f7f", ":"),
    "merger_epoch": ("merger", "#d62728", "--"),
    "generalisation_epoch": ("generalisation", "#2ca02c", "-."),
}


def new_axes(ax: Axes | None, figsize: tuple[float, float] = (6.4, 4.0)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=figsize, layout="constrained")
    return new
