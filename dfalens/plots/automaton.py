"""A machine drawn with matplotlib: a layered (breadth-first depth) layout that keeps a prefix tree
readable, outputs as colours, missing transitions as hollow states."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dfalens.plots._style import OUTPUT_COLOURS, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from dfalens.automata import Machine

__all__ = ["automaton", "automaton_layout"]


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
    ax = new_axes(ax, (6.0, 4.5) if n > 40 else (4.0, 3.0))
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
    colours = np.array([OUTPUT_COLOURS[int(o) % len(OUTPUT_COLOURS)] for o in out])
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
                mfc=OUTPUT_COLOURS[int(o) % 7],
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
