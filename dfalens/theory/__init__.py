"""The effective theory of representation dynamics (van Rossem & Saxe, ICML 2024): the pair ODEs and their
closed forms, rate fits, merger prediction on a run, and the two-point experiments."""

from dfalens.theory.equations import PairSolution, integrate_pairs, merges
from dfalens.theory.fit import PairObservables, RateFit, closed_form_rates, fit_rates
from dfalens.theory.predict import MergerPrediction, Score, predict_mergers, score_mergers
from dfalens.theory.run import TheoryRun, theory_run, write_theory
from dfalens.theory.twopoint import (
    GridResult,
    TwoPointRun,
    XorResult,
    two_point_grid,
    two_point_run,
    xor_experiment,
)

__all__ = [
    "GridResult",
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
    "integrate_pairs",
    "merges",
    "predict_mergers",
    "score_mergers",
    "theory_run",
    "two_point_grid",
    "two_point_run",
    "write_theory",
    "xor_experiment",
]
