"""The two passes of :func:`dfalens.timeline.timeline` on checkpoint blocks, in-process or in workers.

Pass 1 reads a block of checkpoints, computes their states on every word (stacked, see
:mod:`dfalens.timeline.history`) and returns the metadata and the moments that the pooled scale needs.
Pass 2 computes the states again (cheaper than storing and reading them back: a few milliseconds per
checkpoint), then clusters every checkpoint of a block, builds the quotient, minimises it,
compares it with the task, checks its fidelity when closed and compares its clusters with the previous
checkpoint's (the first checkpoint of a block clusters its predecessor too). Workers run torch and BLAS
with one thread each.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from dfalens._executors import make_executor, one_thread
from dfalens.automata import Machine, equivalent, run
from dfalens.probes._core import cluster_fixed, extract_fixed
from dfalens.probes.collection import tree_arrays
from dfalens.probes.extraction import lexicographic_order
from dfalens.probes.scaling import state_moments
from dfalens.probes.stateset import StateSet
from dfalens.timeline._sources import EpochProbe, open_block
from dfalens.timeline.events import diff_partitions
from dfalens.timeline.history import word_strings

__all__ = [
    "collect_block",
    "extract_block",
    "run_blocks",
]


def _lite(meta: dict[str, Any]) -> dict[str, Any]:
    keep = ("epoch", "step", "train_loss", "val_accuracy", "task", "alphabet", "seed", "targets")
    out = {k: meta.get(k) for k in keep}
    out["model_config"] = meta.get("model_config")
    return out


def collect_block(
    paths: list[Path] | list[EpochProbe], max_len: int, keep: bool = False
) -> dict[str, Any]:
    """Pass 1: metadata, the block's state moments, per-checkpoint scale;
    with ``keep`` also the states and outputs themselves (for pass 2 in the same process)."""

    with one_thread():
        block = open_block(paths)
        metas = block.metas
        h, o = block.states(max_len) if keep else (block.hidden(max_len), None)
        c, n, d = h.shape
        finite = np.isfinite(h.reshape(c, -1)).all(axis=1)
        if not finite.all():
            return {"metas": [_lite(m) for m in metas], "diverged": int(np.argmin(finite))}
        per = state_moments(h, precise=False)  # per checkpoint; then combined over the block
    out = {
        "metas": [_lite(m) for m in metas],
        "moments": per.pooled(),
        "scales": per.scale,
    }
    if keep:
        out["states"] = (h, o)
    return out


def extract_block(
    paths: list[Path] | list[EpochProbe],
    epochs: list[int],
    previous: Path | EpochProbe | None,
    max_len: int,
    eps_abs: list[float],
    previous_eps: float,
    method: str,
    order: str,
    task: Machine,
    include_empty: bool,
    fidelity: tuple[int, int],
    seed: int,
    events: bool,
    states: tuple[np.ndarray, np.ndarray] | None = None,
    previous_states: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """Pass 2: the extraction at every checkpoint of a block, and its changes from the one before.

    ``states`` and ``previous_states`` (the block's and its predecessor's states and outputs, kept from
    pass 1 in the same process) save computing them again."""

    with one_thread():
        block = open_block(paths) if states is None else None  # pass 1 kept them: read once
        h, o = block.states(max_len) if block is not None else states
        parent, symbol, depth = tree_arrays(len(task.alphabet), max_len)
        words = word_strings(parent, symbol, task.alphabet) if events else ()
        visit = None

        def visit_of(x: np.ndarray, out: np.ndarray) -> np.ndarray | None:
            nonlocal visit
            if order == "lexicographic" and visit is None:
                visit = lexicographic_order(StateSet(x, parent, symbol, depth, out, task.alphabet))
            return visit if method == "leader" else None

        before = None
        if previous is not None:  # the checkpoint before this block, for merges and splits
            if previous_states is not None:
                hp, op = previous_states
            else:
                hp, op = open_block([previous]).states(max_len)
            before = cluster_fixed(hp[0], method, previous_eps, order=visit_of(hp[0], op[0]))
        words_rng = None
        if fidelity[0] > 0 and fidelity[1] > 0:
            rng = np.random.default_rng(seed)
            words_rng = rng.integers(0, len(task.alphabet), size=fidelity)
        results = []
        closed: list[int] = []
        minimals: list[Machine] = []
        for c in range(len(paths)):
            states = StateSet(h[c], parent, symbol, depth, o[c], task.alphabet)
            core = extract_fixed(
                states,
                method,
                eps_abs[c],
                include_empty=include_empty,
                order=visit_of(h[c], o[c]),
            )  # cluster -> quotient -> minimise, as extract() does
            labels, machine, stats, minimal = core.labels, core.machine, core.stats, core.minimal
            verdict = equivalent(minimal, task, include_empty=include_empty)
            if stats.closed:
                closed.append(c)
                minimals.append(minimal)
            change, found = None, []
            if before is not None:
                change, found = diff_partitions(
                    before, labels, words if events else None, epochs[c]
                )
            results.append(
                {
                    "labels": labels.astype(np.int32),
                    "machine": machine,
                    "n_minimal": minimal.n_states,
                    "closed": bool(stats.closed),
                    "equal": bool(verdict.equal),
                    "counterexample": verdict.word_str,
                    "fidelity": None,
                    "change": change,
                    "events": found,
                }
            )
            before = labels
        if closed and words_rng is not None:  # fidelity of the closed extractions, all at once
            if block is None:  # the weights are needed now, for the network's answers
                block = open_block(paths)
            net = block.predict(closed, words_rng)
            for j, c in enumerate(closed):
                results[c]["fidelity"] = float(np.mean(run(minimals[j], words_rng) == net[j]))
    return results


def _star(fn: Any, args: tuple[Any, ...]) -> Any:
    return fn(*args)


def run_blocks(fn: Any, jobs: int, args: list[tuple[Any, ...]], progress: bool, desc: str) -> list:
    """Call ``fn(*a)`` for every ``a``, in order: through dfalens's executor layer, in this process
    (``jobs == 1``) or in ``jobs`` local worker processes (:func:`dfalens._executors.make_executor`)."""
    bar = tqdm(total=len(args), desc=desc, unit="block", disable=None if progress else True)
    out: list[Any] = [None] * len(args)
    with make_executor("local", 1 if len(args) <= 1 else max(1, jobs)) as executor:
        for i, result in executor.map_indexed(partial(_star, fn), args):
            out[i] = result
            bar.update()
    bar.close()
    return out
