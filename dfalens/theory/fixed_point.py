"""The fixed-expansion-point model of two RNN prefixes (ICML 2025 Eq. 42): nine scalars, the one model that
can show an agreeing pair first moving apart and then merging (only when the two hidden rates differ).

numpy/scipy only; the pair ODEs and their closed forms are in :mod:`dfalens.theory.equations`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from dfalens.errors import ConfigError, DataError
from dfalens.theory.equations import check_method

__all__ = [
    "FP_VARIABLES",
    "FixedPointSolution",
    "fixed_point_loss",
    "fixed_point_rates",
    "fixed_point_rhs",
    "fixed_point_state",
    "integrate_fixed_point",
]

FArray = np.ndarray

FP_VARIABLES = ("h1", "h2", "bD", "by1", "by2", "b2", "D2", "Dy1", "Dy2")
"""State of the fixed-expansion-point model, in order.

``h1, h2``: coordinates of the two hidden states along the direction ``v``; ``bD = ⟨b_iᵀD_iv⟩``;
``by_β = ⟨b_iᵀy*_{β,i}⟩``; ``b2 = ⟨‖b_i‖²⟩``; ``D2 = ⟨‖D_iv‖²⟩``; ``Dy_β = ⟨y*_{β,i}ᵀD_iv⟩`` (averages over the
``N`` continuations ``i``)."""


def fixed_point_rates(
    len1: int, len2: int, lr: float, n_cont: int = 1, b_factor: float = 0.25
) -> dict[str, float]:
    """Effective rates of the 9-variable model with ``1/τ_h ∝`` sequence length (ICML 2025 App. D.3).

    Returns ``{"eta_h1": lr·len1, "eta_h2": lr·len2, "eta_y": lr/N, "eta_b": b_factor·lr/N}``, the
    settings of the authors' Fig. 10 with ``N = 1``. ``eta_y`` and ``eta_b`` stand for ``1/(Nτ_y)`` and
    ``1/(Nτ_b)``.
    """
    if lr <= 0 or n_cont < 1 or len1 < 0 or len2 < 0:
        raise ConfigError("fixed_point_rates needs lr > 0, n_cont >= 1 and non-negative lengths")
    return {
        "eta_h1": lr * len1,
        "eta_h2": lr * len2,
        "eta_y": lr / n_cont,
        "eta_b": b_factor * lr / n_cont,
    }


def fixed_point_state(
    h1: float, h2: float, b: FArray, Dv: FArray, y1: FArray, y2: FArray
) -> tuple[FArray, FArray]:
    """Initial state and target constants of the 9-variable model from concrete vectors.

    Parameters
    ----------
    h1, h2 : float
        Positions of the two hidden states along ``v``.
    b, Dv : ndarray, shape (N, n_out)
        Expansion-point outputs ``b_i`` and output-map directions ``D_i v`` per continuation.
    y1, y2 : ndarray, shape (N, n_out)
        Targets ``y*_{1,i}``, ``y*_{2,i}``.

    Returns
    -------
    z0 : ndarray, shape (9,)
        In the order of :data:`FP_VARIABLES`.
    targets : ndarray, shape (3,)
        ``(y11, y12, y22)`` with ``y_αβ = ⟨y*_{α,i}ᵀy*_{β,i}⟩``.
    """
    b, Dv, y1, y2 = (np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (b, Dv, y1, y2))
    if not (b.shape == Dv.shape == y1.shape == y2.shape):
        raise DataError("b, Dv, y1 and y2 must all have shape (N, n_out)")

    def m(p: FArray, q: FArray) -> float:
        return float(np.mean(np.sum(p * q, axis=1)))

    z0 = np.array(
        [h1, h2, m(b, Dv), m(b, y1), m(b, y2), m(b, b), m(Dv, Dv), m(y1, Dv), m(y2, Dv)],
        dtype=np.float64,
    )
    return z0, np.array([m(y1, y1), m(y1, y2), m(y2, y2)])


def fixed_point_rhs(
    z: FArray, targets: FArray, eta_h1: float, eta_h2: float, eta_y: float, eta_b: float
) -> FArray:
    """Time derivative of the 9-variable fixed-expansion-point model (ICML 2025 Eq. 42).

    Derived from gradient flow on ``L = ½⟨‖b_i + D_i v h_α − y*_{α,i}‖²⟩_{α,i}`` with rates ``eta_h1 = 1/τ_h1``,
    ``eta_h2 = 1/τ_h2``, ``eta_y = 1/(Nτ_y)``, ``eta_b = 1/(Nτ_b)``.

    Parameters
    ----------
    z : ndarray, shape (..., 9)
        State in the order of :data:`FP_VARIABLES`.
    targets : ndarray, shape (3,)
        ``(y11, y12, y22)``.
    """
    h1, h2, bD, by1, by2, b2, D2, Dy1, Dy2 = (z[..., k] for k in range(9))
    y11, y12, y22 = targets
    hm = 0.5 * (h1 + h2)
    h2m = 0.5 * (h1 * h1 + h2 * h2)
    d_h1 = -eta_h1 * 0.5 * (bD + h1 * D2 - Dy1)
    d_h2 = -eta_h2 * 0.5 * (bD + h2 * D2 - Dy2)
    d_bD = -eta_b * (bD + hm * D2 - 0.5 * (Dy1 + Dy2)) - eta_y * (
        h2m * bD + hm * b2 - 0.5 * (h1 * by1 + h2 * by2)
    )
    d_by1 = -eta_b * (by1 + hm * Dy1 - 0.5 * (y11 + y12))
    d_by2 = -eta_b * (by2 + hm * Dy2 - 0.5 * (y12 + y22))
    d_b2 = -2.0 * eta_b * (b2 + hm * bD - 0.5 * (by1 + by2))
    d_D2 = -2.0 * eta_y * (h2m * D2 + hm * bD - 0.5 * (h1 * Dy1 + h2 * Dy2))
    d_Dy1 = -eta_y * (h2m * Dy1 + hm * by1 - 0.5 * (h1 * y11 + h2 * y12))
    d_Dy2 = -eta_y * (h2m * Dy2 + hm * by2 - 0.5 * (h1 * y12 + h2 * y22))
    return np.stack([d_h1, d_h2, d_bD, d_by1, d_by2, d_b2, d_D2, d_Dy1, d_Dy2], axis=-1)


def fixed_point_loss(z: FArray, targets: FArray) -> FArray:
    """Training loss of the 9-variable model (ICML 2025 Eq. 43).

    ``L = ½[⟨‖b‖²⟩ + 2⟨h⟩⟨bᵀDv⟩ + ⟨h²⟩⟨‖Dv‖²⟩ − (by1 + by2) − (h1·Dy1 + h2·Dy2) + ½(y11 + y22)]``.

    Parameters
    ----------
    z : ndarray, shape (..., 9)
    targets : ndarray, shape (3,)
    """
    h1, h2, bD, by1, by2, b2, D2, Dy1, Dy2 = (z[..., k] for k in range(9))
    y11, _, y22 = targets
    hm = 0.5 * (h1 + h2)
    h2m = 0.5 * (h1 * h1 + h2 * h2)
    return 0.5 * (
        b2 + 2 * hm * bD + h2m * D2 - (by1 + by2) - (h1 * Dy1 + h2 * Dy2) + 0.5 * (y11 + y22)
    )


@dataclass(frozen=True, eq=False)
class FixedPointSolution:
    """A solved 9-variable trajectory.

    Attributes
    ----------
    t : ndarray, shape (T,)
    z : ndarray, shape (T, 9)
        State in the order of :data:`FP_VARIABLES`.
    loss : ndarray, shape (T,)
    """

    t: FArray
    z: FArray
    loss: FArray

    @property
    def distance2(self) -> FArray:
        """Squared representational distance ``(h2 − h1)²`` over time."""
        return (self.z[:, 1] - self.z[:, 0]) ** 2


def integrate_fixed_point(
    t: FArray,
    z0: FArray,
    targets: FArray,
    *,
    eta_h1: float,
    eta_h2: float,
    eta_y: float,
    eta_b: float,
    method: str = "LSODA",
    rtol: float = 1e-9,
    atol: float = 1e-12,
) -> FixedPointSolution:
    """Integrate the 9-variable model from ``z0`` and report it on the grid ``t``.

    Raises
    ------
    ConfigError
        On an unknown method, a bad time grid or non-positive rates.
    DataError
        When the solver fails (the message names the time it reached).
    """
    check_method(method)
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or t.size < 2 or np.any(np.diff(t) <= 0):
        raise ConfigError("the time grid must be a 1-D strictly increasing array of >= 2 times")
    if min(eta_h1, eta_h2, eta_y, eta_b) < 0:
        raise ConfigError("the 9-variable model's rates must be non-negative")
    z0 = np.asarray(z0, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if z0.shape != (9,) or targets.shape != (3,):
        raise DataError("z0 must have 9 entries and targets 3 (see fixed_point_state)")

    def fun(_t: float, y: FArray) -> FArray:
        return fixed_point_rhs(y, targets, eta_h1, eta_h2, eta_y, eta_b)

    sol = solve_ivp(
        fun, (float(t[0]), float(t[-1])), z0, method=method, t_eval=t, rtol=rtol, atol=atol
    )
    if sol.status != 0 or not np.all(np.isfinite(sol.y)):
        reached = float(sol.t[-1]) if sol.t.size else float(t[0])
        raise DataError(
            f"the 9-variable model did not integrate past t = {reached:.4g} ({sol.message}); "
            "lower the rates or shorten the time grid"
        )
    z = sol.y.T
    return FixedPointSolution(t=t, z=z, loss=fixed_point_loss(z, targets))
