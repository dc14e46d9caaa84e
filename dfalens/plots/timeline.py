"""Figures of a merger timeline and of pair statistics, drawn with matplotlib.

matplotlib is imported inside each function (``import dfalens.plots.timeline`` stays cheap) and nothing here
selects a backend or shows a window, so every function works under ``Agg``. One-panel functions take
``ax=`` (a new figure is made when it is None) and return the Axes they drew on (``ax.figure`` is the
figure); the many-panel :func:`snapshots` and :func:`overview` take ``fig=`` (a Figure or SubFigure) and
return it. Nothing here writes a file.

- :func:`training_curves`: the paper's Fig. 4 curves (training and validation loss, states / words).
- :func:`loss_by_length`: Figs. 1 and 6, validation loss per test length, coloured by length.
- :func:`timeline_plot`: Fig. 6 with raw and minimal state counts, closed/equivalent bands and the
  memorisation, merger and generalisation epochs.
- :func:`automaton`: a machine drawn with a layered (breadth-first depth) layout that keeps a prefix tree
  readable; :func:`snapshots` draws the extraction at chosen epochs.
- :func:`length_heatmap` (Figs. 7 and 14), :func:`mean_distance_plot` (Fig. 12),
  :func:`far_pairs_plot` (Fig. 15) and :func:`pair_distance_plot` (Fig. 10, right).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dfalens.errors import DataError
from dfalens.timeline.pairs import far_counts, mean_distance

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

    from dfalens.automata import Machine
    from dfalens.timeline.pairs import ByLength, PairTrajectories
    from dfalens.timeline.timelines import Timeline

__all__ = [
    "training_curves",
    "loss_by_length",
    "timeline_plot",
    "automaton",
    "automaton_layout",
    "snapshots",
    "overview",
    "snapshot_epochs",
    "length_heatmap",
    "mean_distance_plot",
    "far_pairs_plot",
    "pair_distance_plot",
]

_OUTPUT_COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3")
_EPOCH_STYLE = {
    "memorisation_epoch": ("memorisation", "#7f7f7f", ":"),
    "merger_epoch": ("merger", "#d62728", "--"),
    "generalisation_epoch": ("generalisation", "#2ca02c", "-."),
}


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6.4, 4.0)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=figsize, layout="constrained")
    return new


def _series(tl: Timeline, key: str) -> tuple[np.ndarray, np.ndarray]:
    """A metric over epochs: the full metric log when the timeline has it, else the checkpoint rows."""
    m = tl.metrics
    if m and key in m and "epoch" in m:
        return np.asarray(m["epoch"]), np.asarray(m[key], dtype=float)
    return tl.epochs, tl.column(key)


def _mark_epochs(ax: Axes, tl: Timeline, labels: bool = True) -> None:
    for attr, (name, colour, style) in _EPOCH_STYLE.items():
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
    ax = _axes(ax)
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
    ax = _axes(ax)
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
    ax = _axes(ax, (7.5, 4.2))
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
def automaton_layout(machine: Machine) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layered positions of a machine's states: x = breadth-first depth, y = tidy-tree order.

    States are laid out along the breadth-first spanning tree from the start state (children in symbol
    order): the tree's leaves get evenly spaced heights in depth-first order, and every other state sits
    at the mean height of its tree children, so a prefix tree is drawn without crossings. Unreachable
    states go in one extra column.

    Returns
    -------
    xy : ndarray of float, shape (n_states, 2)
    layer : ndarray of int, shape (n_states,)
        Breadth-first depth (-1 for unreachable states).
    tree_parent : ndarray of int, shape (n_states,)
        Parent in the spanning tree (-1 for the start and unreachable states).
    """
    delta = machine.delta
    n, k = delta.shape
    layer = np.full(n, -1, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    sym = np.full(n, -1, dtype=np.int64)
    layer[machine.start] = 0
    frontier = np.array([machine.start])
    d = 0
    while frontier.size:  # one step per depth level
        d += 1
        src = np.repeat(frontier, k)
        a = np.tile(np.arange(k), frontier.size)
        dst = delta[src, a]
        ok = dst >= 0
        src, a, dst = src[ok], a[ok], dst[ok]
        new = layer[dst] < 0
        src, a, dst = src[new], a[new], dst[new]
        dst, first = np.unique(dst, return_index=True)  # first discovery in (parent, symbol) order
        layer[dst] = d
        parent[dst] = src[first]
        sym[dst] = a[first]
        frontier = dst
    reach = layer >= 0
    max_d = int(layer.max())
    # depth-first order of the spanning tree = lexicographic order of the tree paths (prefix first)
    path = np.full((n, max_d + 1), -1, dtype=np.int64)
    node = np.arange(n)
    cur = layer.copy()
    for _ in range(max_d):  # walk up all states at once, one level per step
        live = cur > 0
        path[np.nonzero(live)[0], cur[live] - 1] = sym[node[live]]
        node = np.where(live, parent[node], node)
        cur = np.where(live, cur - 1, cur)
    order = np.lexsort(tuple(path[:, c] for c in range(max_d, -1, -1)))
    order = order[reach[order]]
    has_child = np.zeros(n, dtype=bool)
    has_child[parent[parent >= 0]] = True
    y = np.full(n, np.nan)
    leaves = order[~has_child[order]]
    y[leaves] = np.arange(leaves.size, dtype=float)
    for level in range(max_d - 1, -1, -1):  # bottom-up: a parent sits at the mean of its children
        kids = np.nonzero((layer == level + 1) & (parent >= 0))[0]
        if kids.size == 0:
            continue
        total = np.bincount(parent[kids], weights=y[kids], minlength=n)
        count = np.bincount(parent[kids], minlength=n)
        inner = (layer == level) & (count > 0)
        y[inner] = total[inner] / count[inner]
    unreachable = np.nonzero(~reach)[0]
    y[unreachable] = (
        np.linspace(0, max(leaves.size - 1, 1), unreachable.size) if unreachable.size else 0
    )
    span = float(np.nanmax(y)) if n else 0.0
    x = np.where(reach, layer, max_d + 1).astype(float)
    # heights in [-1, 1], first leaf on top; a single column of one leaf sits in the middle
    height = 1.0 - 2.0 * y / span if span > 0 else np.zeros(n)
    xy = np.column_stack([x, height])
    return xy, layer, parent


def automaton(
    machine: Machine,
    ax: Axes | None = None,
    title: str | None = None,
    node_size: float | None = None,
    labels: bool | None = None,
) -> Axes:
    """Draw a machine with the layered layout of :func:`automaton_layout`.

    Node styles follow the paper's Fig. 4: the initial state has a thick black ring, a state with all
    out-edges defined is filled, a state with undefined out-edges is hollow. The colour (and, for small
    machines, the text) is the state's output (the network's predicted class). Spanning-tree edges are
    straight; other transitions (the ones merging creates) are curved arcs, self-loops small circles.

    Parameters
    ----------
    machine : Machine
    ax : Axes, optional
    title : str, optional
    node_size : float, optional
        Marker area; default shrinks with the number of states.
    labels : bool, optional
        Write outputs in the nodes and symbols on the edges (default: when the machine has at most 40
        states).
    """
    import matplotlib.patches as mpatches
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    n = machine.n_states
    ax = _axes(ax, (6.0, 4.5) if n > 40 else (4.0, 3.0))
    xy, layer, tparent = automaton_layout(machine)
    if labels is None:
        labels = n <= 40
    if node_size is None:
        node_size = float(np.clip(9000.0 / max(n, 1), 4.0, 500.0))
    delta = machine.delta
    src, a = np.nonzero(delta >= 0)
    dst = delta[src, a]
    tree = tparent[dst] == src
    # one drawn tree edge per child (several symbols may lead to the same state)
    straight = tree & (layer[dst] == layer[src] + 1)
    lw = 0.25 if n > 500 else (0.6 if n > 100 else 1.0)
    segs = np.stack([xy[src[straight]], xy[dst[straight]]], axis=1)
    ax.add_collection(LineCollection(segs, colors="#555555", linewidths=lw, zorder=1))
    other = np.nonzero(~straight)[0]
    loops = other[src[other] == dst[other]]
    arcs = other[src[other] != dst[other]]
    if arcs.size > 300:  # too many to curve one by one: light straight lines
        segs = np.stack([xy[src[arcs]], xy[dst[arcs]]], axis=1)
        ax.add_collection(
            LineCollection(segs, colors="#1f77b4", linewidths=0.3, alpha=0.3, zorder=0)
        )
    else:
        busy = n > 60  # many states: thin, light arcs so the tree stays visible
        for e in arcs:
            ax.add_patch(
                mpatches.FancyArrowPatch(
                    tuple(xy[src[e]]),
                    tuple(xy[dst[e]]),
                    connectionstyle="arc3,rad=0.25",
                    arrowstyle="-" if busy else "-|>",
                    mutation_scale=8,
                    color="#1f77b4",
                    lw=0.5 if busy else 0.8,
                    alpha=0.35 if busy else 0.8,
                    zorder=0,
                    shrinkA=4,
                    shrinkB=4,
                )
            )
    if loops.size:
        r = 0.12
        for e in loops[:300]:
            x0, y0 = xy[src[e]]
            ax.add_patch(
                mpatches.Circle((x0, y0 + r), r, fill=False, ec="#1f77b4", lw=0.8, zorder=0)
            )
    pad = 0.5
    ax.set_xlim(xy[:, 0].min() - pad, xy[:, 0].max() + pad)
    ax.set_ylim(-1.35, 1.35)
    if labels and n <= 40:
        to_disp, to_data = ax.transData, ax.transData.inverted()
        for e in range(src.size):
            if src[e] == dst[e]:
                p = xy[src[e]] + np.array([0.0, 0.26])
            elif straight[e]:
                p = 0.5 * (xy[src[e]] + xy[dst[e]])
            else:  # the middle of the arc3 curve, computed where matplotlib bends it: on screen
                p1, p2 = to_disp.transform(xy[src[e]]), to_disp.transform(xy[dst[e]])
                dx, dy = p2 - p1
                p = to_data.transform(0.5 * (p1 + p2) + 0.5 * 0.25 * np.array([dy, -dx]))
            ax.text(
                *p,
                machine.alphabet[a[e]],
                fontsize=7,
                ha="center",
                va="center",
                color="#333333",
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
            )
    out = machine.output
    colours = np.array([_OUTPUT_COLOURS[int(o) % len(_OUTPUT_COLOURS)] for o in out])
    complete = np.all(delta >= 0, axis=1)
    ax.scatter(
        xy[complete, 0],
        xy[complete, 1],
        s=node_size,
        c=colours[complete],
        edgecolors="black",
        linewidths=0.5,
        zorder=3,
    )
    ax.scatter(
        xy[~complete, 0],
        xy[~complete, 1],
        s=node_size,
        facecolors="white",
        edgecolors=colours[~complete],
        linewidths=1.2,
        zorder=3,
    )
    st = machine.start
    ax.scatter(
        [xy[st, 0]],
        [xy[st, 1]],
        s=node_size * 2.2,
        facecolors="none",
        edgecolors="black",
        linewidths=1.8,
        zorder=4,
    )
    if labels:
        for q in range(n):
            ax.text(
                xy[q, 0],
                xy[q, 1],
                str(int(out[q])),
                fontsize=7,
                ha="center",
                va="center",
                color="white" if complete[q] else "black",
                zorder=5,
            )
    handles = [
        Line2D([], [], ls="", marker="o", ms=8, mfc="none", mec="black", mew=1.8, label="initial"),
        Line2D([], [], ls="", marker="o", ms=6, mfc="#999999", mec="black", label="all out-edges"),
        Line2D(
            [], [], ls="", marker="o", ms=6, mfc="white", mec="#999999", label="missing out-edges"
        ),
    ]
    for o in np.unique(out)[:4]:
        handles.append(
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                ms=6,
                mfc=_OUTPUT_COLOURS[int(o) % 7],
                mec="none",
                label=f"output {int(o)}",
            )
        )
    ax.legend(
        handles=handles,
        fontsize="x-small",
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
    )
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title if title is not None else f"{n} states", fontsize="small")
    return ax


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
    ax = _axes(ax, (4.6, 3.8))
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

    ax = _axes(ax)
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

    ax = _axes(ax)
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
    ax = _axes(ax)
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
