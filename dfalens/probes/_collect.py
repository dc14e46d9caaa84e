"""The core of state collection: budget checks, the depth-by-depth fill of a prefix tree, and :func:`collect`.

Shared by :mod:`dfalens.probes.collection` (which re-exports the public names and documents the node
numbering) and :mod:`dfalens.probes.exploration` (which sets its relative scale with :func:`collect`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from dfalens._budget import MEMORY_ENV, format_size, memory_budget
from dfalens.errors import BudgetError, ConfigError, DataError
from dfalens.probes.hooks import PrefixProbe
from dfalens.probes.probe import Probe
from dfalens.probes.stateset import StateSet

DEFAULT_MAX_STATES = 5_000_000
DEFAULT_MAX_MEMORY = None
"""No fixed default: the memory budget of :func:`dfalens._budget.memory_budget` (``DFALENS_MEMORY_BUDGET``,
else ``min(8 GiB, 60 % of the available RAM)``)."""
DEFAULT_CHUNK = 1 << 16
_SCALE_NODES = 2047  # relative eps: enumerate to the largest depth with at most this many nodes


def count_words(n_symbols: int, max_len: int) -> int:
    """Number of words of length 0..max_len over ``n_symbols`` symbols (the root included)."""
    return sum(n_symbols**length for length in range(max_len + 1))


def tree_arrays(n_symbols: int, max_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parent, last symbol and depth of every word up to ``max_len``: the full prefix tree in
    :func:`collect`'s order (breadth-first, symbols in index order; the root has parent and symbol -1).

    Returns
    -------
    parent, symbol, depth : ndarray of int64, shape (count_words(n_symbols, max_len),)
    """
    counts = np.array([n_symbols**length for length in range(max_len + 1)], dtype=np.int64)
    off = np.concatenate([[0], np.cumsum(counts)])  # off[l] = first index of depth l
    n = int(off[-1])
    depth = np.repeat(np.arange(max_len + 1, dtype=np.int64), counts)
    within = np.arange(n, dtype=np.int64) - off[depth]  # index of the word among its length's
    parent = np.where(depth > 0, off[np.maximum(depth - 1, 0)] + within // n_symbols, -1)
    symbol = np.where(depth > 0, within % n_symbols, -1)
    return parent, symbol, depth


def _estimate_bytes(n_nodes: int, state_dim: int, n_outputs: int, itemsize: int) -> int:
    # hidden twice (ours + StateSet's copy), outputs float32 + float64, tree arrays int64 (ours, copies,
    # temporaries)
    return n_nodes * (2 * state_dim * itemsize + 12 * n_outputs + 64)


AnyProbe = Probe | PrefixProbe
"""A probe with a recurrent step, or one whose states come from forward passes over whole words."""


def _probe_dtype(probe: AnyProbe) -> np.dtype:
    if isinstance(probe, PrefixProbe):
        return np.dtype(np.float32)
    h = probe.initial(1)
    return np.dtype(np.float64) if h.dtype == torch.float64 else np.dtype(np.float32)


def _n_outputs(probe: AnyProbe) -> int:
    if probe.n_classes is not None:
        return int(probe.n_classes)
    return int(probe.readout(probe.initial(1)).shape[1])


def _check_budget(
    n_nodes: int,
    probe: AnyProbe,
    max_states: int,
    max_memory: float | None,
    what: str,
    way_out: str,
) -> np.dtype:
    dtype = _probe_dtype(probe)
    if n_nodes > max_states:
        raise BudgetError(
            f"{what} give {n_nodes:,} states, over max_states={max_states:,}; {way_out}, or raise max_states"
        )
    need = _estimate_bytes(n_nodes, probe.state_dim, _n_outputs(probe), dtype.itemsize)
    limit = memory_budget() if max_memory is None else float(max_memory)
    if need > limit:
        raise_with = (
            "max_memory" if max_memory is not None else f"the budget with {MEMORY_ENV}=SIZE"
        )
        raise BudgetError(
            f"{what} need about {format_size(need)} ({n_nodes:,} states x {probe.state_dim} units), "
            f"over the memory budget of {format_size(limit)}; {way_out}, or raise {raise_with}"
        )
    return dtype


def _finite(x: Tensor) -> bool:
    # a sum is NaN/inf when any entry is (or, rarely, when it overflows: then check entry by entry)
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


def _fill(
    probe: Probe,
    parent: np.ndarray,
    symbol: np.ndarray,
    bounds: Sequence[tuple[int, int]],
    dtype: np.dtype,
    chunk_size: int,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Compute the state and output of every node of a breadth-first tree, depth by depth.

    ``bounds[l] = (start, stop)`` is the contiguous index range of depth ``l`` (``bounds[0] == (0, 1)``).
    Each chunk gathers its parents' states, takes one batched step with the chunk's symbols and writes
    the children in place, so peak extra memory is a few chunks.
    """
    n = parent.shape[0]
    n_out = _n_outputs(probe)
    hidden = np.empty((n, probe.state_dim), dtype=dtype)
    output = np.empty((n, n_out), dtype=np.float32)
    h0 = probe.initial(1)
    hidden[0] = h0[0].cpu().numpy()
    output[0] = probe.readout(h0)[0].cpu().numpy()
    device = probe.device
    # no tqdm without a bar: even a disabled one makes a multiprocessing lock a killed worker leaks
    levels = (
        tqdm(bounds[1:], desc="collect", unit="depth", disable=None) if progress else bounds[1:]
    )
    for length, (start, stop) in enumerate(levels, start=1):
        for s in range(start, stop, chunk_size):
            e = min(s + chunk_size, stop)
            h = torch.from_numpy(hidden[parent[s:e]]).to(device)
            sym = torch.from_numpy(symbol[s:e]).to(device)
            child = probe.step(h, sym)
            if not _finite(child):
                raise DataError(
                    f"states became NaN or inf at word length {length}; the network diverged: "
                    "use an earlier checkpoint"
                )
            hidden[s:e] = child.cpu().numpy()
            output[s:e] = probe.readout(child).cpu().numpy()
    return hidden, output


def _fill_prefix(
    probe: PrefixProbe,
    parent: np.ndarray,
    symbol: np.ndarray,
    depth: np.ndarray,
    dtype: np.dtype,
    chunk_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """States and outputs of every node from forward passes over the tree's leaves.

    A leaf's word passes through the model once and its positions are the states of all its prefixes, so
    every node is reached through the leaves below it. Leaves are grouped by length; the walk up the tree
    is one vectorised gather per depth.
    """
    n = parent.shape[0]
    hidden = np.empty((n, probe.state_dim), dtype=dtype)
    output = np.empty((n, probe.n_classes), dtype=np.float32)
    is_leaf = np.ones(n, dtype=bool)
    is_leaf[parent[parent >= 0]] = False
    per_word = max(1, chunk_size // max(1, int(depth.max(initial=0))))
    for length in np.unique(depth[is_leaf]).tolist():
        leaves = np.flatnonzero(is_leaf & (depth == length))
        path = np.empty((leaves.shape[0], length + 1), dtype=np.int64)
        path[:, length] = leaves
        for t in range(length, 0, -1):
            path[:, t - 1] = parent[path[:, t]]
        words = symbol[path[:, 1:]]
        for s in range(0, leaves.shape[0], per_word):
            states, scores = probe.run(words[s : s + per_word])
            hidden[path[s : s + per_word]] = states
            output[path[s : s + per_word]] = scores
    return hidden, output


def collect(
    probe: AnyProbe,
    max_len: int,
    *,
    max_states: int = DEFAULT_MAX_STATES,
    max_memory: float | None = DEFAULT_MAX_MEMORY,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool = False,
) -> StateSet:
    """States of the network on every word of length 0..max_len.

    One batched step per depth level: the children of all words of length ``l`` are computed together
    (in chunks of ``chunk_size`` children, so memory beyond the result stays bounded). Nodes are in
    breadth-first order, lexicographic within a depth; see :mod:`dfalens.probes.collection` for the index
    arithmetic.

    Parameters
    ----------
    probe : Probe
    max_len : int
        Longest word length (0 gives the root alone).
    max_states : int, default 5,000,000
        Refuse (before any work) when ``sum(|Σ|**l for l <= max_len)`` is larger.
    max_memory : float, optional
        Bytes; refuse (before any work) when the estimated peak (states × units × itemsize × 2 plus the
        tree and outputs) is larger. Default the memory budget (:func:`dfalens._budget.memory_budget`:
        ``DFALENS_MEMORY_BUDGET``, else ``min(8 GiB, 60 % of the available RAM)``).
    chunk_size : int, default 65536
        Children computed per batched step.
    progress : bool, default False
        Show a progress bar over depth levels (only on a terminal).

    Returns
    -------
    StateSet

    Raises
    ------
    BudgetError
        When the enumeration would exceed ``max_states`` or ``max_memory``; the message names the ways out
        (a smaller ``max_len``, :func:`explore`, or :func:`collect_words` with a word list).
    DataError
        When a state becomes NaN or inf.
    """
    if max_len < 0:
        raise ConfigError(f"max_len must be >= 0, got {max_len}")
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
    k = probe.n_symbols
    n = count_words(k, max_len)
    largest = max_len
    while largest > 0 and count_words(k, largest) > max_states:
        largest -= 1
    way_out = (
        f"use max_len <= {largest}, explore(probe, eps) to walk the state space, or collect_words with a "
        "word list"
    )
    dtype = _check_budget(
        n,
        probe,
        max_states,
        max_memory,
        f"all words up to length {max_len} over {k} symbols",
        way_out,
    )
    parent, symbol, depth = tree_arrays(k, max_len)
    off = np.concatenate([[0], np.cumsum([k**length for length in range(max_len + 1)])])
    bounds = [(int(off[length]), int(off[length + 1])) for length in range(max_len + 1)]
    if isinstance(probe, PrefixProbe):
        hidden, output = _fill_prefix(probe, parent, symbol, depth, dtype, chunk_size)
    else:
        hidden, output = _fill(probe, parent, symbol, bounds, dtype, chunk_size, progress)
    return StateSet(hidden, parent, symbol, depth, output, probe.alphabet)
