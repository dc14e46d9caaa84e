"""Figures of pair statistics: Figs. 7 and 14 (length heatmap), 12 (mean distance), 15 (far pairs)
and 10, right (pair distances)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dfalens.errors import DataError
from dfalens.plots._style import new_axes
from dfalens.timeline.pairs import far_counts, mean_distance

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from dfalens.timeline.pairs import ByLength, PairTrajectories

__all__ = ["far_pairs_plot", "length_heatmap", "mean_distance_plot", "pair_distance_plot"]


def length_heatmap(
    by_length: ByLength,
    ax: Axes | None = None,
    title: str | None = None,
    cmap: str = "magma",
    vmax: float | None = None,
) -> Axes:
    """A statistic by length pair as a heatmap (Fig. 7: agreeing pairs merged; Fig. 14: mergers that
    once diverged). Cells without pairs are left blank.

    Parameters
    ----------
    by_length : ByLength
    ax : Axes, optional
    title : str, optional
    cmap : str, default "magma"
    vmax : float, optional
        Top of the colour scale (default: the largest fraction).
    """
    ax = new_axes(ax, (4.6, 3.8))
    f = np.ma.masked_invalid(by_length.fraction)
    lengths = by_length.lengths
    im = ax.imshow(f, origin="lower", cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
    ax.set_xticks(range(lengths.size), [str(v) for v in lengths])
    ax.set_yticks(range(lengths.size), [str(v) for v in lengths])
    ax.set_xlabel("length of word 1")
    ax.set_ylabel("length of word 2")
    ax.figure.colorbar(im, ax=ax, label="fraction")
    if title:
        ax.set_title(title, fontsize="small")
    return ax


def _loss_overlay(ax: Axes, traj: PairTrajectories) -> None:
    if traj.train_loss is None or not np.isfinite(traj.train_loss).any():
        return
    loss = np.asarray(traj.train_loss, dtype=float)
    top = np.nanmax(loss)
    twin = ax.twinx()
    twin.plot(
        traj.epochs,
        loss / (top if top > 0 else 1.0),
        color="black",
        lw=1.0,
        alpha=0.6,
        label="train loss (normalised)",
    )
    twin.set_ylabel("train loss / max")
    twin.set_ylim(0, 1.05)
    twin.legend(fontsize="x-small", frameon=False, loc="center right")


def mean_distance_plot(traj: PairTrajectories, ax: Axes | None = None) -> Axes:
    """Fig. 12: mean pairwise hidden-state distance over epochs, with the merge threshold."""

    ax = new_axes(ax)
    ax.plot(
        traj.epochs,
        mean_distance(traj),
        color="#1f77b4",
        lw=1.5,
        label=f"mean distance ({len(traj.pairs)} pairs)",
    )
    ax.plot(traj.epochs, traj.eps_abs, color="#d62728", lw=1.0, ls="--", label="eps")
    ax.set_xlabel("epoch")
    ax.set_ylabel("distance")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small", frameon=False, loc="upper left")
    _loss_overlay(ax, traj)
    return ax


def far_pairs_plot(traj: PairTrajectories, ax: Axes | None = None) -> Axes:
    """Fig. 15: number of pairs farther apart than eps, in total, agreeing and disagreeing."""

    ax = new_axes(ax)
    counts = far_counts(traj)
    ax.plot(traj.epochs, counts["total"], color="black", lw=1.5, label="all pairs")
    ax.plot(traj.epochs, counts["agreeing"], color="#2ca02c", lw=1.3, label="agreeing")
    ax.plot(traj.epochs, counts["disagreeing"], color="#d62728", lw=1.3, label="disagreeing")
    ax.set_xlabel("epoch")
    ax.set_ylabel("pairs farther than eps")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small", frameon=False, loc="upper left")
    _loss_overlay(ax, traj)
    return ax


def pair_distance_plot(traj: PairTrajectories, ax: Axes | None = None, seed: int = 0) -> Axes:
    """Fig. 10 (right): squared distance / its maximum over epochs for one random agreeing pair that
    ends merged and one random disagreeing pair."""
    ax = new_axes(ax)
    rng = np.random.default_rng(seed)
    final_merged = traj.distance[:, -1] < traj.eps_abs[-1]
    agree = traj.pairs.agree
    drawn = False
    for mask, colour, name in (
        (agree & final_merged, "#2ca02c", "agreeing, merged"),
        (~agree, "#d62728", "disagreeing"),
    ):
        idx = np.nonzero(mask)[0]
        if idx.size == 0:
            continue
        p = int(rng.choice(idx))
        d2 = traj.distance[p] ** 2
        top = d2.max()
        w = traj.pairs
        ax.plot(
            traj.epochs,
            d2 / (top if top > 0 else 1.0),
            color=colour,
            lw=1.5,
            label=f"{name} (lengths {int(w.length_i[p])}, {int(w.length_j[p])})",
        )
        drawn = True
    if not drawn:
        raise DataError("no agreeing merged pair and no disagreeing pair among these pairs")
    ax.set_xlabel("epoch")
    ax.set_ylabel("squared distance / max")
    ax.legend(fontsize="small", frameon=False, loc="upper left")
    _loss_overlay(ax, traj)
    return ax
