"""Fitting effective rates: recovery from noisy synthetic trajectories, diagnostics, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from dfalens.errors import DataError
from dfalens.theory import equations as th
from dfalens.theory.fit import PairObservables, closed_form_rates, fit_rates


def _synthetic(n: int, seed: int, noise: float, shared: bool = False):
    """Pairs that move a lot over the window (rates identifiable), with multiplicative noise."""
    rng = np.random.default_rng(seed)
    H0 = rng.uniform(0.3, 1.5, n)
    Y0 = rng.uniform(0.5, 1.5, n)
    dy2 = np.where(np.arange(n) % 2 == 0, 0.0, rng.uniform(0.2, 1.0, n))
    W0 = Y0 - np.sqrt(Y0 * dy2) * rng.uniform(-1.0, -0.2, n)  # outputs pointing away from targets
    if shared:
        kh, ky = np.full(n, 0.012), np.full(n, 0.008)
    else:
        kh, ky = rng.uniform(0.006, 0.02, n), rng.uniform(0.006, 0.02, n)
    t = np.linspace(0.0, 300.0, 61)
    sol = th.integrate_pairs(t, H0, Y0, W0, kh, ky, dy2)
    assert sol.ok.all()

    def noisy(a):
        return a * (1.0 + noise * rng.standard_normal(a.shape))

    return PairObservables(t, noisy(sol.H), noisy(sol.Y), noisy(sol.W), dy2), kh, ky


def test_closed_form_recovers_rates_without_noise():
    obs, kh, ky = _synthetic(20, 0, noise=0.0)
    fit = closed_form_rates(obs)
    assert fit.fitted.all() and fit.method == "closed-form"
    # the trapezoid integral of W on a 5-epoch grid costs a little accuracy; the ODE fit removes it
    assert np.median(np.abs(fit.k_h / kh - 1)) < 0.02
    assert np.median(np.abs(fit.k_y / ky - 1)) < 0.02


def test_ode_fit_recovers_per_pair_rates_from_noisy_trajectories():
    obs, kh, ky = _synthetic(16, 1, noise=0.01)
    fit = fit_rates(obs)
    assert fit.fitted.all() and fit.method == "ode"
    assert np.median(np.abs(fit.k_h / kh - 1)) < 0.03
    assert np.median(np.abs(fit.k_y / ky - 1)) < 0.03
    assert np.median(np.abs(fit.ratio / (kh / ky) - 1)) < 0.06
    # the fit error is the noise level, and the measured pairs keep A_high to within the noise
    assert np.all(fit.fit_error < 0.03)
    assert np.median(fit.conservation_residual) < 0.05


def test_ode_fit_beats_the_closed_form_start():
    obs, kh, ky = _synthetic(12, 2, noise=0.02)
    cf = closed_form_rates(obs)
    ode = fit_rates(obs)
    assert np.median(ode.fit_error) <= np.median(cf.fit_error) + 1e-12


def test_pooled_fit_recovers_shared_rates_and_scaled_models():
    obs, _, _ = _synthetic(12, 3, noise=0.02, shared=True)
    fit = fit_rates(obs, group=0)
    assert fit.group_rates.shape == (1, 2)
    assert fit.group_rates[0] == pytest.approx([0.012, 0.008], rel=0.03)
    # a known per-pair factor (as k_h ∝ m1 + m2 for RNN prefixes) is divided out of the group rate
    factor = np.arange(12) % 3 + 1.0
    sol = th.integrate_pairs(
        obs.t, obs.H[:, 0], obs.Y[:, 0], obs.W[:, 0], 0.004 * factor, 0.003 * factor, obs.dy2
    )
    scaled = PairObservables(obs.t, sol.H, sol.Y, sol.W, obs.dy2)
    fit2 = fit_rates(scaled, group=np.zeros(12, int), scale_h=factor, scale_y=factor)
    assert fit2.group_rates[0] == pytest.approx([0.004, 0.003], rel=1e-3)
    assert fit2.k_h == pytest.approx(0.004 * factor, rel=1e-3)


def test_bad_pairs_are_marked_not_fitted_never_nan_silently():
    obs, _, _ = _synthetic(6, 4, noise=0.0)
    H = obs.H.copy()
    Y = obs.Y.copy()
    W = obs.W.copy()
    H[0, 0] = 0.0  # zero distance at the start
    Y[1, 3] = np.nan  # broken measurement
    H[2] = H[2, 0]  # a pair that does not move at all
    Y[2] = Y[2, 0]
    W[2] = 0.0
    fit = fit_rates(PairObservables(obs.t, H, Y, W, obs.dy2))
    assert list(fit.fitted) == [False, False, False, True, True, True]
    assert "zero distance" in fit.reason[0]
    assert "non-finite" in fit.reason[1]
    assert "no movement" in fit.reason[2]
    assert all(r == "" for r in fit.reason[3:])
    assert np.all(np.isnan(fit.k_h[:3])) and np.all(np.isfinite(fit.k_h[3:]))
    summary = fit.summary()
    assert summary["n_fitted"] == 3 and sum(summary["not_fitted"].values()) == 3


def test_wrong_sign_trajectories_are_rejected():
    # H growing while W > 0: dH/dt = −k_h W would need a negative rate
    t = np.linspace(0, 10, 11)
    H = (1.0 + 0.1 * t)[None]
    Y = np.full_like(H, 0.5)
    W = np.full_like(H, 0.5)
    fit = closed_form_rates(PairObservables(t, H, Y, W, [0.0]))
    assert not fit.fitted[0] and "not positive" in fit.reason[0]


def test_too_few_time_points_is_a_clear_error():
    obs, _, _ = _synthetic(2, 5, noise=0.0)
    with pytest.raises(DataError, match="at least 3 time points"):
        fit_rates(obs.window(obs.t[1]))


def test_non_convergence_is_reported(monkeypatch):
    obs, _, _ = _synthetic(4, 6, noise=0.05)
    fit = fit_rates(obs, max_iter=1, tol=0.0)
    assert not fit.fitted.any()
    assert all("did not converge in 1 iterations" in r for r in fit.reason)


def test_observables_validate_shapes():
    with pytest.raises(DataError):
        PairObservables(np.arange(3.0), np.ones((2, 3)), np.ones((2, 4)), np.ones((2, 3)), [0, 0])
    with pytest.raises(DataError):
        PairObservables(
            np.array([0.0, 0.0, 1.0]), np.ones((1, 3)), np.ones((1, 3)), np.ones((1, 3)), [0]
        )
