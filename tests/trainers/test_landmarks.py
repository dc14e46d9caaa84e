"""One definition of when a run generalised, shared by ``Run.summary`` and the timeline."""

from __future__ import annotations

import numpy as np

from dfalens.timeline.timelines import derived_epochs
from dfalens.trainers import Run, generalisation_epoch, generalisation_length, make_config


def test_generalisation_needs_the_accuracy_to_stay_perfect() -> None:
    epochs = np.array([0, 10, 20, 30, 40])
    assert generalisation_epoch(epochs, np.array([0.5, 1.0, 0.9, 1.0, 1.0])) == 30
    assert generalisation_epoch(epochs, np.array([0.5, 1.0, np.nan, 1.0, 1.0])) == 10
    assert generalisation_epoch(epochs, np.array([1.0, 1.0, 1.0, 1.0, 0.99])) is None
    assert generalisation_epoch(epochs, np.full(5, np.nan)) is None


def test_generalisation_length_falls_back_to_the_longest() -> None:
    assert generalisation_length([10, 1000, 50]) == 1000
    assert generalisation_length([10, 50]) == 50
    assert generalisation_length([10, 50], 10) == 10
    assert generalisation_length([]) is None


def test_run_summary_and_timeline_agree() -> None:
    config = make_config("paper", test_lengths=(20,), epochs=40)
    acc = [0.4, 1.0, 0.8, 1.0, 1.0]
    rows = tuple(
        {"epoch": 10 * i, "train_loss": 0.1, "val_loss": {"20": 0.1}, "val_accuracy": {"20": a}}
        for i, a in enumerate(acc)
    )
    s = Run(config, rows, 40).summary()
    epochs = np.arange(5) * 10
    timeline = derived_epochs(epochs, np.full(5, 0.1), np.zeros(5, bool), epochs, None, acc)
    assert s["accuracy_length"] == 20
    assert s["first_epoch_accuracy_1"] == 10  # first reached, then lost
    assert s["generalisation_epoch"] == timeline["generalisation_epoch"] == 30
