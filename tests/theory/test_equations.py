"""The pair system, its closed forms and the 9-variable fixed-expansion-point model."""

from __future__ import annotations

import numpy as np
import pytest

from dfalens.errors import ConfigError, DataError
from dfalens.theory import equations as th
from dfalens.theory import fixed_point as fp


def _random_pairs(n: int, seed: int, same_fraction: float = 0.5):
    rng = np.random.default_rng(seed)
    H0 = rng.uniform(0.2, 2.0, n)
    Y0 = rng.uniform(0.1, 1.0, n)
    dy2 = np.where(rng.random(n) < same_fraction, 0.0, rng.uniform(0.1, 1.0, n))
    # W = Y − Δy*·Δŷ with |Δy*·Δŷ| <= √(Y·dy2): a consistent initial state
    W0 = Y0 - np.sqrt(Y0 * dy2) * rng.uniform(-1, 1, n)
    k_h = rng.uniform(0.5, 2.0, n)
    k_y = rng.uniform(0.5, 2.0, n)
    return H0, Y0, W0, k_h, k_y, dy2


def _rel(a, b, floor=1e-12):
    return np.abs(a - b) / np.maximum(np.abs(b), floor)


@pytest.mark.parametrize("method", ["LSODA", "Radau"])
def test_integrated_system_conserves_a_high(method):
    H0, Y0, W0, kh, ky, dy2 = _random_pairs(12, 0, same_fraction=0.0)
    t = np.linspace(0.0, 30.0, 61)
    sol = th.integrate_pairs(t, H0, Y0, W0, kh, ky, dy2, method=method)
    assert sol.ok.all()
    a = th.a_high(H0, Y0, kh, ky)
    c = th.conserved_quantity(sol.H, sol.Y, kh[:, None], ky[:, None])
    assert np.max(_rel(c, a[:, None], 1.0)) <= 1e-6


def test_integrated_system_reaches_closed_form_final_distance():
    H0, Y0, W0, kh, ky, dy2 = _random_pairs(16, 1, same_fraction=0.0)
    t = np.array([0.0, 1e3, 4e3])
    sol = th.integrate_pairs(t, H0, Y0, W0, kh, ky, dy2)
    h_inf = th.final_distance(th.a_high(H0, Y0, kh, ky), th.a_low(dy2, kh, ky))
    assert sol.ok.all()
    assert np.max(_rel(sol.H[:, -1], h_inf)) <= 1e-6
    # the end state has Δŷ = Δy*: Y = dy2 and W = 0
    assert np.max(_rel(sol.Y[:, -1], dy2)) <= 1e-6
    assert np.max(np.abs(sol.W[:, -1])) <= 1e-6


def test_same_target_pairs_follow_the_logistic_solution():
    H0, Y0, _, kh, ky, _ = _random_pairs(20, 2)
    dy2 = np.zeros_like(H0)
    t = np.linspace(0.0, 40.0, 81)
    sol = th.integrate_pairs(t, H0, Y0, Y0, kh, ky, dy2)
    a = th.a_high(H0, Y0, kh, ky)
    assert (a < 0).any() and (a > 0).any()
    logistic = th.same_target_solution(t[None, :], H0[:, None], a[:, None], ky[:, None])
    # relative error on the distance itself, floored where the pair has merged to ~1e-12
    assert np.max(np.abs(sol.H - logistic) / np.maximum(np.abs(logistic), 1e-9)) <= 1e-6
    assert np.allclose(sol.W, sol.Y, rtol=1e-6, atol=1e-12)


def test_logistic_limits_and_no_overflow():
    t = np.array([0.0, 1.0, 1e6])
    assert th.same_target_solution(t, 2.0, 0.0, 0.5) == pytest.approx(2.0 / (1 + 0.5 * 2.0 * t))
    neg = th.same_target_solution(t, 1.0, -3.0, 1.0)
    assert np.all(np.isfinite(neg)) and neg[-1] == 0.0
    pos = th.same_target_solution(t, 1.0, 0.25, 1.0)
    assert pos[-1] == pytest.approx(0.25)


def test_icml_and_rnn_forms_are_the_same_system():
    # ICML: k_h = η_h·dx2, k_y = η_y; RNN: k_h = (1/τ_h1 + 1/τ_h2)/2, k_y = 1/(2Nτ_y)
    kh1, ky1 = th.icml_rates(0.3, 0.2, 2.0)
    kh2, ky2 = th.rnn_rates(0.5, 0.7, 1.6, 4)
    assert (kh1, ky1) == pytest.approx((0.6, 0.2))
    assert (kh2, ky2) == pytest.approx((0.6, 0.2))
    z = np.array([0.7, 0.3, 0.5])
    # the follow-up's equations written with 1/τ_h and 1/(Nτ_y)
    inv_th, inv_nty, dy2 = 1.2, 0.4, 0.25
    H, Y, W = z
    expected = [
        -0.5 * inv_th * W,
        -0.5 * (H * inv_nty + inv_th * Y / H) * W,
        -0.25 * inv_nty * (3 * W - Y + dy2) * H - 0.25 * inv_th * (W / H) * (Y + W),
    ]
    assert th.pair_rhs(z, kh2, ky2, dy2) == pytest.approx(expected)


def test_jacobian_matches_finite_differences():
    z = np.array([0.8, 0.35, 0.2])
    args = (1.3, 0.7, 0.4)
    J = th.pair_jacobian(z, *args)
    eps = 1e-7
    fd = np.stack(
        [
            (th.pair_rhs(z + eps * e, *args) - th.pair_rhs(z - eps * e, *args)) / (2 * eps)
            for e in np.eye(3)
        ],
        axis=1,
    )
    assert np.allclose(J, fd, atol=1e-7)


def test_final_distance_formula_and_its_limits():
    a = np.array([-2.0, -1e-9, 0.0, 1.5, -1e8])
    b = np.array([0.5, 0.0, 0.3, 0.0, 1.0])
    h = th.final_distance(a, b)
    naive = 0.5 * a + np.sqrt(0.25 * a * a + b * b)
    assert h[:4] == pytest.approx(naive[:4], rel=1e-9, abs=1e-300)
    # A_low = 0: H∞ = max(A_high, 0)
    assert h[1] == 0.0 and h[3] == 1.5
    # no cancellation for very negative A_high: H∞ ≈ A_low²/|A_high|
    assert h[4] == pytest.approx(1e-8, rel=1e-6)


@pytest.mark.parametrize(
    ("a_hi", "a_lo", "merge"),
    [
        (-0.5, 0.0, True),  # identical targets, A_high < 0
        (0.5, 0.0, False),  # identical targets but the decoder is too weak: stalls at A_high
        (0.0, 0.0, False),  # algebraic decay: not a merger by the strict predicate
        (-0.5, 0.1, False),  # targets differ: always a positive final distance
        (-50.0, 1e-3, False),
    ],
)
def test_merger_predicate(a_hi, a_lo, merge):
    assert bool(th.merges(a_hi, a_lo)) is merge
    assert (th.final_distance(a_hi, a_lo) > 0) is (a_lo > 0 or a_hi > 0)


def test_merger_predicate_from_constructed_pairs():
    # same targets; Y0/H0 large enough that A_high = H0 − (k_h/k_y)·Y0/H0 < 0 -> merges and the ODE agrees
    H0, Y0, kh, ky = np.array([1.0, 1.0]), np.array([2.0, 0.1]), np.ones(2), np.ones(2)
    a = th.a_high(H0, Y0, kh, ky)
    assert list(th.merges(a, th.a_low(np.zeros(2), kh, ky))) == [True, False]
    sol = th.integrate_pairs(np.array([0.0, 200.0]), H0, Y0, Y0, kh, ky, np.zeros(2))
    assert sol.H[0, -1] < 1e-30 and sol.H[1, -1] == pytest.approx(0.9, rel=1e-6)


def test_merge_time_hits_the_threshold():
    H0, ky = 1.0, 0.5
    for a in (-0.7, 0.0, 1e-5):
        eps2 = 1e-4
        t_eps = th.merge_time(eps2, H0, a, ky)
        assert th.same_target_solution(t_eps, H0, a, ky) == pytest.approx(eps2, rel=1e-8)
    assert th.merge_time(1e-4, 1.0, 0.3, 1.0) == np.inf
    assert th.merge_time(1e-4, 1e-6, -1.0, 1.0) == 0.0


def test_relaxation_eigenvalues_match_the_integrated_approach():
    H0, Y0, W0, kh, ky, dy2 = (np.array([v]) for v in (1.0, 0.6, 0.2, 0.8, 1.1, 0.5))
    a, b = th.a_high(H0, Y0, kh, ky), th.a_low(dy2, kh, ky)
    lam1, lam2 = th.relaxation_eigenvalues(a, b, kh, ky, dy2)
    assert np.all(lam1.real < 0) and np.all(lam2.real < 0)
    slow = max(lam1.real[0], lam2.real[0])
    t = np.linspace(0, 60, 601)
    sol = th.integrate_pairs(t, H0, Y0, W0, kh, ky, dy2)
    dev = np.abs(sol.H[0] - th.final_distance(a, b)[0])
    late = (t > 5) & (t < 25)
    rate = np.polyfit(t[late], np.log(dev[late]), 1)[0]
    assert rate == pytest.approx(slow, rel=0.05)


def test_pair_loss_is_half_mse_of_the_pair():
    rng = np.random.default_rng(3)
    yh, ys = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    dyh, dys = yh[1] - yh[0], ys[1] - ys[0]
    Y, W, dy2 = dyh @ dyh, dyh @ dyh - dyh @ dys, dys @ dys
    mean_err0 = np.sum((yh.mean(0) - ys.mean(0)) ** 2)
    loss = 0.5 * np.mean(np.sum((yh - ys) ** 2, axis=1))
    assert th.pair_loss(Y, W, dy2, mean_err0) == pytest.approx(loss)


def test_integrator_reports_bad_input():
    t = np.linspace(0, 1, 3)
    with pytest.raises(DataError, match="zero distance"):
        th.integrate_pairs(t, [0.0], [1.0], [1.0], [1.0], [1.0], [0.0])
    with pytest.raises(DataError, match="NaN"):
        th.integrate_pairs(t, [1.0], [np.nan], [1.0], [1.0], [1.0], [0.0])
    with pytest.raises(ConfigError, match="increasing"):
        th.integrate_pairs(t[::-1], [1.0], [1.0], [1.0], [1.0], [1.0], [0.0])
    with pytest.raises(ConfigError, match="ODE method"):
        th.integrate_pairs(t, [1.0], [1.0], [1.0], [1.0], [1.0], [0.0], method="RK45")


def test_solver_failure_is_isolated_to_its_pair(monkeypatch):
    monkeypatch.setattr(th, "_MAX_EVALS", 3000)  # fail the stalled solve quickly
    t = np.linspace(0, 10, 5)
    # an absurd rate makes one pair blow up; the other must still come back
    sol = th.integrate_pairs(
        t, [1.0, 1.0], [1.0, 1.0], [-50.0, 0.5], [1e300, 1.0], [1e300, 1.0], [0.5, 0.5]
    )
    assert not sol.ok[0] and sol.ok[1]
    assert np.all(np.isfinite(sol.H[1]))


# --------------------------------------------------------------------------------------------------
# 9-variable model
# --------------------------------------------------------------------------------------------------


def _fp_run(len1: int, len2: int, agree: bool, seed: int, g: float = 0.1):
    rng = np.random.default_rng(seed)
    h1, h2 = rng.normal(0, g, 2)
    b, dv = rng.normal(0, g, (1, 1)), rng.normal(0, g, (1, 1))
    y1 = np.ones((1, 1))
    y2 = y1.copy() if agree else np.zeros((1, 1))
    z0, targets = fp.fixed_point_state(h1, h2, b, dv, y1, y2)
    rates = fp.fixed_point_rates(len1, len2, lr=0.02)
    return fp.integrate_fixed_point(np.linspace(0, 1000, 501), z0, targets, **rates)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fixed_point_model_equal_rates_never_diverge(seed):
    for length in (1, 3, 10):
        d = _fp_run(length, length, agree=True, seed=seed).distance2
        assert np.all(np.diff(d) <= 1e-12 * max(d[0], 1e-300))
        assert d[-1] < 0.95 * d[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fixed_point_model_unequal_rates_diverge_then_merge(seed):
    d = _fp_run(1, 10, agree=True, seed=seed).distance2
    peak = int(np.argmax(d))
    assert d[peak] > 50 * d[0]  # moves apart first ...
    assert 0 < peak < d.size - 1
    assert d[-1] < 0.01 * d[peak]  # ... then merges


def test_fixed_point_model_disagreeing_pair_separates_and_loss_decreases():
    sol = _fp_run(1, 10, agree=False, seed=0)
    d = sol.distance2
    assert d[-1] > 100 * d[0] and d[-1] >= 0.99 * d.max()
    assert np.all(np.diff(sol.loss) <= 1e-12)
    assert sol.loss[-1] < 1e-3 * sol.loss[0]


def test_fixed_point_rhs_is_the_gradient_flow_of_its_loss():
    # with all rates equal to 1 the h-derivatives are −∂L/∂h_α·(per-coordinate factor): check the loss
    # decreases at the rate −Σ (∂L/∂x)·ẋ for a random consistent state
    rng = np.random.default_rng(5)
    z0, targets = fp.fixed_point_state(
        0.3, -0.2, rng.normal(size=(3, 2)), rng.normal(size=(3, 2)), rng.normal(size=(3, 2)),
        rng.normal(size=(3, 2)),
    )  # fmt: skip
    rates = {"eta_h1": 0.7, "eta_h2": 0.2, "eta_y": 0.5, "eta_b": 0.3}
    dz = fp.fixed_point_rhs(z0, targets, **rates)
    eps = 1e-6
    grad = np.array(
        [
            (
                fp.fixed_point_loss(z0 + eps * e, targets)
                - fp.fixed_point_loss(z0 - eps * e, targets)
            )
            / (2 * eps)
            for e in np.eye(9)
        ]
    )
    dL = grad @ dz
    sol = fp.integrate_fixed_point(np.array([0.0, 1e-4]), z0, targets, **rates)
    assert (sol.loss[1] - sol.loss[0]) / 1e-4 == pytest.approx(dL, rel=1e-3)
    assert dL < 0


def test_fixed_point_bad_input():
    with pytest.raises(ConfigError):
        fp.fixed_point_rates(1, 2, lr=0.0)
    with pytest.raises(DataError):
        fp.fixed_point_state(
            0.0, 0.0, np.ones((2, 1)), np.ones((3, 1)), np.ones((2, 1)), np.ones((2, 1))
        )
    with pytest.raises(ConfigError):
        fp.integrate_fixed_point(
            np.array([0.0]), np.zeros(9), np.zeros(3), eta_h1=1, eta_h2=1, eta_y=1, eta_b=1
        )
