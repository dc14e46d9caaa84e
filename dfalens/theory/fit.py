"""Fitting the effective rates of the pair system to measured trajectories.

Input is plain arrays (:class:`PairObservables`: per-pair ``H, Y, W`` on a common time grid and the
pair's ``dy2``), so the fit works for RNN prefix pairs, two-point MLPs or synthetic data alike.

Two stages, as in the authors' procedure but vectorised over pairs:

1. **Closed-form estimators** from the conservation laws ``dH/dt = −k_h W`` and ``d(Y/H)/dt = −k_y W``:
   with ``I(t) = ∫W`` (cumulative trapezoid) the differences ``H(t) − H(0)`` and ``Y/H(t) − Y/H(0)`` are
   linear in ``I`` with slopes ``−k_h`` and ``−k_y`` (weighted least squares, no ODE solve).
2. **ODE least squares**: a Levenberg–Marquardt iteration on ``(ln k_h, ln k_y)`` per group that integrates
   all pairs at once (:func:`dfalens.theory.equations.integrate_pairs`) from the measured initial values and
   minimises the squared error over ``H``, ``Y`` and ``W``, each series scaled by its own size.

Rates may be shared: ``group[i]`` names pair ``i``'s group and ``k_h = κ_h[group]·scale_h``,
``k_y = κ_y[group]·scale_y``, so one can fit one pair (``group = arange(n)``, the default), a whole network
(``group = 0``) or a model such as the RNN's ``k_h ∝ m1 + m2``, ``k_y ∝ 1/N``.

Every pair comes back with ``fitted`` and a one-line ``reason`` when it is not: zero distance at the start,
non-finite measurements, no movement in the window, a rate estimate of the wrong sign, a solver failure or
a fit that did not converge. Rates of pairs that are not fitted are NaN, always flagged by ``fitted``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dfalens.errors import ConfigError, DataError
from dfalens.theory.equations import integrate_pairs

__all__ = [
    "PairObservables",
    "RateFit",
    "closed_form_rates",
    "fit_rates",
    "trajectory_error",
]

FArray = np.ndarray

MIN_TIMES = 3
"""Fewest time points a fit accepts."""

_LOG_RANGE = 12.0
"""The ODE fit keeps each log-rate within this distance of its start (a factor of about 1.6e5): rates
beyond it describe nothing the sampled trajectory can resolve and make the solves arbitrarily stiff."""


@dataclass(frozen=True, eq=False)
class PairObservables:
    """Measured pair observables on a common time grid.

    Parameters
    ----------
    t : ndarray, shape (T,)
        Strictly increasing times (epochs or steps).
    H, Y, W : ndarray, shape (n, T)
        ``‖Δh‖²``, ``⟨‖Δŷ‖²⟩`` and ``⟨‖Δŷ‖² − Δŷ·Δy*⟩`` of each pair over time.
    dy2 : ndarray, shape (n,)
        ``⟨‖Δy*‖²⟩``, the squared target distance (0 for pairs that agree everywhere).

    Raises
    ------
    DataError
        On inconsistent shapes or a time grid that does not increase.
    """

    t: FArray
    H: FArray
    Y: FArray
    W: FArray
    dy2: FArray

    def __post_init__(self) -> None:
        t = np.asarray(self.t, dtype=np.float64)
        if t.ndim != 1 or t.size == 0:
            raise DataError("t must be a non-empty 1-D array of times")
        if t.size > 1 and np.any(np.diff(t) <= 0):
            raise DataError("the times t must be strictly increasing")
        arrs = {}
        for name in ("H", "Y", "W"):
            a = np.asarray(getattr(self, name), dtype=np.float64)
            if a.ndim == 1:
                a = a[None, :]
            if a.ndim != 2 or a.shape[1] != t.size:
                raise DataError(f"{name} must have shape (n_pairs, {t.size}), got {a.shape}")
            arrs[name] = a
        n = arrs["H"].shape[0]
        if arrs["Y"].shape[0] != n or arrs["W"].shape[0] != n:
            raise DataError("H, Y and W must have the same number of pairs")
        dy2 = np.atleast_1d(np.asarray(self.dy2, dtype=np.float64))
        if dy2.shape != (n,):
            raise DataError(f"dy2 must have shape ({n},), got {dy2.shape}")
        for name, a in (("t", t), ("dy2", dy2), *arrs.items()):
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    @property
    def n_pairs(self) -> int:
        """Number of pairs."""
        return int(self.H.shape[0])

    @property
    def n_times(self) -> int:
        """Number of time points."""
        return int(self.t.size)

    def window(self, t_max: float, t_min: float | None = None) -> PairObservables:
        """The trajectories restricted to ``t_min <= t <= t_max``."""
        keep = self.t <= t_max
        if t_min is not None:
            keep &= self.t >= t_min
        return PairObservables(
            self.t[keep], self.H[:, keep], self.Y[:, keep], self.W[:, keep], self.dy2
        )

    def select(self, index: FArray) -> PairObservables:
        """A subset of the pairs (boolean mask or integer index)."""
        return PairObservables(self.t, self.H[index], self.Y[index], self.W[index], self.dy2[index])


@dataclass(frozen=True, eq=False)
class RateFit:
    """Fitted effective rates and per-pair diagnostics.

    Attributes
    ----------
    k_h, k_y : ndarray, shape (n,)
        Pair rates (NaN where ``fitted`` is False).
    fitted : ndarray of bool, shape (n,)
    reason : tuple of str
        Empty for fitted pairs, else one line saying why not.
    fit_error : ndarray, shape (n,)
        Root-mean-square error of the ODE solution with the fitted rates against the measurement over
        ``H``, ``Y``, ``W``, each scaled by its own maximum (0 = perfect; NaN where not fitted).
    conservation_residual : ndarray, shape (n,)
        ``std_t A(t) / max_t (H + (k_h/k_y)·Y/H)`` with ``A = H − (k_h/k_y)·Y/H`` from the measurement: how
        far the measured pair breaks the conservation law (0 for the theory, at most 1; NaN where not
        fitted).
    group : ndarray of int, shape (n,)
        Rate group of each pair.
    group_rates : ndarray, shape (G, 2)
        ``(κ_h, κ_y)`` per group (NaN where the group could not be fitted).
    method : str
        ``"closed-form"`` or ``"ode"``.
    iterations : int
        Levenberg–Marquardt iterations run (0 for closed-form).
    settings : dict
        The options used.
    """

    k_h: FArray
    k_y: FArray
    fitted: FArray
    reason: tuple[str, ...]
    fit_error: FArray
    conservation_residual: FArray
    group: FArray
    group_rates: FArray
    method: str
    iterations: int = 0
    settings: dict = field(default_factory=dict)

    @property
    def n_fitted(self) -> int:
        """Number of fitted pairs."""
        return int(self.fitted.sum())

    @property
    def ratio(self) -> FArray:
        """``k_h/k_y`` per pair, the only combination the final distance depends on."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.k_h / self.k_y

    def reasons(self) -> dict[str, int]:
        """How many pairs were left unfitted, by reason."""
        out: dict[str, int] = {}
        for r in self.reason:
            if r:
                out[r] = out.get(r, 0) + 1
        return out

    def summary(self) -> dict:
        """JSON-ready summary (medians and quartiles over the fitted pairs; None where none)."""

        def q(a: FArray) -> list[float] | None:
            a = a[self.fitted & np.isfinite(a)]
            return [float(v) for v in np.percentile(a, [25, 50, 75])] if a.size else None

        g_ok = np.all(np.isfinite(self.group_rates), axis=1)
        return {
            "method": self.method,
            "n_pairs": int(self.fitted.size),
            "n_fitted": self.n_fitted,
            "not_fitted": self.reasons(),
            "iterations": self.iterations,
            "k_h_quartiles": q(self.k_h),
            "k_y_quartiles": q(self.k_y),
            "ratio_quartiles": q(self.ratio),
            "fit_error_quartiles": q(self.fit_error),
            "conservation_residual_quartiles": q(self.conservation_residual),
            "n_groups": int(self.group_rates.shape[0]),
            "group_rates": [[float(a), float(b)] for a, b in self.group_rates[g_ok][:50]],
            "settings": dict(self.settings),
        }


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _cumtrapz(y: FArray, t: FArray) -> FArray:
    """Cumulative trapezoid along the last axis, starting at 0."""
    inc = 0.5 * (y[..., 1:] + y[..., :-1]) * np.diff(t)
    return np.concatenate([np.zeros(y.shape[:-1] + (1,)), np.cumsum(inc, axis=-1)], axis=-1)


def _groups(n: int, group: FArray | int | None) -> tuple[FArray, int]:
    if group is None:
        return np.arange(n), n
    g = np.broadcast_to(np.asarray(group, dtype=np.int64), (n,)).copy()
    if np.any(g < 0):
        raise ConfigError("group indices must be non-negative")
    _, g = np.unique(g, return_inverse=True)
    return g, int(g.max()) + 1 if n else 0


def _scales(n: int, scale: FArray | float | None, name: str) -> FArray:
    s = np.ones(n) if scale is None else np.broadcast_to(np.asarray(scale, np.float64), (n,)).copy()
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ConfigError(f"{name} must be positive and finite for every pair")
    return s


def _series_scales(traj: PairObservables) -> tuple[FArray, FArray]:
    """Per-pair scale of H and of (Y, W): their largest magnitude over the window."""
    with np.errstate(invalid="ignore"):
        sH = np.fmax.reduce(np.abs(traj.H), axis=1)
        sY = np.fmax.reduce(np.abs(np.concatenate([traj.Y, traj.W], axis=1)), axis=1)
    sY = np.maximum(sY, traj.dy2)
    tiny = np.finfo(np.float64).tiny
    return np.where(sH > tiny, sH, 1.0), np.where(sY > tiny, sY, 1.0)


def _screen(traj: PairObservables, min_signal: float) -> list[str]:
    """Reasons to leave pairs out before any fit ("" = usable)."""
    n = traj.n_pairs
    reasons = [""] * n
    finite = (
        np.all(np.isfinite(traj.H), axis=1)
        & np.all(np.isfinite(traj.Y), axis=1)
        & np.all(np.isfinite(traj.W), axis=1)
        & np.isfinite(traj.dy2)
    )
    h0 = traj.H[:, 0] if traj.n_times else np.zeros(n)
    sH, sY = _series_scales(traj)
    with np.errstate(invalid="ignore", divide="ignore"):
        moveH = np.fmax.reduce(np.abs(traj.H - traj.H[:, :1]), axis=1) / sH
        moveY = np.fmax.reduce(np.abs(traj.Y - traj.Y[:, :1]), axis=1) / sY
    for i in np.nonzero(~finite)[0]:
        reasons[i] = "non-finite measurements"
    zero = finite & ~(h0 > 1e-12 * np.maximum(sH, 1e-300))
    for i in np.nonzero(zero)[0]:
        reasons[i] = "zero distance at the start (H0 = 0): the pair system is undefined there"
    still = finite & ~zero & (moveH < min_signal) & (moveY < min_signal)
    for i in np.nonzero(still)[0]:
        reasons[i] = "no movement in the fit window (H and Y change by < min_signal)"
    return reasons


def trajectory_error(
    traj: PairObservables, k_h: FArray, k_y: FArray, *, method: str = "LSODA"
) -> tuple[FArray, FArray]:
    """Relative RMS error of the ODE solution with rates ``(k_h, k_y)`` against ``traj``.

    Returns
    -------
    error : ndarray, shape (n,)
        NaN where the integration failed or the rates are not finite/positive.
    ok : ndarray of bool, shape (n,)
    """
    n = traj.n_pairs
    err = np.full(n, np.nan)
    ok = np.isfinite(k_h) & np.isfinite(k_y) & (k_h > 0) & (k_y > 0) & (traj.H[:, 0] > 0)
    idx = np.nonzero(ok)[0]
    if idx.size:
        r, good = _residuals(traj, idx, k_h[idx], k_y[idx], method)
        err[idx[good]] = np.sqrt(np.mean(r[good] ** 2, axis=1))
        ok[idx[~good]] = False
    return err, ok


def _residuals(
    traj: PairObservables, idx: FArray, k_h: FArray, k_y: FArray, method: str
) -> tuple[FArray, FArray]:
    """Scaled residuals (len(idx), 3T) of the ODE against the measurement, and the solver's ok mask."""
    sol = integrate_pairs(
        traj.t,
        traj.H[idx, 0],
        traj.Y[idx, 0],
        traj.W[idx, 0],
        k_h,
        k_y,
        traj.dy2[idx],
        method=method,
        rtol=1e-8,
        atol=1e-11,
    )
    sH, sY = _series_scales(traj)
    r = np.concatenate(
        [
            (sol.H - traj.H[idx]) / sH[idx, None],
            (sol.Y - traj.Y[idx]) / sY[idx, None],
            (sol.W - traj.W[idx]) / sY[idx, None],
        ],
        axis=1,
    )
    good = sol.ok & np.all(np.isfinite(r), axis=1)
    return r, good


def _conservation(traj: PairObservables, ratio: FArray) -> FArray:
    """Standard deviation over time of ``A(t) = H − ratio·Y/H`` relative to the size of its two terms.

    The scale is ``max_t (H + ratio·|Y|/H)``, so the residual lies in [0, 1] (0: conserved exactly).
    """
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        q = ratio[:, None] * traj.Y / traj.H
        a = traj.H - q
        ok = np.all(np.isfinite(a), axis=1)
        spread = np.std(np.where(ok[:, None], a, 0.0), axis=1)
        size = np.fmax.reduce(np.abs(traj.H) + np.abs(q), axis=1)
        return np.where(ok & (size > 0), spread / size, np.nan)


# --------------------------------------------------------------------------------------------------
# stage 1: closed-form estimators
# --------------------------------------------------------------------------------------------------


def _closed_form_group_rates(
    traj: PairObservables,
    use: FArray,
    g: FArray,
    G: int,
    sh: FArray,
    sy: FArray,
) -> tuple[FArray, FArray]:
    """Weighted least-squares slopes of ΔH and Δ(Y/H) against −∫W per group; (G,) each, NaN if none."""
    t = traj.t
    cum_w = _cumtrapz(traj.W, t)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = traj.Y / traj.H
        dq = q - q[:, :1]
    dH = traj.H - traj.H[:, :1]
    sH, _ = _series_scales(traj)
    sq = np.fmax.reduce(np.abs(q), axis=1)
    sq = np.where(np.isfinite(sq) & (sq > 0), sq, 1.0)
    valid_q = np.isfinite(dq) & (traj.H > 0)
    # per pair normal-equation pieces, residuals scaled by the pair's own size
    xh = sh[:, None] * cum_w / sH[:, None]
    yh = -dH / sH[:, None]
    xq = np.where(valid_q, sy[:, None] * cum_w / sq[:, None], 0.0)
    yq = np.where(valid_q, -dq / sq[:, None], 0.0)
    w = use.astype(np.float64)
    num_h = np.bincount(g, weights=w * np.sum(xh * yh, axis=1), minlength=G)
    den_h = np.bincount(g, weights=w * np.sum(xh * xh, axis=1), minlength=G)
    num_y = np.bincount(g, weights=w * np.sum(xq * yq, axis=1), minlength=G)
    den_y = np.bincount(g, weights=w * np.sum(xq * xq, axis=1), minlength=G)
    with np.errstate(invalid="ignore", divide="ignore"):
        kh = np.where(den_h > 0, num_h / den_h, np.nan)
        ky = np.where(den_y > 0, num_y / den_y, np.nan)
    return kh, ky


def closed_form_rates(
    traj: PairObservables,
    *,
    group: FArray | int | None = None,
    scale_h: FArray | float | None = None,
    scale_y: FArray | float | None = None,
    min_signal: float = 1e-3,
    method: str = "LSODA",
    diagnostics: bool = True,
) -> RateFit:
    """Effective rates from the conservation laws, without solving the ODE for the estimate.

    Parameters
    ----------
    traj : PairObservables
    group : int array of shape (n,), int or None
        Rate group of each pair; None fits every pair on its own, ``0`` fits one pair of rates for all.
    scale_h, scale_y : array of shape (n,), float or None
        Known per-pair factors: ``k_h = κ_h[group]·scale_h`` and ``k_y = κ_y[group]·scale_y``.
    min_signal : float, default 1e-3
        Pairs whose ``H`` and ``Y`` both change by less than this fraction of their size carry no
        information on the rates and are left unfitted.
    method : str, default "LSODA"
        Solver for the diagnostic trajectory error.
    diagnostics : bool, default True
        Compute ``fit_error`` by integrating the ODE with the estimated rates (one batched solve).

    Returns
    -------
    RateFit
        ``method == "closed-form"``.

    Raises
    ------
    DataError
        When the trajectories have fewer than 3 time points.
    """
    if traj.n_times < MIN_TIMES:
        raise DataError(
            f"fitting needs at least {MIN_TIMES} time points per pair, got {traj.n_times}; "
            "use more checkpoints or a larger fit fraction"
        )
    n = traj.n_pairs
    g, G = _groups(n, group)
    sh, sy = _scales(n, scale_h, "scale_h"), _scales(n, scale_y, "scale_y")
    reasons = _screen(traj, min_signal)
    use = np.array([r == "" for r in reasons], dtype=bool)
    kh_g, ky_g = _closed_form_group_rates(traj, use, g, G, sh, sy)
    bad_g = ~(np.isfinite(kh_g) & np.isfinite(ky_g) & (kh_g > 0) & (ky_g > 0))
    for i in np.nonzero(use & bad_g[g])[0]:
        reasons[i] = "rate estimate is not positive: the trajectory does not follow the pair system"
    kh_g = np.where(bad_g, np.nan, kh_g)
    ky_g = np.where(bad_g, np.nan, ky_g)
    return _finish(
        traj, kh_g, ky_g, g, sh, sy, reasons, "closed-form", 0,
        {"min_signal": min_signal, "n_groups": G}, method, diagnostics,
    )  # fmt: skip


def _finish(
    traj: PairObservables,
    kh_g: FArray,
    ky_g: FArray,
    g: FArray,
    sh: FArray,
    sy: FArray,
    reasons: list[str],
    how: str,
    iterations: int,
    settings: dict,
    method: str,
    diagnostics: bool,
) -> RateFit:
    fitted = np.array([r == "" for r in reasons], dtype=bool)
    k_h = np.where(fitted, kh_g[g] * sh, np.nan)
    k_y = np.where(fitted, ky_g[g] * sy, np.nan)
    err = np.full(traj.n_pairs, np.nan)
    if diagnostics and fitted.any():
        err, ok = trajectory_error(traj, k_h, k_y, method=method)
        for i in np.nonzero(fitted & ~ok)[0]:
            reasons[i] = "the ODE solver failed with the fitted rates"
        fitted &= ok
        k_h = np.where(fitted, k_h, np.nan)
        k_y = np.where(fitted, k_y, np.nan)
    cons = np.where(fitted, _conservation(traj, k_h / np.where(fitted, k_y, 1.0)), np.nan)
    return RateFit(
        k_h=k_h,
        k_y=k_y,
        fitted=fitted,
        reason=tuple(reasons),
        fit_error=np.where(fitted, err, np.nan),
        conservation_residual=cons,
        group=g,
        group_rates=np.stack([kh_g, ky_g], axis=1),
        method=how,
        iterations=iterations,
        settings=settings,
    )


# --------------------------------------------------------------------------------------------------
# stage 2: ODE least squares (vectorised Levenberg–Marquardt over groups)
# --------------------------------------------------------------------------------------------------


def fit_rates(
    traj: PairObservables,
    *,
    group: FArray | int | None = None,
    scale_h: FArray | float | None = None,
    scale_y: FArray | float | None = None,
    min_signal: float = 1e-3,
    max_iter: int = 40,
    tol: float = 1e-5,
    method: str = "LSODA",
) -> RateFit:
    """Fit the rates by ODE least squares, starting from the closed-form estimates.

    Minimises, per group, ``Σ_pairs Σ_t [(ΔH/s_H)² + (ΔY/s_Y)² + (ΔW/s_Y)²]`` between the measurement and
    the pair system integrated from the measured initial values (``s_H``, ``s_Y`` are each pair's series
    sizes). All groups are iterated together: one batched integration per residual evaluation, a
    forward-difference Jacobian in ``(ln κ_h, ln κ_y)`` (two more), a 2×2 damped Gauss–Newton step per
    group, and a per-group accept/reject with its own damping.

    Parameters
    ----------
    traj : PairObservables
    group, scale_h, scale_y, min_signal
        As in :func:`closed_form_rates`.
    max_iter : int, default 40
        Iterations after which a group that has not converged is reported as not fitted.
    tol : float, default 1e-5
        Relative decrease of a group's cost below which it has converged.
    method : {"LSODA", "Radau", "BDF"}, default "LSODA"

    Returns
    -------
    RateFit
        ``method == "ode"``.

    Raises
    ------
    DataError
        When the trajectories have fewer than 3 time points.
    """
    if max_iter < 1:
        raise ConfigError("max_iter must be >= 1")
    start = closed_form_rates(
        traj, group=group, scale_h=scale_h, scale_y=scale_y, min_signal=min_signal,
        method=method, diagnostics=False,
    )  # fmt: skip
    n = traj.n_pairs
    g, G = start.group, start.group_rates.shape[0]
    sh, sy = _scales(n, scale_h, "scale_h"), _scales(n, scale_y, "scale_y")
    reasons = list(start.reason)
    # groups whose closed-form estimate failed start from the median of the others (if any); their
    # screened-out pairs (zero distance, no signal, non-finite) stay out
    screen = _screen(traj, min_signal)
    use = np.array([r == "" for r in screen], dtype=bool)
    kh_g, ky_g = start.group_rates[:, 0].copy(), start.group_rates[:, 1].copy()
    good_g = np.isfinite(kh_g) & np.isfinite(ky_g)
    if not good_g.any():
        fallback = _fallback_rates(traj, use, sh, sy)
        if fallback is None:
            return _finish(
                traj, kh_g, ky_g, g, sh, sy, reasons, "ode", 0,
                {"min_signal": min_signal, "max_iter": max_iter, "tol": tol, "n_groups": G},
                method, True,
            )  # fmt: skip
        kh_g[:], ky_g[:] = fallback
    else:
        kh_g = np.where(good_g, kh_g, np.median(kh_g[good_g]))
        ky_g = np.where(good_g, ky_g, np.median(ky_g[good_g]))
    for i in np.nonzero(use)[0]:
        reasons[i] = ""
    theta = np.log(np.stack([kh_g, ky_g], axis=1))
    theta0 = theta.copy()
    has_pairs = np.bincount(g[use], minlength=G) > 0
    active = has_pairs.copy()
    converged = np.zeros(G, dtype=bool)
    lam = np.full(G, 1e-2)
    delta = 1e-3

    def cost_of(th: FArray, pairs: FArray) -> tuple[FArray, FArray, FArray]:
        kh = np.exp(th[g[pairs], 0]) * sh[pairs]
        ky = np.exp(th[g[pairs], 1]) * sy[pairs]
        r, good = _residuals(traj, pairs, kh, ky, method)
        r = np.where(good[:, None], r, 0.0)
        c = np.bincount(g[pairs], weights=np.sum(r * r, axis=1), minlength=G)
        bad = np.bincount(g[pairs], weights=(~good).astype(np.float64), minlength=G) > 0
        return r, np.where(bad, np.inf, c), good

    pairs = np.nonzero(use & active[g])[0]
    r, cost, good = cost_of(theta, pairs)
    # pairs whose integration fails at the starting rates are dropped from their group
    for i in pairs[~good]:
        reasons[i] = "the ODE solver failed at the starting rates"
    use[pairs[~good]] = False
    has_pairs = np.bincount(g[use], minlength=G) > 0
    active &= has_pairs
    if (~good).any():
        pairs = np.nonzero(use & active[g])[0]
        r, cost, _ = cost_of(theta, pairs)
    # residuals at the current rates, kept between iterations (rows of accepted trials replaced)
    current = np.zeros((n, 3 * traj.n_times))
    current[pairs] = r
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (iteration count reported)
        pairs = np.nonzero(use & active[g])[0]
        if pairs.size == 0:
            break
        r = current[pairs]
        J = np.empty(r.shape + (2,))
        for k in range(2):
            th_k = theta.copy()
            th_k[:, k] += delta
            rk, _, gk = cost_of(th_k, pairs)
            J[..., k] = np.where(gk[:, None], (rk - r) / delta, 0.0)
        JtJ = np.zeros((G, 2, 2))
        Jtr = np.zeros((G, 2))
        np.add.at(JtJ, g[pairs], np.einsum("itk,itl->ikl", J, J))
        np.add.at(Jtr, g[pairs], np.einsum("itk,it->ik", J, r))
        A = JtJ + lam[:, None, None] * (
            JtJ * np.eye(2)[None]
            + 1e-12 * np.eye(2)[None] * (1.0 + np.trace(JtJ, axis1=1, axis2=2))[:, None, None]
        )
        with np.errstate(invalid="ignore", over="ignore"):
            step = -np.linalg.solve(A, Jtr[..., None])[..., 0]
        step = np.where(np.isfinite(step), np.clip(step, -2.0, 2.0), 0.0)
        trial = np.clip(
            theta + np.where(active[:, None], step, 0.0), theta0 - _LOG_RANGE, theta0 + _LOG_RANGE
        )
        r_t, cost_t, _ = cost_of(trial, pairs)
        better = active & (cost_t < cost)
        accepted = better[g[pairs]]
        current[pairs[accepted]] = r_t[accepted]
        gain = np.where(better, (cost - cost_t) / np.maximum(cost, 1e-300), 0.0)
        theta = np.where(better[:, None], trial, theta)
        cost = np.where(better, cost_t, cost)
        lam = np.where(better, np.maximum(lam / 3.0, 1e-9), np.minimum(lam * 4.0, 1e12))
        small_step = np.max(np.abs(step), axis=1) < 1e-7
        done = active & (
            (better & (gain < tol)) | small_step | (cost < 1e-28) | (~better & (lam >= 1e12))
        )
        converged |= done
        active &= ~done
        if not active.any():
            break
    not_conv = has_pairs & ~converged
    for i in np.nonzero(use & not_conv[g])[0]:
        reasons[i] = f"the ODE fit did not converge in {max_iter} iterations"
    kh_g = np.where(has_pairs, np.exp(theta[:, 0]), np.nan)
    ky_g = np.where(has_pairs, np.exp(theta[:, 1]), np.nan)
    return _finish(
        traj, kh_g, ky_g, g, sh, sy, reasons, "ode", it,
        {"min_signal": min_signal, "max_iter": max_iter, "tol": tol, "n_groups": G},
        method, True,
    )  # fmt: skip


def _fallback_rates(
    traj: PairObservables, use: FArray, sh: FArray, sy: FArray
) -> tuple[float, float] | None:
    """Starting rates when no closed-form estimate is positive: one time constant over the window."""
    if not use.any() or traj.n_times < 2:
        return None
    span = float(traj.t[-1] - traj.t[0])
    sH, sY = _series_scales(traj)
    # k_h·W ~ H / span and k_y·H ~ 1/span for an O(1) change over the window
    kh = float(np.median((sH / sY)[use] / sh[use])) / span
    ky = float(np.median((1.0 / sH)[use] / sy[use])) / span
    return kh, ky
