"""Effective theory of representational merging: the pair ODEs, their closed forms, the 9-variable model.

Two points (or two prefixes of an RNN) have hidden states a squared distance ``H = ‖Δh‖²`` apart, predictions
a squared distance ``Y = ‖Δŷ‖²`` apart, and an output alignment ``W = Y − Δy*·Δŷ`` (van Rossem & Saxe, ICML
2024; the RNN form of the ICML 2025 follow-up averages ``Y`` and ``W`` over the pair's shared continuations).
Gradient flow on a linearised encoder/decoder closes on these three scalars::

    dH/dt = −k_h W
    dY/dt = −W (k_y H + k_h Y / H)
    dW/dt = −½ k_y (3W − Y + dy2) H − ½ k_h (Y + W) W / H

Everything here is written with two *pair rates* ``k_h`` and ``k_y``. The two published forms map onto them:

* ICML 2024 (an MLP on two inputs): ``k_h = η_h·dx2`` and ``k_y = η_y`` (:func:`icml_rates`);
* ICML 2025 (RNN prefixes with ``N`` shared continuations):
  ``k_h = (1/τ_h1 + 1/τ_h2)/2`` and ``k_y = 1/(2Nτ_y)`` (:func:`rnn_rates`).

Closed forms: ``A_high = H − (k_h/k_y)·Y/H`` is conserved, ``A_low = √((k_h/k_y)·dy2)``, the final distance
is ``H∞ = ½A_high + √(¼A_high² + A_low²)``, and a pair merges iff ``A_low = 0`` and ``A_high < 0``. Pairs with
identical targets follow a logistic curve (:func:`same_target_solution`).

The fixed-expansion-point model (ICML 2025 Eq. 42, 9 scalars) is in :mod:`dfalens.theory.fixed_point`.

This module is numpy/scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from dfalens.errors import ConfigError, DataError

__all__ = [
    "ODE_METHODS",
    "PairSolution",
    "icml_rates",
    "rnn_rates",
    "pair_rhs",
    "pair_jacobian",
    "integrate_pairs",
    "conserved_quantity",
    "a_high",
    "a_low",
    "final_distance",
    "merges",
    "same_target_solution",
    "merge_time",
    "relaxation_eigenvalues",
    "pair_loss",
]

ODE_METHODS = ("LSODA", "Radau", "BDF")
"""Stiff solvers accepted by the integrators (scipy.integrate.solve_ivp methods)."""

FArray = np.ndarray


# --------------------------------------------------------------------------------------------------
# unit conversions
# --------------------------------------------------------------------------------------------------


def icml_rates(eta_h: FArray | float, eta_y: FArray | float, dx2: FArray | float) -> tuple:
    """Pair rates of the ICML 2024 two-point model.

    Parameters
    ----------
    eta_h, eta_y : float or ndarray
        Effective encoder and decoder learning rates (``η_h = 1/(2τ_h)``, ``η_y = 1/(2τ_y)``).
    dx2 : float or ndarray
        Squared input distance ``‖Δx‖²`` of the pair.

    Returns
    -------
    k_h, k_y : float or ndarray
        ``k_h = η_h·dx2`` and ``k_y = η_y``.
    """
    return np.multiply(eta_h, dx2), np.asarray(eta_y, dtype=np.float64) * 1.0


def rnn_rates(
    inv_tau_h1: FArray | float,
    inv_tau_h2: FArray | float,
    inv_tau_y: FArray | float,
    n_cont: FArray | float,
) -> tuple:
    """Pair rates of the ICML 2025 RNN model.

    Parameters
    ----------
    inv_tau_h1, inv_tau_h2 : float or ndarray
        Effective rates ``1/τ_h1``, ``1/τ_h2`` of the two hidden representations.
    inv_tau_y : float or ndarray
        Effective rate ``1/τ_y`` of each continuation's output map.
    n_cont : float or ndarray
        Number ``N`` of shared continuations.

    Returns
    -------
    k_h, k_y : float or ndarray
        ``k_h = (1/τ_h1 + 1/τ_h2)/2`` and ``k_y = 1/(2Nτ_y)``.
    """
    k_h = 0.5 * (
        np.asarray(inv_tau_h1, dtype=np.float64) + np.asarray(inv_tau_h2, dtype=np.float64)
    )
    k_y = 0.5 * np.asarray(inv_tau_y, dtype=np.float64) / np.asarray(n_cont, dtype=np.float64)
    return k_h, k_y


# --------------------------------------------------------------------------------------------------
# the 3-variable pair system
# --------------------------------------------------------------------------------------------------


def pair_rhs(z: FArray, k_h: FArray, k_y: FArray, dy2: FArray) -> FArray:
    """Time derivative of the pair system.

    Parameters
    ----------
    z : ndarray, shape (..., 3)
        ``(H, Y, W)`` of each pair.
    k_h, k_y, dy2 : ndarray, broadcastable to ``z[..., 0]``
        Pair rates and the squared target distance ``dy2 = ⟨‖Δy*‖²⟩``.

    Returns
    -------
    ndarray, shape (..., 3)
        ``(dH/dt, dY/dt, dW/dt)``.
    """
    H, Y, W = z[..., 0], z[..., 1], z[..., 2]
    dH = -k_h * W
    dY = -W * (k_y * H + k_h * Y / H)
    dW = -0.5 * k_y * (3.0 * W - Y + dy2) * H - 0.5 * k_h * (Y + W) * W / H
    return np.stack([dH, dY, dW], axis=-1)


def pair_jacobian(z: FArray, k_h: FArray, k_y: FArray, dy2: FArray) -> FArray:
    """Jacobian of :func:`pair_rhs` with respect to ``(H, Y, W)``.

    Returns
    -------
    ndarray, shape (..., 3, 3)
        ``J[..., i, j] = ∂ż_i/∂z_j``.
    """
    H, Y, W = z[..., 0], z[..., 1], z[..., 2]
    zero = np.zeros_like(H)
    iH = 1.0 / H
    r0 = [zero, zero, -k_h * np.ones_like(H)]
    r1 = [
        -W * (k_y - k_h * Y * iH * iH),
        -W * k_h * iH,
        -(k_y * H + k_h * Y * iH),
    ]
    r2 = [
        -0.5 * k_y * (3.0 * W - Y + dy2) + 0.5 * k_h * (Y + W) * W * iH * iH,
        0.5 * k_y * H - 0.5 * k_h * W * iH,
        -1.5 * k_y * H - 0.5 * k_h * (Y + 2.0 * W) * iH,
    ]
    return np.stack([np.stack(r0, -1), np.stack(r1, -1), np.stack(r2, -1)], axis=-2)


@dataclass(frozen=True, eq=False)
class PairSolution:
    """Trajectories of many pairs integrated on one time grid.

    Attributes
    ----------
    t : ndarray, shape (T,)
    H, Y, W : ndarray, shape (n, T)
        Rows of pairs whose integration failed (``ok`` False) are NaN.
    ok : ndarray of bool, shape (n,)
        Whether the solver reached the last time for the pair.
    """

    t: FArray
    H: FArray
    Y: FArray
    W: FArray
    ok: FArray


def check_method(method: str) -> None:
    if method not in ODE_METHODS:
        raise ConfigError(f"unknown ODE method {method!r}; use one of {', '.join(ODE_METHODS)}")


def _signed_rhs(x: FArray, k_h: FArray, k_y: FArray, dy2: FArray) -> FArray:
    """The pair system in the smooth variables ``(s, G, P)``.

    ``s`` is the signed distance along the pair direction (``H = s²``), ``G = Y/H`` the squared decoder gain
    along it and ``P = (Y − W)/s`` its projection on the target difference, so ``Y = s²G`` and
    ``W = s²G − sP``. In these variables the system is polynomial (no ``1/H``)::

        ds/dt = −½k_h (sG − P),   dG/dt = −k_y s (sG − P),   dP/dt = −½k_y s (sP − dy2)

    and a pair whose difference vector passes through zero (``H`` touching 0 and growing again, which the
    ``(H, Y, W)`` form cannot follow) is just ``s`` changing sign.
    """
    s, G, P = x[..., 0], x[..., 1], x[..., 2]
    e = s * G - P
    return np.stack([-0.5 * k_h * e, -k_y * s * e, -0.5 * k_y * s * (s * P - dy2)], axis=-1)


def _signed_jacobian(x: FArray, k_h: FArray, k_y: FArray, dy2: FArray) -> FArray:
    """Jacobian of :func:`_signed_rhs`, shape (..., 3, 3)."""
    s, G, P = x[..., 0], x[..., 1], x[..., 2]
    one = np.ones_like(s)
    r0 = [-0.5 * k_h * G, -0.5 * k_h * s, 0.5 * k_h * one]
    r1 = [-k_y * (2.0 * s * G - P), -k_y * s * s, k_y * s]
    r2 = [-0.5 * k_y * (2.0 * s * P - dy2), np.zeros_like(s), -0.5 * k_y * s * s]
    return np.stack([np.stack(r0, -1), np.stack(r1, -1), np.stack(r2, -1)], axis=-2)


_BLOCK = 64  # pairs per stacked solve: the solvers control an RMS error over the whole block
_MAX_EVALS = 20_000  # right-hand-side evaluations after which a solve is abandoned as failed


class _SolveFailed(ArithmeticError):
    """Raised inside a right-hand side to stop a solve that stalled or left the finite numbers."""


def _solve_block(
    t: FArray,
    x0: FArray,
    k_h: FArray,
    k_y: FArray,
    dy2: FArray,
    method: str,
    rtol: float,
    atol: float,
) -> tuple[FArray | None, bool]:
    """Integrate a block of normalised pairs in ``(s, G, P)`` as one stacked system; None if it failed."""
    n = x0.shape[0]
    # the solvers bound an RMS norm of the error over all 3n components; shrink the tolerances so
    # that bound also holds for every single component
    shrink = float(np.sqrt(3 * n))

    evals = [0]

    def fun(_t: float, y: FArray) -> FArray:
        evals[0] += 1
        f = _signed_rhs(y.reshape(n, 3), k_h, k_y, dy2).ravel()
        if evals[0] > _MAX_EVALS or not np.all(np.isfinite(f)):
            raise _SolveFailed
        return f

    kwargs: dict = {}
    if method == "LSODA":
        cols = np.arange(3 * n)

        def jac_banded(_t: float, y: FArray) -> FArray:
            blocks = _signed_jacobian(y.reshape(n, 3), k_h, k_y, dy2)
            packed = np.zeros((5, 3 * n))
            for i in range(3):
                for j in range(3):
                    # packed[uband + row - col, col] = J[row, col], rows/cols within one 3x3 block
                    packed[2 + i - j, cols[j::3]] = blocks[:, i, j]
            return packed

        kwargs.update(jac=jac_banded, lband=2, uband=2)
    else:
        from scipy.sparse import csc_matrix

        base = np.arange(n) * 3
        ii = np.broadcast_to(base[:, None, None] + np.arange(3)[None, :, None], (n, 3, 3))
        jj = np.broadcast_to(base[:, None, None] + np.arange(3)[None, None, :], (n, 3, 3))

        def jac_sparse(_t: float, y: FArray) -> csc_matrix:
            data = _signed_jacobian(y.reshape(n, 3), k_h, k_y, dy2).ravel()
            return csc_matrix((data, (ii.ravel(), jj.ravel())), shape=(3 * n, 3 * n))

        kwargs.update(jac=jac_sparse)
    with np.errstate(all="ignore"):
        try:
            sol = solve_ivp(
                fun,
                (float(t[0]), float(t[-1])),
                x0.ravel(),
                method=method,
                t_eval=t,
                rtol=rtol / shrink,
                atol=atol / shrink,
                **kwargs,
            )
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            return None, False
    if sol.status != 0 or sol.y.shape[1] != t.size or not np.all(np.isfinite(sol.y)):
        return None, False
    return sol.y.reshape(n, 3, t.size), True


def integrate_pairs(
    t: FArray,
    H0: FArray,
    Y0: FArray,
    W0: FArray,
    k_h: FArray,
    k_y: FArray,
    dy2: FArray,
    *,
    method: str = "LSODA",
    rtol: float = 1e-9,
    atol: float = 1e-13,
) -> PairSolution:
    """Integrate the pair system for many pairs at once with a stiff solver.

    Each pair is first rescaled (``H/H0`` and ``(Y, W, dy2)/max(|Y0|, |W0|, dy2)``; the system is invariant
    under this rescaling with rates ``k_h·β/α``, ``k_y·α``) and written in the smooth signed variables
    ``(s, G, P)`` of :func:`_signed_rhs`, where it has no ``1/H`` singularity: merging pairs and pairs whose
    difference vector passes through zero integrate as easily as any other. Pairs are integrated in blocks
    of 64 as one stacked system with the exact block-diagonal Jacobian (banded for LSODA, sparse for
    Radau/BDF), tolerances shrunk by ``√(3·block)`` so the solver's RMS error bound holds per pair. When a
    block fails, its pairs are integrated one at a time so a single bad pair cannot spoil the others.

    Parameters
    ----------
    t : ndarray, shape (T,)
        Increasing output times; the initial values hold at ``t[0]``.
    H0, Y0, W0 : ndarray, shape (n,)
        Initial values; ``H0`` must be positive.
    k_h, k_y : ndarray, shape (n,)
        Pair rates (positive).
    dy2 : ndarray, shape (n,)
        Squared target distances.
    method : {"LSODA", "Radau", "BDF"}, default "LSODA"
    rtol, atol : float
        Solver tolerances on the rescaled variables (order one).

    Returns
    -------
    PairSolution

    Raises
    ------
    ConfigError
        On an unknown method or a time grid that does not increase.
    DataError
        On non-positive ``H0`` or non-finite inputs.
    """
    check_method(method)
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or t.size < 1 or (t.size > 1 and np.any(np.diff(t) <= 0)):
        raise ConfigError("the time grid must be a 1-D strictly increasing array")
    H0, Y0, W0, k_h, k_y, dy2 = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (H0, Y0, W0, k_h, k_y, dy2))
    )
    n = H0.size
    for name, a in (("H0", H0), ("Y0", Y0), ("W0", W0), ("k_h", k_h), ("k_y", k_y), ("dy2", dy2)):
        if not np.all(np.isfinite(a)):
            raise DataError(f"{name} contains NaN or inf; drop those pairs before integrating")
    if np.any(H0 <= 0):
        raise DataError(
            f"{int((H0 <= 0).sum())} pair(s) start at zero distance (H0 <= 0); the pair system is "
            "undefined there: drop them or start later"
        )
    alpha = H0
    beta = np.maximum.reduce([np.abs(Y0), np.abs(W0), np.abs(dy2)])
    beta = np.where(beta > 0, beta, 1.0)
    kh_s, ky_s = k_h * beta / alpha, k_y * alpha
    # rescaled signed variables: s = √(H/α) = 1, G = (Y/β)/(H/α), P = (Y − W)/β / s
    x0 = np.stack([np.ones(n), Y0 / beta, (Y0 - W0) / beta], axis=1)
    dy2_s = dy2 / beta
    out = np.full((n, 3, t.size), np.nan)
    ok = np.zeros(n, dtype=bool)
    if t.size == 1:
        out[:, :, 0] = x0
        ok[:] = True
    for lo in range(0, n if t.size > 1 else 0, _BLOCK):
        sl = slice(lo, min(lo + _BLOCK, n))
        y, good = _solve_block(t, x0[sl], kh_s[sl], ky_s[sl], dy2_s[sl], method, rtol, atol)
        if good:
            out[sl] = y
            ok[sl] = True
            continue
        # isolate the failing pairs of this block (only on the failure path)
        for i in range(sl.start, sl.stop):
            one = slice(i, i + 1)
            yi, gi = _solve_block(t, x0[one], kh_s[one], ky_s[one], dy2_s[one], method, rtol, atol)
            if gi:
                out[i] = yi[0]
                ok[i] = True
    s_, G_, P_ = out[:, 0], out[:, 1], out[:, 2]
    s2 = s_ * s_
    return PairSolution(
        t=t,
        H=s2 * alpha[:, None],
        Y=s2 * G_ * beta[:, None],
        W=(s2 * G_ - s_ * P_) * beta[:, None],
        ok=ok,
    )


# --------------------------------------------------------------------------------------------------
# closed forms
# --------------------------------------------------------------------------------------------------


def conserved_quantity(H: FArray, Y: FArray, k_h: FArray, k_y: FArray) -> FArray:
    """The conserved quantity ``H − (k_h/k_y)·Y/H`` (equal to ``A_high`` at every time).

    In the ICML 2024 units this is ``dx2·C`` with ``C = H/dx2 − (η_h/η_y)·Y/H``.
    """
    H = np.asarray(H, dtype=np.float64)
    return H - np.divide(k_h, k_y) * np.asarray(Y, dtype=np.float64) / H


def a_high(H0: FArray, Y0: FArray, k_h: FArray, k_y: FArray) -> FArray:
    """``A_high = H0 − (k_h/k_y)·Y0/H0`` (ICML 2025 Eq. 6; ICML 2024 ``H0 − (η_h/η_y)·dx2·Y0/H0``)."""
    return conserved_quantity(H0, Y0, k_h, k_y)


def a_low(dy2: FArray, k_h: FArray, k_y: FArray) -> FArray:
    """``A_low = √((k_h/k_y)·dy2)``; zero exactly when the pair's targets agree everywhere."""
    return np.sqrt(np.divide(k_h, k_y) * np.asarray(dy2, dtype=np.float64))


def final_distance(a_hi: FArray, a_lo: FArray) -> FArray:
    """Final squared distance ``H∞ = ½A_high + √(¼A_high² + A_low²)``.

    Evaluated without cancellation: for ``A_high < 0`` it uses the equivalent
    ``A_low² / (√(¼A_high² + A_low²) − ½A_high)``. Equals ``max(A_high, 0)`` when ``A_low = 0``.
    """
    a = np.asarray(a_hi, dtype=np.float64)
    b = np.asarray(a_lo, dtype=np.float64)
    root = np.hypot(0.5 * a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        neg = np.where(root - 0.5 * a > 0, b * b / (root - 0.5 * a), 0.0)
    out = np.where(a >= 0, 0.5 * a + root, neg)
    return out if out.ndim else float(out)


def merges(a_hi: FArray, a_lo: FArray, atol: float = 0.0) -> FArray:
    """The merger predicate ``A_low = 0 and A_high < 0`` (ICML 2025 Eq. 7).

    ``A_high = 0`` gives ``H∞ = 0`` too but only by algebraic decay; the paper's strict predicate (used here)
    does not count it. ``atol`` treats ``A_low <= atol`` as zero.
    """
    return (np.asarray(a_lo) <= atol) & (np.asarray(a_hi) < 0)


def same_target_solution(t: FArray, H0: FArray, a_hi: FArray, k_y: FArray) -> FArray:
    """The logistic solution for a pair with identical targets (``dy2 = 0``, hence ``W = Y``).

    ``dH/dt = k_y·H·(A_high − H)`` gives ``H(t) = A/(1 + (A/H0 − 1)·e^{−k_y A t})``, evaluated as
    ``H0 / (1 + (H0 − A)·k_y t·φ(−k_y A t))`` with ``φ(x) = (eˣ − 1)/x``, which is exact for every sign of
    ``A`` including ``A = 0`` (``H0/(1 + k_y H0 t)``) and never overflows into NaN.

    Parameters
    ----------
    t : float or ndarray
        Time since the initial value (broadcasts against the pair arrays).
    H0, a_hi, k_y : float or ndarray
    """
    t = np.asarray(t, dtype=np.float64)
    H0 = np.asarray(H0, dtype=np.float64)
    a = np.asarray(a_hi, dtype=np.float64)
    kt = np.asarray(k_y, dtype=np.float64) * t
    x = -a * kt
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        small = np.abs(x) < 1e-8
        phi = np.where(small, 1.0 + 0.5 * x, np.expm1(x) / np.where(small, 1.0, x))
        den = 1.0 + (H0 - a) * kt * phi
        out = np.where(np.isinf(den), 0.0, H0 / den)
    return out if out.ndim else float(out)


def merge_time(eps2: float, H0: FArray, a_hi: FArray, k_y: FArray) -> FArray:
    """Time for a same-target pair to reach squared distance ``eps2`` on the logistic curve.

    ``A < 0``: ``ln[(|A|/ε² + 1)/(|A|/H0 + 1)]/(k_y|A|)``; ``A = 0``: ``(1/ε² − 1/H0)/k_y``;
    ``A >= ε²``: ``inf`` (the distance stalls at ``A``). Pairs already within ``eps2`` give 0.
    """
    H0 = np.asarray(H0, dtype=np.float64)
    a = np.asarray(a_hi, dtype=np.float64)
    k = np.asarray(k_y, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        absa = np.abs(a)
        t_neg = np.log((absa / eps2 + 1.0) / (absa / H0 + 1.0)) / (k * absa)
        t_zero = (1.0 / eps2 - 1.0 / H0) / k
        # 0 < A < eps2: H(t) = A·H0/(H0 + (A − H0)e^{−kAt}) reaches eps2 at a finite time
        t_pos = -np.log(((a * H0 / eps2) - H0) / (a - H0)) / (k * a)
        out = np.where(a < 0, t_neg, np.where(a == 0, t_zero, np.where(a < eps2, t_pos, np.inf)))
        out = np.where(eps2 >= H0, 0.0, out)
    return out if out.ndim else float(out)


def relaxation_eigenvalues(
    a_hi: FArray, a_lo: FArray, k_h: FArray, k_y: FArray, dy2: FArray
) -> tuple[FArray, FArray]:
    """Eigenvalues of the linearised reduced (H, W) system at the stable fixed point ``H∞ > 0``.

    They solve ``λ² − Tλ + D = 0`` with ``T = −(3/2)k_y H∞ − ½k_h dy2/H∞`` and
    ``D = ½k_y² H∞ √(A_high² + 4A_low²)``; both have negative real part.

    Returns
    -------
    lam1, lam2 : ndarray of complex
    """
    h_inf = np.asarray(final_distance(a_hi, a_lo), dtype=np.float64)
    tr = -1.5 * k_y * h_inf - 0.5 * np.asarray(k_h) * np.asarray(dy2) / h_inf
    det = (
        0.5
        * np.asarray(k_y) ** 2
        * h_inf
        * np.sqrt(np.asarray(a_hi) ** 2 + 4 * np.asarray(a_lo) ** 2)
    )
    disc = np.sqrt((tr * tr - 4 * det).astype(np.complex128))
    return 0.5 * (tr + disc), 0.5 * (tr - disc)


def pair_loss(
    Y: FArray,
    W: FArray,
    dy2: FArray,
    mean_err0: FArray | float = 0.0,
    eta_mean: float = 0.0,
    t: FArray | float = 0.0,
) -> FArray:
    """Training loss of a pair in the pair variables (the two-point ``½·MSE`` loss).

    ``L = ½e^{−2η_ȳ t}·ȳ0 + ⅛(2W − Y + dy2)``, where ``ȳ0`` is the squared error of the pair's mean output at
    ``t = 0`` and ``2W − Y + dy2 = ‖Δŷ − Δy*‖²``.
    """
    decay = np.exp(-2.0 * eta_mean * np.asarray(t, dtype=np.float64))
    return 0.5 * decay * mean_err0 + 0.125 * (2.0 * np.asarray(W) - np.asarray(Y) + np.asarray(dy2))
