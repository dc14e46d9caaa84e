"""Predicting mergers of RNN prefix pairs with the effective theory, and scoring the prediction.

For two words ``u`` and ``v`` of a prefix tree the theory's observables are (ICML 2025, §3.2):

* ``H = ‖h_v − h_u‖²``, the squared distance of the two hidden states;
* ``Y = ⟨‖ŷ(vc) − ŷ(uc)‖²⟩`` and ``W = ⟨‖ŷ(vc) − ŷ(uc)‖² − (ŷ(vc) − ŷ(uc))·(y*(vc) − y*(uc))⟩``, averages over
  the ``N`` *shared continuations* ``c`` (the empty one included) for which both ``uc`` and ``vc`` are
  training words;
* ``dy2 = ⟨‖y*(vc) − y*(uc)‖²⟩``: zero exactly when the two words agree on every shared continuation.

:func:`pair_observables` computes them for many pairs at every checkpoint, vectorised over pairs and
continuations. :func:`predict_mergers` fits the effective rates on the checkpoints up to a cut-off epoch,
predicts each pair's distance at the last checkpoint (and at infinity), and scores the prediction against
what the network did: confusion matrix of merged / not merged (distance below ``eps``), precision, recall
and the Spearman rank correlation of final distances, next to two baselines (a pair merges iff it is
already merged at the cut-off; iff it agrees).

Rates are either *pooled* (the theory's RNN model: ``k_h ∝ m1 + m2`` since ``1/τ_h ∝`` sequence length,
and ``k_y ∝ 1/N``; one constant each for the whole network) or fitted *per pair*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from dfalens._args import DeprecatedAlias
from dfalens.errors import ConfigError, DataError
from dfalens.probes._eps import renamed
from dfalens.theory.equations import a_high, a_low, final_distance, integrate_pairs, merges
from dfalens.theory.fit import (
    PairObservables,
    RateFit,
    _conservation,
    _screen,
    closed_form_rates,
    fit_rates,
    trajectory_error,
)
from dfalens.timeline.pairs import pair_distances

__all__ = [
    "PairIndex",
    "pair_index",
    "pair_observables",
    "Score",
    "score_mergers",
    "MergerPrediction",
    "predict_mergers",
]

FArray = np.ndarray
RateMode = Literal["pooled", "pair"]
RATE_MODES = ("pooled", "pair")
_CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True, eq=False)
class PairIndex:
    """Where each pair's shared continuations live in the prefix tree.

    Attributes
    ----------
    i, j : ndarray of int, shape (p,)
        The two nodes of each pair.
    n_cont : ndarray of int, shape (p,)
        Number ``N`` of shared continuations in the data (0: the pair cannot be modelled).
    dy2 : ndarray of float, shape (p,)
        ``⟨‖Δy*‖²⟩`` over the shared continuations (0 where ``n_cont == 0``).
    groups : tuple of (rows, desc_i, desc_j, valid)
        Pairs with the same continuation depth: their row numbers, the descendant nodes of ``i`` and
        ``j`` under each continuation, and which continuations are shared training words.
    targets : ndarray of float, shape (n, n_out)
        The target vector of every node.
    """

    i: FArray
    j: FArray
    n_cont: FArray
    dy2: FArray
    groups: tuple[tuple[FArray, FArray, FArray, FArray], ...]
    targets: FArray


def _children(parent: FArray, symbol: FArray, n_symbols: int) -> FArray:
    n = parent.size
    child = np.full((n + 1, n_symbols), -1, dtype=np.int64)  # row n: children of "missing" (-1)
    has = parent >= 0
    child[parent[has], symbol[has]] = np.nonzero(has)[0]
    return child


def pair_index(
    parent: FArray,
    symbol: FArray,
    depth: FArray,
    targets: FArray,
    i: FArray,
    j: FArray,
    in_data: FArray | None = None,
) -> PairIndex:
    """Index the shared continuations of each pair (see the module docstring).

    Parameters
    ----------
    parent, symbol, depth : ndarray of int, shape (n,)
        The prefix tree (as :class:`dfalens.probes.StateSet`).
    targets : ndarray, shape (n, n_out)
        Target output vector of every node (one-hot classes for the paper's MSE training).
    i, j : ndarray of int, shape (p,)
        The pairs.
    in_data : ndarray of bool, shape (n,), optional
        Which nodes are training words (default: every node but the root).

    Returns
    -------
    PairIndex
    """
    parent = np.asarray(parent, dtype=np.int64)
    symbol = np.asarray(symbol, dtype=np.int64)
    depth = np.asarray(depth, dtype=np.int64)
    n = parent.size
    targets = np.asarray(targets, dtype=np.float64)
    if targets.ndim == 1:
        targets = targets[:, None]
    if targets.shape[0] != n:
        raise DataError(f"targets must have one row per node ({n}), got {targets.shape[0]}")
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    if i.shape != j.shape or i.ndim != 1:
        raise DataError("pairs need 1-D node arrays i and j of the same length")
    if i.size and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= n):
        raise DataError(f"pair nodes must be in 0..{n - 1}")
    data = depth > 0 if in_data is None else np.asarray(in_data, dtype=bool)
    if data.shape != (n,):
        raise DataError(f"in_data must have shape ({n},)")
    data_x = np.append(data, False)  # index -1 (missing) is never data
    n_symbols = int(symbol.max()) + 1 if n > 1 else 1
    child = _children(parent, symbol, n_symbols)
    L = int(depth.max()) if n else 0
    cont_depth = L - np.maximum(depth[i], depth[j])
    n_cont = np.zeros(i.size, dtype=np.int64)
    dy2 = np.zeros(i.size)
    groups = []
    for k in np.unique(cont_depth):  # one group per continuation depth
        rows = np.nonzero(cont_depth == k)[0]
        du, dv = i[rows, None], j[rows, None]
        levels_u, levels_v = [du], [dv]
        for _ in range(int(k)):  # one level of continuations per step
            du = child[du].reshape(rows.size, -1)
            dv = child[dv].reshape(rows.size, -1)
            levels_u.append(du)
            levels_v.append(dv)
        desc_u = np.concatenate(levels_u, axis=1)
        desc_v = np.concatenate(levels_v, axis=1)
        valid = data_x[desc_u] & data_x[desc_v]
        cnt = valid.sum(axis=1)
        diff = targets[desc_v] - targets[desc_u]
        with np.errstate(invalid="ignore", divide="ignore"):
            d2 = np.where(valid, np.einsum("pmo,pmo->pm", diff, diff), 0.0).sum(axis=1)
            dy2[rows] = np.where(cnt > 0, d2 / np.maximum(cnt, 1), 0.0)
        n_cont[rows] = cnt
        groups.append((rows, desc_u, desc_v, valid))
    for a in (i, j, n_cont, dy2, targets):
        a.setflags(write=False)
    return PairIndex(i, j, n_cont, dy2, tuple(groups), targets)


def pair_observables(
    index: PairIndex, hidden: FArray, output: FArray, times: FArray | None = None
) -> PairObservables:
    """``H``, ``Y``, ``W`` of every indexed pair at every checkpoint.

    Parameters
    ----------
    index : PairIndex
    hidden : ndarray, shape (c, n, d)
        Hidden states of every node at each checkpoint.
    output : ndarray, shape (c, n, n_out)
        Network outputs (the readout scores the loss compares with the targets).
    times : ndarray, shape (c,), optional
        Epochs of the checkpoints (default ``0..c-1``).

    Returns
    -------
    PairObservables
        Pairs with no shared continuation get ``Y = W = 0``; :func:`predict_mergers` leaves them out.
    """
    hidden = np.asarray(hidden)
    output = np.asarray(output)
    if hidden.ndim != 3 or output.ndim != 3 or hidden.shape[:2] != output.shape[:2]:
        raise DataError(
            f"hidden (c, n, d) and output (c, n, n_out) must agree, got {hidden.shape} and "
            f"{output.shape}"
        )
    if output.shape[2] != index.targets.shape[1]:
        raise DataError(
            f"the network has {output.shape[2]} outputs but the targets have "
            f"{index.targets.shape[1]}; pass targets in the network's output encoding"
        )
    c = hidden.shape[0]
    t = np.arange(c, dtype=np.float64) if times is None else np.asarray(times, dtype=np.float64)
    H = pair_distances(hidden, index.i, index.j) ** 2
    Y = np.zeros((index.i.size, c))
    W = np.zeros((index.i.size, c))
    out = np.concatenate([output, np.zeros((c, 1, output.shape[2]), output.dtype)], axis=1)
    for rows, desc_u, desc_v, valid in index.groups:  # one group per continuation depth
        ys = index.targets[desc_v] - index.targets[desc_u]  # (p, m, o); index -1 reads a zero row
        cnt = np.maximum(valid.sum(axis=1), 1)
        per_row = c * desc_u.shape[1] * output.shape[2] * 8
        step = max(1, _CHUNK_BYTES // max(per_row, 1))
        for s in range(0, rows.size, step):  # chunks of pairs, all checkpoints at once
            sl = slice(s, s + step)
            dy = out[:, desc_v[sl]].astype(np.float64) - out[:, desc_u[sl]]  # (c, p, m, o)
            sq = np.einsum("cpmo,cpmo->cpm", dy, dy)
            al = np.einsum("cpmo,pmo->cpm", dy, ys[sl])
            m = valid[sl][None]
            Y[rows[sl]] = (np.where(m, sq, 0.0).sum(axis=2) / cnt[sl]).T
            W[rows[sl]] = (np.where(m, sq - al, 0.0).sum(axis=2) / cnt[sl]).T
    return PairObservables(t, H, Y, W, index.dy2)


@dataclass(frozen=True)
class Score:
    """A merger prediction scored against the network.

    Attributes
    ----------
    confusion : dict
        Counts ``tp`` (predicted and merged), ``fp``, ``fn``, ``tn``.
    precision, recall : float or None
        None when undefined (nothing predicted / nothing merged).
    accuracy : float or None
    spearman : float or None
        Rank correlation of predicted and measured final distances (None with < 3 pairs or no spread).
    n : int
        Pairs scored.
    """

    confusion: dict[str, int]
    precision: float | None
    recall: float | None
    accuracy: float | None
    spearman: float | None
    n: int

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "n": self.n,
            "confusion": dict(self.confusion),
            "precision": self.precision,
            "recall": self.recall,
            "accuracy": self.accuracy,
            "spearman": self.spearman,
        }


def score_mergers(
    predicted: FArray,
    measured: FArray,
    predicted_distance: FArray | None = None,
    measured_distance: FArray | None = None,
) -> Score:
    """Confusion matrix, precision, recall and Spearman correlation of a merger prediction.

    Parameters
    ----------
    predicted, measured : ndarray of bool, shape (p,)
        Predicted and actual mergers.
    predicted_distance, measured_distance : ndarray, shape (p,), optional
        Final distances for the rank correlation.
    """
    p = np.asarray(predicted, dtype=bool)
    m = np.asarray(measured, dtype=bool)
    if p.shape != m.shape:
        raise DataError("predicted and measured must have the same shape")
    tp, fp = int((p & m).sum()), int((p & ~m).sum())
    fn, tn = int((~p & m).sum()), int((~p & ~m).sum())
    n = p.size
    rho = None
    if predicted_distance is not None and measured_distance is not None and n >= 3:
        from scipy.stats import spearmanr

        a = np.asarray(predicted_distance, dtype=np.float64)
        b = np.asarray(measured_distance, dtype=np.float64)
        if np.ptp(a) > 0 and np.ptp(b) > 0:
            rho = float(spearmanr(a, b).statistic)
    return Score(
        confusion={"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        precision=tp / (tp + fp) if tp + fp else None,
        recall=tp / (tp + fn) if tp + fn else None,
        accuracy=(tp + tn) / n if n else None,
        spearman=rho,
        n=n,
    )


@dataclass(frozen=True, eq=False)
class MergerPrediction:
    """The theory's merger prediction for a set of pairs, and how it fared.

    Attributes
    ----------
    fitted : ndarray of bool, shape (p,)
        Pairs the theory could make a prediction for.
    reason : tuple of str
        Why a pair has no prediction ("" when it has one).
    predicted_h : ndarray, shape (p,)
        Predicted squared distance at the last checkpoint (NaN where not ``fitted``).
    predicted_h_inf : ndarray, shape (p,)
        Predicted final squared distance ``H∞`` (NaN where not ``fitted``).
    predicted_merge : ndarray of bool, shape (p,)
        ``√predicted_h < eps`` (False where not ``fitted``).
    predicted_merge_inf : ndarray of bool, shape (p,)
        The strict merger predicate ``A_low = 0 and A_high < 0`` at the cut-off.
    measured_h : ndarray, shape (p,)
        Squared distance at the last checkpoint.
    measured_merge : ndarray of bool, shape (p,)
    merged_at_cut : ndarray of bool, shape (p,)
        Already merged at the cut-off (the persistence baseline).
    agree : ndarray of bool, shape (p,)
        ``dy2 == 0`` (identical targets on every shared continuation).
    score, score_persistence, score_agreement : Score
        The theory and the two baselines, over the ``fitted`` pairs.
    fit : RateFit
    eps_abs : float
        Absolute merge threshold (:attr:`eps` is its deprecated old name).
    t_cut, t_end : float
        Last epoch used for fitting; epoch predicted.
    settings : dict
    """

    fitted: FArray
    reason: tuple[str, ...]
    predicted_h: FArray
    predicted_h_inf: FArray
    predicted_merge: FArray
    predicted_merge_inf: FArray
    measured_h: FArray
    measured_merge: FArray
    merged_at_cut: FArray
    agree: FArray
    score: Score
    score_persistence: Score
    score_agreement: Score
    fit: RateFit
    eps_abs: float
    t_cut: float
    t_end: float
    settings: dict = field(default_factory=dict)

    eps = DeprecatedAlias("eps_abs")
    """Deprecated name of :attr:`eps_abs` (``eps`` is relative everywhere else)."""

    @property
    def n_pairs(self) -> int:
        """Number of pairs considered."""
        return int(self.fitted.size)


@renamed(eps="eps_abs")
def predict_mergers(
    obs: PairObservables,
    eps_abs: float,
    *,
    fraction: float = 0.5,
    rates: RateMode = "pooled",
    lengths: FArray | None = None,
    n_cont: FArray | None = None,
    refine: bool = True,
    max_fit_pairs: int | None = 400,
    max_iter: int = 40,
    seed: int = 0,
    method: str = "LSODA",
) -> MergerPrediction:
    """Fit the rates on the first part of training and predict which pairs merge by the end.

    Parameters
    ----------
    obs : PairObservables
        Pair observables at every checkpoint (the last one is "the end").
    eps_abs : float
        Absolute merge threshold on the distance ``√H`` (``eps=`` is its deprecated old name).
    fraction : float, default 0.5
        Fit on the checkpoints with ``t <= t0 + fraction·(t_end − t0)``; predict from the last of them.
    rates : {"pooled", "pair"}, default "pooled"
        One pair of rate constants for all pairs with the RNN scaling ``k_h ∝ m1 + m2``, ``k_y ∝ 1/N``
        (needs ``lengths`` and ``n_cont``), or rates fitted per pair.
    lengths : ndarray of int, shape (p, 2), optional
        Word lengths of the two nodes of each pair.
    n_cont : ndarray of int, shape (p,), optional
        Shared continuations per pair (pairs with 0 are left out).
    refine : bool, default True
        Refine the closed-form rates by ODE least squares.
    max_fit_pairs : int or None, default 400
        In pooled mode, the ODE refinement uses at most this many random pairs (the closed-form start
        uses all).
    max_iter : int, default 40
    seed : int, default 0
    method : str, default "LSODA"

    Returns
    -------
    MergerPrediction

    Raises
    ------
    ConfigError
        On a bad fraction, threshold or rate mode, or pooled mode without lengths and ``n_cont``.
    DataError
        When fewer than 3 checkpoints fall in the fit window.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"fraction must be in (0, 1), got {fraction}")
    if not eps_abs > 0:
        raise ConfigError(f"eps_abs must be positive, got {eps_abs}")
    eps = eps_abs
    if rates not in RATE_MODES:
        raise ConfigError(f"rates must be one of {', '.join(RATE_MODES)}, got {rates!r}")
    p = obs.n_pairs
    n_cont = np.full(p, 1, dtype=np.int64) if n_cont is None else np.asarray(n_cont, np.int64)
    if rates == "pooled" and lengths is None:
        raise ConfigError("pooled rates need the word lengths of each pair (lengths=(p, 2) array)")
    t = obs.t
    t_cut_limit = t[0] + fraction * (t[-1] - t[0])
    window = obs.window(t_cut_limit)
    if window.n_times < 3:
        raise DataError(
            f"only {window.n_times} checkpoint(s) up to epoch {t_cut_limit:g} ({fraction:g} of "
            f"training); the fit needs at least 3: use a larger fraction or a run with more checkpoints"
        )
    cut = window.n_times - 1
    t_cut, t_end = float(t[cut]), float(t[-1])
    has_cont = n_cont > 0
    if rates == "pooled":
        ln = np.asarray(lengths, dtype=np.float64)
        group = np.zeros(p, dtype=np.int64)
        scale_h = np.maximum(ln.sum(axis=1), 1.0)
        scale_y = 1.0 / np.maximum(n_cont, 1)
    else:
        group, scale_h, scale_y = None, None, None
    fit = _fit(
        window,
        has_cont,
        group,
        scale_h,
        scale_y,
        rates,
        refine,
        max_fit_pairs,
        max_iter,
        seed,
        method,
    )
    reasons = list(fit.reason)
    for k in np.nonzero(~has_cont)[0]:
        reasons[k] = "no shared continuation in the training data"
    H_c, Y_c, W_c = obs.H[:, cut], obs.Y[:, cut], obs.W[:, cut]
    ok = fit.fitted & has_cont & np.isfinite(H_c) & np.isfinite(Y_c) & np.isfinite(W_c)
    gone = ok & ~(H_c > 0)
    for k in np.nonzero(gone)[0]:
        reasons[k] = "zero distance at the cut-off: nothing left to predict"
    ok &= ~gone
    kh = np.where(ok, fit.k_h, 1.0)
    ky = np.where(ok, fit.k_y, 1.0)
    a_hi = a_high(np.where(ok, H_c, 1.0), Y_c, kh, ky)
    a_lo = a_low(obs.dy2, kh, ky)
    h_inf = np.where(ok, final_distance(a_hi, a_lo), np.nan)
    pred_h = np.full(p, np.nan)
    idx = np.nonzero(ok)[0]
    if idx.size:
        sol = integrate_pairs(
            np.array([t_cut, t_end]) if t_end > t_cut else np.array([t_cut]),
            H_c[idx], Y_c[idx], W_c[idx], kh[idx], ky[idx], obs.dy2[idx], method=method,
        )  # fmt: skip
        pred_h[idx] = np.where(sol.ok, sol.H[:, -1], np.nan)
        for k in idx[~sol.ok]:
            reasons[k] = "the ODE solver failed while predicting"
        ok[idx[~sol.ok]] = False
    pred_h = np.where(ok, pred_h, np.nan)
    h_inf = np.where(ok, h_inf, np.nan)
    with np.errstate(invalid="ignore"):
        pred_merge = ok & (np.sqrt(np.where(ok, pred_h, np.inf)) < eps)
    pred_inf = ok & merges(a_hi, a_lo)
    measured_h = obs.H[:, -1]
    measured = np.sqrt(measured_h) < eps
    at_cut = np.sqrt(H_c) < eps
    agree = obs.dy2 == 0
    s = ok
    score = score_mergers(pred_merge[s], measured[s], np.sqrt(pred_h[s]), np.sqrt(measured_h[s]))
    score_persist = score_mergers(at_cut[s], measured[s], np.sqrt(H_c[s]), np.sqrt(measured_h[s]))
    score_agree = score_mergers(agree[s], measured[s])
    settings = {
        "fraction": fraction,
        "rates": rates,
        "refine": refine,
        "max_fit_pairs": max_fit_pairs,
        "max_iter": max_iter,
        "seed": seed,
        "method": method,
        "eps_abs": float(eps),
        "t_cut": t_cut,
        "t_end": t_end,
        "n_checkpoints_fit": int(window.n_times),
        "n_checkpoints": int(obs.n_times),
    }
    return MergerPrediction(
        fitted=ok,
        reason=tuple("" if o else (r or "not fitted") for o, r in zip(ok, reasons, strict=True)),
        predicted_h=pred_h,
        predicted_h_inf=h_inf,
        predicted_merge=pred_merge,
        predicted_merge_inf=pred_inf,
        measured_h=measured_h,
        measured_merge=measured,
        merged_at_cut=at_cut,
        agree=agree,
        score=score,
        score_persistence=score_persist,
        score_agreement=score_agree,
        fit=fit,
        eps_abs=float(eps),
        t_cut=t_cut,
        t_end=t_end,
        settings=settings,
    )


def _fit(
    window: PairObservables,
    has_cont: FArray,
    group: FArray | None,
    scale_h: FArray | None,
    scale_y: FArray | None,
    rates: str,
    refine: bool,
    max_fit_pairs: int | None,
    max_iter: int,
    seed: int,
    method: str,
) -> RateFit:
    """Rates for every pair; pooled mode refines on a random subset and applies the group rates."""
    if rates == "pair":
        fitter = fit_rates if refine else closed_form_rates
        kwargs = {"max_iter": max_iter} if refine else {}
        sub = np.nonzero(has_cont)[0]
        part = fitter(window.select(sub), method=method, **kwargs)
        return _expand(part, sub, window.n_pairs, "no shared continuation in the training data")
    if not refine:
        return closed_form_rates(
            window, group=group, scale_h=scale_h, scale_y=scale_y, method=method
        )
    # the ODE fit starts from the closed-form estimate when it is positive and from a one-time-constant
    # guess otherwise, so every screened pair may take part
    usable = np.nonzero(has_cont & np.array([r == "" for r in _screen(window, 1e-3)]))[0]
    if max_fit_pairs is not None and usable.size > max_fit_pairs:
        usable = np.sort(np.random.default_rng(seed).choice(usable, max_fit_pairs, replace=False))
    if usable.size == 0:
        return closed_form_rates(
            window, group=group, scale_h=scale_h, scale_y=scale_y, method=method
        )
    if scale_h is None or scale_y is None or group is None:  # pooled mode always sets them
        raise ConfigError("pooled rates need the pair scales")
    sub = fit_rates(
        window.select(usable),
        group=group[usable],
        scale_h=scale_h[usable],
        scale_y=scale_y[usable],
        max_iter=max_iter,
        method=method,
    )
    kh0, ky0 = sub.group_rates[0]
    if not (np.isfinite(kh0) and np.isfinite(ky0)):
        why = next((r for r in sub.reason if r), "the pooled rate fit failed")
        return _expand(sub, usable, window.n_pairs, f"pooled rates not fitted: {why}")
    # apply the pooled constants to every pair and recompute the diagnostics on all of them
    return _apply_rates(window, kh0 * scale_h, ky0 * scale_y, sub, method)


def _expand(part: RateFit, rows: FArray, n: int, other: str) -> RateFit:
    """A fit of a subset of pairs, spread back onto all ``n`` (the others not fitted, for ``other``)."""

    def put(a: FArray, fill: float | bool) -> FArray:
        out = np.full(n, fill, dtype=a.dtype)
        out[rows] = a
        return out

    reason = [other] * n
    for k, r in zip(rows, part.reason, strict=True):
        reason[k] = r
    group = np.zeros(n, dtype=np.int64)
    group[rows] = part.group
    return RateFit(
        k_h=put(part.k_h, np.nan),
        k_y=put(part.k_y, np.nan),
        fitted=put(part.fitted, False),
        reason=tuple(reason),
        fit_error=put(part.fit_error, np.nan),
        conservation_residual=put(part.conservation_residual, np.nan),
        group=group,
        group_rates=part.group_rates,
        method=part.method,
        iterations=part.iterations,
        settings=part.settings,
    )


def _apply_rates(
    window: PairObservables, kh: FArray, ky: FArray, sub: RateFit, method: str
) -> RateFit:
    reasons = _screen(window, sub.settings.get("min_signal", 1e-3))
    # pooled rates also apply to pairs that did not move in the window (they carry no information
    # for the fit, but the prediction for them is well defined)
    reasons = [
        "" if r.startswith("no movement") else r for r in reasons
    ]  # fmt: skip
    ok = np.array([r == "" for r in reasons])
    err, solved = trajectory_error(
        window, np.where(ok, kh, np.nan), np.where(ok, ky, np.nan), method=method
    )
    for k in np.nonzero(ok & ~solved)[0]:
        reasons[k] = "the ODE solver failed with the fitted rates"
    ok &= solved
    with np.errstate(invalid="ignore", divide="ignore"):
        cons = np.where(ok, _conservation(window, kh / ky), np.nan)
    settings = dict(sub.settings)
    settings["n_fit_pairs"] = int(sub.fitted.size)
    return RateFit(
        k_h=np.where(ok, kh, np.nan),
        k_y=np.where(ok, ky, np.nan),
        fitted=ok,
        reason=tuple(reasons),
        fit_error=np.where(ok, err, np.nan),
        conservation_residual=cons,
        group=np.zeros(window.n_pairs, dtype=np.int64),
        group_rates=sub.group_rates,
        method=sub.method,
        iterations=sub.iterations,
        settings=settings,
    )
