"""Training settings: presets, overrides, validation, checkpoint schedules."""

from __future__ import annotations

import numpy as np
import pytest

from dfalens.errors import ConfigError
from dfalens.trainers.config import (
    PRESETS,
    TrainConfig,
    checkpoint_epochs,
    make_config,
    parse_schedule,
)


def test_paper_preset_is_app_c1() -> None:
    c = make_config("paper")
    assert (c.cell, c.hidden, c.layers, c.nonlinearity, c.h0) == ("rnn", 100, 1, "relu", "ones")
    assert (c.gain, c.optimizer, c.lr, c.momentum, c.weight_decay) == (0.1, "sgd", 0.02, 0.0, 0.0)
    assert (c.batch_size, c.loss, c.targets, c.max_len, c.data_fraction) == (
        128,
        "mse",
        "last",
        10,
        1.0,
    )
    assert (c.epochs, c.checkpoints, c.stop_loss) == (1000, "every", None)
    assert c.test_lengths == (25, 100, 250, 1000, 2500, 10000) and c.n_test_words == 10


def test_presets_and_overrides() -> None:
    assert set(PRESETS) >= {"paper", "tanh", "random", "phase", "fast"}
    tanh = make_config("tanh")
    assert (tanh.nonlinearity, tanh.gain, tanh.lr) == ("tanh", 0.01, 0.05)
    rand = make_config("random", task="random:3")
    assert (rand.gain, rand.lr, rand.task) == (0.025, 0.05, "random:3")
    phase = make_config("phase")
    assert phase.loss == "ce" and phase.stop_loss == 1e-3 and phase.test_lengths == (100,)
    assert make_config("tanh", lr=0.3, seed=None).lr == 0.3  # flags win; None means "not given"
    assert make_config("paper", test_lengths="1000, 25").test_lengths == (25, 1000)


@pytest.mark.parametrize(
    "bad",
    [
        {"hidden": 0},
        {"layers": 0},
        {"batch_size": -1},
        {"gain": 0},
        {"gain": -0.1},
        {"lr": 0},
        {"lr": float("nan")},
        {"epochs": -1},
        {"data_fraction": 0.0},
        {"data_fraction": 1.5},
        {"momentum": 1.0},
        {"stop_loss": 0.0},
        {"cell": "transformer"},
        {"optimizer": "rmsprop"},
        {"loss": "l1"},
        {"device": "tpu"},
        {"checkpoints": "sometimes"},
        {"checkpoints": "every:0"},
        {"test_lengths": "25,abc"},
        {"test_lengths": (0, 5)},
        {"optimizer": "adam", "momentum": 0.9},
        {"task": ""},
    ],
)
def test_bad_settings_raise_config_error(bad: dict) -> None:
    with pytest.raises(ConfigError) as info:
        make_config("paper", **bad)
    assert "\n" not in str(info.value)


def test_unknown_preset_and_setting() -> None:
    with pytest.raises(ConfigError, match="unknown preset"):
        make_config("papr")
    with pytest.raises(ConfigError, match="unknown training settings"):
        make_config("paper", hiden=3)


def test_round_trip_and_differences() -> None:
    c = make_config("fast", seed=4, stop_loss=0.01)
    assert TrainConfig.from_dict(c.to_dict()) == c
    d = c.replace(lr=0.5, epochs=9)
    assert c.differences(d) == {"lr": (c.lr, 0.5), "epochs": (c.epochs, 9)}
    assert c.differences(d, ignore=("epochs",)) == {"lr": (c.lr, 0.5)}


def test_checkpoint_schedules() -> None:
    assert checkpoint_epochs("every", 4).tolist() == [0, 1, 2, 3, 4]
    assert checkpoint_epochs("every:3", 10).tolist() == [0, 3, 6, 9, 10]
    log = checkpoint_epochs("log:10", 1000)
    assert log[0] == 0 and log[-1] == 1000 and np.all(np.diff(log) > 0)
    assert log[1] == 1 and len(log) <= 11
    assert checkpoint_epochs("log:5", 0).tolist() == [0]
    assert parse_schedule("EVERY:7") == ("every", 7)
