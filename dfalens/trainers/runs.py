"""A training run as data: what :func:`dfalens.trainers.train` returns and :func:`load_run` reads back."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfalens.automata import Machine
from dfalens.errors import CheckpointError, ConfigError
from dfalens.trainers import checkpoints as ck
from dfalens.trainers.config import TrainConfig
from dfalens.trainers.landmarks import (
    GENERALISATION_ACCURACY,
    GENERALISATION_LENGTH,
    MEMORISATION_LOSS,
    generalisation_epoch,
    memorisation_epoch,
)
from dfalens.trainers.models import RecurrentModel

__all__ = ["Run", "load_run"]


@dataclass(frozen=True, eq=False)
class Run:
    """The outcome of :func:`train`, or a run read back with :func:`load_run`.

    Attributes
    ----------
    config : TrainConfig
    metrics : tuple of dict
        One row per checkpoint: ``epoch``, ``step``, ``train_loss``, ``train_accuracy``, ``val_loss`` and
        ``val_accuracy`` (dicts keyed by test length as a string), ``elapsed_s``.
    epochs_done : int
        Epochs trained so far.
    stopped_early : bool
        True when training stopped at ``config.stop_loss``.
    diverged : bool
        True when training stopped because the loss of an epoch was not finite (NaN or infinite). The
        last metrics row is that epoch's; its weights are not checkpointed, so ``last.safetensors`` holds
        the last finite ones.
    run_dir : Path or None
        Where the run lives (None for a run trained without an output directory).
    model : RecurrentModel or None
        The final model (from :func:`train`; :func:`load_run` leaves it None, see ``last_checkpoint``).
    machine : Machine or None
        The task's ground truth.
    """

    config: TrainConfig
    metrics: tuple[dict[str, Any], ...]
    epochs_done: int
    stopped_early: bool = False
    run_dir: Path | None = None
    model: RecurrentModel | None = None
    machine: Machine | None = None
    diverged: bool = False

    @property
    def last_checkpoint(self) -> Path | None:
        """``RUN_DIR/checkpoints/last.safetensors`` when the run has a directory."""
        return None if self.run_dir is None else self.run_dir / ck.CHECKPOINT_DIR / ck.LAST

    def first_epoch_loss_below(self, threshold: float = MEMORISATION_LOSS) -> int | None:
        """First checkpoint epoch whose training loss is below ``threshold`` (None if never)."""
        return memorisation_epoch(
            np.array([int(row["epoch"]) for row in self.metrics], dtype=np.int64),
            np.array([float(row["train_loss"]) for row in self.metrics]),
            threshold,
        )

    def first_epoch_accuracy(self, length: int = 1000, value: float = 1.0) -> int | None:
        """First checkpoint epoch with test accuracy >= ``value`` at ``length`` (None if never).

        Raises
        ------
        ConfigError
            When ``length`` is not one of the run's test lengths.
        """
        key = str(int(length))
        if key not in {str(n) for n in self.config.test_lengths}:
            raise ConfigError(
                f"length {length} is not a test length of this run {self.config.test_lengths}"
            )
        for row in self.metrics:
            if row["val_accuracy"][key] >= value:
                return int(row["epoch"])
        return None

    def summary(
        self, length: int | None = GENERALISATION_LENGTH, threshold: float = MEMORISATION_LOSS
    ) -> dict[str, Any]:
        """Epochs, final losses and the landmark epochs.

        Parameters
        ----------
        length : int or None
            Test length for the generalisation landmarks; falls back to the longest test length when
            the run does not test ``length`` (None: the longest).
        threshold : float
            Training-loss level of the memorisation landmark.

        Returns
        -------
        dict
            ``epochs``, ``stopped_early``, ``diverged``, ``train_loss``, ``val_loss`` (dict),
            ``val_accuracy`` (dict), ``loss_below`` (threshold), ``first_epoch_loss_below``,
            ``accuracy_length``, ``first_epoch_accuracy_1`` (the first checkpoint at accuracy 1.0, which
            may drop again), ``generalisation_epoch`` (the first from which it stays 1.0: the definition
            of :func:`dfalens.trainers.landmarks.generalisation_epoch`, as in the timeline). None means
            never.
        """
        lengths = self.config.test_lengths
        if length is None or int(length) not in lengths:
            length = max(lengths) if lengths else None
        last = self.metrics[-1] if self.metrics else {}
        generalised = None
        if length is not None:
            key = str(int(length))
            generalised = generalisation_epoch(
                np.array([int(row["epoch"]) for row in self.metrics], dtype=np.int64),
                np.array(
                    [row["val_accuracy"].get(key, np.nan) for row in self.metrics], dtype=float
                ),
            )
        return {
            "epochs": self.epochs_done,
            "stopped_early": self.stopped_early,
            "diverged": self.diverged,
            "train_loss": last.get("train_loss"),
            "val_loss": last.get("val_loss", {}),
            "val_accuracy": last.get("val_accuracy", {}),
            "loss_below": threshold,
            "first_epoch_loss_below": self.first_epoch_loss_below(threshold),
            "accuracy_length": length,
            "first_epoch_accuracy_1": (
                None
                if length is None
                else self.first_epoch_accuracy(length, GENERALISATION_ACCURACY)
            ),
            "generalisation_epoch": generalised,
        }


def load_run(run_dir: str | Path) -> Run:
    """Read a run directory back: its config, metrics and task machine (the model stays on disk).

    Use :func:`dfalens.trainers.checkpoints.list_checkpoints` and
    :func:`~dfalens.trainers.checkpoints.load_checkpoint` for the weights.

    Raises
    ------
    CheckpointError
        When ``run_dir`` is not a dfalens run.
    """
    run_dir = Path(run_dir)
    files = ck.read_run_files(run_dir)
    try:
        config = TrainConfig.from_dict(files.record["config"])
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{run_dir / ck.RUN_JSON} has no valid config ({exc})") from None
    rows, machine = files.metrics, files.task_machine
    stopped = False
    epochs_done = int(rows[-1]["epoch"]) if rows else 0
    state = run_dir / ck.STATE_FILE
    if state.is_file():
        try:
            header = ck.safetensors_metadata(state.read_bytes())
            epochs_done = max(epochs_done, int(json.loads(header.get("epoch", "0"))))
            stopped = bool(json.loads(header.get("stopped", "false")))
        except (ValueError, OSError):
            pass
    diverged = bool(rows) and not math.isfinite(float(rows[-1]["train_loss"]))
    return Run(config, rows, epochs_done, stopped, run_dir, None, machine, diverged)
