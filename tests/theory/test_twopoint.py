"""The ICML 2024 two-point experiment (a small MLP) and XOR rich vs lazy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dfalens.errors import ConfigError
from dfalens.theory import twopoint as tw

torch.set_num_threads(1)

TINY = tw.MLPSpec(depth=4, width=32, gain=1.0, lr=0.02, epochs=800)


def test_two_point_data_matches_the_paper():
    x, y = tw.two_point_data(1.0, 0.5)
    assert x[:, 0] == pytest.approx([-1.0, 0.0])
    assert y[:, 0] == pytest.approx([0.6, 0.6 + np.sqrt(0.5)])
    x2, _ = tw.two_point_data(4.0, 0.0, in_dim=4)
    assert np.sum((x2[1] - x2[0]) ** 2) == pytest.approx(4.0)
    with pytest.raises(ConfigError):
        tw.two_point_data(0.0, 1.0)


def test_training_records_every_epoch_and_learns():
    x, y = tw.two_point_data(1.0, 0.5)
    spec = tw.MLPSpec(depth=3, width=16, lr=0.05, epochs=60)
    rec = tw.train_points(spec, x, y, seed=1, record_every=20)
    assert list(rec["epochs"]) == [0, 20, 40, 60]
    assert rec["hidden"].shape == (4, 2, 16) and rec["output"].shape == (4, 2, 1)
    assert rec["loss"][-1] < rec["loss"][0]
    again = tw.train_points(spec, x, y, seed=1, record_every=20)
    assert np.array_equal(rec["hidden"], again["hidden"])  # seeded


def test_spec_validation():
    with pytest.raises(ConfigError):
        tw.MLPSpec(nonlinearity="gelu")
    with pytest.raises(ConfigError):
        tw.MLPSpec(depth=4, layer=4)
    assert tw.MLPSpec(depth=20).tracked_layer == 10


@pytest.mark.slow
def test_two_point_fit_and_grid_prediction():
    run = tw.two_point_run(TINY, seed=0)
    assert run.fitted and run.eta_h > 0 and run.eta_y > 0
    # the pair system describes the network's trajectories to a few percent
    assert run.fit.fit_error[0] < 0.06
    assert run.loss[-1] < 1e-4
    grid = tw.two_point_grid(
        TINY, run.eta_h, run.eta_y, dxs=(0.5, 1.5), dys=(0.0, 1.0), max_epochs=3200
    )
    assert grid.kept.all()
    # the closed form with rates fitted on another pair predicts the ordering of final distances
    assert grid.median_relative_error is not None and grid.median_relative_error < 0.5
    assert np.argmax(grid.predicted) == np.argmax(grid.measured)
    assert grid.to_dict()["n_kept"] == 4


@pytest.mark.slow
def test_xor_rich_merges_same_target_inputs_and_lazy_keeps_geometry():
    res = tw.xor_experiment("small")
    rich_m, rich_p = res.measured["rich"], res.predicted["rich"]
    # inputs 01 and 10 share target 1: they merge in the network and in the theory
    others = np.mean([rich_m[0, 1], rich_m[0, 2], rich_m[1, 3], rich_m[2, 3]])
    assert rich_m[1, 2] < 0.2 * others
    assert rich_p[1, 2] < 0.2 * np.mean([rich_p[0, 1], rich_p[0, 2], rich_p[1, 3], rich_p[2, 3]])
    # lazy: the representation keeps its initial geometry, which the theory predicts
    assert res.correlation["lazy"] is not None and res.correlation["lazy"] > 0.95
    assert res.final_loss["rich"] < 1e-3
    data = res.to_dict()
    assert set(data) >= {"rich", "lazy", "settings"}
