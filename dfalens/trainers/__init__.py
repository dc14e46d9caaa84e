"""Train recurrent networks on automaton tasks, with safe checkpoints and exact resume.

::

    from dfalens.trainers import load_checkpoint, load_run, make_config, train

    run = train(make_config("paper", seed=0), "runs/parity")      # App. C.1 of van Rossem & Saxe 2025
    run.summary()["first_epoch_accuracy_1"]                       # when length 1000 became perfect
    model, meta = load_checkpoint("runs/parity/checkpoints/last.safetensors")
    model.initial(4), model.step, model.readout                   # the probe protocol

Parts: :mod:`~dfalens.trainers.data` (words and targets), :mod:`~dfalens.trainers.models` (RNN, GRU,
LSTM with the probe protocol), :mod:`~dfalens.trainers.config` (settings and presets),
:mod:`~dfalens.trainers.loop` (the training loop), :mod:`~dfalens.trainers.landmarks` (when a run
memorised and generalised), :mod:`~dfalens.trainers.checkpoints` (files),
:mod:`~dfalens.trainers.batched` (many small networks trained at once, with stacked parameters).
"""

from __future__ import annotations

from dfalens.trainers.batched import (
    BatchedRun,
    StackedOptimizer,
    stacked_forward,
    stacked_loss,
    train_batched,
)
from dfalens.trainers.checkpoints import list_checkpoints, load_checkpoint
from dfalens.trainers.config import PRESETS, TrainConfig, checkpoint_epochs, make_config
from dfalens.trainers.data import (
    PAPER_TEST_LENGTHS,
    TaskData,
    WordGroups,
    all_words,
    enumerate_words,
    make_task_data,
    random_words,
    sample_words,
)
from dfalens.trainers.landmarks import (
    GENERALISATION_ACCURACY,
    GENERALISATION_LENGTH,
    MEMORISATION_LOSS,
    generalisation_epoch,
    generalisation_length,
)
from dfalens.trainers.loop import train
from dfalens.trainers.models import ModelConfig, RecurrentModel, build_model
from dfalens.trainers.runs import Run, load_run

__all__ = [
    "train",
    "Run",
    "load_run",
    "TrainConfig",
    "make_config",
    "PRESETS",
    "checkpoint_epochs",
    "ModelConfig",
    "RecurrentModel",
    "build_model",
    "load_checkpoint",
    "list_checkpoints",
    "TaskData",
    "WordGroups",
    "make_task_data",
    "all_words",
    "enumerate_words",
    "sample_words",
    "random_words",
    "PAPER_TEST_LENGTHS",
    "train_batched",
    "BatchedRun",
    "stacked_forward",
    "stacked_loss",
    "StackedOptimizer",
    "MEMORISATION_LOSS",
    "GENERALISATION_LENGTH",
    "GENERALISATION_ACCURACY",
    "generalisation_length",
    "generalisation_epoch",
]
