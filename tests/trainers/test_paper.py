"""The paper preset on the CPU: the merger happens, and length-1000 accuracy reaches 1.0 (slow)."""

from __future__ import annotations

import pytest

from dfalens.trainers import make_config, train


@pytest.mark.slow
def test_paper_preset_generalises_to_length_1000() -> None:
    """App. C.1 settings, seed 0: perfect at length 1000 around epoch 530 (benchmarks/RESULTS.md).

    Only the evaluation is thinned (length 1000 only, every 10 epochs); training is the paper's.
    """
    config = make_config(
        "paper", epochs=600, checkpoints="every:10", test_lengths=(1000,), device="cpu"
    )
    run = train(config)
    summary = run.summary(length=1000)
    assert summary["first_epoch_loss_below"] is not None
    assert summary["first_epoch_accuracy_1"] is not None
    assert summary["first_epoch_accuracy_1"] <= 600
    assert run.metrics[-1]["val_accuracy"]["1000"] == 1.0
    assert run.metrics[0]["train_loss"] > 0.1  # it started untrained


def test_fast_preset_learns_parity() -> None:
    """The demo preset: accuracy 1.0 at length 1000 within its 120 epochs (seed 0: epoch 50)."""
    run = train(make_config("fast", checkpoints="every:10", test_lengths=(1000,), device="cpu"))
    first = run.summary(length=1000)["first_epoch_accuracy_1"]
    assert first is not None and first <= 120
    assert run.metrics[-1]["val_accuracy"]["1000"] == 1.0
