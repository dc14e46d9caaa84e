"""Training settings: the :class:`TrainConfig` dataclass, named presets and checkpoint schedules.

Presets
-------
``paper``
    App. C.1 of van Rossem & Saxe (2025) exactly: one layer of 100 ReLU units, h0 = ones, Xavier-normal
    gain 0.1, plain SGD at lr 0.02, batches of 128 words of one length (lengths 1..10 in turn each epoch),
    MSE on one-hot targets after the last symbol, all 2,046 words up to length 10, 1000 epochs, a
    checkpoint every epoch (epoch 0 is the initialisation).
``tanh``
    Paper App. D.6: the same network with tanh, gain 0.01 and lr 0.05 (the paper's values; the official
    notebook comments a gain of 0.8 instead).
``random``
    Paper App. D.5 for random regular tasks: gain 0.025, lr 0.05 (pass ``task="random:SEED"``).
``phase``
    One cell of the Fig. 9 phase diagram as the official sweep code runs it: cross-entropy, stop when the
    training loss is below 1e-3 (at most 1,000,000 epochs), accuracy on 30 words of length 100,
    log-spaced checkpoints.
``fast``
    A demo setting that learns parity in seconds on one CPU core: 32 ReLU units, gain 0.3, Adam at lr
    0.003 (MSE), 120 epochs, a checkpoint every 2 epochs, test lengths 25, 100 and 1000. Seeds 0, 1, 2
    reach accuracy 1.0 at length 1000 by epochs 50, 60 and 70 (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dfalens.errors import ConfigError
from dfalens.trainers.data import PAPER_TEST_LENGTHS, TARGET_MODES
from dfalens.trainers.models import CELLS, H0_MODES, NONLINEARITIES

__all__ = [
    "TrainConfig",
    "PRESETS",
    "OPTIMIZERS",
    "LOSSES",
    "DEVICES",
    "make_config",
    "checkpoint_epochs",
    "parse_schedule",
]

OPTIMIZERS = ("sgd", "adam")
LOSSES = ("mse", "ce")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; stored in ``run.json`` and compared on resume.

    Parameters
    ----------
    task : str
        A name :func:`dfalens.automata.get_task_machine` understands (``parity``, ``mod3``,
        ``tomita4``, ``random:7``) or the path of a machine JSON file.
    cell, hidden, layers, nonlinearity, h0, gain
        The model (see :class:`dfalens.trainers.models.ModelConfig`).
    optimizer : {"sgd", "adam"}
    lr : float
        Learning rate.
    momentum : float
        SGD momentum (0 = plain SGD, as the paper).
    weight_decay : float
        L2 penalty of the optimizer (0 in the paper).
    batch_size : int
        Words per batch; every batch holds words of one length.
    loss : {"mse", "ce"}
        Mean squared error on one-hot targets (the paper) or cross-entropy.
    targets : {"last", "every"}
        Supervise the output after the whole word (the paper) or after every symbol (streaming).
    max_len : int
        Longest training word.
    data_fraction : float
        Keep ``Binomial(k**l, p)`` random words of each length ``l`` (1.0 = all words).
    epochs : int
        Epochs to train (an epoch visits every training word once).
    stop_loss : float or None
        Stop as soon as the training loss (over the whole training set, after an epoch) is below this.
    seed : int
        Seeds the data subset, the test words, the initial weights and the batch order.
    device : {"auto", "cpu", "cuda", "mps"}
        ``auto`` uses CUDA when available.
    checkpoints : str
        ``every``, ``every:K`` or ``log:N`` (see :func:`checkpoint_epochs`).
    test_lengths : tuple of int
        Lengths of the long random test words.
    n_test_words : int
        Test words per test length.
    threads : int or None
        torch CPU threads while training (1 is fastest for small networks; None leaves torch's setting).
    """

    task: str = "parity"
    cell: str = "rnn"
    hidden: int = 100
    layers: int = 1
    nonlinearity: str = "relu"
    h0: str = "ones"
    gain: float = 0.1
    optimizer: str = "sgd"
    lr: float = 0.02
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 128
    loss: str = "mse"
    targets: str = "last"
    max_len: int = 10
    data_fraction: float = 1.0
    epochs: int = 1000
    stop_loss: float | None = None
    seed: int = 0
    device: str = "auto"
    checkpoints: str = "every"
    test_lengths: tuple[int, ...] = PAPER_TEST_LENGTHS
    n_test_words: int = 10
    threads: int | None = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "test_lengths", _int_tuple(self.test_lengths, "test_lengths"))
        _choice("cell", self.cell, CELLS)
        _choice("nonlinearity", self.nonlinearity, NONLINEARITIES)
        _choice("h0", self.h0, H0_MODES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("loss", self.loss, LOSSES)
        _choice("targets", self.targets, TARGET_MODES)
        _choice("device", self.device, DEVICES)
        if not isinstance(self.task, str) or not self.task.strip():
            raise ConfigError("task must be a task name such as 'parity' or a machine JSON path")
        for name in ("hidden", "layers", "batch_size", "max_len", "n_test_words"):
            _positive_int(name, getattr(self, name))
        for name in ("epochs", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
        if self.threads is not None:
            _positive_int("threads", self.threads)
        for name in ("gain", "lr"):
            _positive_float(name, getattr(self, name))
        if not _is_number(self.momentum) or not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not _is_number(self.weight_decay) or self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be non-negative, got {self.weight_decay!r}")
        if not _is_number(self.data_fraction) or not 0.0 < self.data_fraction <= 1.0:
            raise ConfigError(f"data_fraction must be in (0, 1], got {self.data_fraction!r}")
        if self.stop_loss is not None:
            _positive_float("stop_loss", self.stop_loss)
        if self.momentum and self.optimizer != "sgd":
            raise ConfigError("momentum applies to the sgd optimizer only; drop it or use sgd")
        if any(length < 1 for length in self.test_lengths):
            raise ConfigError(f"test lengths must be positive, got {self.test_lengths}")
        parse_schedule(self.checkpoints)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields (``test_lengths`` as a list)."""
        data = dataclasses.asdict(self)
        data["test_lengths"] = list(self.test_lengths)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys raise :class:`ConfigError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown training settings {unknown}; valid ones: {sorted(names)}")
        return cls(**dict(data))

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated); unknown names raise :class:`ConfigError`."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"unknown training settings {unknown}; valid ones: {sorted(names)}")
        return dataclasses.replace(self, **changes)

    def differences(self, other: TrainConfig, ignore: tuple[str, ...] = ()) -> dict[str, tuple]:
        """Fields whose values differ: ``{name: (self_value, other_value)}``."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {
            key: (mine[key], theirs[key])
            for key in mine
            if key not in ignore and mine[key] != theirs[key]
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool)


def _choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"{name} must be one of {', '.join(options)}, got {value!r}")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _positive_float(name: str, value: Any) -> None:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


def _int_tuple(value: Any, name: str) -> tuple[int, ...]:
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a list of integers, got {value!r}") from None
    return tuple(sorted(set(out)))


PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "tanh": {"nonlinearity": "tanh", "gain": 0.01, "lr": 0.05},
    "random": {"gain": 0.025, "lr": 0.05},
    "phase": {
        "loss": "ce",
        "stop_loss": 1e-3,
        "epochs": 1_000_000,
        "checkpoints": "log:60",
        "test_lengths": (100,),
        "n_test_words": 30,
    },
    "fast": {
        "hidden": 32,
        "gain": 0.3,
        "optimizer": "adam",
        "lr": 0.003,
        "epochs": 120,
        "checkpoints": "every:2",
        "test_lengths": (25, 100, 1000),
    },
}
"""Named settings; each is a set of changes to the :class:`TrainConfig` defaults (which are ``paper``)."""


def make_config(preset: str = "paper", **overrides: Any) -> TrainConfig:
    """A :class:`TrainConfig` from a preset plus explicit overrides (overrides win).

    Parameters
    ----------
    preset : str
        One of :data:`PRESETS`.
    **overrides
        Any :class:`TrainConfig` field; ``None`` values are ignored, except ``stop_loss=None``, which is
        honoured only when passed explicitly through :meth:`TrainConfig.replace`.

    Raises
    ------
    ConfigError
        For an unknown preset or setting, or an out-of-range value.

    Examples
    --------
    >>> make_config("paper", seed=3).lr
    0.02
    >>> make_config("tanh").nonlinearity
    'tanh'
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values = dict(PRESETS[preset])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig().replace(**values)


def parse_schedule(spec: str) -> tuple[str, int]:
    """Split a checkpoint schedule into ``(kind, number)``: ``every`` -> ("every", 1).

    Raises
    ------
    ConfigError
        For anything other than ``every``, ``every:K`` or ``log:N`` with positive integers.
    """
    text = str(spec).strip().lower()
    kind, _, number = text.partition(":")
    if kind == "every" and not number:
        return "every", 1
    if kind in ("every", "log") and number.isdigit() and int(number) >= 1:
        return kind, int(number)
    raise ConfigError(
        f"checkpoint schedule must be 'every', 'every:K' or 'log:N' with K, N >= 1, got {spec!r}"
    )


def checkpoint_epochs(spec: str, epochs: int) -> np.ndarray:
    """The epochs a schedule saves at, always including 0 (the initialisation) and ``epochs``.

    ``every``: each epoch; ``every:K``: multiples of K; ``log:N``: N epochs spaced evenly in log scale
    between 1 and ``epochs`` (rounded, duplicates removed, so early epochs are dense).

    Returns
    -------
    ndarray of int64, sorted
    """
    kind, number = parse_schedule(spec)
    if kind == "every":
        chosen = np.arange(0, epochs + 1, number, dtype=np.int64)
    else:
        chosen = np.rint(np.geomspace(1, max(epochs, 1), number)).astype(np.int64)
    chosen = np.concatenate([[0], chosen[chosen <= epochs], [epochs]])
    return np.unique(chosen)
