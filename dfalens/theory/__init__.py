"""The effective theory of representation dynamics (van Rossem & Saxe, ICML 2024): the pair ODEs and their
closed forms, rate fits, merger prediction on a run, and the two-point experiments.

::

    import dfalens as dl
    result = dl.theory.theory_run("runs/parity", fraction=0.5)   # fit on the first half, predict mergers
    result.prediction.score.precision, result.prediction.score.recall
    sol = dl.theory.integrate_pairs(t, H0, Y0, W0, k_h, k_y, dy2)  # the pair ODEs, many pairs at once
"""

from dfalens.theory.equations import (
    PairSolution,
    integrate_pairs,
    merges,
    pair_jacobian,
    pair_rhs,
)
from dfalens.theory.fit import PairObservables, RateFit, closed_form_rates, fit_rates
from dfalens.theory.predict import MergerPrediction, Score, predict_mergers, score_mergers
from dfalens.theory.run import TheoryRun, theory_run, write_theory
from dfalens.theory.twopoint import (
    SPECS,
    GridResult,
    MLPSpec,
    TwoPointRun,
    XorResult,
    fit_two_point_rates,
    two_point_grid,
    two_point_run,
    xor_experiment,
)

__all__ = [
    "SPECS",
    "GridResult",
    "MLPSpec",
    "MergerPrediction",
    "PairObservables",
    "PairSolution",
    "RateFit",
    "Score",
    "TheoryRun",
    "TwoPointRun",
    "XorResult",
    "closed_form_rates",
    "fit_rates",
    "fit_two_point_rates",
    "integrate_pairs",
    "merges",
    "pair_jacobian",
    "pair_rhs",
    "predict_mergers",
    "score_mergers",
    "theory_run",
    "two_point_grid",
    "two_point_run",
    "write_theory",
    "xor_experiment",
]
