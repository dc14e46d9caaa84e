"""The effective theory on a training run: load checkpoints, build pair observables, predict, report.

:func:`theory_run` is the library call behind ``dfalens theory RUN_DIR -o DIR``: it loads the hidden states
and outputs of (a subsample of) the run's checkpoints on every word up to the training length, draws random
pairs of words, computes their ``H``, ``Y``, ``W`` trajectories over the shared continuations that are
training words, fits the effective rates on the first ``fraction`` of training and predicts which pairs
end up merged. :func:`write_theory` writes ``theory.json``, a text report and the figures.

A run that cannot be fitted (too few checkpoints, no usable pair) still gives a :class:`TheoryRun`, marked
``fitted = False`` with a one-line ``message``; nothing raises for it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dfalens._args import DeprecatedAlias, check_int, check_number
from dfalens._files import atomic_write, jsonable
from dfalens.automata import Machine
from dfalens.errors import ConfigError, DataError
from dfalens.theory.fit import PairObservables
from dfalens.theory.predict import (
    RATE_MODES,
    MergerPrediction,
    pair_index,
    pair_observables,
    predict_mergers,
)
from dfalens.timeline.history import load_history, resolve_run
from dfalens.timeline.pairs import make_pairs
from dfalens.trainers.data import make_task_data

__all__ = [
    "TheoryRun",
    "node_targets",
    "training_mask",
    "theory_run",
    "write_theory",
]

FArray = np.ndarray


def node_targets(
    task: Machine, parent: FArray, symbol: FArray, depth: FArray, n_out: int
) -> FArray:
    """One-hot target vector of every node of a prefix tree (the task machine's output class).

    Returns
    -------
    ndarray of float, shape (n, n_out)
    """
    parent = np.asarray(parent, dtype=np.int64)
    state = np.full(parent.shape, task.start, dtype=np.int64)
    for d in range(1, int(np.max(depth)) + 1 if len(depth) else 1):  # one level per step
        idx = np.nonzero(np.asarray(depth) == d)[0]
        state[idx] = task.delta[state[parent[idx]], np.asarray(symbol)[idx]]
    if np.any(state < 0):
        raise DataError("the task machine leaves some words undefined; complete it first")
    cls = task.output[state]
    if cls.max() >= n_out:
        raise DataError(
            f"the task has output classes up to {int(cls.max())} but the network has {n_out} outputs"
        )
    return np.eye(n_out)[cls]


def _node_of_words(words: FArray, n_symbols: int) -> FArray:
    """Node index (breadth-first, lexicographic) of each word of one length, shape (m,)."""
    length = words.shape[1]
    offset = sum(n_symbols**m for m in range(length))
    code = np.zeros(words.shape[0], dtype=np.int64)
    for col in range(length):  # one digit per step
        code = code * n_symbols + words[:, col]
    return offset + code


def training_mask(config: dict[str, Any], task: Machine, parent: FArray, depth: FArray) -> FArray:
    """Which nodes of the full prefix tree are training words of a run.

    The training set is rebuilt from the run's config (``max_len``, ``data_fraction``, ``seed``,
    ``targets``) exactly as the trainer drew it; with streaming targets every prefix of a training word
    is supervised too. Without a config every non-empty word counts.
    """
    depth = np.asarray(depth, dtype=np.int64)
    parent = np.asarray(parent, dtype=np.int64)
    if not config:
        return depth > 0

    max_len = int(config.get("max_len", int(depth.max())))
    fraction = float(config.get("data_fraction", 1.0))
    streaming = config.get("targets", "last") == "every"
    if fraction >= 1.0:
        mask = (depth > 0) & (depth <= max_len)
    else:
        data = make_task_data(
            task,
            max_len=max_len,
            data_fraction=fraction,
            test_lengths=(max_len,),
            n_test_words=1,
            seed=int(config.get("seed", 0)),
        )
        mask = np.zeros(depth.size, dtype=bool)
        for words in data.train.words:
            if words.shape[1] <= int(depth.max()):
                mask[_node_of_words(words, task.n_symbols)] = True
    if streaming:
        node = np.nonzero(mask)[0]
        for _ in range(int(depth.max())):  # walk every training word up to the root
            node = parent[node]
            node = node[node > 0]
            mask[node] = True
    return mask


@dataclass(frozen=True, eq=False)
class TheoryRun:
    """The theory's merger prediction on one run.

    Attributes
    ----------
    fitted : bool
        False when no prediction could be made; ``message`` says why.
    message : str
    prediction : MergerPrediction or None
    obs : PairObservables or None
        Pair observables at the loaded checkpoints.
    i, j : ndarray of int
        The pairs (node indices of the prefix tree).
    lengths : ndarray of int, shape (p, 2)
    n_cont : ndarray of int, shape (p,)
    agree : ndarray of bool, shape (p,)
        The two words reach the same state of the minimal task machine.
    words : tuple of str
        The word of every node.
    epochs : ndarray of int
    train_loss : ndarray of float
    eps_abs : float
        Absolute merge threshold used (:attr:`eps` is its deprecated old name; the relative one is
        ``settings["eps"]``).
    settings : dict
    """

    fitted: bool
    message: str
    prediction: MergerPrediction | None
    obs: PairObservables | None
    i: FArray
    j: FArray
    lengths: FArray
    n_cont: FArray
    agree: FArray
    words: tuple[str, ...]
    epochs: FArray
    train_loss: FArray
    eps_abs: float
    settings: dict = field(default_factory=dict)

    eps = DeprecatedAlias("eps_abs")
    """Deprecated name of :attr:`eps_abs` (``eps`` is relative everywhere else)."""

    @property
    def n_pairs(self) -> int:
        """Number of pairs drawn."""
        return int(self.i.size)

    def to_dict(self) -> dict[str, Any]:
        """The contents of ``theory.json``."""
        pr = self.prediction
        empty = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
        out: dict[str, Any] = {
            "fitted": self.fitted,
            "message": self.message,
            "n_pairs": self.n_pairs,
            "n_predicted": int(pr.fitted.sum()) if pr is not None else 0,
            "precision": pr.score.precision if pr is not None else None,
            "recall": pr.score.recall if pr is not None else None,
            "accuracy": pr.score.accuracy if pr is not None else None,
            "spearman": pr.score.spearman if pr is not None else None,
            "confusion": dict(pr.score.confusion) if pr is not None else empty,
            "baselines": {
                "persistence": pr.score_persistence.to_dict() if pr is not None else None,
                "agreement": pr.score_agreement.to_dict() if pr is not None else None,
            },
            "fit": pr.fit.summary() if pr is not None else None,
            "eps_abs": self.eps_abs,
            "t_cut": pr.t_cut if pr is not None else None,
            "t_end": pr.t_end if pr is not None else None,
            "n_agreeing": int(self.agree.sum()),
            "n_merged": int(pr.measured_merge[pr.fitted].sum()) if pr is not None else None,
            "n_predicted_merged": int(pr.predicted_merge.sum()) if pr is not None else None,
            "not_predicted": _count(pr.reason) if pr is not None else {},
            "settings": dict(self.settings),
        }
        return out

    def report(self) -> str:
        """A short human-readable report."""
        s = self.settings
        lines = [
            f"effective theory on {s.get('run', '?')} (task {s.get('task', '?')})",
            f"pairs: {self.n_pairs} random pairs of training words, {int(self.agree.sum())} agreeing; "
            f"eps = {s.get('eps')} x scale = {self.eps_abs:.4g}",
        ]
        if not self.fitted or self.prediction is None:
            lines.append(f"NOT FITTED: {self.message}")
            return "\n".join(lines) + "\n"
        pr = self.prediction
        fit = pr.fit.summary()
        lines += [
            f"fit: {pr.settings['rates']} rates ({fit['method']}), checkpoints up to epoch "
            f"{pr.t_cut:g} ({pr.settings['n_checkpoints_fit']} of {pr.settings['n_checkpoints']}); "
            f"predicting epoch {pr.t_end:g}",
            f"predicted pairs: {int(pr.fitted.sum())} of {self.n_pairs}"
            + (f" (left out: {_count(pr.reason)})" if not pr.fitted.all() else ""),
            f"fit error (relative RMS) quartiles: {_fmt(fit['fit_error_quartiles'])}; "
            f"conservation residual quartiles: {_fmt(fit['conservation_residual_quartiles'])}",
        ]
        if pr.settings["rates"] == "pooled" and fit["group_rates"]:
            kh, ky = fit["group_rates"][0]
            lines.append(f"pooled rates: k_h = {kh:.4g} x (m1 + m2), k_y = {ky:.4g} / N")
        lines.append("merged at the end = distance < eps at the last checkpoint")
        lines.append(f"{'predictor':<34}{'tp':>6}{'fp':>6}{'fn':>6}{'tn':>7}  prec   rec  spearman")
        for name, sc in (
            ("theory", pr.score),
            ("baseline: merged at the cut-off", pr.score_persistence),
            ("baseline: agreeing pairs merge", pr.score_agreement),
        ):
            c = sc.confusion
            lines.append(
                f"{name:<34}{c['tp']:>6}{c['fp']:>6}{c['fn']:>6}{c['tn']:>7}  "
                f"{_num(sc.precision)} {_num(sc.recall)}  {_num(sc.spearman)}"
            )
        return "\n".join(lines) + "\n"


def _count(reasons: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in reasons:
        if r:
            out[r] = out.get(r, 0) + 1
    return out


def _fmt(q: list[float] | None) -> str:
    return "n/a" if q is None else " / ".join(f"{v:.3g}" for v in q)


def _num(v: float | None) -> str:
    return "  n/a" if v is None else f"{v:5.3f}"


def _pick_epochs(epochs: FArray, n: int | None) -> FArray:
    """At most ``n`` checkpoint epochs, evenly spread, always with the first and the last."""
    if n is None or epochs.size <= n:
        return epochs
    pos = np.unique(np.round(np.linspace(0, epochs.size - 1, n)).astype(np.int64))
    return epochs[pos]


def theory_run(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    task: str | Machine | None = None,
    fraction: float = 0.5,
    rates: str = "pooled",
    max_pairs: int = 2000,
    eps: float = 0.01,
    n_checkpoints: int | None = 201,
    max_len: int | None = None,
    refine: bool = True,
    max_fit_pairs: int | None = 400,
    seed: int = 0,
) -> TheoryRun:
    """Fit the effective theory on a run's early checkpoints and predict its mergers.

    Parameters
    ----------
    source : path or sequence of paths
        A run directory or checkpoint files.
    task : str or Machine, optional
        Ground truth (default: the run's task).
    fraction : float, default 0.5
        Fit on the first ``fraction`` of training (by epoch); predict the last checkpoint.
    rates : {"pooled", "pair"}, default "pooled"
        See :func:`dfalens.theory.predict.predict_mergers`.
    max_pairs : int, default 2000
        Random pairs of training words.
    eps : float, default 0.01
        Merge threshold relative to the pooled state scale (the paper's 0.01 x ‖per-unit std‖).
    n_checkpoints : int or None, default 201
        Load at most this many checkpoints, evenly spread (None: all).
    max_len : int, optional
        Longest word (default: the run's training length).
    refine : bool, default True
        ODE least squares after the closed-form estimate.
    max_fit_pairs : int or None, default 400
        Pairs used by the pooled ODE refinement.
    seed : int, default 0
        Seeds the pair sample.

    Returns
    -------
    TheoryRun

    Raises
    ------
    ConfigError
        On bad settings.
    CheckpointError, TaskError
        When the run cannot be opened or its task is unknown.
    """

    check_number("fraction", fraction, low=0, high=1, low_open=True, high_open=True)
    check_int("max_pairs", max_pairs, minimum=1)
    check_number("eps", eps, low=0, low_open=True)
    check_int("n_checkpoints", n_checkpoints, minimum=2, optional=True)
    check_int("max_len", max_len, minimum=1, optional=True)
    check_int("max_fit_pairs", max_fit_pairs, minimum=1, optional=True)
    check_int("seed", seed, minimum=0)
    if task is not None and not isinstance(task, str | Machine | os.PathLike):
        raise ConfigError(
            f"task must be a task name, a machine JSON path or a Machine, got {task!r:.60}"
        )
    if rates not in RATE_MODES:
        raise ConfigError(f"rates must be one of {', '.join(RATE_MODES)}, got {rates!r}")
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"fraction must be in (0, 1), got {fraction}")
    if max_pairs < 1:
        raise ConfigError(f"max_pairs must be >= 1, got {max_pairs}")
    if not eps > 0:
        raise ConfigError(f"eps must be positive, got {eps}")
    if n_checkpoints is not None and n_checkpoints < 2:
        raise ConfigError(f"n_checkpoints must be >= 2, got {n_checkpoints}")
    info = resolve_run(source)
    chosen = _pick_epochs(info.epochs, n_checkpoints)
    hist = load_history(source, task=task, max_len=max_len, epochs=chosen.tolist())
    eps_abs = float(eps * hist.scale())
    pairs = make_pairs(
        hist.parent, hist.symbol, hist.depth, hist.task, n_pairs=max_pairs, seed=seed
    )
    targets = node_targets(hist.task, hist.parent, hist.symbol, hist.depth, hist.output.shape[2])
    in_data = training_mask(info.config, hist.task, hist.parent, hist.depth)
    index = pair_index(hist.parent, hist.symbol, hist.depth, targets, pairs.i, pairs.j, in_data)
    obs = pair_observables(index, hist.hidden, hist.output, hist.epochs)
    lengths = np.stack([pairs.length_i, pairs.length_j], axis=1)
    settings: dict[str, Any] = {
        "run": str(info.run_dir if info.run_dir is not None else source),
        "task": hist.task_name,
        "fraction": fraction,
        "rates": rates,
        "max_pairs": max_pairs,
        "eps": eps,
        "n_checkpoints_loaded": int(hist.epochs.size),
        "n_checkpoints_run": int(info.epochs.size),
        "max_len": int(hist.depth.max()),
        "refine": refine,
        "max_fit_pairs": max_fit_pairs,
        "seed": seed,
        "loss": info.config.get("loss", "unknown"),
    }
    common = {
        "i": pairs.i,
        "j": pairs.j,
        "lengths": lengths,
        "n_cont": index.n_cont,
        "agree": pairs.agree,
        "words": hist.words,
        "epochs": hist.epochs,
        "train_loss": hist.train_loss,
        "eps_abs": eps_abs,
        "settings": settings,
    }
    try:
        pred = predict_mergers(
            obs,
            eps_abs,
            fraction=fraction,
            rates=rates,  # type: ignore[arg-type]
            lengths=lengths,
            n_cont=index.n_cont,
            refine=refine,
            max_fit_pairs=max_fit_pairs,
            seed=seed,
        )
    except DataError as exc:  # too few checkpoints in the fit window
        return TheoryRun(False, str(exc), None, obs, **common)
    if not pred.fitted.any():
        why = next((r for r in pred.reason if r), "no pair could be fitted")
        msg = f"no pair could be predicted ({why}); try another --fraction or --rates pair"
        return TheoryRun(False, msg, pred, obs, **common)
    return TheoryRun(True, "", pred, obs, **common)


def write_theory(result: TheoryRun, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``theory.json`` and ``theory.txt`` into ``out_dir`` (draw the figures with
    :func:`dfalens.plots.plot_fig10`, :func:`~dfalens.plots.plot_prediction` and
    :func:`~dfalens.plots.plot_pair_fits`).

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    data = json.dumps(jsonable(result.to_dict(), finite=True), indent=2, allow_nan=False)
    atomic_write(out / "theory.json", (data + "\n").encode())
    written.append(out / "theory.json")
    atomic_write(out / "theory.txt", result.report().encode())
    written.append(out / "theory.txt")
    return written
