"""The words an extraction was checked on, with the network's class on each.

An :class:`Evidence` holds the collected prefix tree (as parent/symbol/depth arrays, never as a padded
matrix, so a collection of millions of words stays cheap) and any further word samples: the held-out
words, the user's words, the fidelity words. It answers two questions for any machine (the extracted
one, or a task): on which checked words does it disagree with the network, and which is the shortest
of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfalens.automata import Machine, run

__all__ = ["Evidence", "WordSample", "TreeRunner", "word_text"]


def word_text(word: tuple[int, ...] | None, alphabet: tuple[str, ...]) -> str | None:
    """A word written with the symbol names (``""`` for the empty word; None stays None)."""
    if word is None:
        return None
    sep = "" if all(len(a) == 1 for a in alphabet) else " "
    return sep.join(alphabet[i] for i in word)


class TreeRunner:
    """Runs machines over a prefix tree one vectorised step per depth level.

    Parameters
    ----------
    parent, symbol, depth : ndarray of int, shape (n,)
        The tree: ``parent[i]`` is the node of the word without its last symbol (-1 for the root),
        ``symbol[i]`` that last symbol, ``depth[i]`` the word's length.
    """

    def __init__(self, parent: np.ndarray, symbol: np.ndarray, depth: np.ndarray) -> None:
        self.parent = parent
        self.symbol = symbol
        self.depth = depth
        self.order = None if np.all(depth[1:] >= depth[:-1]) else np.argsort(depth, kind="stable")
        sorted_depth = depth if self.order is None else depth[self.order]
        top = int(depth.max()) if depth.size else 0
        self.bounds = np.searchsorted(sorted_depth, np.arange(top + 2))

    def states(self, m: Machine) -> np.ndarray:
        """The state of ``m`` after every node's word (``-1`` after an undefined transition)."""
        state = np.empty(self.parent.shape[0], dtype=np.int64)
        delta = m.delta
        for level in range(len(self.bounds) - 1):
            a, b = int(self.bounds[level]), int(self.bounds[level + 1])
            if a == b:
                continue
            nodes = slice(a, b) if self.order is None else self.order[a:b]
            if level == 0:
                state[nodes] = m.start
            else:
                prev = state[self.parent[nodes]]
                nxt = delta[np.maximum(prev, 0), self.symbol[nodes]]
                state[nodes] = np.where(prev >= 0, nxt, -1)
        return state

    def outputs(self, m: Machine) -> np.ndarray:
        """The output of ``m`` on every node's word (``-1`` where ``m`` is undefined)."""
        state = self.states(m)
        return np.where(state >= 0, m.output[np.maximum(state, 0)], -1)

    def word(self, i: int) -> tuple[int, ...]:
        """The word (symbol indices) of node ``i``."""
        out: list[int] = []
        while self.parent[i] >= 0:
            out.append(int(self.symbol[i]))
            i = int(self.parent[i])
        return tuple(reversed(out))


@dataclass(frozen=True, eq=False)
class WordSample:
    """Words outside the prefix tree and the network's class on each.

    Attributes
    ----------
    name : str
        What they are: ``"held-out"``, ``"given"`` or ``"fidelity 100"`` (length 100).
    words : ndarray of int64, shape (n, T)
        One word per row, left-aligned, padded with -1.
    lengths : ndarray of int64, shape (n,)
    network : ndarray of int64, shape (n,)
        The network's class after each word.
    """

    name: str
    words: np.ndarray
    lengths: np.ndarray
    network: np.ndarray

    def word(self, i: int) -> tuple[int, ...]:
        """Row ``i`` as a tuple of symbol indices."""
        return tuple(int(s) for s in self.words[i, : int(self.lengths[i])])


@dataclass(frozen=True, eq=False)
class Evidence:
    """Every word an extraction was checked on, and the network's class on each.

    Attributes
    ----------
    parent, symbol, depth : ndarray of int, shape (n_nodes,)
        The collected prefix tree (see :class:`dfalens.probes.StateSet`).
    tree_network : ndarray of int64, shape (n_nodes,)
        The network's class on every collected word.
    samples : tuple of WordSample
        The other words checked (held-out, given, fidelity).
    alphabet : tuple of str
        Symbol names of the network.
    include_empty : bool
        Whether the empty word counts (its output is usually untrained; off by default).
    """

    parent: np.ndarray
    symbol: np.ndarray
    depth: np.ndarray
    tree_network: np.ndarray
    samples: tuple[WordSample, ...]
    alphabet: tuple[str, ...]
    include_empty: bool

    @property
    def runner(self) -> TreeRunner:
        """A :class:`TreeRunner` over the collected tree."""
        return TreeRunner(self.parent, self.symbol, self.depth)

    def counted(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """Masks of the words that count: the tree's and each sample's (the empty word only with
        ``include_empty``)."""
        tree = np.ones(self.depth.shape[0], dtype=bool) if self.include_empty else self.depth > 0
        rest = [
            np.ones(s.lengths.shape[0], dtype=bool) if self.include_empty else s.lengths > 0
            for s in self.samples
        ]
        return tree, rest

    @property
    def n_words(self) -> int:
        """Number of words checked (the empty word counted only with ``include_empty``; a word in
        two samples counted twice)."""
        tree, rest = self.counted()
        return int(tree.sum()) + sum(int(m.sum()) for m in rest)

    def disagreement(
        self, m: Machine, runner: TreeRunner | None = None
    ) -> tuple[tuple[int, ...], int, int] | None:
        """The shortest checked word on which ``m`` and the network give different classes.

        Parameters
        ----------
        m : Machine
            Over the network's alphabet (symbol indices in the same order).
        runner : TreeRunner, optional
            Reused when given (it sorts the tree once).

        Returns
        -------
        (word, network's class, ``m``'s class) or None
            The shortest such word, least in symbol-index order among the shortest; ``m``'s class
            is ``-1`` where ``m`` is undefined. None when they agree on every checked word.
        """
        runner = runner or self.runner
        tree_mask, masks = self.counted()
        best: tuple[int, tuple[int, ...], int, int] | None = None
        tree_out = runner.outputs(m)
        bad = np.nonzero(tree_mask & (tree_out != self.tree_network))[0]
        if bad.size:
            shortest = bad[self.depth[bad] == self.depth[bad].min()]
            i = min(shortest.tolist(), key=runner.word)
            w = runner.word(i)
            best = (len(w), w, int(self.tree_network[i]), int(tree_out[i]))
        for sample, mask in zip(self.samples, masks, strict=True):
            if sample.words.shape[0] == 0:
                continue
            out = run(m, sample.words)
            bad = np.nonzero(mask & (out != sample.network))[0]
            if not bad.size:
                continue
            shortest = bad[sample.lengths[bad] == sample.lengths[bad].min()]
            i = min(shortest.tolist(), key=sample.word)
            w = sample.word(i)
            if best is None or (len(w), w) < (best[0], best[1]):
                best = (len(w), w, int(sample.network[i]), int(out[i]))
        return None if best is None else best[1:]
