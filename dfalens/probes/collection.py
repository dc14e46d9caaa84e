"""Hidden states of a probed network: on all short words, on given words, or by exploring its state space.

- :func:`collect` enumerates every word up to a length, one batched step per depth level, in chunks.
- :func:`collect_words` does the same on the prefix tree of a given word list, and
  :func:`collect_extended` on that tree plus every one-symbol extension of its nodes (large alphabets).
- :func:`predict` runs (long) words through the network and returns its class at the last step.
- :func:`explore` walks the network's own state space breadth-first and keeps one representative per
  ε-ball; for a network that implements an automaton it closes after ``|states| × |Σ|`` steps.

Node numbering of :func:`collect` (breadth-first, lexicographic within a depth): with ``k`` symbols the
words of length ``l`` occupy the global indices ``off[l] .. off[l] + k**l - 1`` where
``off[l] = 1 + k + ... + k**(l-1)``, in the order of their base-``k`` value. The child of node
``off[l] + i`` by symbol ``a`` is ``off[l+1] + i*k + a``; conversely node ``off[l+1] + j`` has parent
``off[l] + j // k`` and last symbol ``j % k``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from dfalens._budget import MEMORY_ENV, format_size, memory_budget
from dfalens.errors import BudgetError, ConfigError, DataError
from dfalens.probes._eps import accepts_relative, pick_eps
from dfalens.probes.hooks import PrefixProbe
from dfalens.probes.probe import Probe
from dfalens.probes.scaling import scale
from dfalens.probes.stateset import StateSet

__all__ = [
    "Exploration",
    "collect",
    "collect_extended",
    "collect_words",
    "count_words",
    "encode_words",
    "explore",
    "predict",
    "tree_arrays",
]

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
    breadth-first order, lexicographic within a depth; see the module docstring for the index arithmetic.

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


LARGE_ALPHABET = 8
"""From this many symbols on, an extraction given ``words=`` collects the words' prefixes and their
one-symbol extensions (:func:`collect_extended`) instead of every word up to ``max_len``."""

ALL_WORDS = "all words up to max_len"
EXTENDED = "prefixes of the given words and their one-symbol extensions"


def collect_for_extraction(
    probe: AnyProbe,
    max_len: int,
    words: Sequence[str] | Sequence[Sequence[int]] | np.ndarray | None = None,
    *,
    max_states: int = DEFAULT_MAX_STATES,
    progress: bool = False,
) -> tuple[StateSet, str]:
    """The states an extraction works on, and which collection gave them (:data:`ALL_WORDS` or
    :data:`EXTENDED`).

    Every word up to ``max_len`` (:func:`collect`) unless words are given and the alphabet has at
    least :data:`LARGE_ALPHABET` symbols or those words would exceed ``max_states`` or the memory
    budget; then the words' prefixes and their one-symbol extensions (:func:`collect_extended`).

    Raises
    ------
    BudgetError
        Without words, when all words up to ``max_len`` are over ``max_states`` or the memory budget
        (naming ``words=`` and the largest ``max_len`` that fits).
    """
    if max_len < 0:
        raise ConfigError(f"max_len must be >= 0, got {max_len}")
    k = probe.n_symbols
    n_all = count_words(k, max_len)
    limit = memory_budget()
    dim, n_out, itemsize = probe.state_dim, _n_outputs(probe), _probe_dtype(probe).itemsize

    def fits(n: int) -> bool:
        return n <= max_states and _estimate_bytes(n, dim, n_out, itemsize) <= limit

    if words is not None and (k >= LARGE_ALPHABET or not fits(n_all)):
        return collect_extended(probe, words, max_states=max_states), EXTENDED
    if not fits(n_all):
        largest = max_len
        while largest > 0 and not fits(count_words(k, largest)):
            largest -= 1
        need = _estimate_bytes(n_all, dim, n_out, itemsize)
        raise BudgetError(
            f"all words up to length {max_len} over {k} symbols are {n_all:,} states (about "
            f"{format_size(need)}), over max_states={max_states:,} or the memory budget of "
            f"{format_size(limit)}; pass words=... (their prefixes and one-symbol extensions are "
            f"collected instead), or use max_len <= {largest}"
        )
    return collect(probe, max_len, max_states=max_states, progress=progress), ALL_WORDS


def encode_words(
    words: Sequence[str] | Sequence[Sequence[int]] | np.ndarray, alphabet: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Words as a padded index matrix.

    Parameters
    ----------
    words : sequence of str, sequence of int sequences, or int array (n, T)
        Strings are read symbol by symbol (characters when every symbol name is one character, else
        whitespace-separated names); index sequences are used as they are.
    alphabet : sequence of str

    Returns
    -------
    matrix : ndarray of int64, shape (n, T_max)
        Row ``i`` holds word ``i`` left-aligned, padded with -1.
    lengths : ndarray of int64, shape (n,)

    Raises
    ------
    DataError
        For a symbol outside the alphabet or an index out of range.
    """
    k = len(alphabet)
    if isinstance(words, str):
        raise DataError(
            f"expected a list of words, got the single string {words!r}; wrap it in a list"
        )
    if isinstance(words, (np.ndarray, Tensor)):
        arr = np.asarray(words.cpu() if isinstance(words, Tensor) else words)
        if arr.ndim == 1 and arr.dtype.kind in "iu":
            arr = arr[None, :]
        if arr.ndim == 2 and arr.dtype.kind in "iu":
            mat = arr.astype(np.int64)
            lengths = np.full(mat.shape[0], mat.shape[1], dtype=np.int64)
            _check_indices(mat, k)
            return mat, lengths
        words = arr.tolist()
    rows: list[list[int]] = []
    index = {name: i for i, name in enumerate(alphabet)}
    chars = all(len(a) == 1 for a in alphabet)
    for w in words:
        tokens = (list(w) if chars else w.split()) if isinstance(w, str) else list(w)
        try:
            rows.append([index[t] if isinstance(t, str) else int(t) for t in tokens])
        except KeyError as exc:
            raise DataError(
                f"word {w!r} has the symbol {exc.args[0]!r}, which is not in the alphabet "
                f"{' '.join(alphabet)}"
            ) from None
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    width = int(lengths.max()) if len(rows) else 0
    mat = np.full((len(rows), width), -1, dtype=np.int64)
    if len(rows):
        mask = np.arange(width)[None, :] < lengths[:, None]
        mat[mask] = np.fromiter(
            (s for r in rows for s in r), dtype=np.int64, count=int(lengths.sum())
        )
        _check_indices(mat[mask], k)
    return mat, lengths


def _check_indices(values: np.ndarray, k: int) -> None:
    if values.size and (values.min() < 0 or values.max() >= k):
        bad = values[(values < 0) | (values >= k)][0]
        raise DataError(
            f"symbol index {int(bad)} is outside the alphabet of {k} symbols (0..{k - 1})"
        )


def collect_words(
    probe: AnyProbe,
    words: Sequence[str] | Sequence[Sequence[int]] | np.ndarray,
    *,
    max_states: int = DEFAULT_MAX_STATES,
    max_memory: float | None = DEFAULT_MAX_MEMORY,
    chunk_size: int = DEFAULT_CHUNK,
) -> StateSet:
    """States of the network on the prefix tree of a word list.

    Every prefix of every word becomes a node (shared prefixes once); the root is the empty word. Nodes
    are breadth-first, lexicographic within a depth, and each depth is one batched step (chunked).

    Parameters
    ----------
    probe : Probe
    words : sequence of str, sequence of int sequences, or int array (n, T)
        See :func:`encode_words`.
    max_states, max_memory, chunk_size
        As in :func:`collect`; checked on the number of distinct prefixes before any step is taken.

    Returns
    -------
    StateSet
    """
    k = probe.n_symbols
    mat, lengths = encode_words(words, probe.alphabet)
    parent, symbol, bounds = _word_tree(mat, lengths, k)
    depth = np.repeat(np.arange(len(bounds), dtype=np.int64), [b - a for a, b in bounds])
    dtype = _check_budget(
        parent.shape[0],
        probe,
        max_states,
        max_memory,
        f"the prefixes of {mat.shape[0]:,} words",
        "use fewer or shorter words",
    )
    if isinstance(probe, PrefixProbe):
        hidden, output = _fill_prefix(probe, parent, symbol, depth, dtype, max(1, chunk_size))
    else:
        hidden, output = _fill(probe, parent, symbol, bounds, dtype, max(1, chunk_size), False)
    return StateSet(hidden, parent, symbol, depth, output, probe.alphabet)


def _word_tree(
    mat: np.ndarray, lengths: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Parent, last symbol and per-depth index ranges of the prefix tree of padded words
    (breadth-first, lexicographic within a depth)."""
    node = np.zeros(mat.shape[0], dtype=np.int64)  # current prefix node of each word
    parents = [np.array([-1], dtype=np.int64)]
    symbols = [np.array([-1], dtype=np.int64)]
    bounds = [(0, 1)]
    next_id = 1
    for length in range(1, mat.shape[1] + 1):
        live = lengths >= length
        key = node[live] * k + mat[live, length - 1]
        uniq, inv = np.unique(key, return_inverse=True)  # sorted: parents in order, then symbols
        node[live] = next_id + inv
        parents.append(uniq // k)
        symbols.append(uniq % k)
        bounds.append((next_id, next_id + uniq.shape[0]))
        next_id += uniq.shape[0]
    return np.concatenate(parents), np.concatenate(symbols), bounds


def extension_tree(
    parent: np.ndarray, symbol: np.ndarray, bounds: Sequence[tuple[int, int]], k: int
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """The prefix tree extended by every one-symbol extension of each of its nodes.

    Parameters
    ----------
    parent, symbol : ndarray of int64
        A breadth-first prefix tree, lexicographic within a depth (as :func:`collect_words` builds).
    bounds : sequence of (int, int)
        Index range of every depth.
    k : int
        Number of symbols.

    Returns
    -------
    parent, symbol, bounds
        The extended tree in the same order: depth ``l + 1`` holds ``p·a`` for every node ``p`` of
        depth ``l`` of the given tree and every symbol ``a`` (so ``1 + k x n_nodes`` nodes).
    """
    ext_id = np.zeros(parent.shape[0], dtype=np.int64)  # index of every given node in the extension
    parents = [np.array([-1], dtype=np.int64)]
    symbols = [np.array([-1], dtype=np.int64)]
    out_bounds = [(0, 1)]
    next_id = 1
    for length, (start, stop) in enumerate(bounds):
        m = stop - start
        parents.append(np.repeat(ext_id[start:stop], k))
        symbols.append(np.tile(np.arange(k, dtype=np.int64), m))
        out_bounds.append((next_id, next_id + m * k))
        if length + 1 < len(bounds):  # the given children sit among the extensions
            lo, hi = bounds[length + 1]
            ext_id[lo:hi] = next_id + (parent[lo:hi] - start) * k + symbol[lo:hi]
        next_id += m * k
    return np.concatenate(parents), np.concatenate(symbols), out_bounds


def collect_extended(
    probe: AnyProbe,
    words: Sequence[str] | Sequence[Sequence[int]] | np.ndarray,
    *,
    max_states: int = DEFAULT_MAX_STATES,
    max_memory: float | None = DEFAULT_MAX_MEMORY,
    chunk_size: int = DEFAULT_CHUNK,
) -> StateSet:
    """States of the network on the prefixes of a word list and every one-symbol extension of them.

    For a large alphabet, where all words up to a useful length are far too many: every state the
    words reach is collected together with all its successors, so each collected prefix has every
    transition in the tree (the quotient can close) while the number of states grows only with
    ``|Σ| x`` the number of distinct prefixes. Nodes are breadth-first, lexicographic within a depth.

    Parameters
    ----------
    probe : Probe
    words : sequence of str, sequence of int sequences, or int array (n, T)
        See :func:`encode_words`.
    max_states, max_memory, chunk_size
        As in :func:`collect`; checked on ``1 + |Σ| x`` the number of distinct prefixes before any
        step is taken.

    Returns
    -------
    StateSet
    """
    k = probe.n_symbols
    mat, lengths = encode_words(words, probe.alphabet)
    tree_parent, tree_symbol, tree_bounds = _word_tree(mat, lengths, k)
    dtype = _check_budget(
        1 + k * tree_parent.shape[0],
        probe,
        max_states,
        max_memory,
        f"the prefixes of {mat.shape[0]:,} words and their one-symbol extensions",
        "use fewer or shorter words",
    )
    parent, symbol, bounds = extension_tree(tree_parent, tree_symbol, tree_bounds, k)
    depth = np.repeat(np.arange(len(bounds), dtype=np.int64), [b - a for a, b in bounds])
    if isinstance(probe, PrefixProbe):
        hidden, output = _fill_prefix(probe, parent, symbol, depth, dtype, max(1, chunk_size))
    else:
        hidden, output = _fill(probe, parent, symbol, bounds, dtype, max(1, chunk_size), False)
    return StateSet(hidden, parent, symbol, depth, output, probe.alphabet)


def _classes(scores: np.ndarray) -> np.ndarray:
    # the same rule as StateSet.predicted
    if scores.shape[1] == 1:
        return (scores[:, 0] > 0.5).astype(np.int64)
    return np.argmax(scores, axis=1)


def _predict_prefix(
    probe: PrefixProbe, mat: np.ndarray, lengths: np.ndarray, chunk_size: int
) -> np.ndarray:
    """Classes of words through forward passes, words of one length together."""
    out = np.empty(mat.shape[0], dtype=np.int64)
    per_word = max(1, chunk_size // max(1, mat.shape[1]))
    for length in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == length)
        for s in range(0, rows.shape[0], per_word):
            chunk = rows[s : s + per_word]
            _, scores = probe.run(mat[chunk, :length])
            out[chunk] = _classes(scores[:, length])
    return out


def predict(
    probe: AnyProbe,
    words: np.ndarray | Sequence[str] | Sequence[Sequence[int]],
    *,
    chunk_size: int = DEFAULT_CHUNK,
) -> np.ndarray:
    """The network's class after reading each word (argmax of the readout at the last step).

    All words of a chunk advance together, one batched step per position, so 1000 words of length 1000
    cost 1000 steps of batch 1000. Words of different lengths are allowed (shorter ones stop early).

    Parameters
    ----------
    probe : Probe
    words : int array (n, T), or sequence of str / int sequences
        See :func:`encode_words`.
    chunk_size : int, default 65536
        Words processed together.

    Returns
    -------
    ndarray of int64, shape (n,)
        Predicted class per word (for a single output score: ``score > 0.5``, as
        :attr:`StateSet.predicted`).
    """
    if probe.n_classes == 0:
        raise ConfigError(
            "the probe has no readout, so it predicts nothing; build it with readout=..."
        )
    mat, lengths = encode_words(words, probe.alphabet)
    if isinstance(probe, PrefixProbe):
        return _predict_prefix(probe, mat, lengths, chunk_size)
    n, width = mat.shape
    out = np.empty(n, dtype=np.int64)
    ragged = bool(n) and bool((lengths != width).any())
    device = probe.device
    for s in range(0, n, max(1, chunk_size)):
        e = min(s + chunk_size, n)
        cols = torch.from_numpy(np.ascontiguousarray(np.maximum(mat[s:e], 0).T)).to(device)
        lens = torch.from_numpy(lengths[s:e]).to(device)
        h = probe.initial(e - s)
        for t in range(width):
            nxt = probe.step(h, cols[t])
            h = torch.where((lens > t)[:, None], nxt, h) if ragged else nxt
        scores = probe.readout(h).cpu().numpy()
        if not np.all(np.isfinite(scores)):
            raise DataError("network outputs became NaN or inf on long words; the network diverged")
        out[s:e] = _classes(scores)
    return out


@dataclass(frozen=True, eq=False)
class Exploration:
    """Result of :func:`explore`: one representative state per ε-ball the network visited.

    Attributes
    ----------
    stateset : StateSet
        The kept representatives as a prefix tree (each was first reached from its parent by its symbol).
    delta : ndarray of int, shape (n_kept, n_symbols)
        For every kept state and symbol, the kept state within ε of the successor (the nearest one, or the
        successor itself when it was new); -1 where the successor was never computed or not kept because a
        budget stopped the walk.
    closed : bool
        True when the frontier emptied: every successor of every kept state lies within ε of a kept state.
    steps : int
        Number of (state, symbol) successors computed; equals ``n_kept * n_symbols`` when closed.
    eps_abs : float
        The absolute distance used (:attr:`eps` is its deprecated old name).
    depth : int
        Number of breadth-first levels expanded.
    reason : str
        ``"closed"``, ``"max_states"`` or ``"max_depth"``.
    """

    stateset: StateSet
    delta: np.ndarray
    closed: bool
    steps: int
    eps_abs: float
    depth: int
    reason: str

    @property
    def eps(self) -> float:
        """Deprecated name of :attr:`eps_abs` (``eps`` is relative everywhere else)."""
        warnings.warn(
            "Exploration.eps is deprecated and will be removed in the next release; use .eps_abs",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.eps_abs

    @property
    def n_states(self) -> int:
        """Number of kept representatives."""
        return self.stateset.n_nodes


def _nearest(x: Tensor, ref: Tensor, block: int = 1024) -> tuple[Tensor, Tensor]:
    """Distance to, and index of, the nearest row of ``ref`` for every row of ``x`` (exact, chunked)."""
    dmin = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    arg = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    for s in range(0, x.shape[0], block):
        d = torch.cdist(x[s : s + block], ref, compute_mode="donot_use_mm_for_euclid_dist")
        dmin[s : s + block], arg[s : s + block] = d.min(dim=1)
    return dmin, arg


@accepts_relative
def explore(
    probe: Probe,
    eps: float | None = None,
    *,
    eps_abs: float | None = None,
    max_states: int = 10_000,
    max_depth: int | None = None,
    scale_len: int | None = None,
    block: int = 1024,
) -> Exploration:
    """Walk the network's state space breadth-first, keeping one state per ε-ball.

    Starting from the initial state, every kept state is expanded by every symbol. A successor farther
    than ε from every kept state is kept (and expanded at the next level); among several new successors
    within ε of each other the first (in breadth-first, lexicographic order) is kept and the others map to
    it. The walk is *closed* when no new state appears: then the kept states with :attr:`Exploration.delta`
    form a complete automaton that reproduces the network on words of every length, up to ε. For a network
    that implements an automaton with ``n`` states this takes ``n × |Σ|`` steps whatever the word length.

    Parameters
    ----------
    probe : Probe
    eps : float, optional
        Merge distance relative to the state scale: the absolute distance is ``eps × scale(H)`` where
        ``H`` are the states of all words up to length ``scale_len`` (by default the largest length with
        at most 2,047 words, e.g. 10 for two symbols, the paper's evaluation set) and :func:`scale` is
        the norm of the per-unit standard deviation.
    eps_abs : float, optional
        Merge distance as an absolute Euclidean distance, instead of ``eps`` (give exactly one). The
        ``relative=False`` of earlier versions is a deprecated spelling of this.
    max_states : int, default 10,000
        Stop (not closed) when this many states are kept.
    max_depth : int, optional
        Stop (not closed) after this many levels; unbounded by default (``max_states`` bounds the walk).
    scale_len : int, optional
        Word length of the enumeration that sets the relative scale.
    block : int, default 1024
        Successors compared per distance block.

    Returns
    -------
    Exploration
    """
    eps, relative = pick_eps(eps, eps_abs)
    if eps is None:
        raise ConfigError("explore needs a merge distance: eps (relative) or eps_abs (absolute)")
    if eps < 0:
        raise ConfigError(f"eps must be >= 0, got {eps}")
    if max_states < 1:
        raise ConfigError(f"max_states must be >= 1, got {max_states}")
    if isinstance(probe, PrefixProbe):
        raise ConfigError(
            "explore needs a recurrent step, and this probe reads whole words; use collect(probe, "
            "max_len) or extract(probe) instead"
        )
    k = probe.n_symbols
    if relative:
        if scale_len is None:
            scale_len = 1
            while count_words(k, scale_len + 1) <= _SCALE_NODES:
                scale_len += 1
        eps_abs = float(eps) * scale(collect(probe, scale_len).hidden)
    else:
        eps_abs = float(eps)
    h0 = probe.initial(1)
    cap = min(max_states, 1024)  # grows by doubling up to max_states
    kept = torch.empty((cap, probe.state_dim), dtype=h0.dtype, device=h0.device)
    kept[0] = h0[0]
    parent = np.full(cap, -1, dtype=np.int64)
    symbol = np.full(cap, -1, dtype=np.int64)
    depth = np.zeros(cap, dtype=np.int64)
    delta = np.full((cap, k), -1, dtype=np.int64)
    m, steps, level, reason = 1, 0, 0, "closed"
    frontier = np.array([0], dtype=np.int64)
    while frontier.size:
        if max_depth is not None and level >= max_depth:
            reason = "max_depth"
            break
        level += 1
        par = np.repeat(frontier, k)
        sym = np.tile(np.arange(k, dtype=np.int64), frontier.size)
        new_frontier: list[int] = []
        for s in range(0, par.size, block):
            p, a = par[s : s + block], sym[s : s + block]
            child = probe.step(kept[torch.from_numpy(p).to(kept.device)], a)
            steps += p.size
            if not _finite(child):
                raise DataError(
                    f"states became NaN or inf at depth {level}; the network diverged: use an earlier "
                    "checkpoint"
                )
            dmin, arg = _nearest(child, kept[:m], block)
            old = (dmin <= eps_abs).cpu().numpy()
            delta[p[old], a[old]] = arg.cpu().numpy()[old]
            cand = np.flatnonzero(~old)
            if cand.size == 0:
                continue
            # greedy leaders among the new successors, in order: each leader absorbs those within eps
            close = (
                (
                    torch.cdist(
                        child[cand], child[cand], compute_mode="donot_use_mm_for_euclid_dist"
                    )
                    <= eps_abs
                )
                .cpu()
                .numpy()
            )
            alive = np.ones(cand.size, dtype=bool)
            while alive.any():
                if m >= max_states:
                    reason = "max_states"
                    break
                if m == cap:
                    cap = min(2 * cap, max_states)
                    kept = torch.cat([kept, kept.new_empty((cap - m, kept.shape[1]))])
                    parent = np.concatenate([parent, np.full(cap - m, -1, dtype=np.int64)])
                    symbol = np.concatenate([symbol, np.full(cap - m, -1, dtype=np.int64)])
                    depth = np.concatenate([depth, np.zeros(cap - m, dtype=np.int64)])
                    delta = np.concatenate([delta, np.full((cap - m, k), -1, dtype=np.int64)])
                i = int(np.argmax(alive))
                members = cand[alive & close[i]]
                delta[p[members], a[members]] = m
                kept[m] = child[cand[i]]
                parent[m], symbol[m], depth[m] = p[cand[i]], a[cand[i]], depth[p[cand[i]]] + 1
                new_frontier.append(m)
                m += 1
                alive &= ~close[i]
            if reason == "max_states":
                break
        if reason == "max_states":
            break
        frontier = np.array(new_frontier, dtype=np.int64)
    closed = reason == "closed"
    states = kept[:m]
    output = probe.readout(states).cpu().numpy()
    stateset = StateSet(
        states.cpu().numpy(), parent[:m], symbol[:m], depth[:m], output, probe.alphabet
    )
    return Exploration(
        stateset=stateset,
        delta=delta[:m].copy(),
        closed=closed,
        steps=int(steps),
        eps_abs=eps_abs,
        depth=level,
        reason=reason,
    )
