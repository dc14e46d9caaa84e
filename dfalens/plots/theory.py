"""Figures of the effective theory (matplotlib, imported lazily).

One-panel functions take ``ax=`` and return the Axes they drew on; many-panel functions take ``fig=`` (a
Figure or SubFigure) and return it (see :mod:`dfalens.plots`). Nothing here writes a file.

* :func:`plot_fig10`: ICML 2025 Fig. 10, the 9-variable model's agreeing and disagreeing pairs
  (:func:`plot_fig10_theory`) next to the same kind of pairs measured in a run (:func:`plot_fig10_run`).
* :func:`plot_prediction`: predicted against measured final distance of every pair.
* :func:`plot_pair_fits`: measured pair distances with the fitted 3-variable trajectories.
* :func:`plot_twopoint_fit`, :func:`plot_twopoint_grid`, :func:`plot_xor`: the ICML 2024 two-point
  experiment and the XOR rich/lazy comparison.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dfalens.theory import equations as th
from dfalens.theory import fixed_point as fp

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

    from dfalens.theory.run import TheoryRun
    from dfalens.theory.twopoint import GridResult, TwoPointRun, XorResult

__all__ = [
    "fig10_theory_curves",
    "plot_fig10",
    "plot_fig10_theory",
    "plot_fig10_run",
    "plot_prediction",
    "plot_pair_fits",
    "plot_twopoint_fit",
    "plot_twopoint_grid",
    "plot_xor",
]

AGREE_COLOR = "tab:blue"
DISAGREE_COLOR = "tab:red"


def _plt() -> Any:
    import matplotlib.pyplot as plt

    return plt


def _axes(ax: Axes | None, size: tuple[float, float] = (5.0, 3.6)) -> Axes:
    """``ax``, or the Axes of a new figure of ``size`` inches."""
    if ax is not None:
        return ax
    _, new = _plt().subplots(figsize=size, layout="constrained")
    return new


def _figure(fig: Figure | SubFigure | None, size: tuple[float, float]) -> Figure | SubFigure:
    """``fig``, or a new figure of ``size`` inches."""
    return fig if fig is not None else _plt().figure(figsize=size, layout="constrained")


def fig10_theory_curves(
    lengths: tuple[int, int] = (1, 10),
    lr: float = 0.02,
    g: float = 0.1,
    epochs: float = 1000.0,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Trajectories of the 9-variable model for an agreeing and a disagreeing pair (ICML 2025 Fig. 10).

    The two words have effective hidden rates ``lr·length`` (App. D.3); the output map and bias rates are
    ``lr`` and ``0.25·lr`` with one continuation, as in the authors' notebook. Initial positions and
    output-map values are ``N(0, g)`` draws, cross terms zero.

    Returns
    -------
    dict with ``t``, ``agree`` and ``disagree`` (squared distances) and ``loss_agree``, ``loss_disagree``.
    """
    rng = np.random.default_rng(seed)
    h1, h2 = rng.normal(0.0, g, 2)
    b, dv = rng.normal(0.0, g, (1, 1)), rng.normal(0.0, g, (1, 1))
    t = np.linspace(0.0, epochs, 501)
    rates = fp.fixed_point_rates(lengths[0], lengths[1], lr=lr)
    out: dict[str, np.ndarray] = {"t": t}
    for name, y2 in (("agree", np.ones((1, 1))), ("disagree", np.zeros((1, 1)))):
        z0, targets = fp.fixed_point_state(h1, h2, b, dv, np.ones((1, 1)), y2)
        sol = fp.integrate_fixed_point(t, z0, targets, **rates)
        out[name] = sol.distance2
        out[f"loss_{name}"] = sol.loss
    return out


def plot_fig10_theory(ax: Axes | None = None, **kwargs: Any) -> Axes:
    """Left panel of Fig. 10: the 9-variable model (normalised distances and loss over epochs).

    ``kwargs`` go to :func:`fig10_theory_curves`.
    """
    a = _axes(ax)
    c = fig10_theory_curves(**kwargs)
    a.plot(c["t"], c["agree"] / c["agree"].max(), color=AGREE_COLOR, label="agreeing pair")
    a.plot(
        c["t"], c["disagree"] / c["disagree"].max(), color=DISAGREE_COLOR, label="disagreeing pair"
    )
    a.plot(c["t"], c["loss_agree"] / c["loss_agree"].max(), "k--", lw=1, label="loss (agreeing)")
    lengths = kwargs.get("lengths", (1, 10))
    a.set_title(f"theory: fixed expansion point, lengths {lengths[0]} and {lengths[1]}", fontsize=9)
    a.set_xlabel("epoch")
    a.set_ylabel("‖Δh‖² / max")
    a.legend(fontsize=7)
    return a


def _pick(mask: np.ndarray, rng: np.random.Generator) -> int | None:
    idx = np.nonzero(mask)[0]
    return int(rng.choice(idx)) if idx.size else None


def plot_fig10(
    result: TheoryRun, fig: Figure | SubFigure | None = None, seed: int = 0
) -> Figure | SubFigure:
    """Fig. 10: the 9-variable model (left, the paper's setting: lr 0.02, 1000 epochs, lengths 1 and 10)
    and a merged agreeing and a disagreeing pair of the run (right).

    Parameters
    ----------
    result : TheoryRun
    fig : Figure or SubFigure, optional
        Where the two panels go; default a new figure.
    seed : int, default 0
        Picks the pairs drawn.

    Returns
    -------
    Figure or SubFigure
        ``fig``.
    """
    fig = _figure(fig, (10.0, 3.6))
    left, right = fig.subplots(1, 2)
    plot_fig10_theory(left)
    plot_fig10_run(result, ax=right, seed=seed)
    return fig


def plot_fig10_run(result: TheoryRun, ax: Axes | None = None, seed: int = 0) -> Axes:
    """Right panel of Fig. 10: a merged agreeing and a disagreeing pair of the run, with the loss."""
    right = _axes(ax)
    obs = result.obs
    rng = np.random.default_rng(seed)
    if obs is not None:
        merged = np.sqrt(obs.H[:, -1]) < result.eps_abs
        for mask, color, label in (
            (result.agree & merged, AGREE_COLOR, "agreeing pair (merged)"),
            (~result.agree, DISAGREE_COLOR, "disagreeing pair"),
        ):
            k = _pick(mask, rng)
            if k is None:
                continue
            h = obs.H[k]
            w = f"{result.words[result.i[k]]} / {result.words[result.j[k]]}"
            right.plot(obs.t, h / max(h.max(), 1e-300), color=color, label=f"{label}: {w}")
    loss = result.train_loss
    if loss.size and np.isfinite(loss).any():
        right.plot(result.epochs, loss / np.nanmax(loss), "k--", lw=1, label="training loss")
    right.set_title("experiment: the run's pairs", fontsize=9)
    right.set_xlabel("epoch")
    right.set_ylabel("‖Δh‖² / max")
    right.legend(fontsize=7)
    return right


def plot_prediction(result: TheoryRun, ax: Axes | None = None) -> Axes:
    """Predicted against measured distance at the last checkpoint, per pair (log-log)."""
    a = _axes(ax, size=(4.6, 4.2))
    pr = result.prediction
    if pr is None:
        a.text(0.5, 0.5, "not fitted", ha="center", transform=a.transAxes)
        return a
    ok = pr.fitted
    floor = pr.eps_abs * 1e-3
    pred = np.sqrt(np.maximum(pr.predicted_h[ok], floor**2))
    meas = np.sqrt(np.maximum(pr.measured_h[ok], floor**2))
    agree = pr.agree[ok]
    a.scatter(meas[agree], pred[agree], s=6, alpha=0.5, color=AGREE_COLOR, label="agreeing")
    a.scatter(meas[~agree], pred[~agree], s=6, alpha=0.5, color=DISAGREE_COLOR, label="disagreeing")
    lo, hi = floor, max(float(pred.max(initial=1.0)), float(meas.max(initial=1.0)))
    a.plot([lo, hi], [lo, hi], "k:", lw=1)
    a.axvline(pr.eps_abs, color="grey", lw=0.8)
    a.axhline(pr.eps_abs, color="grey", lw=0.8)
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("measured final distance")
    a.set_ylabel("predicted final distance")
    sc = pr.score
    a.set_title(
        f"fit to epoch {pr.t_cut:g}: precision {_n(sc.precision)}, recall {_n(sc.recall)}, "
        f"ρ {_n(sc.spearman)}",
        fontsize=8,
    )
    a.legend(fontsize=7)
    return a


def _n(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def plot_pair_fits(
    result: TheoryRun, ax: Axes | None = None, n_each: int = 2, seed: int = 0
) -> Axes:
    """Measured ``H`` of a few pairs (solid) with the theory: fitted up to the cut-off, then predicted."""
    a = _axes(ax, size=(6.0, 4.0))
    pr, obs = result.prediction, result.obs
    if pr is None or obs is None:
        a.text(0.5, 0.5, "not fitted", ha="center", transform=a.transAxes)
        return a
    rng = np.random.default_rng(seed)
    cut = int(np.searchsorted(obs.t, pr.t_cut))
    chosen: list[tuple[int, str]] = []
    for mask, color in (
        (pr.fitted & pr.agree & pr.measured_merge, AGREE_COLOR),
        (pr.fitted & pr.agree & ~pr.measured_merge, "tab:green"),
        (pr.fitted & ~pr.agree, DISAGREE_COLOR),
    ):
        idx = np.nonzero(mask)[0]
        for k in rng.permutation(idx)[:n_each]:
            chosen.append((int(k), color))
    for k, color in chosen:
        scale = max(float(obs.H[k].max()), 1e-300)
        a.plot(obs.t, obs.H[k] / scale, color=color, lw=1.2)
        kh, ky = pr.fit.k_h[k], pr.fit.k_y[k]
        early = th.integrate_pairs(
            obs.t[: cut + 1],
            obs.H[k, :1],
            obs.Y[k, :1],
            obs.W[k, :1],
            [kh],
            [ky],
            obs.dy2[k : k + 1],
        )
        late = th.integrate_pairs(
            obs.t[cut:], obs.H[k, cut : cut + 1], obs.Y[k, cut : cut + 1], obs.W[k, cut : cut + 1],
            [kh], [ky], obs.dy2[k : k + 1],
        )  # fmt: skip
        if early.ok[0]:
            a.plot(obs.t[: cut + 1], early.H[0] / scale, ":", color=color, lw=1)
        if late.ok[0]:
            a.plot(obs.t[cut:], late.H[0] / scale, "--", color=color, lw=1)
    a.axvline(pr.t_cut, color="grey", lw=0.8)
    a.set_xlabel("epoch")
    a.set_ylabel("‖Δh‖² / max")
    a.set_title(
        "measured (solid), fitted to the cut-off (dotted), predicted after it (dashed)\n"
        "blue: merged agreeing, green: unmerged agreeing, red: disagreeing pairs",
        fontsize=8,
    )
    return a


def plot_twopoint_fit(run: TwoPointRun, ax: Axes | None = None) -> Axes:
    """Measured H, Y, W of a two-point run (solid) with the fitted ODE (dashed)."""
    a = _axes(ax, size=(5.5, 3.8))
    obs = run.observables
    fit = run.fit
    a.plot(obs.t, obs.H[0], color="tab:blue", label="H = ‖Δh‖²")
    a.plot(obs.t, obs.Y[0], color="tab:orange", label="Y = ‖Δŷ‖²")
    a.plot(obs.t, obs.W[0], color="tab:green", label="W")
    if fit.fitted[0]:
        sol = th.integrate_pairs(
            obs.t, obs.H[:, 0], obs.Y[:, 0], obs.W[:, 0], fit.k_h, fit.k_y, obs.dy2
        )
        for series, color in ((sol.H, "tab:blue"), (sol.Y, "tab:orange"), (sol.W, "tab:green")):
            a.plot(obs.t, series[0], "--", color=color, lw=1)
    a.set_xlabel("epoch")
    a.set_title(
        f"two points, layer {run.settings.get('layer')}: fit error {_n(float(fit.fit_error[0]))}",
        fontsize=8,
    )
    a.legend(fontsize=7)
    return a


def plot_twopoint_grid(grid: GridResult, ax: Axes | None = None) -> Axes:
    """Predicted against measured final ``‖Δh‖²`` on the grid of input and target distances."""
    a = _axes(ax, size=(4.4, 4.2))
    ok = grid.kept
    sc = a.scatter(grid.measured[ok], grid.predicted[ok], c=grid.dy[ok], cmap="viridis", s=25)
    hi = float(max(grid.measured[ok].max(initial=1.0), grid.predicted[ok].max(initial=1.0)))
    a.plot([0, hi], [0, hi], "k:", lw=1)
    a.set_xlabel("‖Δh(∞)‖² (experiment)")
    a.set_ylabel("‖Δh(∞)‖² (theory)")
    a.set_title(
        f"{int(ok.sum())} runs: relative error median {_n(grid.median_relative_error)}, "
        f"r {_n(grid.pearson)}",
        fontsize=8,
    )
    a.figure.colorbar(sc, ax=a, label="target distance |Δy*|")
    return a


def plot_xor(result: XorResult, fig: Figure | SubFigure | None = None) -> Figure | SubFigure:
    """Measured and predicted final distance matrices of the XOR inputs, one row per setting.

    Parameters
    ----------
    result : XorResult
    fig : Figure or SubFigure, optional
        Where the panels go (two per setting); default a new figure.

    Returns
    -------
    Figure or SubFigure
        ``fig``.
    """
    names = list(result.settings_names)
    fig = _figure(fig, (6.0, 2.8 * len(names)))
    axes = fig.subplots(len(names), 2, squeeze=False)
    for row, name in enumerate(names):
        meas, pred = result.measured[name], result.predicted[name]
        vmax = float(max(meas.max(), pred.max(), 1e-12))
        for col, (mat, title) in enumerate(((meas, "experiment"), (pred, "theory"))):
            im = axes[row][col].imshow(mat, vmin=0, vmax=vmax, cmap="magma")
            axes[row][col].set_title(f"{name}: {title}", fontsize=8)
            axes[row][col].set_xticks(range(4), ["00", "01", "10", "11"], fontsize=7)
            axes[row][col].set_yticks(range(4), ["00", "01", "10", "11"], fontsize=7)
        fig.colorbar(im, ax=axes[row][1], fraction=0.046)
    return fig
