"""Every plotting function draws something non-empty under Agg (synthetic inputs, no training)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dfalens import plots  # noqa: E402
from dfalens.automata import Machine, parity, tomita  # noqa: E402
from dfalens.errors import DataError  # noqa: E402
from dfalens.timeline.pairs import ByLength, Pairs, PairTrajectories  # noqa: E402
from dfalens.timeline.timelines import Row, Timeline  # noqa: E402


def tree_machine(depth: int) -> Machine:
    """The complete binary prefix tree of the given depth with parity outputs (leaves partial)."""
    n = 2 ** (depth + 1) - 1
    delta = np.full((n, 2), -1)
    inner = np.arange(2**depth - 1)
    delta[inner, 0] = 2 * inner + 1
    delta[inner, 1] = 2 * inner + 2
    out = np.zeros(n, dtype=int)
    for i in range(1, n):
        out[i] = out[(i - 1) // 2] ^ ((i - 1) % 2)
    return Machine(delta, out)


@pytest.fixture(scope="module")
def tl() -> Timeline:
    rows = []
    for e in range(0, 100, 10):
        closed = e >= 60
        rows.append(
            Row(
                epoch=e,
                step=e * 21,
                train_loss=0.25 * np.exp(-e / 20),
                val_loss=0.25 if e < 60 else 0.0,
                states_raw=7 if e < 60 else 2,
                states_minimal=5 if e < 60 else 2,
                closed=closed,
                equivalent=e >= 70,
                counterexample=None if e >= 70 else "1",
                fidelity=1.0 if closed else None,
                eps=0.01,
                loss={25: 0.25 if e < 60 else 0.0, 100: 0.25 if e < 60 else 0.01},
                accuracy={25: 0.5 if e < 60 else 1.0, 100: 0.5 if e < 60 else 1.0},
            )
        )
    machines = tuple(tree_machine(2) if r.epoch < 60 else parity() for r in rows)
    return Timeline(
        rows=tuple(rows),
        memorisation_epoch=40,
        merger_epoch=70,
        generalisation_epoch=60,
        task="parity",
        words=tuple(["ε", "0", "1", "00", "01", "10", "11"]),
        machines=machines,
    )


@pytest.fixture(scope="module")
def traj() -> PairTrajectories:
    rng = np.random.default_rng(0)
    p, c = 40, 10
    pairs = Pairs(
        np.arange(p),
        np.arange(p) + 50,
        rng.integers(1, 5, p),
        rng.integers(1, 5, p),
        np.arange(p) % 2 == 0,
    )
    dist = np.abs(rng.normal(size=(p, c))) + 0.1
    dist[::2, -1] = 0.0  # the agreeing pairs end merged
    return PairTrajectories(pairs, np.arange(c) * 10, dist, 0.05, np.linspace(0.3, 0.0, c))


def _drawn(ax: plt.Axes) -> int:
    return len(ax.lines) + len(ax.collections) + len(ax.patches) + len(ax.images)


def test_timeline_figures(tl: Timeline) -> None:
    for fn in (plots.training_curves, plots.loss_by_length, plots.timeline_plot):
        ax = fn(tl)
        assert _drawn(ax) > 0
        plt.close(ax.figure)
    ax = plots.loss_by_length(tl, what="acc")
    assert len(ax.lines) == 2
    plt.close(ax.figure)
    with pytest.raises(DataError):
        plots.loss_by_length(tl, what="nope")


def test_given_axes_are_used(tl: Timeline) -> None:
    fig, ax = plt.subplots()
    assert plots.timeline_plot(tl, ax=ax) is ax
    assert any(line.get_label().startswith("merger (70)") for line in ax.lines)
    plt.close(fig)


def test_automata_drawings(tl: Timeline) -> None:
    for m in (parity(), tomita(3), tree_machine(3), tree_machine(7)):
        ax = plots.automaton(m)
        assert _drawn(ax) > 0
        plt.close(ax.figure)
    axes = plots.snapshots(tl, [0, 75])
    assert len(axes) == 2 and all(_drawn(a) > 0 for a in axes)
    assert "epoch 70" in axes[1].get_title()
    plt.close(axes[0].figure)
    with pytest.raises(DataError):
        plots.snapshots(tl, [])


def test_layout_of_a_tree_has_no_crossings() -> None:
    xy, layer, parent = plots.automaton_layout(tree_machine(4))
    assert np.array_equal(xy[:, 0], layer)
    # in every layer the children are ordered like their parents
    for d in range(1, 5):
        nodes = np.nonzero(layer == d)[0]
        by_y = nodes[np.argsort(-xy[nodes, 1])]
        assert np.all(np.diff(parent[by_y]) >= 0)


def test_pair_figures(traj: PairTrajectories) -> None:
    for fn in (plots.mean_distance_plot, plots.far_pairs_plot, plots.pair_distance_plot):
        ax = fn(traj)
        assert _drawn(ax) > 0
        plt.close(ax.figure)
    num = np.array([[1, 2], [2, 0]])
    den = np.array([[2, 4], [4, 0]])
    ax = plots.length_heatmap(ByLength(np.array([1, 2]), num, den), title="Fig. 7")
    assert len(ax.images) == 1 and ax.get_title() == "Fig. 7"
    plt.close(ax.figure)
