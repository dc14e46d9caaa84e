"""The theory's absolute threshold is ``eps_abs``; ``eps`` (relative) is recorded in its settings."""

from __future__ import annotations

import numpy as np
import pytest

from dfalens.theory.run import TheoryRun


def test_theory_run_names_its_thresholds() -> None:
    run = TheoryRun(
        fitted=False,
        message="too few checkpoints",
        prediction=None,
        obs=None,
        i=np.array([1]),
        j=np.array([2]),
        lengths=np.array([[1, 1]]),
        n_cont=np.array([1]),
        agree=np.array([True]),
        words=("", "0", "1"),
        epochs=np.arange(3),
        train_loss=np.ones(3),
        eps_abs=0.02,
        settings={"eps": 0.01},
    )
    d = run.to_dict()
    assert d["eps_abs"] == 0.02 and "eps" not in d and d["settings"]["eps"] == 0.01
    assert "eps = 0.01 x scale = 0.02" in run.report()
    with pytest.warns(DeprecationWarning, match="eps_abs"):
        assert run.eps == 0.02
