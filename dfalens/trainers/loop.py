"""The training loop: :func:`train` a model on a task, with checkpoints and exact resume.

Each epoch visits the training lengths in increasing order; the words of one length are shuffled by a
seeded ``torch.Generator`` and cut into batches of ``batch_size``, so every batch holds words of a single
length (the paper's per-length data loaders). Word tensors are built once; nothing goes through a
DataLoader. Metrics are computed at scheduled epochs with the weights of that epoch: epoch 0 is the
initialisation, and the training loss is measured over the whole training set (as the paper's trackers
do), not averaged over the batches of the epoch.

A run can be killed at any point and resumed: the weights, the optimizer state and the batch-order
generator are saved as tensors with every checkpoint (and at least once a minute), and a resumed run
ends with the same weights as an uninterrupted one (bit-identical on the CPU).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from dfalens import __version__
from dfalens._budget import check_memory, model_bytes, word_symbols
from dfalens._files import DirectoryLock, atomic_write, check_output_dir, writing
from dfalens.automata import get_task_machine, to_dict
from dfalens.errors import CheckpointError, ConfigError
from dfalens.trainers import checkpoints as ck
from dfalens.trainers.config import DEVICES, TrainConfig, checkpoint_epochs
from dfalens.trainers.data import TaskData, make_task_data
from dfalens.trainers.evaluate import TensorGroups, evaluate_groups, evaluate_long, loss_terms
from dfalens.trainers.models import GATES, ModelConfig, build_model
from dfalens.trainers.runs import Run

__all__ = [
    "train",
    "resolve_device",
    "derived_seed",
    "STATE_INTERVAL_S",
    "check_training_memory",
    "training_bytes",
]

STATE_INTERVAL_S = 60.0
"""Besides every checkpoint, the training state is saved when this many seconds passed since the last."""

Callback = Callable[[int, "dict[str, Any] | None"], None]


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` or ``mps`` without one raises :class:`ConfigError`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str) or device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device 'cuda' was asked for but torch sees no CUDA GPU (or was built without CUDA); "
            "use --device auto (or cpu)"
        )
    if device == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ConfigError(
            "device 'mps' was asked for but torch sees no Apple GPU; use --device auto (or cpu)"
        )
    return torch.device(device)


def derived_seed(seed: int, key: int) -> int:
    """An independent 63-bit seed for one random stream of a run (0, 1: data; 2: init; 3: batches)."""
    words = np.random.SeedSequence(int(seed), spawn_key=(key,)).generate_state(2, np.uint32)
    return int((int(words[0]) << 31) ^ int(words[1]))


def _versions() -> dict[str, str]:

    return {
        "dfalens": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def training_bytes(config: TrainConfig, n_symbols: int, n_classes: int) -> float:
    """Estimated bytes of one training run: its words, test words, activations and model state."""
    gates = GATES[config.cell]
    units = config.hidden * config.layers * gates
    longest = max([config.max_len, *config.test_lengths])
    words = 32 * word_symbols(n_symbols, config.max_len, config.data_fraction)
    tests = 16.0 * config.n_test_words * sum(config.test_lengths)
    # a batch's forward and backward pass keeps a few float32 vectors per unit and step; evaluating
    # the test words keeps their states
    activations = (
        16.0 * units * (config.batch_size * config.max_len + config.n_test_words * longest)
    )
    weights = 4 * model_bytes(config.hidden, config.layers, n_symbols, max(n_classes, 2), gates)
    return words + tests + activations + weights


def check_training_memory(config: TrainConfig, n_symbols: int, n_classes: int) -> None:
    """Refuse a run whose words, model and activations cannot fit the memory budget (before allocating).

    Raises
    ------
    BudgetError
    """
    longest = max([config.max_len, *config.test_lengths])
    check_memory(
        training_bytes(config, n_symbols, n_classes),
        f"training {config.task} (hidden {config.hidden}, max_len {config.max_len}, data fraction "
        f"{config.data_fraction:g}, test lengths up to {longest})",
        "lower hidden, max_len, data_fraction, batch_size or the test lengths",
    )


class _Trainer:
    """The state of one training run (kept out of the public API)."""

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        self.config = config
        self.device = device
        self.machine = get_task_machine(config.task)
        check_training_memory(config, self.machine.n_symbols, int(self.machine.output.max()) + 1)
        self.data: TaskData = make_task_data(
            self.machine,
            max_len=config.max_len,
            data_fraction=config.data_fraction,
            test_lengths=config.test_lengths,
            n_test_words=config.n_test_words,
            targets=config.targets,
            seed=config.seed,
        )
        model_config = ModelConfig(
            cell=config.cell,
            hidden=config.hidden,
            layers=config.layers,
            nonlinearity=config.nonlinearity,
            n_symbols=self.machine.n_symbols,
            n_classes=self.data.n_classes,
            h0=config.h0,
            gain=float(config.gain),
        )
        self.model = build_model(model_config, seed=derived_seed(config.seed, 2)).to(device)
        params = list(self.model.parameters())
        if config.optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                params,
                lr=config.lr,
                momentum=config.momentum,
                weight_decay=config.weight_decay,
                foreach=True,
            )
        else:
            self.optimizer = torch.optim.Adam(
                params, lr=config.lr, weight_decay=config.weight_decay, foreach=True
            )
        self.shuffle = torch.Generator().manual_seed(derived_seed(config.seed, 3))
        self.train_set = TensorGroups.from_groups(self.data.train, device)
        self.test_set = TensorGroups.from_groups(self.data.test, device)
        self.epoch = 0
        self.step = 0
        self.stopped = False

    # -- one epoch ------------------------------------------------------------------------------
    def train_epoch(self) -> bool:
        """One pass over the training words; False when a batch loss was not finite."""
        cfg = self.config
        model, optimizer = self.model, self.optimizer
        n_classes = model.config.n_classes
        streaming = self.data.streaming
        model.train()
        total = torch.zeros((), device=self.device)
        for words, targets in zip(self.train_set.words, self.train_set.targets, strict=True):
            n = words.shape[0]
            order = torch.randperm(n, generator=self.shuffle).to(self.device)
            for start in range(0, n, cfg.batch_size):
                index = order[start : start + cfg.batch_size]
                batch, target = words[index], targets[index]
                scores = model.forward_all(batch) if streaming else model(batch)
                loss = loss_terms(scores, target, cfg.loss, n_classes) / target.numel()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach()
                self.step += 1
        self.epoch += 1
        return bool(torch.isfinite(total))  # one device sync per epoch

    # -- measurements ---------------------------------------------------------------------------
    def train_loss(self) -> tuple[float, float]:
        self.model.eval()
        loss, accuracy, _ = evaluate_groups(
            self.model, self.train_set, self.config.loss, self.data.streaming
        )
        return loss, accuracy

    def metrics_row(self, started: float, train: tuple[float, float] | None) -> dict[str, Any]:
        loss, accuracy = self.train_loss() if train is None else train
        tests = evaluate_long(self.model, self.test_set, self.config.loss)
        lengths = [str(n) for n in self.test_set.lengths]
        return {
            "epoch": self.epoch,
            "step": self.step,
            "train_loss": loss,
            "train_accuracy": accuracy,
            "val_loss": {k: v[0] for k, v in zip(lengths, tests, strict=True)},
            "val_accuracy": {k: v[1] for k, v in zip(lengths, tests, strict=True)},
            "elapsed_s": round(time.perf_counter() - started, 3),
        }

    def checkpoint_meta(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "task": self.config.task,
            "alphabet": list(self.machine.alphabet),
            "epoch": self.epoch,
            "step": self.step,
            "seed": self.config.seed,
            "train_loss": row["train_loss"],
            "val_accuracy": row["val_accuracy"],
            "targets": self.config.targets,
        }

    def state_meta(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "stopped": self.stopped,
            "config": self.config.to_dict(),
        }


def _existing_run(run_dir: Path) -> bool:
    return any((run_dir / name).exists() for name in (ck.RUN_JSON, ck.METRICS, ck.CHECKPOINT_DIR))


def _check_run_dir(run_dir: Path, config: TrainConfig, resume: bool, force: bool) -> bool:
    """Validate the output directory before anything is written; True when resuming a stored run."""
    if resume and force:
        raise ConfigError(
            "--resume and --force exclude each other: continue the run or overwrite it"
        )
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"output {run_dir} exists and is not a directory; choose another path")
    exists = run_dir.is_dir() and _existing_run(run_dir)
    if not resume:
        if exists and not force:
            raise ConfigError(
                f"{run_dir} already holds a run; pass --resume to continue it or --force to "
                "overwrite it"
            )
        return False
    if not exists or not (run_dir / ck.RUN_JSON).is_file():
        raise ConfigError(f"nothing to resume in {run_dir} (no run.json); drop --resume to start")
    stored = ck.read_run_json(run_dir).get("config")
    if not isinstance(stored, dict):
        raise CheckpointError(f"{run_dir / ck.RUN_JSON} has no config; start again with --force")
    differs = config.differences(TrainConfig.from_dict(stored), ignore=("epochs",))
    if differs:
        parts = ", ".join(f"{k} (run: {old!r}, now: {new!r})" for k, (new, old) in differs.items())
        raise ConfigError(
            f"cannot resume {run_dir}: settings differ in {parts}; resume with the run's settings "
            "or start over with --force"
        )
    return True


def _make_dirs(run_dir: Path) -> None:
    try:
        (run_dir / ck.CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
        (run_dir / ck.STATE_FILE).parent.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ck.CHECKPOINT_DIR / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"cannot write to {run_dir}: {exc.strerror or exc}; choose a writable output directory"
        ) from None


def _clear_run(run_dir: Path, after_epoch: int = -1) -> None:
    """Remove this library's files of a run (only epoch checkpoints newer than ``after_epoch``)."""
    for epoch, path in ck.list_checkpoints(run_dir):
        if epoch > after_epoch:
            path.unlink()
    if after_epoch < 0:
        for name in (ck.RUN_JSON, ck.METRICS, ck.STATE_FILE, f"{ck.CHECKPOINT_DIR}/{ck.LAST}"):
            (run_dir / name).unlink(missing_ok=True)


def _write_run_json(trainer: _Trainer, run_dir: Path, history: list[dict[str, Any]]) -> None:
    record = {
        "format": "dfalens.run",
        "format_version": ck.FORMAT_VERSION,
        "config": trainer.config.to_dict(),
        "model_config": trainer.model.config.to_dict(),
        "device": str(trainer.device),
        "versions": _versions(),
        "task_machine": to_dict(trainer.machine),
        "data": {
            "train_words": len(trainer.data.train),
            "train_lengths": list(trainer.data.train.lengths),
            "test_lengths": list(trainer.data.test.lengths),
            "n_classes": trainer.data.n_classes,
        },
        "sessions": history,
    }
    atomic_write(run_dir / ck.RUN_JSON, (json.dumps(record, indent=2) + "\n").encode())


def train(
    config: TrainConfig,
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> Run:
    """Train a recurrent network on a task and record its checkpoints.

    Parameters
    ----------
    config : TrainConfig
        All settings (see :func:`dfalens.trainers.make_config` for presets).
    out_dir : path, optional
        Run directory (``run.json``, ``metrics.jsonl``, ``checkpoints/``, ``state/``). None trains in
        memory and writes nothing.
    resume : bool
        Continue the run in ``out_dir`` up to ``config.epochs``. Every setting but ``epochs`` must equal
        the stored one. The final weights equal those of an uninterrupted run.
    force : bool
        Overwrite a run already in ``out_dir`` (only dfalens' own files are removed).
    progress : bool
        Show a tqdm progress bar (only when stderr is a terminal).
    callback : callable, optional
        ``callback(epoch, row)`` after every epoch, once its files are written; ``row`` is the metrics row
        at checkpoint epochs, else None. An exception raised here stops training (the run stays
        resumable).

    Returns
    -------
    Run

    Raises
    ------
    TaskError
        Unknown task.
    ConfigError
        Bad settings, an existing run without ``resume``/``force``, a resume with other settings, an
        unwritable ``out_dir``.
    CheckpointError
        A damaged training state on resume.

    Examples
    --------
    >>> from dfalens.trainers import make_config, train
    >>> run = train(make_config("fast", epochs=2, test_lengths=(25,)))
    >>> [row["epoch"] for row in run.metrics][:2]
    [0, 1]
    """
    if not isinstance(config, TrainConfig):
        raise ConfigError(
            f"config must be a TrainConfig (make one with dfalens.trainers.make_config), got "
            f"{type(config).__name__}"
        )
    if out_dir is not None and not isinstance(out_dir, str | os.PathLike):
        raise ConfigError(f"out_dir must be a path or None, got {type(out_dir).__name__}")
    device = resolve_device(config.device)
    run_dir = None if out_dir is None else Path(out_dir)
    previous_threads = torch.get_num_threads()
    if run_dir is None:
        lock: DirectoryLock | None = None
        resuming = False
    else:
        check_output_dir(run_dir, "run directory")
        created = not run_dir.exists()
        lock = DirectoryLock(run_dir).acquire()
    try:
        if run_dir is not None:
            resuming = _check_run_dir(run_dir, config, resume, force)
        if device.type == "cpu" and config.threads is not None:
            torch.set_num_threads(config.threads)
        kept = f"the run up to its last checkpoint; continue it with `dfalens train -o {run_dir} --resume`"
        with writing(run_dir or ".", kept):
            return _train(config, device, run_dir, resuming, progress, callback)
    except BaseException:
        if lock is not None:
            lock.release()
            if created:
                _remove_if_empty(run_dir)
        raise
    finally:
        torch.set_num_threads(previous_threads)
        if lock is not None:
            lock.release()


def _remove_if_empty(run_dir: Path) -> None:
    """Remove a run directory this call created when it failed before its first checkpoint."""
    folder = run_dir / ck.CHECKPOINT_DIR
    if folder.is_dir() and any(folder.glob("*.safetensors")):
        return
    for name in (ck.RUN_JSON, ck.METRICS, ck.STATE_FILE):
        with contextlib.suppress(OSError):
            (run_dir / name).unlink()
    for folder_name in (Path(ck.STATE_FILE).parent, Path(ck.CHECKPOINT_DIR), Path(".")):
        with contextlib.suppress(OSError):
            (run_dir / folder_name).rmdir()


def _train(
    config: TrainConfig,
    device: torch.device,
    run_dir: Path | None,
    resuming: bool,
    progress: bool,
    callback: Callback | None,
) -> Run:
    trainer = _Trainer(config, device)
    schedule = set(checkpoint_epochs(config.checkpoints, config.epochs).tolist())
    rows: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    started = time.perf_counter()
    now = datetime.now(UTC).isoformat(timespec="seconds")
    state_path = None if run_dir is None else run_dir / ck.STATE_FILE
    generators = {"shuffle": trainer.shuffle}

    if run_dir is not None:
        if resuming:
            history = list(ck.read_run_json(run_dir).get("sessions", []))
            if state_path is not None and state_path.is_file():
                saved = ck.load_train_state(
                    state_path, trainer.model, trainer.optimizer, generators
                )
                trainer.epoch, trainer.step = int(saved["epoch"]), int(saved["step"])
                trainer.stopped = bool(saved.get("stopped", False))
            else:
                resuming = False  # killed before the first state: start the run again
            if trainer.epoch > config.epochs:
                raise ConfigError(
                    f"{run_dir} has trained {trainer.epoch} epochs already; pass --epochs "
                    f"{trainer.epoch} or more to resume it"
                )
        _make_dirs(run_dir)
        _clear_run(run_dir, after_epoch=trainer.epoch if resuming else -1)
        if resuming:
            rows = [r for r in ck.read_metrics(run_dir / ck.METRICS) if r["epoch"] <= trainer.epoch]
            ck.write_metrics(run_dir / ck.METRICS, rows)
        history.append({"started": now, "from_epoch": trainer.epoch, "to_epoch": config.epochs})
        _write_run_json(trainer, run_dir, history)

    def record(train: tuple[float, float] | None = None) -> dict[str, Any]:
        row = trainer.metrics_row(started, train)
        rows.append(row)
        if run_dir is not None:
            data = ck.checkpoint_bytes(trainer.model, trainer.checkpoint_meta(row))
            atomic_write(ck.checkpoint_path(run_dir, trainer.epoch), data)
            atomic_write(run_dir / ck.CHECKPOINT_DIR / ck.LAST, data)
            ck.append_metrics(run_dir / ck.METRICS, row)
        return row

    def save_state() -> None:
        if state_path is not None:
            ck.save_train_state(
                state_path, trainer.model, trainer.optimizer, generators, trainer.state_meta()
            )

    if not resuming:
        record()
        save_state()
    last_state = time.perf_counter()
    diverged = False
    # no tqdm at all without a progress bar: even a disabled one creates a multiprocessing lock, which
    # a worker process killed by Ctrl-C leaves behind (resource_tracker warnings)
    bar: Any = (
        tqdm(
            total=config.epochs,
            initial=trainer.epoch,
            unit="epoch",
            disable=None,
            dynamic_ncols=True,
        )
        if progress
        else _NoBar()
    )
    try:
        while trainer.epoch < config.epochs and not trainer.stopped:
            if not trainer.train_epoch():
                diverged = True  # keep the metrics row, not the weights; leave the state as it was
                rows.append(trainer.metrics_row(started, None))
                if run_dir is not None:
                    ck.append_metrics(run_dir / ck.METRICS, rows[-1])
                break
            train = None
            if config.stop_loss is not None:
                train = trainer.train_loss()
                trainer.stopped = train[0] < config.stop_loss
            row = None
            if trainer.epoch in schedule or trainer.stopped:
                row = record(train)
                bar.set_postfix(loss=f"{row['train_loss']:.2e}", refresh=False)
            if row is not None or time.perf_counter() - last_state > STATE_INTERVAL_S:
                save_state()
                last_state = time.perf_counter()
            bar.update(1)
            if callback is not None:
                callback(trainer.epoch, row)
    finally:
        bar.close()
    trainer.model.eval()
    return Run(
        config=config,
        metrics=tuple(rows),
        epochs_done=trainer.epoch,
        stopped_early=trainer.stopped,
        run_dir=run_dir,
        model=trainer.model,
        machine=trainer.machine,
        diverged=diverged,
    )


class _NoBar:
    """The calls :func:`train` makes on a tqdm bar, doing nothing."""

    def set_postfix(self, **kwargs: Any) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass
