""":class:`StateSet`: hidden vectors of a network over a prefix tree of words."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfalens.errors import DataError

__all__ = ["StateSet"]


def _ro(a: np.ndarray, dtype: type | None = None) -> np.ndarray:
    """A read-only view (no copy when the dtype already fits; the caller's array stays writable)."""
    a = np.asarray(a, dtype=dtype).view()
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class StateSet:
    """Hidden states of a network on a prefix-closed set of words, stored as a tree.

    Node ``i`` is the word obtained by following ``parent`` links to the root and reading ``symbol``
    along the way. The root (the empty word, the network's initial state) has ``parent == -1`` and
    ``symbol == -1``. Nodes are in breadth-first order: every parent precedes its children, depths are
    non-decreasing, and words of one depth are in lexicographic order of symbol indices when the set was
    collected by enumeration.

    Parameters
    ----------
    hidden : ndarray of float, shape (n, d)
        The state vector after reading each node's word.
    parent : ndarray of int, shape (n,)
        Index of the node for the word without its last symbol; -1 for the root.
    symbol : ndarray of int, shape (n,)
        Last symbol of each node's word; -1 for the root.
    depth : ndarray of int, shape (n,)
        Word length of each node.
    output : ndarray of float, shape (n, n_outputs)
        The network's readout on each node's state (scores; the predicted class is the argmax).
    alphabet : tuple of str
        Symbol names.

    Notes
    -----
    The arrays are stored as read-only views, not copies (a state set of all words up to length 20 holds
    gigabytes): do not modify the arrays you passed in afterwards.
    """

    hidden: np.ndarray
    parent: np.ndarray
    symbol: np.ndarray
    depth: np.ndarray
    output: np.ndarray
    alphabet: tuple[str, ...] = ("0", "1")

    def __post_init__(self) -> None:
        hidden = np.asarray(self.hidden)
        if hidden.ndim != 2:
            raise DataError(f"hidden states must be a 2-D array (n, d), got shape {hidden.shape}")
        n = hidden.shape[0]
        if n == 0:
            raise DataError("a state set needs at least one node")
        if not np.all(np.isfinite(hidden)):
            bad = int(np.argmax(~np.isfinite(hidden).all(axis=1)))
            raise DataError(
                f"hidden states contain NaN or inf ({int((~np.isfinite(hidden)).any(axis=1).sum())} "
                f"of {n} nodes, first at node {bad}); the network diverged: use an earlier checkpoint"
            )
        output = np.asarray(self.output, dtype=np.float64)
        if output.ndim == 1:
            output = output[:, None]
        if output.shape[0] != n:
            raise DataError(f"output has {output.shape[0]} rows for {n} hidden states")
        if not np.all(np.isfinite(output)):
            raise DataError("network outputs contain NaN or inf; the network diverged")
        for name in ("parent", "symbol", "depth"):
            arr = np.asarray(getattr(self, name))
            if arr.shape != (n,):
                raise DataError(f"{name} must have shape ({n},), got {arr.shape}")
        parent = np.asarray(self.parent, dtype=np.int64)
        if np.any(parent >= np.arange(n)):
            raise DataError("every node's parent must come before it (breadth-first order)")
        object.__setattr__(
            self, "hidden", _ro(hidden, np.float32 if hidden.dtype != np.float64 else None)
        )
        object.__setattr__(self, "parent", _ro(parent))
        object.__setattr__(self, "symbol", _ro(self.symbol, np.int64))
        object.__setattr__(self, "depth", _ro(self.depth, np.int64))
        object.__setattr__(self, "output", _ro(output))
        object.__setattr__(self, "alphabet", tuple(str(a) for a in self.alphabet))

    @property
    def n_nodes(self) -> int:
        """Number of nodes (words), the root included."""
        return int(self.hidden.shape[0])

    @property
    def dim(self) -> int:
        """Dimension of the state vectors."""
        return int(self.hidden.shape[1])

    @property
    def predicted(self) -> np.ndarray:
        """The network's predicted class at every node (argmax of :attr:`output`)."""
        if self.output.shape[1] == 0:
            raise DataError("this state set has no network outputs; give the probe a readout")
        if self.output.shape[1] == 1:
            return (self.output[:, 0] > 0.5).astype(np.int64)
        return np.argmax(self.output, axis=1)

    def word(self, i: int) -> tuple[int, ...]:
        """The word (symbol indices) of node ``i``."""
        out: list[int] = []
        while self.parent[i] != -1:
            out.append(int(self.symbol[i]))
            i = int(self.parent[i])
        return tuple(reversed(out))

    def word_str(self, i: int) -> str:
        """Node ``i``'s word written with the symbol names ("ε" for the empty word)."""
        w = self.word(i)
        if not w:
            return "ε"
        sep = "" if all(len(a) == 1 for a in self.alphabet) else " "
        return sep.join(self.alphabet[s] for s in w)

    def words_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """All words as a padded matrix.

        Returns
        -------
        words : ndarray of int, shape (n, max_depth)
            Row ``i`` holds node ``i``'s word, left-aligned, padded with -1.
        lengths : ndarray of int, shape (n,)
        """
        n = self.n_nodes
        L = int(self.depth.max()) if n else 0
        words = np.full((n, L), -1, dtype=np.int64)
        node = np.arange(n)
        pos = self.depth.copy() - 1
        # walk up all nodes at once: one step per depth level
        for _ in range(L):
            live = pos >= 0
            if not live.any():
                break
            words[np.nonzero(live)[0], pos[live]] = self.symbol[node[live]]
            node = np.where(live, self.parent[node], node)
            pos = pos - 1
        return words, self.depth.copy()
