"""Run directories: safetensors checkpoints with JSON metadata, training state, metrics, atomic writes.

A run directory holds::

    run.json                          full TrainConfig, library versions, task machine, device
    metrics.jsonl                     one JSON row per checkpoint (epoch, step, losses, accuracies)
    checkpoints/epoch_00000.safetensors   ...  one per scheduled epoch (0 = initialisation)
    checkpoints/last.safetensors      the latest weights
    state/last_train_state.safetensors    weights + optimizer + generator state for --resume

Every file is written to a temporary file in the same directory and moved into place with
``os.replace``, so a killed process leaves either the old file or the new one, never a torn one.
``metrics.jsonl`` grows by whole-line appends (one ``write`` per row); a reader drops a trailing partial
line, and resuming rewrites the file atomically. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from dfalens._files import atomic_write
from dfalens.automata import Machine, from_dict
from dfalens.errors import CheckpointError, DfalensError
from dfalens.trainers._schema import (
    DIGEST_KEY,
    check_checkpoint_meta,
    check_run_record,
    check_weights,
    weights_digest,
)
from dfalens.trainers.models import RecurrentModel

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "checkpoint_path",
    "save_checkpoint",
    "checkpoint_bytes",
    "safetensors_metadata",
    "load_checkpoint",
    "read_checkpoint_meta",
    "list_checkpoints",
    "save_train_state",
    "load_train_state",
    "read_metrics",
    "append_metrics",
    "write_metrics",
    "read_run_json",
    "RunFiles",
    "read_run_files",
    "check_tensors",
    "RUN_JSON",
    "METRICS",
    "CHECKPOINT_DIR",
    "STATE_FILE",
]

FORMAT = "dfalens.checkpoint"
FORMAT_VERSION = 1
RUN_JSON = "run.json"
METRICS = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "state/last_train_state.safetensors"
LAST = "last.safetensors"


def checkpoint_path(run_dir: str | Path, epoch: int) -> Path:
    """``RUN_DIR/checkpoints/epoch_NNNNN.safetensors``."""
    return Path(run_dir) / CHECKPOINT_DIR / f"epoch_{int(epoch):05d}.safetensors"


def _tensors(model: RecurrentModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def checkpoint_bytes(model: RecurrentModel, meta: Mapping[str, Any]) -> bytes:
    """The bytes of a checkpoint file (see :func:`save_checkpoint`), for writing to several paths."""
    tensors = _tensors(model)
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "model_config": json.dumps(model.config.to_dict()),
    }
    for key, value in meta.items():
        header[key] = value if isinstance(value, str) else json.dumps(value)
    header[DIGEST_KEY] = weights_digest(tensors)
    return st_save(tensors, metadata=header)


def save_checkpoint(path: str | Path, model: RecurrentModel, meta: Mapping[str, Any]) -> None:
    """Save a model's weights with metadata, atomically.

    Parameters
    ----------
    path : path
        Target ``.safetensors`` file (its directory must exist).
    model : RecurrentModel
    meta : mapping
        Extra metadata (task, alphabet, epoch, step, seed, train_loss, ...); values that are not strings
        are stored as JSON. ``format``, ``format_version`` and ``model_config`` are always added.
    """
    atomic_write(path, checkpoint_bytes(model, meta))


def decode_meta(header: Mapping[str, str]) -> dict[str, Any]:
    """The metadata of a checkpoint from its safetensors string header (JSON values decoded)."""
    meta: dict[str, Any] = {}
    for key, value in header.items():
        if key in ("format", "task"):
            meta[key] = value
            continue
        try:
            meta[key] = json.loads(value)
        except json.JSONDecodeError:
            meta[key] = value
    return meta


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path or list the run")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror}") from None


def safetensors_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of safetensors bytes (8-byte little-endian header length, then JSON).

    ``data`` needs to hold only the header (its first ``8 + length`` bytes). This is the one reader of
    safetensors headers in dfalens; malformed headers raise ``ValueError`` (``json`` errors included).
    """
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    if not isinstance(header, dict):
        raise ValueError("the safetensors header is not a JSON object")
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ValueError("the safetensors __metadata__ is not a JSON object")
    return dict(meta)


def _parse(path: Path, data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        tensors = st_load(data)
        header = safetensors_metadata(data)
    except Exception as exc:  # safetensors raises its own error types for truncated/corrupt files
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}); "
            "use another checkpoint of the run"
        ) from None
    meta = decode_meta(header)
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a safetensors file but not a dfalens checkpoint (no dfalens metadata); "
            "open foreign weights with dfalens.probes instead"
        )
    check_tensors(path, tensors, meta)
    return tensors, meta


def check_tensors(
    path: str | Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> None:
    """Validate a dfalens checkpoint's decoded metadata and its weights against it.

    Raises
    ------
    CheckpointError
        One line listing the bad metadata fields, the weights whose shapes disagree with
        ``model_config``, or a checksum that does not match (a damaged file).
    BudgetError
        When the metadata describes a model over the memory budget.
    """
    config = check_checkpoint_meta(Path(path), meta, FORMAT_VERSION)
    check_weights(Path(path), tensors, meta, config)


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The metadata of a dfalens checkpoint, without building the model."""
    path = Path(path)
    return _parse(path, _read_bytes(path))[1]


def load_checkpoint(path: str | Path) -> tuple[RecurrentModel, dict[str, Any]]:
    """Open a dfalens checkpoint.

    Parameters
    ----------
    path : path
        A ``.safetensors`` file written by :func:`save_checkpoint` (for example
        ``RUN_DIR/checkpoints/last.safetensors``).

    Returns
    -------
    model : RecurrentModel
        In eval mode, on the CPU.
    meta : dict
        Decoded metadata: ``model_config`` (dict), ``task`` (str), ``alphabet`` (list of str), ``epoch``,
        ``step``, ``seed``, ``train_loss``, ``format_version`` and whatever else was saved.

    Raises
    ------
    CheckpointError
        For a missing, truncated or corrupt file, or one that is not a dfalens checkpoint.
    """
    path = Path(path)
    tensors, meta = _parse(path, _read_bytes(path))
    model = RecurrentModel(check_checkpoint_meta(path, meta, FORMAT_VERSION))
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(
            f"checkpoint {path} does not match its model_config ({first})"
        ) from None
    model.eval()
    return model, meta


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """The epoch checkpoints of a run, sorted by epoch: ``[(epoch, path), ...]`` (``last`` excluded)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        raise CheckpointError(f"{run_dir} has no {CHECKPOINT_DIR}/ folder; is it a dfalens run?")
    found = []
    for path in folder.glob("epoch_*.safetensors"):
        digits = path.stem.removeprefix("epoch_")
        if digits.isdigit():
            found.append((int(digits), path))
    return sorted(found)


# -- training state ------------------------------------------------------------------------------


def save_train_state(
    path: str | Path,
    model: RecurrentModel,
    optimizer: torch.optim.Optimizer,
    generators: Mapping[str, torch.Generator],
    meta: Mapping[str, Any],
) -> None:
    """Save what resuming needs, atomically: weights, optimizer tensors, generator states, counters.

    Optimizer state tensors are stored as ``optim.<param index>.<key>``; generator states (uint8 tensors
    from ``Generator.get_state``) as ``rng.<name>``; weights as ``model.<name>``.
    """
    tensors = {f"model.{k}": v for k, v in _tensors(model).items()}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value.detach().to("cpu").contiguous()
            elif value is not None:
                tensors[f"optim.{index}.{key}"] = torch.tensor(value)
    for name, gen in generators.items():
        tensors[f"rng.{name}"] = gen.get_state()
    header = {"format": "dfalens.train_state", "format_version": str(FORMAT_VERSION)}
    header.update({k: json.dumps(v) for k, v in meta.items()})
    atomic_write(path, st_save(tensors, metadata=header))


def load_train_state(
    path: str | Path,
    model: RecurrentModel,
    optimizer: torch.optim.Optimizer,
    generators: Mapping[str, torch.Generator],
) -> dict[str, Any]:
    """Restore :func:`save_train_state` into live objects; returns the saved counters (epoch, step, ...).

    Raises
    ------
    CheckpointError
        When the file is missing, corrupt or does not fit the model and optimizer.
    """
    path = Path(path)
    data = _read_bytes(path)
    try:
        tensors = st_load(data)
        header = safetensors_metadata(data)
    except Exception as exc:
        raise CheckpointError(
            f"training state {path} is truncated or corrupt ({type(exc).__name__}); "
            "start the run again with --force"
        ) from None
    if header.get("format") != "dfalens.train_state":
        raise CheckpointError(f"{path} is not a dfalens training state; start again with --force")
    device = next(model.parameters()).device
    weights = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    try:
        model.load_state_dict(weights)
        opt_state = optimizer.state_dict()
        opt_state["state"] = {
            i: {k: (v if k == "step" else v.to(device)) for k, v in s.items()}
            for i, s in state.items()
        }
        optimizer.load_state_dict(opt_state)
        for name, gen in generators.items():
            gen.set_state(tensors[f"rng.{name}"])
    except (RuntimeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"training state {path} does not fit this run ({first}); start again with --force"
        ) from None
    return {k: json.loads(v) for k, v in header.items() if k not in ("format", "format_version")}


# -- metrics and run.json ------------------------------------------------------------------------


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``metrics.jsonl`` file; a torn last line (a killed append) is dropped."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text().split("\n")
    lines.pop()  # after the final newline: empty, or the torn tail of an interrupted append
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise CheckpointError(
                f"{path} line {number} is not JSON; the metrics file is damaged"
            ) from None
    return rows


def _line(row: Mapping[str, Any]) -> bytes:
    return (json.dumps(row, separators=(",", ":")) + "\n").encode()


def append_metrics(path: str | Path, row: Mapping[str, Any]) -> None:
    """Append one row as one ``write`` of a whole line."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, _line(row))
    finally:
        os.close(fd)


def write_metrics(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Replace the metrics file atomically with these rows."""
    atomic_write(path, b"".join(_line(r) for r in rows))


def read_run_json(run_dir: str | Path) -> dict[str, Any]:
    """The parsed ``run.json`` of a run directory."""
    path = Path(run_dir) / RUN_JSON
    if not path.is_file():
        raise CheckpointError(f"{run_dir} has no {RUN_JSON}; is it a dfalens run directory?")
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is unreadable ({type(exc).__name__})") from None
    check_run_record(path, record)
    return record


@dataclass(frozen=True, eq=False)
class RunFiles:
    """What a run directory's ``run.json`` and ``metrics.jsonl`` hold, read once for every reader
    (:func:`dfalens.trainers.load_run`, :func:`dfalens.timeline.history.resolve_run`).

    Attributes
    ----------
    run_dir : Path
    record : dict
        The whole ``run.json``.
    config : dict
        Its ``config`` (not validated; empty when absent).
    task_machine : Machine or None
        Its ``task_machine``; None when absent or unreadable.
    metrics : tuple of dict
        Rows of ``metrics.jsonl`` (empty when the file is missing).
    """

    run_dir: Path
    record: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    task_machine: Machine | None = None
    metrics: tuple[dict[str, Any], ...] = ()


def read_run_files(run_dir: str | Path) -> RunFiles:
    """Read a run directory's ``run.json`` and ``metrics.jsonl`` (the weights stay on disk).

    Raises
    ------
    CheckpointError
        When ``run.json`` is missing or unreadable, or a metrics line is damaged.
    """
    run_dir = Path(run_dir)
    record = read_run_json(run_dir)
    machine = None
    if record.get("task_machine"):
        try:
            machine = from_dict(record["task_machine"])
        except DfalensError:
            machine = None
    config = record.get("config")
    return RunFiles(
        run_dir,
        record,
        dict(config) if isinstance(config, Mapping) else {},
        machine,
        tuple(read_metrics(run_dir / METRICS)),
    )
