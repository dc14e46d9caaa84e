"""Schemas of the files of a run: checkpoint metadata, weights against it, and ``run.json``.

Each check collects one message per bad field and raises a single :class:`CheckpointError` line naming
the file, every bad field and what to do. Nothing here allocates more than the metadata describes: the
expected weight shapes come from a model built on torch's ``meta`` device, after the model's size passed
the memory budget.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from dfalens.errors import CheckpointError, ConfigError
from dfalens.trainers.config import TrainConfig
from dfalens.trainers.data import TARGET_MODES
from dfalens.trainers.models import ModelConfig, RecurrentModel

__all__ = [
    "weights_digest",
    "check_checkpoint_meta",
    "check_weights",
    "check_run_record",
    "DIGEST_KEY",
]

DIGEST_KEY = "weights_sha256"
"""Checkpoint metadata key of the SHA-256 of the weights (checked on load when present)."""


def weights_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _fail(path: Path, what: str, problems: list[str], way_out: str) -> CheckpointError:
    return CheckpointError(f"{what} {path} is invalid: {'; '.join(problems)}; {way_out}")


def check_checkpoint_meta(path: Path, meta: Mapping[str, Any], version: int) -> ModelConfig:
    """Validate decoded checkpoint metadata; return its :class:`ModelConfig`.

    Raises
    ------
    CheckpointError
        Listing every field of the wrong type or out of range.
    BudgetError
        When ``model_config`` describes a model over the memory budget.
    """
    problems: list[str] = []
    fv = meta.get("format_version")
    if not _is_int(fv) or fv < 1:
        problems.append(f"format_version must be a positive integer, got {fv!r}")
    elif fv > version:
        raise CheckpointError(
            f"checkpoint {path} has format version {fv}, newer than this dfalens ({version}); "
            "upgrade dfalens"
        )
    config: ModelConfig | None = None
    raw = meta.get("model_config")
    if not isinstance(raw, dict):
        problems.append(f"model_config must be a JSON object, got {raw!r:.60}")
    else:
        try:
            config = ModelConfig.from_dict(raw)
        except (ConfigError, TypeError) as exc:
            problems.append(f"model_config: {exc}")
    if "task" in meta and not isinstance(meta["task"], str):
        problems.append(f"task must be a string, got {meta['task']!r:.60}")
    if "alphabet" in meta:
        alphabet = meta["alphabet"]
        if not isinstance(alphabet, list) or not all(isinstance(a, str) for a in alphabet):
            problems.append(f"alphabet must be a list of strings, got {alphabet!r:.60}")
        elif len(set(alphabet)) != len(alphabet):
            problems.append(f"alphabet has repeated symbols: {alphabet!r:.60}")
        elif config is not None and len(alphabet) != config.n_symbols:
            problems.append(
                f"alphabet has {len(alphabet)} symbols but model_config.n_symbols is "
                f"{config.n_symbols}"
            )
    for name in ("epoch", "step"):
        if name in meta and (not _is_int(meta[name]) or meta[name] < 0):
            problems.append(f"{name} must be a non-negative integer, got {meta[name]!r:.60}")
    if "seed" in meta and not _is_int(meta["seed"]):
        problems.append(f"seed must be an integer, got {meta['seed']!r:.60}")
    loss = meta.get("train_loss")
    if loss is not None and not _is_number(loss):
        problems.append(f"train_loss must be a number, got {loss!r:.60}")
    acc = meta.get("val_accuracy")
    if acc is not None and (
        not isinstance(acc, dict)
        or not all(_is_number(v) and (math.isnan(v) or 0 <= v <= 1) for v in acc.values())
    ):
        problems.append(f"val_accuracy must map test lengths to numbers in [0, 1], got {acc!r:.60}")
    if "targets" in meta and meta["targets"] not in TARGET_MODES:
        problems.append(
            f"targets must be one of {', '.join(TARGET_MODES)}, got {meta['targets']!r}"
        )
    if problems or config is None:
        raise _fail(path, "checkpoint", problems, "use another checkpoint of the run")
    return config


def check_weights(
    path: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any], config: ModelConfig
) -> None:
    """Refuse weights whose names or shapes disagree with ``config``, or whose digest is wrong.

    Raises
    ------
    CheckpointError
    """
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in RecurrentModel(config).state_dict().items()}
    problems = []
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing:
        problems.append(f"weights {missing[:3]} are missing")
    if extra:
        problems.append(f"unexpected weights {extra[:3]}")
    for name in sorted(set(expected) & set(tensors)):
        shape = tuple(tensors[name].shape)
        if shape != expected[name]:
            problems.append(f"{name} has shape {shape} but model_config implies {expected[name]}")
    if problems:
        raise _fail(path, "checkpoint", problems[:4], "use another checkpoint of the run")
    stored = meta.get(DIGEST_KEY)
    if stored is not None and stored != weights_digest(tensors):
        raise CheckpointError(
            f"checkpoint {path} is damaged: its weights do not match their recorded checksum "
            "(the file changed after it was written); use another checkpoint of the run"
        )


def check_run_record(path: Path, record: Any) -> TrainConfig:
    """Validate a parsed ``run.json``; return its :class:`TrainConfig`.

    Raises
    ------
    CheckpointError
        Listing every bad field (the stored settings are checked as ``TrainConfig`` checks them).
    """
    way_out = "start the run again with --force (or restore run.json)"
    if not isinstance(record, dict):
        raise _fail(
            path, "run record", [f"it must be a JSON object, got {type(record).__name__}"], way_out
        )
    problems: list[str] = []
    fv = record.get("format_version", 1)
    if not _is_int(fv) or fv < 1:
        problems.append(f"format_version must be a positive integer, got {fv!r:.60}")
    config: TrainConfig | None = None
    raw = record.get("config")
    if not isinstance(raw, dict):
        problems.append(f"config must be a JSON object, got {raw!r:.60}")
    else:
        try:
            config = TrainConfig.from_dict(raw)
        except (ConfigError, TypeError) as exc:
            problems.append(f"config: {exc}")
    sessions = record.get("sessions", [])
    if not isinstance(sessions, list) or not all(isinstance(s, dict) for s in sessions):
        problems.append(f"sessions must be a list of objects, got {sessions!r:.60}")
    for name in ("task_machine", "data", "model_config", "versions"):
        if name in record and record[name] is not None and not isinstance(record[name], dict):
            problems.append(f"{name} must be a JSON object, got {record[name]!r:.60}")
    if problems or config is None:
        raise _fail(path, "run record", problems, way_out)
    return config
