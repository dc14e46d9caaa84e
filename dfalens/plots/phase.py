"""The phase diagram (Fig. 9 of van Rossem & Saxe 2025) from a sweep's results table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dfalens.errors import DataError
from dfalens.sweeps.phase_diagram import typed_row

if TYPE_CHECKING:
    from matplotlib.figure import Figure, SubFigure

__all__ = ["plot_phase_diagram"]


def _edges(values: Sequence[float]) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if len(a) == 1:
        return np.array([a[0] - 0.05, a[0] + 0.05])
    mid = (a[1:] + a[:-1]) / 2
    return np.concatenate([[a[0] - (mid[0] - a[0])], mid, [a[-1] + (a[-1] - mid[-1])]])


def plot_phase_diagram(
    rows: Sequence[Mapping[str, Any]], fig: Figure | SubFigure | None = None
) -> Figure | SubFigure:
    """Draw the phase diagram (Fig. 9) as heatmaps over data fraction x initial gain.

    Panels: states of the extracted automaton at convergence (log colour scale), validation accuracy on
    the long test words, and the fraction of seeds whose extraction is closed and equivalent to the task.
    Values are averaged over seeds; a dot marks cells where some seed hit the epoch cap first.

    Parameters
    ----------
    rows : sequence of mapping
        Rows of ``results.csv`` (text or typed values).
    fig : Figure or SubFigure, optional
        Where the three panels go; default a new figure.

    Returns
    -------
    Figure or SubFigure
        ``fig``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    if not rows:
        raise DataError("no finished cells to plot; run the sweep first")
    table = [typed_row(r) for r in rows]
    fractions = sorted({r["fraction"] for r in table})
    gains = sorted({r["gain"] for r in table})
    fi = {f: i for i, f in enumerate(fractions)}
    gi = {g: i for i, g in enumerate(gains)}
    shape = (len(gains), len(fractions))
    sums = {k: np.zeros(shape) for k in ("states_raw", "val_accuracy", "solved", "converged")}
    counts = np.zeros(shape)
    for r in table:
        at = (gi[r["gain"]], fi[r["fraction"]])
        counts[at] += 1
        sums["states_raw"][at] += r["states_raw"]
        sums["val_accuracy"][at] += r["val_accuracy"]
        sums["solved"][at] += float(r["closed"] and r["equivalent"])
        sums["converged"][at] += float(r["converged"])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = {k: np.where(counts > 0, v / counts, np.nan) for k, v in sums.items()}
    states = mean["states_raw"]
    finite = states[np.isfinite(states)]
    xe, ye = _edges(fractions), _edges(gains)
    if fig is None:
        fig = plt.figure(figsize=(13.5, 4.0), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = [
        (
            "states at convergence",
            states,
            "viridis",
            {"norm": LogNorm(max(1.0, finite.min()), max(2.0, finite.max()))},
        ),
        ("validation accuracy", mean["val_accuracy"], "RdYlGn", {"vmin": 0.0, "vmax": 1.0}),
        (
            "closed and equivalent (fraction of seeds)",
            mean["solved"],
            "Greys",
            {"vmin": 0, "vmax": 1},
        ),
    ]
    capped = mean["converged"] < 1
    for ax, (title, values, cmap, kw) in zip(axes, panels, strict=True):
        mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(values), cmap=cmap, **kw)
        fig.colorbar(mesh, ax=ax)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training data fraction")
        ax.set_ylabel("initial weight gain")
        if capped.any():
            yy, xx = np.nonzero(capped)
            ax.plot(
                np.asarray(fractions)[xx],
                np.asarray(gains)[yy],
                "o",
                color="white",
                mec="black",
                ms=3,
                ls="none",
                label="epoch cap reached",
            )
    if capped.any():
        axes[0].legend(loc="lower right", fontsize=7, framealpha=0.8)
    fig.suptitle(
        f"Phase diagram: {len(fractions)} fractions x {len(gains)} gains, "
        f"{int(counts.max())} seed(s) per cell",
        fontsize=11,
    )
    return fig
