"""Hidden states of a probed network: on all short words, on given words, or by exploring its state space.

- :func:`collect` enumerates every word up to a length, one batched step per depth level, in chunks.
- :func:`collect_words` does the same on the prefix tree of a given word list, and
  :func:`collect_extended` on that tree plus every one-symbol extension of its nodes (large alphabets).
- :func:`predict` runs (long) words through the network and returns its class at the last step.
- :func:`explore` walks the network's own state space breadth-first and keeps one representative per
  ε-ball; for a network that implements an automaton it closes after ``|states| × |Σ|`` steps (it lives
  in :mod:`dfalens.probes.exploration`; :func:`collect` and the tree arithmetic in a private core module,
  both re-exported here).

Node numbering of :func:`collect` (breadth-first, lexicographic within a depth): with ``k`` symbols the
words of length ``l`` occupy the global indices ``off[l] .. off[l] + k**l - 1`` where
``off[l] = 1 + k + ... + k**(l-1)``, in the order of their base-``k`` value. The child of node
``off[l] + i`` by symbol ``a`` is ``off[l+1] + i*k + a``; conversely node ``off[l+1] + j`` has parent
``off[l] + j // k`` and last symbol ``j % k``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from dfalens._budget import format_size, memory_budget
from dfalens.errors import BudgetError, ConfigError, DataError
from dfalens.probes._collect import (
    DEFAULT_CHUNK,
    DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_STATES,
    AnyProbe,
    _check_budget,
    _estimate_bytes,
    _fill,
    _fill_prefix,
    _n_outputs,
    _probe_dtype,
    collect,
    count_words,
    tree_arrays,
)
from dfalens.probes.exploration import Exploration, explore
from dfalens.probes.hooks import PrefixProbe
from dfalens.probes.stateset import StateSet
from dfalens.probes.wordlists import padded

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
    mat, lengths = padded(rows)
    _check_indices(mat[np.arange(mat.shape[1])[None, :] < lengths[:, None]], k)
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
