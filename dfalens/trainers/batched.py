"""Train many small recurrent networks at once with stacked parameters.

``torch.vmap`` cannot batch ``nn.RNN``/``nn.GRU``, so this module holds a hand-written cell whose parameters
carry a leading *member* axis ``M``: ``rnn.weight_hh_l0`` has shape ``(M, G*H, H)``, and one time loop with
one ``bmm`` per step advances every member at once. Parameter names are those of a
:class:`~dfalens.trainers.models.RecurrentModel` state dict, so a member slices out into an ordinary model
and checkpoint (:meth:`BatchedRun.model`, :meth:`BatchedRun.save_member`).

Members
-------
A batched run takes one :class:`~dfalens.trainers.config.TrainConfig` and a list of :class:`Member` s, each
overriding the settings that a sweep varies without changing the tensor shapes: ``seed``, ``gain``,
``data_fraction`` and ``lr``. Member ``m`` behaves as ``train(config.replace(seed=..., gain=...,
data_fraction=..., lr=...))``:

- its initial weights are built by :func:`~dfalens.trainers.models.build_model` with the seed ``train``
  derives, so they are bit-identical to the separate run's;
- its data subset is the one :func:`~dfalens.trainers.data.make_task_data` draws for its seed and
  fraction, kept as a boolean mask over the shared table of all words up to ``max_len``;
- its batch order comes from its own ``torch.Generator`` seeded as in ``train``: each epoch visits the
  lengths in increasing order, and for every length the member draws ``torch.randperm`` over its own
  words of that length and cuts it into batches of ``batch_size``. Every batch therefore holds words of one
  length (the paper's per-length loaders) and is exactly the batch the separate run would draw.

Members step together: step ``k`` of length ``L`` feeds every member its own ``k``-th batch of that length.
A member with fewer batches of length ``L`` (a smaller subset) sits out the remaining steps of ``L``: its
parameters, its optimizer state and its step count stay untouched, exactly as if those steps did not exist
for it. Short batches are padded with zero-weight words.

The loss is the sum over members of each member's mean loss over its own batch, so the gradient with
respect to a member's parameters is exactly its own gradient. SGD (with momentum and weight decay) and Adam
are applied per member with per-member step counts and learning rates (:class:`StackedOptimizer`), so one
optimizer over the stacked tensors behaves as ``M`` independent ones. After every epoch each training
member's loss over its whole subset is measured (as ``train`` does with ``stop_loss``); members below
``stop_loss`` are frozen, as are members whose loss is no longer finite (diverged; ``train`` stops those
too), and the run ends when all are frozen or ``epochs`` is reached.

The stacked networks themselves (forward, loss, optimizer) live in :mod:`dfalens.trainers.stacked`; the
names are re-exported here.

A member therefore follows the trajectory of its separate run step for step; the only differences are
float32 rounding (the stacked ``bmm`` sums in another order than ``nn.RNN``), about 1e-7 relative per step.
Over thousands of steps such differences can grow where training is chaotic, as between any two
floating-point implementations.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dfalens._budget import check_memory, model_bytes
from dfalens.automata import Machine, get_task_machine
from dfalens.errors import ConfigError
from dfalens.trainers import checkpoints as ck
from dfalens.trainers.config import TrainConfig
from dfalens.trainers.data import TaskData, enumerate_words, make_task_data, word_targets
from dfalens.trainers.loop import derived_seed, resolve_device, training_bytes
from dfalens.trainers.models import ModelConfig, RecurrentModel, build_model
from dfalens.trainers.stacked import (
    StackedOptimizer,
    per_example_loss,
    stacked_final_scores,
    stacked_forward,
    stacked_loss,
)

__all__ = [
    "BATCHED_CELLS",
    "Member",
    "BatchedRun",
    "train_batched",
    "stacked_forward",
    "stacked_final_scores",
    "stacked_loss",
    "StackedOptimizer",
]

BATCHED_CELLS = ("rnn", "gru")
"""Cells the stacked trainer implements (the Elman network of the paper and the GRU)."""

_EVAL_ITEMS = 1 << 18


@dataclass(frozen=True)
class Member:
    """One network of a batched run: the settings it overrides in the shared :class:`TrainConfig`.

    Parameters
    ----------
    seed : int
        Seeds its data subset, test words, initial weights and batch order (as ``TrainConfig.seed``).
    gain : float, optional
        Xavier gain of its initial weights (default: the config's).
    data_fraction : float, optional
        Fraction of the words of each length it trains on (default: the config's).
    lr : float, optional
        Its learning rate (default: the config's).
    """

    seed: int = 0
    gain: float | None = None
    data_fraction: float | None = None
    lr: float | None = None

    def apply(self, config: TrainConfig) -> TrainConfig:
        """The config of the equivalent separate run."""
        changes: dict[str, Any] = {"seed": int(self.seed)}
        for name in ("gain", "data_fraction", "lr"):
            value = getattr(self, name)
            if value is not None:
                changes[name] = float(value)
        return config.replace(**changes)


def _index_of(words: np.ndarray, n_symbols: int) -> np.ndarray:
    """Position of each word in the lexicographic list of all words of its length."""
    powers = n_symbols ** np.arange(words.shape[1] - 1, -1, -1, dtype=np.int64)
    return words @ powers


@dataclass(frozen=True)
class _Shared:
    """The shared word table (every word up to ``max_len``) and every member's view of it."""

    machine: Machine
    lengths: tuple[int, ...]
    words: tuple[Tensor, ...]
    targets: tuple[Tensor, ...]
    masks: tuple[np.ndarray, ...]
    data: tuple[TaskData, ...]


def _shared_data(configs: Sequence[TrainConfig], device: torch.device) -> _Shared:
    base = configs[0]
    machine = get_task_machine(base.task)
    k = machine.n_symbols
    table = enumerate_words(k, base.max_len)
    streaming = base.targets == "every"
    data = tuple(
        make_task_data(
            machine,
            max_len=c.max_len,
            data_fraction=c.data_fraction,
            test_lengths=c.test_lengths,
            n_test_words=c.n_test_words,
            targets=c.targets,
            seed=c.seed,
        )
        for c in configs
    )
    masks = [np.zeros((len(configs), w.shape[0]), dtype=bool) for w in table]
    for m, d in enumerate(data):
        for w in d.train.words:
            masks[w.shape[1] - 1][m, _index_of(w, k)] = True
    keep = [i for i, mk in enumerate(masks) if mk.any()]
    return _Shared(
        machine=machine,
        lengths=tuple(table[i].shape[1] for i in keep),
        words=tuple(torch.as_tensor(table[i]).to(device) for i in keep),
        targets=tuple(
            torch.as_tensor(word_targets(machine, table[i], streaming)).to(device) for i in keep
        ),
        masks=tuple(masks[i] for i in keep),
        data=data,
    )


def _check_members(config: TrainConfig, members: Sequence[Member]) -> list[TrainConfig]:
    if config.cell not in BATCHED_CELLS:
        raise ConfigError(
            f"the batched trainer supports cells {', '.join(BATCHED_CELLS)}, not {config.cell!r}; "
            "train LSTMs one by one with train()"
        )
    if not members:
        raise ConfigError("a batched run needs at least one member")
    return [member.apply(config) for member in members]


# -- the result ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BatchedRun:
    """The outcome of :func:`train_batched`.

    Attributes
    ----------
    config : TrainConfig
        The shared settings.
    members : tuple of Member
    member_configs : tuple of TrainConfig
        The config of each member's equivalent separate run.
    model_config : ModelConfig
        Architecture shared by all members (its ``gain`` is the shared config's).
    params : dict of str to Tensor
        Final stacked parameters (CPU), leading member axis.
    epochs : ndarray of int, shape (M,)
        Epochs each member trained.
    stopped_early : ndarray of bool, shape (M,)
        Whether the member reached ``stop_loss``.
    train_loss, train_accuracy : ndarray of float, shape (M,)
        Over each member's whole training subset, with the final weights.
    steps : ndarray of int, shape (M,)
        Optimizer steps each member took.
    n_train : ndarray of int, shape (M,)
        Training words of each member.
    test_loss, test_accuracy : dict of str to ndarray
        Per test length (as a string, like ``Run.metrics``), one value per member on its own test words.
    machine : Machine
        The task's ground truth.
    elapsed_s : float
        Wall time of the training loop.
    """

    config: TrainConfig
    members: tuple[Member, ...]
    member_configs: tuple[TrainConfig, ...]
    model_config: ModelConfig
    params: dict[str, Tensor]
    epochs: np.ndarray
    stopped_early: np.ndarray
    train_loss: np.ndarray
    train_accuracy: np.ndarray
    steps: np.ndarray
    n_train: np.ndarray
    test_loss: dict[str, np.ndarray]
    test_accuracy: dict[str, np.ndarray]
    machine: Machine
    elapsed_s: float

    def __len__(self) -> int:
        return len(self.members)

    def state_dict(self, i: int) -> dict[str, Tensor]:
        """Member ``i``'s weights as a :class:`RecurrentModel` state dict (copies)."""
        return {k: v[i].clone() for k, v in self.params.items()}

    def model(self, i: int) -> RecurrentModel:
        """Member ``i`` as an ordinary :class:`RecurrentModel` (CPU, eval mode)."""
        cfg = dataclasses.replace(self.model_config, gain=float(self.member_configs[i].gain))
        model = RecurrentModel(cfg)
        model.load_state_dict(self.state_dict(i))
        model.eval()
        return model

    def meta(self, i: int) -> dict[str, Any]:
        """Checkpoint metadata of member ``i`` (the keys ``train`` writes, plus the member settings)."""
        c = self.member_configs[i]
        return {
            "task": c.task,
            "alphabet": list(self.machine.alphabet),
            "epoch": int(self.epochs[i]),
            "step": int(self.steps[i]),
            "seed": int(c.seed),
            "train_loss": float(self.train_loss[i]),
            "val_accuracy": {k: float(v[i]) for k, v in self.test_accuracy.items()},
            "targets": c.targets,
            "config": c.to_dict(),
            "batched": True,
        }

    def save_member(self, i: int, path: str | Path) -> Path:
        """Write member ``i`` as a dfalens checkpoint (``load_checkpoint`` and ``extract`` read it)."""
        path = Path(path)
        ck.save_checkpoint(path, self.model(i), self.meta(i))
        return path

    def save(self, directory: str | Path) -> list[Path]:
        """Write every member as ``DIR/member_NNNN.safetensors``; return the paths."""
        directory = Path(directory)
        return [
            self.save_member(i, directory / f"member_{i:04d}.safetensors") for i in range(len(self))
        ]

    def rows(self) -> list[dict[str, Any]]:
        """One summary dict per member: its settings, epochs, losses and test accuracies."""
        out = []
        for i, c in enumerate(self.member_configs):
            row: dict[str, Any] = {
                "seed": c.seed,
                "gain": c.gain,
                "data_fraction": c.data_fraction,
                "lr": c.lr,
                "epochs": int(self.epochs[i]),
                "stopped_early": bool(self.stopped_early[i]),
                "train_loss": float(self.train_loss[i]),
                "train_accuracy": float(self.train_accuracy[i]),
                "n_train": int(self.n_train[i]),
            }
            for k in self.test_accuracy:
                row[f"test_loss_{k}"] = float(self.test_loss[k][i])
                row[f"test_accuracy_{k}"] = float(self.test_accuracy[k][i])
            out.append(row)
        return out


# -- training -----------------------------------------------------------------------------------------
def _subset_metrics(
    params: Mapping[str, Tensor],
    shared: _Shared,
    rows: np.ndarray,
    shape: Mapping[str, Any],
    loss: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean loss and accuracy of members ``rows`` over their whole subsets (items as ``train`` counts
    them: words, or word positions when streaming)."""
    total = np.zeros(len(rows))
    right = np.zeros(len(rows))
    items = np.zeros(len(rows))
    device = params["h0"].device
    every = bool(shape.get("every"))
    with torch.no_grad():
        for words, targets, mask in zip(shared.words, shared.targets, shared.masks, strict=True):
            length = words.shape[1]
            per_item = length if every else 1
            counts = mask[rows].sum(axis=1)
            width = max(int(counts.max()), 1)
            step = max(1, _EVAL_ITEMS // (width * per_item))
            for a in range(0, len(rows), step):
                r, c = rows[a : a + step], counts[a : a + step]
                if not c.any():
                    continue
                n = int(c.max())
                # each member's own words first, padded to the widest subset of this chunk
                order = np.argsort(~mask[r], axis=1, kind="stable")[:, :n]
                idx = torch.as_tensor(order, device=device)
                real = np.arange(n)[None, :] < c[:, None]
                w = torch.as_tensor(real, dtype=params["h0"].dtype, device=device)
                r_t = torch.as_tensor(r, device=device)
                sub = {k: v[r_t] for k, v in params.items()}
                scores = stacked_forward(sub, words[idx], **shape)
                tgt = targets[idx]
                per = per_example_loss(scores, tgt, loss)
                hits = (scores.argmax(-1) == tgt).to(per.dtype)
                hits = hits.mean(dim=2) if hits.dim() > 2 else hits
                total[a : a + step] += ((per * w).sum(dim=1) * per_item).double().cpu().numpy()
                right[a : a + step] += ((hits * w).sum(dim=1) * per_item).double().cpu().numpy()
                items[a : a + step] += c * per_item
    return total / items, right / items


def _test_metrics(
    params: Mapping[str, Tensor],
    shared: _Shared,
    shape: Mapping[str, Any],
    loss: str,
    device: torch.device,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Loss and accuracy after the last symbol on each member's own long test words."""
    test_loss: dict[str, np.ndarray] = {}
    test_acc: dict[str, np.ndarray] = {}
    plain = {k: v for k, v in shape.items() if k != "every"}
    lengths = shared.data[0].test.lengths
    for g, length in enumerate(lengths):
        words = torch.from_numpy(np.stack([d.test.words[g] for d in shared.data])).to(device)
        targets = torch.from_numpy(np.stack([d.test.targets[g] for d in shared.data])).to(device)
        scores = stacked_final_scores(params, words, **plain)
        per = per_example_loss(scores, targets, loss)
        test_loss[str(length)] = per.mean(dim=1).double().cpu().numpy()
        test_acc[str(length)] = (scores.argmax(-1) == targets).double().mean(dim=1).cpu().numpy()
    return test_loss, test_acc


def train_batched(
    config: TrainConfig,
    members: Sequence[Member],
    *,
    device: str | torch.device | None = None,
    callback: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
) -> BatchedRun:
    """Train ``len(members)`` networks at once, each as ``train(member.apply(config))`` would.

    Parameters
    ----------
    config : TrainConfig
        Shared settings (cell ``rnn`` or ``gru``). ``epochs`` caps every member; with ``stop_loss`` a
        member stops (is frozen) once its training loss after an epoch is below it. ``checkpoints`` is
        not used: export members with :meth:`BatchedRun.save_member`.
    members : sequence of Member
        Per-member seed, gain, data fraction and learning rate.
    device : str or torch.device, optional
        Default ``config.device`` (``auto``: CUDA when available).
    callback : callable, optional
        ``callback(epoch, loss, active)`` after every epoch: ``loss`` (M,) the last measured training
        loss of every member (NaN before the first measurement), ``active`` (M,) the members still
        training.

    Returns
    -------
    BatchedRun

    Raises
    ------
    ConfigError
        An unsupported cell, no members, a member setting out of range, or a member whose data subset
        is empty.

    Examples
    --------
    >>> from dfalens.trainers import make_config
    >>> cfg = make_config("fast", epochs=2, hidden=8, max_len=4, test_lengths=(20,))
    >>> run = train_batched(cfg, [Member(seed=0), Member(seed=1, gain=0.5)])
    >>> run.epochs.tolist(), run.model(1).config.gain
    ([2, 2], 0.5)
    """
    configs = _check_members(config, members)
    machine = get_task_machine(config.task)
    # the words are shared; every member has its own weights and activations
    units = config.hidden * config.layers * (3 if config.cell == "gru" else 1)
    per_member = 4 * model_bytes(config.hidden, config.layers, machine.n_symbols, 2, 3)
    per_member += 8.0 * units * config.batch_size * config.max_len
    check_memory(
        training_bytes(config, machine.n_symbols, int(machine.output.max()) + 1)
        + len(configs) * per_member,
        f"{len(configs)} stacked networks of {config.hidden} units on {config.task}",
        "train fewer members together (--members) or lower hidden or max_len",
    )
    dev = resolve_device(config.device) if device is None else torch.device(device)
    previous_threads = torch.get_num_threads()
    if dev.type == "cpu" and config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _train_batched(config, tuple(members), configs, dev, callback)
    finally:
        torch.set_num_threads(previous_threads)


def _train_batched(
    config: TrainConfig,
    members: tuple[Member, ...],
    configs: list[TrainConfig],
    device: torch.device,
    callback: Callable[[int, np.ndarray, np.ndarray], None] | None,
) -> BatchedRun:
    shared = _shared_data(configs, device)
    n_classes = shared.data[0].n_classes
    model_config = ModelConfig(
        cell=config.cell,
        hidden=config.hidden,
        layers=config.layers,
        nonlinearity=config.nonlinearity,
        n_symbols=shared.machine.n_symbols,
        n_classes=n_classes,
        h0=config.h0,
        gain=float(config.gain),
    )
    models = [
        build_model(dataclasses.replace(model_config, gain=float(c.gain)), derived_seed(c.seed, 2))
        for c in configs
    ]
    names = list(models[0].state_dict())
    params = {
        k: torch.stack([m.state_dict()[k] for m in models]).to(device).contiguous() for k in names
    }
    trainable = [k for k in names if k != "h0" or config.h0 == "learned"]
    lr = torch.tensor([c.lr for c in configs], dtype=params["h0"].dtype, device=device)
    optimizer = StackedOptimizer(
        {k: params[k] for k in trainable},
        config.optimizer,
        lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    shape = {
        "cell": config.cell,
        "layers": config.layers,
        "nonlinearity": config.nonlinearity,
        "n_symbols": shared.machine.n_symbols,
        "every": config.targets == "every",
    }
    shufflers = [torch.Generator().manual_seed(derived_seed(c.seed, 3)) for c in configs]
    m_count = len(configs)
    counts = np.stack([mk.sum(axis=1) for mk in shared.masks], axis=1)  # (M, n_lengths)
    if np.any(counts.sum(axis=1) == 0):
        bad = int(np.flatnonzero(counts.sum(axis=1) == 0)[0])
        raise ConfigError(
            f"member {bad} has no training words (data fraction {configs[bad].data_fraction:g} of "
            f"words up to length {config.max_len}); raise the fraction or max_len"
        )
    subsets = [[np.flatnonzero(mk[m]) for mk in shared.masks] for m in range(m_count)]
    active = np.ones(m_count, dtype=bool)
    epochs = np.zeros(m_count, dtype=np.int64)
    last_loss = np.full(m_count, np.nan)
    batch = config.batch_size
    dtype = params["h0"].dtype
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        for block in range(len(shared.lengths)):
            rows = np.flatnonzero(active & (counts[:, block] > 0))
            if not len(rows):
                continue
            n_words = int(shared.words[block].shape[0])
            order = np.zeros((len(rows), n_words), dtype=np.int64)
            for j, m in enumerate(rows):
                own = subsets[m][block]
                perm = torch.randperm(len(own), generator=shufflers[m]).numpy()
                order[j, : len(own)] = own[perm]
            n_b = counts[rows, block]
            for k in range(int(-(-n_b.max() // batch))):
                sel = n_b > k * batch
                r = rows[sel]
                lo, hi = k * batch, min((k + 1) * batch, n_words)
                idx = torch.as_tensor(order[sel, lo:hi], device=device)
                real = np.arange(lo, hi)[None, :] < n_b[sel][:, None]
                weight = torch.as_tensor(real, dtype=dtype, device=device)
                r_t = torch.as_tensor(r, device=device)
                whole = len(r) == m_count
                sub = {
                    name: (value if whole else value[r_t])
                    .detach()
                    .requires_grad_(name in trainable)
                    for name, value in params.items()
                }
                scores = stacked_forward(sub, shared.words[block][idx], **shape)
                losses = stacked_loss(scores, shared.targets[block][idx], weight, config.loss)
                grads = torch.autograd.grad(losses.sum(), [sub[name] for name in trainable])
                optimizer.step(r_t, dict(zip(trainable, grads, strict=True)))
        training = np.flatnonzero(active)
        epochs[training] = epoch
        if config.stop_loss is not None:
            last_loss[training] = _subset_metrics(params, shared, training, shape, config.loss)[0]
            loss = last_loss[training]
            active[training] = np.isfinite(loss) & ~(loss < config.stop_loss)  # NaN: diverged
        if callback is not None:
            callback(epoch, last_loss.copy(), active.copy())
        if not active.any():
            break
    elapsed = time.perf_counter() - started
    everyone = np.arange(m_count)
    train_loss, train_acc = _subset_metrics(params, shared, everyone, shape, config.loss)
    test_loss, test_acc = _test_metrics(params, shared, shape, config.loss, device)
    if config.stop_loss is not None:
        stopped = last_loss < config.stop_loss
    else:
        stopped = np.zeros(m_count, dtype=bool)
    return BatchedRun(
        config=config,
        members=members,
        member_configs=tuple(configs),
        model_config=model_config,
        params={k: v.detach().cpu() for k, v in params.items()},
        epochs=epochs,
        stopped_early=stopped,
        train_loss=train_loss,
        train_accuracy=train_acc,
        steps=optimizer.steps.cpu().numpy().copy(),
        n_train=counts.sum(axis=1).astype(np.int64),
        test_loss=test_loss,
        test_accuracy=test_acc,
        machine=shared.machine,
        elapsed_s=elapsed,
    )
