"""Every plotting function draws something non-empty under Agg (synthetic inputs, no training)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from dataclasses import replace  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from dfalens import plots  # noqa: E402
from dfalens.automata import Machine, parity, tomita  # noqa: E402
from dfalens.errors import DataError  # noqa: E402
from dfalens.theory import TheoryRun, XorResult  # noqa: E402
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
                eps_abs=0.01,
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
    fig = plots.snapshots(tl, [0, 75])
    axes = fig.axes
    assert len(axes) == 2 and all(_drawn(a) > 0 for a in axes)
    assert "epoch 70" in axes[1].get_title()
    plt.close(fig)
    with pytest.raises(DataError):
        plots.snapshots(tl, [])
    with pytest.raises(DataError, match="no machines"):
        plots.snapshots(replace(tl, machines=()), [0])


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


def _theory_run(fitted: bool = False) -> TheoryRun:
    """A run without a prediction (as when it could not be fitted) and two observed pairs."""
    epochs = np.arange(0, 50, 10)
    return TheoryRun(
        fitted=fitted,
        message="too few checkpoints",
        prediction=None,
        obs=None,
        i=np.array([1, 2]),
        j=np.array([3, 4]),
        lengths=np.array([[1, 1], [1, 2]]),
        n_cont=np.array([1, 1]),
        agree=np.array([True, False]),
        words=("", "0", "1", "00", "01"),
        epochs=epochs,
        train_loss=np.linspace(0.3, 0.01, epochs.size),
        eps_abs=0.01,
    )


def test_one_panel_functions_take_ax_and_return_it(tl: Timeline, traj: PairTrajectories) -> None:
    """The convention: ``ax=`` in, the same Axes out, nothing else added to the figure."""
    result = _theory_run()
    num = np.array([[1, 2], [2, 0]])
    calls = [
        lambda ax: plots.training_curves(tl, ax=ax),
        lambda ax: plots.loss_by_length(tl, ax=ax),
        lambda ax: plots.automaton(parity(), ax=ax),
        lambda ax: plots.length_heatmap(ByLength(np.array([1, 2]), num, num + 1), ax=ax),
        lambda ax: plots.mean_distance_plot(traj, ax=ax),
        lambda ax: plots.far_pairs_plot(traj, ax=ax),
        lambda ax: plots.pair_distance_plot(traj, ax=ax),
        lambda ax: plots.plot_fig10_theory(ax=ax, epochs=100.0),
        lambda ax: plots.plot_fig10_run(result, ax=ax),
        lambda ax: plots.plot_prediction(result, ax=ax),
        lambda ax: plots.plot_pair_fits(result, ax=ax),
    ]
    for call in calls:
        fig, ax = plt.subplots()
        assert call(ax) is ax
        assert _drawn(ax) > 0 or ax.texts
        plt.close(fig)
        made = call(None)  # without ax: a new figure
        assert made.figure is not fig and made.figure.axes[0] is made
        plt.close(made.figure)


def test_many_panel_functions_take_a_figure_and_return_it(tl: Timeline) -> None:
    result = _theory_run()
    xor = XorResult(
        settings_names=("rich", "lazy"),
        measured={"rich": np.eye(4), "lazy": np.ones((4, 4))},
        predicted={"rich": np.eye(4) * 0.9, "lazy": np.ones((4, 4))},
        correlation={"rich": 0.99, "lazy": None},
        fits={},
        final_loss={"rich": 0.0, "lazy": 0.0},
    )
    rows = [
        {"fraction": f, "gain": g, "seed": 0, "states": 3, "closed": True, "equivalent": True}
        | {"val_accuracy": 1.0, "converged": True}
        for f in (0.5, 1.0)
        for g in (0.1, 1.0)
    ]
    calls = [
        (lambda fig: plots.snapshots(tl, [0, 75], fig=fig), 2),
        (lambda fig: plots.overview(tl, [0, 75], fig=fig), 4),
        (lambda fig: plots.plot_fig10(result, fig=fig), 2),
        (lambda fig: plots.plot_xor(xor, fig=fig), 4),
        (lambda fig: plots.plot_phase_diagram(rows, fig=fig), 3),
    ]
    for call, panels in calls:
        outer = plt.figure()
        sub = outer.subfigures(1, 2)[1]  # composable: a SubFigure works as well as a Figure
        assert call(sub) is sub
        assert len([a for a in outer.axes if a.get_label() != "<colorbar>"]) >= panels
        plt.close(outer)
        made = call(None)
        assert isinstance(made, Figure) and len(made.axes) >= panels
        plt.close(made)


def test_no_plot_function_writes_or_closes(tl: Timeline, tmp_path, monkeypatch) -> None:
    """Drawing leaves every figure open and the folder empty; save_figure writes and releases."""
    monkeypatch.chdir(tmp_path)
    before = set(plt.get_fignums())
    fig = plots.overview(tl, [0, 75])
    ax = plots.timeline_plot(tl)
    assert set(plt.get_fignums()) - before == {fig.number, ax.figure.number}
    assert list(tmp_path.iterdir()) == []
    path = plots.save_figure(ax, tmp_path / "t.png")
    assert path.stat().st_size > 1000 and ax.figure.number not in plt.get_fignums()
    plt.close(fig)


def test_plots_is_reachable_from_the_top_package() -> None:
    import dfalens as dl

    assert dl.plots.timeline_plot is plots.timeline_plot
    assert "plots" in dir(dl)
    assert not [n for n in plots.__all__ if not callable(getattr(plots, n))]
