"""The ICML 2024 check of the effective theory: MLPs trained on two points, and XOR rich vs lazy.

van Rossem & Saxe (ICML 2024) validate the pair theory on the setting it was built for: a deep MLP trained
by full-batch SGD on two scalar data points. At a middle hidden layer one records ``H = ‖Δh‖²``,
``Y = ‖Δŷ‖²`` and ``W = Y − Δy*·Δŷ`` every epoch, fits the two effective rates ``η_h`` and ``η_y`` (here
with :func:`dfalens.theory.fit.fit_rates`; ``k_h = η_h·dx2``, ``k_y = η_y``), and then predicts the
final representational distance of *new* networks trained on pairs with other input and target distances
from their initial ``H0``, ``Y0`` alone (:func:`two_point_grid`). The XOR comparison applies the same
closed form to every pair of the four XOR inputs in a small-initialisation ("rich": same-target inputs
merge) and a large-initialisation ("lazy": the input geometry stays) network (:func:`xor_experiment`).

The default network is the paper's: 20 hidden layers of 500 leaky-ReLU units, Xavier-normal gain 1.0,
zero biases, SGD on ``½·MSE``, the representation at hidden layer 10. :data:`SPECS` also holds a small
variant that runs in seconds on a CPU (for tests and quick checks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from dfalens.errors import ConfigError
from dfalens.theory.equations import a_high, a_low, final_distance
from dfalens.theory.fit import PairObservables, RateFit, fit_rates

__all__ = [
    "MLPSpec",
    "SPECS",
    "XOR_SETTINGS",
    "TwoPointMLP",
    "two_point_data",
    "train_points",
    "TwoPointRun",
    "two_point_run",
    "fit_two_point_rates",
    "GridResult",
    "two_point_grid",
    "XorResult",
    "xor_experiment",
]

FArray = np.ndarray
NONLINEARITIES = ("leaky_relu", "relu", "tanh", "linear")


@dataclass(frozen=True)
class MLPSpec:
    """An MLP of ``depth`` hidden layers of ``width`` units.

    Attributes
    ----------
    depth, width : int
    nonlinearity : {"leaky_relu", "relu", "tanh", "linear"}
    gain : float
        Xavier-normal gain of every weight matrix (biases start at zero).
    lr : float
        SGD learning rate.
    epochs : int
        Full-batch epochs.
    layer : int or None
        Hidden layer whose activations are "the representation" (default: ``depth // 2``).
    """

    depth: int = 20
    width: int = 500
    nonlinearity: str = "leaky_relu"
    gain: float = 1.0
    lr: float = 0.005
    epochs: int = 6000
    layer: int | None = None

    def __post_init__(self) -> None:
        if self.depth < 1 or self.width < 1 or self.epochs < 1:
            raise ConfigError("depth, width and epochs must be positive")
        if self.nonlinearity not in NONLINEARITIES:
            raise ConfigError(
                f"nonlinearity must be one of {', '.join(NONLINEARITIES)}, got {self.nonlinearity!r}"
            )
        if not (self.gain > 0 and self.lr > 0):
            raise ConfigError("gain and lr must be positive")
        if self.layer is not None and not 0 <= self.layer < self.depth:
            raise ConfigError(f"layer must be in 0..{self.depth - 1}, got {self.layer}")

    @property
    def tracked_layer(self) -> int:
        """The hidden layer that is recorded."""
        return self.depth // 2 if self.layer is None else self.layer


SPECS: dict[str, MLPSpec] = {
    # the paper's default two-point setting, at the notebook's lr/2 and 2 x 3000 epochs
    "default": MLPSpec(),
    # a CPU-friendly variant with the same character (small effective init at the middle layer)
    "small": MLPSpec(depth=6, width=64, gain=1.0, lr=0.02, epochs=1500),
}
"""Named two-point settings."""

XOR_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    # the authors' XOR settings (width 500, ReLU as the notebook passes it)
    "default": {
        "rich": {"depth": 20, "width": 500, "nonlinearity": "relu", "gain": 0.85, "lr": 0.015,
                 "epochs": 3000},
        "lazy": {"depth": 20, "width": 500, "nonlinearity": "relu", "gain": 2.0, "lr": 3e-9,
                 "epochs": 1000},
    },
    "small": {
        "rich": {"depth": 6, "width": 64, "nonlinearity": "relu", "gain": 0.65, "lr": 0.05,
                 "epochs": 2000},
        "lazy": {"depth": 6, "width": 64, "nonlinearity": "relu", "gain": 3.0, "lr": 2e-5,
                 "epochs": 1500},
    },
}  # fmt: skip
"""Rich (small initial weights) and lazy (large) settings for :func:`xor_experiment`."""


class TwoPointMLP(nn.Module):
    """A plain MLP whose forward pass also returns one hidden layer's activations."""

    def __init__(self, spec: MLPSpec, in_dim: int, out_dim: int) -> None:
        super().__init__()
        sizes = [in_dim] + [spec.width] * spec.depth
        self.hidden_layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.readout = nn.Linear(spec.width, out_dim)
        self.spec = spec
        for lin in [*self.hidden_layers, self.readout]:
            nn.init.xavier_normal_(lin.weight, gain=spec.gain)
            nn.init.zeros_(lin.bias)

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        kind = self.spec.nonlinearity
        if kind == "leaky_relu":
            return torch.nn.functional.leaky_relu(x)
        if kind == "relu":
            return torch.relu(x)
        if kind == "tanh":
            return torch.tanh(x)
        return x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Output and the activations of the tracked hidden layer."""
        rep = x
        h = x
        for k, lin in enumerate(self.hidden_layers):
            h = self._act(lin(h))
            if k == self.spec.tracked_layer:
                rep = h
        return self.readout(h), rep


def two_point_data(
    dx2: float, dy2: float, in_dim: int = 1, out_dim: int = 1
) -> tuple[FArray, FArray]:
    """The authors' two points: ``x = (−1, −1 + √dx2)``, ``y* = (0.6, 0.6 + √dy2)``, each ``/√dim``.

    Returns
    -------
    x : ndarray, shape (2, in_dim)
    y : ndarray, shape (2, out_dim)
    """
    if dx2 <= 0 or dy2 < 0:
        raise ConfigError("dx2 must be positive and dy2 non-negative")
    x = np.array([-1.0, -1.0 + np.sqrt(dx2)])[:, None] * np.ones(in_dim) / np.sqrt(in_dim)
    y = np.array([0.6, 0.6 + np.sqrt(dy2)])[:, None] * np.ones(out_dim) / np.sqrt(out_dim)
    return x, y


def train_points(
    spec: MLPSpec,
    x: FArray,
    y: FArray,
    *,
    seed: int = 0,
    epochs: int | None = None,
    lr: float | None = None,
    stop_loss: float | None = None,
    record_every: int = 1,
) -> dict[str, FArray]:
    """Full-batch SGD on ``½·MSE`` over a few points, recording the tracked layer and outputs.

    Parameters
    ----------
    spec : MLPSpec
    x : ndarray, shape (p, in_dim)
    y : ndarray, shape (p, out_dim)
    seed : int
        Seeds the initial weights.
    epochs, lr : optional
        Override the spec.
    stop_loss : float, optional
        Stop once the loss is below this.
    record_every : int, default 1
        Record every this many epochs (epoch 0, the initialisation, always; the last epoch always).

    Returns
    -------
    dict with ``epochs`` (r,), ``hidden`` (r, p, width), ``output`` (r, p, out_dim), ``loss`` (r,).
    """
    epochs = spec.epochs if epochs is None else int(epochs)
    lr = spec.lr if lr is None else float(lr)
    if record_every < 1:
        raise ConfigError("record_every must be >= 1")
    torch.manual_seed(seed)
    model = TwoPointMLP(spec, x.shape[1], y.shape[1]).double()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    rec_e, rec_h, rec_o, rec_l = [], [], [], []
    last = -1
    for epoch in range(epochs + 1):
        out, rep = model(xt)
        loss = 0.5 * torch.nn.functional.mse_loss(out, yt)
        lv = float(loss.detach())
        done = epoch == epochs or (stop_loss is not None and lv < stop_loss) or not np.isfinite(lv)
        if epoch % record_every == 0 or done:
            rec_e.append(epoch)
            rec_h.append(rep.detach().numpy().copy())
            rec_o.append(out.detach().numpy().copy())
            rec_l.append(lv)
            last = epoch
        if done:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    del last
    return {
        "epochs": np.array(rec_e, dtype=np.float64),
        "hidden": np.stack(rec_h),
        "output": np.stack(rec_o),
        "loss": np.array(rec_l),
    }


def _observables(rec: Mapping[str, FArray], y: FArray, a: int = 0, b: int = 1) -> PairObservables:
    dh = rec["hidden"][:, b] - rec["hidden"][:, a]
    dyh = rec["output"][:, b] - rec["output"][:, a]
    dys = y[b] - y[a]
    H = np.einsum("td,td->t", dh, dh)
    Y = np.einsum("to,to->t", dyh, dyh)
    W = Y - dyh @ dys
    return PairObservables(rec["epochs"], H[None], Y[None], W[None], [float(dys @ dys)])


@dataclass(frozen=True, eq=False)
class TwoPointRun:
    """One two-point network: its measured observables and fitted rates.

    Attributes
    ----------
    observables : PairObservables
        One pair, every recorded epoch.
    loss : ndarray
        Training loss at the recorded epochs.
    fit : RateFit
    eta_h, eta_y : float
        ``η_h = k_h/dx2`` and ``η_y = k_y`` (NaN when not fitted; see ``fit.reason``).
    dx2, dy2 : float
    settings : dict
    """

    observables: PairObservables
    loss: FArray
    fit: RateFit
    eta_h: float
    eta_y: float
    dx2: float
    dy2: float
    settings: dict = field(default_factory=dict)

    @property
    def fitted(self) -> bool:
        """Whether the rates were fitted."""
        return bool(self.fit.fitted[0])


def two_point_run(
    spec: MLPSpec | str = "default",
    *,
    dx2: float = 1.0,
    dy2: float = 0.5,
    seed: int = 0,
    record_every: int = 1,
    max_iter: int = 40,
) -> TwoPointRun:
    """Train one network on the two points and fit ``(η_h, η_y)`` to its ``H, Y, W`` trajectories."""
    spec = SPECS[spec] if isinstance(spec, str) else spec
    x, y = two_point_data(dx2, dy2)
    rec = train_points(spec, x, y, seed=seed, record_every=record_every)
    obs = _observables(rec, y)
    fit = fit_rates(obs, max_iter=max_iter)
    settings = {
        "depth": spec.depth,
        "width": spec.width,
        "nonlinearity": spec.nonlinearity,
        "gain": spec.gain,
        "lr": spec.lr,
        "epochs": spec.epochs,
        "layer": spec.tracked_layer,
        "seed": seed,
    }
    return TwoPointRun(
        observables=obs,
        loss=rec["loss"],
        fit=fit,
        eta_h=float(fit.k_h[0] / dx2),
        eta_y=float(fit.k_y[0]),
        dx2=dx2,
        dy2=dy2,
        settings=settings,
    )


def fit_two_point_rates(
    spec: MLPSpec | str = "default",
    seeds: Sequence[int] = (0, 1, 2),
    *,
    dx2: float = 1.0,
    dy2: float = 0.5,
    max_final_loss: float = 1e-2,
    record_every: int = 1,
) -> tuple[float, float, list[TwoPointRun]]:
    """Average fitted rates over seeds, discarding runs whose final loss exceeds ``max_final_loss``.

    Returns
    -------
    eta_h, eta_y : float
        Means over the kept, fitted runs (NaN when none is kept).
    runs : list of TwoPointRun
    """
    runs = [two_point_run(spec, dx2=dx2, dy2=dy2, seed=s, record_every=record_every) for s in seeds]
    kept = [r for r in runs if r.fitted and r.loss[-1] <= max_final_loss]
    if not kept:
        return float("nan"), float("nan"), runs
    return (
        float(np.mean([r.eta_h for r in kept])),
        float(np.mean([r.eta_y for r in kept])),
        runs,
    )


@dataclass(frozen=True, eq=False)
class GridResult:
    """Final representational distance on a grid of input and target distances, theory vs experiment.

    Attributes
    ----------
    dx, dy : ndarray, shape (g,)
        Input and target distances of each cell.
    H0, Y0 : ndarray, shape (g,)
        Measured initial values.
    measured : ndarray, shape (g,)
        ``‖Δh‖²`` at the end of training.
    predicted : ndarray, shape (g,)
        ``H∞`` from the closed form with the fitted rates.
    final_loss : ndarray, shape (g,)
    kept : ndarray of bool, shape (g,)
        Runs that converged (final loss below the threshold).
    eta_h, eta_y : float
    settings : dict
    """

    dx: FArray
    dy: FArray
    H0: FArray
    Y0: FArray
    measured: FArray
    predicted: FArray
    final_loss: FArray
    kept: FArray
    eta_h: float
    eta_y: float
    settings: dict = field(default_factory=dict)

    @property
    def relative_error(self) -> FArray:
        """``|predicted − measured| / measured`` per cell (NaN where not kept)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                self.kept, np.abs(self.predicted - self.measured) / self.measured, np.nan
            )

    @property
    def median_relative_error(self) -> float | None:
        """Median relative error over the kept cells."""
        e = self.relative_error[self.kept]
        return float(np.median(e)) if e.size else None

    @property
    def pearson(self) -> float | None:
        """Pearson correlation of predicted and measured final distances over the kept cells."""
        a, b = self.predicted[self.kept], self.measured[self.kept]
        if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
            return None
        return float(np.corrcoef(a, b)[0, 1])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "eta_h": self.eta_h,
            "eta_y": self.eta_y,
            "n_cells": int(self.dx.size),
            "n_kept": int(self.kept.sum()),
            "median_relative_error": self.median_relative_error,
            "pearson": self.pearson,
            "cells": [
                {
                    "dx": float(a),
                    "dy": float(b),
                    "measured": float(m),
                    "predicted": float(p),
                    "final_loss": float(fl),
                    "kept": bool(k),
                }
                for a, b, m, p, fl, k in zip(
                    self.dx,
                    self.dy,
                    self.measured,
                    self.predicted,
                    self.final_loss,
                    self.kept,
                    strict=True,
                )  # fmt: skip
            ],
            "settings": dict(self.settings),
        }


def two_point_grid(
    spec: MLPSpec | str,
    eta_h: float,
    eta_y: float,
    *,
    dxs: Sequence[float] = (0.5, 0.75, 1.0, 1.25, 1.5),
    dys: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    lr_factor: float = 0.4,
    max_epochs: int = 40_000,
    stop_loss: float = 1e-4,
    max_final_loss: float = 1e-3,
    seed: int = 0,
) -> GridResult:
    """Train a fresh network per (input distance, target distance) cell and compare ``H∞`` with theory.

    The prediction uses only the cell's measured ``H0`` and ``Y0`` at initialisation and the rates
    fitted on another pair (``A_high = H0 − (η_h/η_y)·dx2·Y0/H0``, ``A_low = √((η_h/η_y)·dx2·dy2)``).
    The authors train at ``lr/5`` of the base setting (``lr/2.5`` of the two-point fit's ``lr/2``),
    up to 40,000 epochs, stop at loss 1e-4 and discard runs that end above 1e-3.
    """
    spec = SPECS[spec] if isinstance(spec, str) else spec
    if not (np.isfinite(eta_h) and np.isfinite(eta_y) and eta_h > 0 and eta_y > 0):
        raise ConfigError("the grid needs positive fitted rates eta_h and eta_y")
    cells = [(a, b) for a in dxs for b in dys]
    rows = []
    for k, (dx, dy) in enumerate(cells):  # one network per cell
        x, y = two_point_data(dx * dx, dy * dy)
        rec = train_points(
            spec,
            x,
            y,
            seed=seed + k,
            epochs=max_epochs,
            lr=spec.lr * lr_factor,
            stop_loss=stop_loss,
            record_every=max_epochs,
        )
        obs = _observables(rec, y)
        rows.append((obs.H[0, 0], obs.Y[0, 0], obs.H[0, -1], rec["loss"][-1]))
    dx = np.array([c[0] for c in cells])
    dy = np.array([c[1] for c in cells])
    H0, Y0, Hend, fl = (np.array(v) for v in zip(*rows, strict=True))
    kh, ky = eta_h * dx**2, np.full(dx.size, eta_y)
    pred = np.asarray(final_distance(a_high(H0, Y0, kh, ky), a_low(dy**2, kh, ky)))
    return GridResult(
        dx=dx,
        dy=dy,
        H0=H0,
        Y0=Y0,
        measured=Hend,
        predicted=pred,
        final_loss=fl,
        kept=np.isfinite(fl) & (fl <= max_final_loss),
        eta_h=eta_h,
        eta_y=eta_y,
        settings={
            "spec": spec.__dict__ | {"layer": spec.tracked_layer},
            "lr": spec.lr * lr_factor,
            "max_epochs": max_epochs,
            "stop_loss": stop_loss,
            "max_final_loss": max_final_loss,
            "seed": seed,
        },
    )


@dataclass(frozen=True, eq=False)
class XorResult:
    """Final distance matrices of the four XOR inputs, measured and predicted, per setting.

    Attributes
    ----------
    settings_names : tuple of str
    measured, predicted : dict of name -> ndarray (4, 4)
        Squared distances ``‖h_a − h_b‖²`` at the tracked layer at the end of training, and ``H∞``.
    correlation : dict of name -> float or None
        Pearson correlation over the 6 pairs.
    fits : dict of name -> RateFit
        The pooled rate fit of each setting.
    final_loss : dict of name -> float
    settings : dict
    """

    settings_names: tuple[str, ...]
    measured: dict[str, FArray]
    predicted: dict[str, FArray]
    correlation: dict[str, float | None]
    fits: dict[str, RateFit]
    final_loss: dict[str, float]
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        out: dict[str, Any] = {"settings": self.settings}
        for name in self.settings_names:
            fit = self.fits[name]
            pred = self.predicted[name]
            out[name] = {
                "measured": self.measured[name].tolist(),
                "predicted": None if np.isnan(pred).any() else pred.tolist(),
                "correlation": self.correlation[name],
                "final_loss": self.final_loss[name],
                "eta": [float(v) for v in fit.group_rates[0]]
                if np.all(np.isfinite(fit.group_rates[0]))
                else None,
                "fit_error": [float(v) for v in fit.fit_error[fit.fitted]],
            }
        return out


def xor_experiment(
    variant: str | Mapping[str, Mapping[str, Any]] = "small",
    *,
    fit_fraction: float = 1.0,
    seed: int = 0,
    record_every: int = 1,
) -> XorResult:
    """Train one network per setting on XOR and compare final distances with the pairwise theory.

    The rates ``(η_h, η_y)`` of each setting are fitted jointly on its six pairs (``k_h = η_h·dx2``) over
    the first ``fit_fraction`` of training; the prediction is the closed form from the initial values,
    ``H∞ = ½A_high + √(¼A_high² + A_low²)``, for every pair. In the rich setting the same-target pairs
    ``(00, 11)`` and ``(01, 10)`` should merge; in the lazy one the initial geometry should stay.
    """
    table = XOR_SETTINGS[variant] if isinstance(variant, str) else variant
    if not 0 < fit_fraction <= 1:
        raise ConfigError("fit_fraction must be in (0, 1]")
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    pa, pb = np.triu_indices(4, k=1)
    measured, predicted, corr, fits, losses = {}, {}, {}, {}, {}
    for name, cfg in table.items():  # one network per setting
        spec = replace(MLPSpec(), **dict(cfg))
        rec = train_points(spec, x, y, seed=seed, record_every=record_every)
        dh = rec["hidden"][:, pb] - rec["hidden"][:, pa]
        dyh = rec["output"][:, pb] - rec["output"][:, pa]
        dys = y[pb] - y[pa]
        H = np.einsum("tpd,tpd->pt", dh, dh)
        Y = np.einsum("tpo,tpo->pt", dyh, dyh)
        W = Y - np.einsum("tpo,po->pt", dyh, dys)
        dy2 = np.einsum("po,po->p", dys, dys)
        dx2 = np.einsum("pi,pi->p", x[pb] - x[pa], x[pb] - x[pa])
        obs = PairObservables(rec["epochs"], H, Y, W, dy2)
        t_fit = obs.t[0] + fit_fraction * (obs.t[-1] - obs.t[0])
        fit = fit_rates(obs.window(t_fit), group=0, scale_h=dx2)
        fits[name] = fit
        kh0, ky0 = fit.group_rates[0]
        mat_m = np.zeros((4, 4))
        mat_m[pa, pb] = mat_m[pb, pa] = H[:, -1]
        mat_p = np.full((4, 4), np.nan)
        if np.isfinite(kh0) and np.isfinite(ky0):
            kh, ky = kh0 * dx2, np.full(dx2.size, ky0)
            h_inf = np.asarray(final_distance(a_high(H[:, 0], Y[:, 0], kh, ky), a_low(dy2, kh, ky)))
            mat_p = np.zeros((4, 4))
            mat_p[pa, pb] = mat_p[pb, pa] = h_inf
            ok = np.ptp(h_inf) > 0 and np.ptp(H[:, -1]) > 0
            corr[name] = float(np.corrcoef(h_inf, H[:, -1])[0, 1]) if ok else None
        else:
            corr[name] = None
        measured[name], predicted[name] = mat_m, mat_p
        losses[name] = float(rec["loss"][-1])
    return XorResult(
        settings_names=tuple(table),
        measured=measured,
        predicted=predicted,
        correlation=corr,
        fits=fits,
        final_loss=losses,
        settings={
            "variant": variant if isinstance(variant, str) else "custom",
            "table": {k: dict(v) for k, v in table.items()},
            "fit_fraction": fit_fraction,
            "seed": seed,
        },
    )
