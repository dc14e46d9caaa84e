"""Figures of a merger timeline, drawn with matplotlib.

matplotlib is imported inside each function (``import dfalens.plots.timeline`` stays cheap) and nothing here
selects a backend or shows a window, so every function works under ``Agg``. One-panel functions take
``ax=`` (a new figure is made when it is None) and return the Axes they drew on (``ax.figure`` is the
figure); the many-panel :func:`snapshots` and :func:`overview` take ``fig=`` (a Figure or SubFigure) and
return it. Nothing here writes a file.

- :func:`training_curves`: the paper's Fig. 4 curves (training and validation loss, states / words).
- :func:`loss_by_length`: Figs. 1 and 6, validation loss per test length, coloured by length.
- :func:`timeline_plot`: Fig. 6 with raw and minimal state counts, closed/equivalent bands and the
  memorisation, merger and generalisation epochs.
- :func:`snapshots` draws the extraction at chosen epochs (with :func:`dfalens.plots.automaton`), and
  :func:`overview` is the demo's picture of all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dfalens.errors import DataError
from dfalens.plots._style import EPOCH_STYLE, new_axes
from dfalens.plots.automaton import automaton

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

    from dfalens.timeline.timelines import Timeline

__all__ = [
    "loss_by_length",
    "overview",
    "snapshot_epochs",
    "snapshots",
    "timeline_plot",
    "training_curves",
]


def _series(tl: Timeline, key: str) -> tuple[np.ndarray, np.ndarray]:
    """A metric over epochs: the full metric log when the timeline has it, else the checkpoint rows."""
    m = tl.metrics
    if m and key in m and "epoch" in m:
        return np.asarray(m["epoch"]), np.asarray(m[key], dtype=float)
    return tl.epochs, tl.column(key)


def _mark_epochs(ax: Axes, tl: Timeline, labels: bool = True) -> None:
    for attr, (name, colour, style) in EPOCH_STYLE.items():
        epoch = getattr(tl, attr)
        if epoch is None:
            continue
        ax.axvline(
            epoch, color=colour, ls=style, lw=1.2, label=f"{name} ({epoch})" if labels else None
        )


def training_curves(tl: Timeline, ax: Axes | None = None, log: bool = False) -> Axes:
    """Fig. 4 (curves): training loss, validation loss and number of states / number of words.

    Parameters
    ----------
    tl : Timeline
    ax : Axes, optional
    log : bool, default False
        Logarithmic y axis.
    """
    ax = new_axes(ax)
    ep, train = _series(tl, "train_loss")
    if np.isfinite(train).any():
        ax.plot(ep, train, color="black", lw=1.5, label="train loss")
    ep_v, val = _series(tl, "val_loss")
    if np.isfinite(val).any():
        lengths = tl.test_lengths
        name = f"test loss (length {lengths[0]})" if lengths else "validation loss"
        ax.plot(ep_v, val, color="#1f77b4", lw=1.2, label=name)
    n = max(tl.n_words, 1)
    ax.plot(tl.epochs, tl.column("states_raw") / n, color="#d62728", lw=1.5, label=f"states / {n}")
    _mark_epochs(ax, tl)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss, states / words")
    ax.legend(fontsize="small", frameon=False)
    return ax


def _length_colours(lengths: Sequence[int]) -> list[Any]:
    import matplotlib as mpl

    cmap = mpl.colormaps["viridis"]
    k = max(len(lengths) - 1, 1)
    return [cmap(0.9 * i / k) for i in range(len(lengths))]


def loss_by_length(
    tl: Timeline, ax: Axes | None = None, what: str = "loss", log: bool = False
) -> Axes:
    """Figs. 1 and 6: validation loss (or accuracy) per test length over epochs, and training loss.

    Parameters
    ----------
    tl : Timeline
    ax : Axes, optional
    what : {"loss", "acc"}
    log : bool, default False
    """
    if what not in ("loss", "acc"):
        raise DataError(f"what must be 'loss' or 'acc', got {what!r}")
    ax = new_axes(ax)
    lengths = tl.test_lengths
    for length, colour in zip(lengths, _length_colours(lengths), strict=True):
        ep, y = _series(tl, f"{what}_{length}")
        ax.plot(ep, y, color=colour, lw=1.2, label=str(length))
    if what == "loss":
        ep, train = _series(tl, "train_loss")
        if np.isfinite(train).any():
            ax.plot(ep, train, color="black", lw=1.8, label="train")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE loss" if what == "loss" else "accuracy")
    if lengths or what == "loss":
        ax.legend(title="length", fontsize="small", frameon=False, ncols=2)
    return ax


def timeline_plot(tl: Timeline, ax: Axes | None = None, log_states: bool = True) -> Axes:
    """Fig. 6 extended: loss per test length, raw and minimal state counts, bands and epochs.

    The left axis holds the losses (training loss in black, test lengths coloured from dark to light);
    the right axis (a twin) the raw and minimal number of states. Shaded bands mark the checkpoints whose
    extraction is closed (light) and equivalent to the task (darker); vertical lines mark the
    memorisation, merger and generalisation epochs.

    Parameters
    ----------
    tl : Timeline
    ax : Axes, optional
        The loss axes; the state counts go on ``ax.twinx()``.
    log_states : bool, default True
        Logarithmic state axis.
    """
    ax = new_axes(ax, (7.5, 4.2))
    loss_by_length(tl, ax=ax)
    ep = tl.epochs
    closed, equiv = tl.column("closed"), tl.column("equivalent")
    # bands span from a checkpoint to the next one
    right = np.append(ep[1:], ep[-1])
    for mask, colour, alpha, label in (
        (closed & ~equiv, "#bcbd22", 0.3, "closed"),
        (equiv, "#2ca02c", 0.18, "closed and equivalent"),
    ):
        first = True
        for a, b in _runs(mask):
            ax.axvspan(
                ep[a], right[b - 1], color=colour, alpha=alpha, lw=0, label=label if first else None
            )
            first = False
    _mark_epochs(ax, tl)
    twin = ax.twinx()
    twin.plot(ep, tl.column("states_raw"), color="#d62728", lw=1.4, label="states (raw)")
    twin.plot(
        ep, tl.column("states_minimal"), color="#9467bd", lw=1.4, ls="--", label="states (minimal)"
    )
    if log_states:
        from matplotlib.ticker import FuncFormatter, NullFormatter

        twin.set_yscale("log")
        twin.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        twin.yaxis.set_minor_formatter(NullFormatter())
    twin.set_ylabel("number of states")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    ax.legend(
        h1 + h2,
        l1 + l2,
        fontsize="x-small",
        frameon=False,
        ncols=5,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
    )
    return ax


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges where ``mask`` is True."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    d = np.diff(m.astype(np.int8))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist(), strict=True))


# -- automata -------------------------------------------------------------------------------------
def snapshots(
    tl: Timeline,
    epochs: Sequence[int],
    fig: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """Draw the extracted machine at chosen epochs (Fig. 4, top), one panel each in a row.

    Parameters
    ----------
    tl : Timeline
        Computed with :func:`dfalens.timeline.timeline` (it must hold machines).
    epochs : sequence of int
        Epochs to show; each uses the nearest checkpoint at or before it.
    fig : Figure or SubFigure, optional
        Where the panels go; default a new figure.

    Returns
    -------
    Figure or SubFigure
        ``fig``; its panels are ``fig.axes`` in the order of ``epochs``.
    """
    epochs = list(epochs)
    if not epochs:
        raise DataError("give at least one epoch to draw")
    if not tl.machines:
        raise DataError("this timeline holds no machines; recompute it with timeline()")
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(3.4 * len(epochs), 3.4), layout="constrained")
    axes = list(fig.subplots(1, len(epochs), squeeze=False)[0])
    for a_, e in zip(axes, epochs, strict=True):
        i = tl.index(e)
        row = tl.rows[i]
        m = tl.machines[i] if tl.machines else None
        if m is None:
            raise DataError("this timeline holds no machines; recompute it with timeline()")
        tag = "closed" if row.closed else "open"
        automaton(m, ax=a_, title=f"epoch {row.epoch}: {row.states_raw} states, {tag}")
        if a_ is not axes[-1] and a_.get_legend() is not None:
            a_.get_legend().remove()
    return fig


# -- pair statistics ------------------------------------------------------------------------------
def snapshot_epochs(tl: Timeline) -> list[int]:
    """Epochs worth drawing: the start, the largest tree, the merger (or the end), the end."""
    epochs = tl.epochs
    raw = tl.column("states_raw")
    picks = [int(epochs[0]), int(epochs[int(np.argmax(raw))])]
    if tl.merger_epoch is not None:
        picks.append(int(tl.merger_epoch))
    picks.append(int(epochs[-1]))
    return sorted(set(picks))


def overview(
    tl: Timeline, epochs: Sequence[int] | None = None, fig: Figure | SubFigure | None = None
) -> Figure | SubFigure:
    """The demo's picture: Fig. 4 curves, the Fig. 6 timeline and automaton snapshots at ``epochs``
    (default :func:`snapshot_epochs`).

    Parameters
    ----------
    tl : Timeline
    epochs : sequence of int, optional
    fig : Figure or SubFigure, optional
        Where the panels go; default a new figure.

    Returns
    -------
    Figure or SubFigure
        ``fig`` (save it with :func:`dfalens.plots.save_figure`).
    """
    picks = list(epochs) if epochs is not None else snapshot_epochs(tl)
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(4.0 * max(len(picks), 3), 8.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 0.9])
    left, right = top.subplots(1, 2, width_ratios=[1.0, 1.35])
    training_curves(tl, ax=left)
    left.set_title("training (Fig. 4)", fontsize="small")
    timeline_plot(tl, ax=right)
    right.set_title("loss per test length and states (Fig. 6)", fontsize="small")
    snapshots(tl, picks, fig=bottom)
    fig.suptitle(f"{tl.task}: when the network becomes the automaton", fontsize="medium")
    return fig
