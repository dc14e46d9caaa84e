"""The hidden states of every checkpoint of a run on every short word: loading and fast collection.

A timeline and the pair statistics look at the same prefix tree of words (every word up to ``max_len``,
breadth-first, as :func:`dfalens.probes.collect`) at every checkpoint. For the paper's network, a
one-layer Elman RNN, the states of a block of checkpoints are computed together: the weights are stacked,
and each depth level is one batched product over checkpoints, applied once per *parent* word (both
children of a word share ``W_hh h``; only the input term differs). Other models go through their probe,
one checkpoint at a time.

:func:`resolve_run` finds and checks the checkpoints of a run (or a list of files), :func:`load_history`
returns every state of every checkpoint in memory (``n_checkpoints x n_words x state_dim`` floats), and
:func:`read_block` reads the weights of a block of checkpoints straight from their safetensors files
(no models are built) and computes their states: the kernel the parallel timeline workers call.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dfalens._args import check_path
from dfalens.automata import Machine, get_task_machine
from dfalens.errors import CheckpointError, ConfigError, TaskError
from dfalens.probes.collection import collect, tree_arrays
from dfalens.probes.probe import from_model
from dfalens.probes.scaling import state_moments
from dfalens.probes.stateset import StateSet
from dfalens.trainers import checkpoints as ck
from dfalens.trainers.checkpoints import FORMAT, decode_meta, load_checkpoint, safetensors_metadata
from dfalens.trainers.stacked import (
    stack_state_dicts,
    stacked_final_scores,
    stacked_tree_states,
)

__all__ = [
    "RunInfo",
    "History",
    "resolve_run",
    "resolve_task",
    "tree_states",
    "Block",
    "read_block",
    "load_history",
    "word_strings",
]

_IDENTITY_KEYS = ("task", "alphabet", "seed", "model_config", "targets")


@dataclass(frozen=True, eq=False)
class RunInfo:
    """The checkpoints of one run and what is known about the run.

    Attributes
    ----------
    paths : tuple of Path
        Checkpoint files, in epoch order.
    epochs : ndarray of int
        Epoch of each checkpoint (from the file name ``epoch_NNNNN``, else from its metadata).
    run_dir : Path or None
        The run directory (holding ``run.json`` and ``metrics.jsonl``), when there is one.
    config : dict
        The run's training config from ``run.json`` (empty when unknown).
    task_machine : Machine or None
        The task machine recorded in ``run.json``.
    metrics : tuple of dict
        Rows of ``metrics.jsonl`` (empty when the file is missing).
    """

    paths: tuple[Path, ...]
    epochs: np.ndarray
    run_dir: Path | None = None
    config: dict[str, Any] = field(default_factory=dict)
    task_machine: Machine | None = None
    metrics: tuple[dict[str, Any], ...] = ()


def _epoch_of(path: Path) -> int | None:
    digits = path.stem.removeprefix("epoch_")
    return int(digits) if path.stem.startswith("epoch_") and digits.isdigit() else None


def resolve_run(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> RunInfo:
    """Find the checkpoints of a run directory, or take a list of checkpoint files.

    Parameters
    ----------
    source : path or sequence of paths
        A run directory (``checkpoints/epoch_*.safetensors``; ``last.safetensors`` is skipped since it
        repeats the final epoch), a single checkpoint file, or a list of checkpoint files. For files, the
        run directory is the folder above their ``checkpoints/`` folder when it has ``run.json``.

    Raises
    ------
    CheckpointError
        When there are no checkpoints, or two files claim the same epoch.
    """

    if not isinstance(source, str | os.PathLike):
        if isinstance(source, bytes) or not isinstance(source, Sequence) or not source:
            raise ConfigError(
                f"source must be a run directory or a list of checkpoint files, got {source!r:.60}"
            )
        for item in source:
            check_path("each checkpoint in source", item)
    run_dir: Path | None
    if isinstance(source, str | os.PathLike) and Path(source).is_dir():
        run_dir = Path(source)
        folder = run_dir / ck.CHECKPOINT_DIR
        if not folder.is_dir():
            raise CheckpointError(
                f"{run_dir} has no {ck.CHECKPOINT_DIR}/ folder; pass a dfalens run directory "
                "(written by `dfalens train`) or checkpoint files"
            )
        found = ck.list_checkpoints(run_dir)
        if not found:
            raise CheckpointError(
                f"{folder} holds no epoch_*.safetensors checkpoints; train the run first "
                "(`dfalens train ... -o DIR`)"
            )
        paths = [p for _, p in found]
    else:
        items = [source] if isinstance(source, str | os.PathLike) else list(source)
        if not items:
            raise CheckpointError("no checkpoint files given; pass a run directory or files")
        paths = [Path(p) for p in items]
        for p in paths:
            if not p.is_file():
                raise CheckpointError(f"checkpoint {p} does not exist; check the path")
        parents = {p.resolve().parent.parent for p in paths}
        run_dir = parents.pop() if len(parents) == 1 else None
        if run_dir is not None and not (run_dir / ck.RUN_JSON).is_file():
            run_dir = None
    named = [_epoch_of(p) for p in paths]
    if any(e is None for e in named):
        named = [int(ck.read_checkpoint_meta(p).get("epoch", -1)) for p in paths]
    epochs = np.array(named, dtype=np.int64)
    order = np.argsort(epochs, kind="stable")
    epochs, paths = epochs[order], [paths[i] for i in order]
    dup = np.nonzero(np.diff(epochs) == 0)[0]
    if dup.size:
        e = int(epochs[dup[0]])
        raise CheckpointError(
            f"two checkpoints claim epoch {e} ({paths[dup[0]].name}, {paths[dup[0] + 1].name}); "
            "they come from different runs: pass the checkpoints of one run"
        )
    config: dict[str, Any] = {}
    machine = None
    metrics: tuple[dict[str, Any], ...] = ()
    if run_dir is not None and (run_dir / ck.RUN_JSON).is_file():
        files = ck.read_run_files(run_dir)  # the reader load_run uses
        config, machine, metrics = files.config, files.task_machine, files.metrics
    return RunInfo(tuple(paths), epochs, run_dir, config, machine, metrics)


def resolve_task(
    task: str | Machine | None, info: RunInfo, meta: dict[str, Any]
) -> tuple[Machine, str]:
    """The ground-truth machine and its name: the given task, else the run's.

    Raises
    ------
    TaskError
        When no task is given and the run does not name one, or when the task's alphabet differs from
        the alphabet the network was trained on.
    """
    if isinstance(task, Machine):
        machine, name = task, "custom"
    elif task is not None:
        machine, name = get_task_machine(task), str(task)
    else:
        name = str(info.config.get("task") or meta.get("task") or "")
        if not name:
            raise TaskError("the run does not name its task; pass task=... (e.g. --task parity)")
        machine = info.task_machine if info.task_machine is not None else get_task_machine(name)
    alphabet = meta.get("alphabet")
    if alphabet is not None and tuple(str(a) for a in alphabet) != machine.alphabet:
        raise TaskError(
            f"task {name!r} has alphabet {list(machine.alphabet)} but the network reads "
            f"{[str(a) for a in alphabet]}; pass the task the run was trained on"
        )
    model_config = meta.get("model_config")
    units = model_config.get("n_classes") if isinstance(model_config, dict) else None
    outputs = max(int(machine.output.max()) + 1, 2) if machine.n_states else 2
    if isinstance(units, int) and units != outputs:
        raise TaskError(
            f"task {name!r} has {outputs} output classes but the network has {units} output units; "
            "pass the task the run was trained on"
        )
    return machine, name


def check_same_run(metas: Sequence[dict[str, Any]], paths: Sequence[Path]) -> None:
    """Raise :class:`CheckpointError` when checkpoints come from different runs or tasks."""
    if not metas:
        return
    first = metas[0]
    for meta, path in zip(metas[1:], paths[1:], strict=True):
        for key in _IDENTITY_KEYS:
            if json.dumps(meta.get(key), sort_keys=True) != json.dumps(
                first.get(key), sort_keys=True
            ):
                raise CheckpointError(
                    f"{path.name} differs from {paths[0].name} in {key} ({meta.get(key)!r} vs "
                    f"{first.get(key)!r}): the checkpoints come from different runs; pass one run"
                )


# -- the prefix tree --------------------------------------------------------------------------------
def word_strings(
    parent: np.ndarray, symbol: np.ndarray, alphabet: Sequence[str]
) -> tuple[str, ...]:
    """Every node's word written with the symbol names ("ε" for the root)."""
    sep = "" if all(len(a) == 1 for a in alphabet) else " "
    words: list[str] = [""] * parent.size
    for i in range(
        parent.size
    ):  # parents come first: one concatenation per word, once per timeline
        p = int(parent[i])
        if p >= 0:
            words[i] = (words[p] + sep if words[p] else "") + alphabet[int(symbol[i])]
    return tuple(w if w else "ε" for w in words)


# -- states of many checkpoints ---------------------------------------------------------------------
_ELMAN_KEYS = (
    "rnn.weight_hh_l0",
    "rnn.weight_ih_l0",
    "rnn.bias_ih_l0",
    "rnn.bias_hh_l0",
    "head.weight",
    "head.bias",
    "h0",
)


@dataclass(frozen=True, eq=False)
class Block:
    """The weights and metadata of a few checkpoints of one run, read without building models.

    Attributes
    ----------
    paths : list of Path
    tensors : list of dict of str to Tensor
        Each checkpoint's ``state_dict``.
    metas : list of dict
        Each checkpoint's decoded metadata (``model_config``, ``task``, ``alphabet``, ``epoch``, ...).
    """

    paths: list[Path]
    tensors: list[dict[str, torch.Tensor]]
    metas: list[dict[str, Any]]

    @property
    def elman(self) -> bool:
        """One-layer Elman networks (the paper's), which are computed stacked."""
        if not self.metas:
            return False
        cfg = self.metas[0].get("model_config") or {}
        return (
            cfg.get("cell") == "rnn"
            and int(cfg.get("layers", 0)) == 1
            and all(all(k in t for k in _ELMAN_KEYS) for t in self.tensors)
            and all((m.get("model_config") or {}) == cfg for m in self.metas)
        )

    def models(self, which: Sequence[int] | None = None) -> list[Any]:
        """The checkpoints as :class:`~dfalens.trainers.models.RecurrentModel` (eval mode)."""

        idx = range(len(self.paths)) if which is None else which
        return [load_checkpoint(self.paths[i])[0] for i in idx]

    def _stacked(self, which: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
        idx = range(len(self.paths)) if which is None else which
        return stack_state_dicts([self.tensors[i] for i in idx], _ELMAN_KEYS)

    @property
    def _relu(self) -> bool:
        return (self.metas[0].get("model_config") or {}).get("nonlinearity", "relu") == "relu"

    def states(self, max_len: int, outputs: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """States and outputs on every word up to ``max_len``: ``(c, n, d)`` and ``(c, n, k)`` float32.

        :meth:`hidden` gives the states alone (and saves the readout). The ``outputs=False`` of
        earlier versions is deprecated (it returned ``(states, None)``).
        """
        if outputs is not None:
            warnings.warn(
                "Block.states(outputs=...) is deprecated and will be removed in the next release; "
                "use Block.states(max_len) for states and outputs, Block.hidden(max_len) for states",
                DeprecationWarning,
                stacklevel=2,
            )
            if not outputs:
                return self.hidden(max_len), None  # type: ignore[return-value]
        h, o = self._tree(max_len, True)
        assert o is not None
        return h, o

    def hidden(self, max_len: int) -> np.ndarray:
        """States on every word up to ``max_len``, ``(c, n, d)`` float32 (no readout computed for the
        stacked Elman path)."""
        return self._tree(max_len, False)[0]

    def _tree(self, max_len: int, outputs: bool) -> tuple[np.ndarray, np.ndarray | None]:
        if self.elman:
            with torch.no_grad():
                h, o = stacked_tree_states(self._stacked(), max_len, self._relu, outputs)
            return h.numpy(), None if o is None else o.numpy()
        return tree_states(self.models(), max_len)

    def predict(self, which: Sequence[int], words: np.ndarray) -> np.ndarray:
        """The predicted class of checkpoints ``which`` after each word: ``(len(which), n_words)``."""
        which = list(which)
        if not which:
            return np.zeros((0, words.shape[0]), dtype=np.int64)
        w = torch.from_numpy(np.ascontiguousarray(words, dtype=np.int64))
        with torch.no_grad():
            if self.elman:
                params = self._stacked(which)
                words_each = w.expand(len(which), -1, -1)  # every checkpoint reads every word
                shape = {
                    "cell": "rnn",
                    "layers": 1,
                    "n_symbols": params["rnn.weight_ih_l0"].shape[2],
                }
                nonlinearity = "relu" if self._relu else "tanh"
                scores = stacked_final_scores(
                    params, words_each, nonlinearity=nonlinearity, **shape
                )
                return scores.argmax(-1).numpy()
            return np.stack([m(w).argmax(-1).numpy() for m in self.models(which)])


def read_block(paths: Sequence[Path]) -> Block:
    """Read dfalens checkpoints' weights and metadata (safetensors; nothing is executed)."""
    from safetensors.torch import load as st_load

    tensors, metas = [], []
    for p in paths:
        try:
            data = Path(p).read_bytes()
            header = safetensors_metadata(data)
            if header.get("format") != FORMAT:
                raise ValueError("not a dfalens checkpoint")
            t = st_load(data)
        except Exception:  # let the trainers' loader say what is wrong with the file
            load_checkpoint(p)
            raise CheckpointError(f"checkpoint {p} could not be read; use another one") from None
        ck.check_tensors(p, t, meta := decode_meta(header))
        tensors.append(t)
        metas.append(meta)
    return Block(list(paths), tensors, metas)


def tree_states(models: Sequence[Any], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """States and outputs of several models on every word up to ``max_len``, through their probes.

    Parameters
    ----------
    models : sequence of RecurrentModel
        Models of one run (same architecture).
    max_len : int

    Returns
    -------
    hidden : ndarray of float32, shape (c, n_words, state_dim)
    output : ndarray of float32, shape (c, n_words, n_classes)
    """
    hs, outs = [], []
    for m in models:  # one checkpoint at a time
        states = collect(from_model(m), max_len)
        hs.append(states.hidden.astype(np.float32, copy=False))
        outs.append(states.output.astype(np.float32, copy=False))
    return np.stack(hs), np.stack(outs)


@dataclass(frozen=True, eq=False)
class History:
    """Hidden states of every word up to ``max_len`` at every checkpoint of a run.

    Attributes
    ----------
    epochs : ndarray of int, shape (c,)
    hidden : ndarray of float32, shape (c, n, d)
    output : ndarray of float32, shape (c, n, n_classes)
    parent, symbol, depth : ndarray of int, shape (n,)
        The prefix tree (breadth-first; see :func:`dfalens.probes.collect`).
    alphabet : tuple of str
    task : Machine
    task_name : str
    train_loss : ndarray of float, shape (c,)
        From the checkpoints' metadata (NaN where absent).
    """

    epochs: np.ndarray
    hidden: np.ndarray
    output: np.ndarray
    parent: np.ndarray
    symbol: np.ndarray
    depth: np.ndarray
    alphabet: tuple[str, ...]
    task: Machine
    task_name: str
    train_loss: np.ndarray

    def stateset(self, index: int) -> StateSet:
        """The :class:`StateSet` of checkpoint ``index``."""
        return StateSet(
            self.hidden[index],
            self.parent,
            self.symbol,
            self.depth,
            self.output[index],
            self.alphabet,
        )

    def scale(self, pooled: bool | None = None) -> float:
        """Norm of the per-unit std of the states pooled over all checkpoints and words (the paper's).

        :meth:`scales` gives one per checkpoint. The ``pooled=`` flag of earlier versions is
        deprecated (``pooled=False`` returned the per-checkpoint array).
        """
        if pooled is not None:
            warnings.warn(
                "History.scale(pooled=...) is deprecated and will be removed in the next release; "
                "use History.scale() (pooled) or History.scales() (per checkpoint)",
                DeprecationWarning,
                stacklevel=2,
            )
            if not pooled:
                return self.scales()  # type: ignore[return-value]
        return float(state_moments(self.hidden).pooled().scale)  # chunked: no float64 copy

    def scales(self) -> np.ndarray:
        """Norm of the per-unit std of the states of each checkpoint, shape (c,)."""
        return np.asarray(state_moments(self.hidden).scale, dtype=np.float64)

    @property
    def words(self) -> tuple[str, ...]:
        """The words of the tree ("ε" for the root)."""
        return word_strings(self.parent, self.symbol, self.alphabet)


def load_history(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    task: str | Machine | None = None,
    max_len: int | None = None,
    epochs: Sequence[int] | None = None,
    block: int = 64,
) -> History:
    """Every state of every checkpoint of a run, in memory.

    Parameters
    ----------
    source : path or sequence of paths
        A run directory or checkpoint files (see :func:`resolve_run`).
    task : str or Machine, optional
        Ground truth (default: the run's task).
    max_len : int, optional
        Longest word (default: the run's training length, else 10).
    epochs : sequence of int, optional
        Only these checkpoint epochs (default: all).
    block : int, default 64
        Checkpoints computed together.

    Returns
    -------
    History
        ``c x n x d`` float32 states: for the paper's run (1001 checkpoints, 2,047 words, 100 units)
        about 820 MB; pass ``epochs`` to take fewer.
    """
    info = resolve_run(source)
    paths, eps_ = list(info.paths), info.epochs
    if epochs is not None:
        wanted = np.asarray(sorted(set(int(e) for e in epochs)))
        keep = np.isin(eps_, wanted)
        missing = wanted[~np.isin(wanted, eps_)]
        if missing.size:
            raise CheckpointError(
                f"no checkpoint at epoch {int(missing[0])}; the run has {eps_.size} checkpoints from "
                f"epoch {int(eps_[0])} to {int(eps_[-1])}"
            )
        paths = [p for p, k in zip(paths, keep, strict=True) if k]
        eps_ = eps_[keep]
    if max_len is None:
        max_len = int(info.config.get("max_len", 10))
    if max_len < 1:
        raise ConfigError(f"max_len must be >= 1, got {max_len}")
    hs: list[np.ndarray] = []
    outs: list[Any] = []
    metas: list[dict[str, Any]] = []
    for s in range(0, len(paths), max(1, block)):
        part = read_block(paths[s : s + block])
        h, o = part.states(max_len)
        hs.append(h)
        outs.append(o)
        metas.extend(part.metas)
    check_same_run(metas, paths)
    machine, name = resolve_task(task, info, metas[0])
    n_symbols = len(machine.alphabet)
    parent, symbol, depth = tree_arrays(n_symbols, max_len)
    loss = np.array([float(m.get("train_loss", np.nan)) for m in metas])
    return History(
        eps_,
        np.concatenate(hs),
        np.concatenate(outs),
        parent,
        symbol,
        depth,
        machine.alphabet,
        machine,
        name,
        loss,
    )
