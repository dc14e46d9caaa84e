"""Losses and accuracies of a model on word groups, computed without gradients.

Long test words are read in one pass for all test lengths: the words of every length start together in one
batch, and after each length's last symbol its rows are scored and dropped, so the number of sequential
steps is the longest length (10,000 for the paper's tests), not the sum of all lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dfalens.trainers.data import WordGroups
from dfalens.trainers.models import RecurrentModel

__all__ = ["TensorGroups", "loss_terms", "evaluate_groups", "final_scores", "evaluate_long"]

_ROW_CHUNK = 8192


@dataclass(frozen=True, eq=False)
class TensorGroups:
    """Word groups as tensors on one device: words (n, l) int64 and targets (n,) or (n, l) int64."""

    words: tuple[Tensor, ...]
    targets: tuple[Tensor, ...]

    @classmethod
    def from_groups(cls, groups: WordGroups, device: torch.device | str) -> TensorGroups:
        """Copy :class:`~dfalens.trainers.data.WordGroups` arrays to ``device``."""
        return cls(
            tuple(torch.from_numpy(np.array(w)).to(device) for w in groups.words),
            tuple(torch.from_numpy(np.array(t)).to(device) for t in groups.targets),
        )

    @property
    def lengths(self) -> tuple[int, ...]:
        return tuple(int(w.shape[1]) for w in self.words)


def loss_terms(scores: Tensor, targets: Tensor, loss: str, n_classes: int) -> Tensor:
    """Sum of per-item losses (an item is a word, or a word position when streaming).

    ``mse`` is the squared error against one-hot targets averaged over classes (so that the batch mean is
    ``nn.MSELoss`` on one-hot targets); ``ce`` is cross-entropy.
    """
    if loss == "mse":
        onehot = F.one_hot(targets, n_classes).to(scores.dtype)
        return F.mse_loss(scores, onehot, reduction="sum") / n_classes
    return F.cross_entropy(scores.reshape(-1, n_classes), targets.reshape(-1), reduction="sum")


@torch.no_grad()
def evaluate_groups(
    model: RecurrentModel, groups: TensorGroups, loss: str, streaming: bool = False
) -> tuple[float, float, list[tuple[float, float]]]:
    """Loss and accuracy over all groups, and per group.

    Returns
    -------
    loss : float
        Mean over all items (the size-weighted mean of the group means).
    accuracy : float
        Fraction of items whose highest score is the target.
    per_group : list of (loss, accuracy)
    """
    n_classes = model.config.n_classes
    total_loss = total_right = total_items = 0.0
    per_group = []
    for words, targets in zip(groups.words, groups.targets, strict=True):
        g_loss = g_right = 0.0
        for start in range(0, words.shape[0], _ROW_CHUNK):
            w = words[start : start + _ROW_CHUNK]
            t = targets[start : start + _ROW_CHUNK]
            scores = model.forward_all(w) if streaming else model(w)
            g_loss += float(loss_terms(scores, t, loss, n_classes))
            g_right += float((scores.argmax(-1) == t).sum())
        items = targets.numel()
        per_group.append((g_loss / items, g_right / items))
        total_loss += g_loss
        total_right += g_right
        total_items += items
    return total_loss / total_items, total_right / total_items, per_group


@torch.no_grad()
def final_scores(model: RecurrentModel, words: Sequence[Tensor]) -> list[Tensor]:
    """Scores after the last symbol for several groups of words, in one pass over time.

    Parameters
    ----------
    model : RecurrentModel
    words : sequence of Tensor
        Groups of words ``(n_i, l_i)``, any order of lengths.

    Returns
    -------
    list of Tensor
        ``(n_i, n_classes)`` per group, in the order given.
    """
    order = sorted(range(len(words)), key=lambda i: int(words[i].shape[1]))
    state = model.initial(sum(int(w.shape[0]) for w in words))
    out: list[Tensor | None] = [None] * len(words)
    position = 0
    for rank, index in enumerate(order):
        length = int(words[index].shape[1])
        if length > position:
            alive = order[rank:]
            chunk = torch.cat([words[j][:, position:length] for j in alive])
            state = model.final_state(chunk, state)
            position = length
        n = int(words[index].shape[0])
        out[index] = model.readout(state[:n])
        state = state[n:]
    return [o for o in out if o is not None]


@torch.no_grad()
def evaluate_long(
    model: RecurrentModel, groups: TensorGroups, loss: str
) -> list[tuple[float, float]]:
    """Loss and accuracy after the last symbol for each test group (one pass, see the module notes)."""
    n_classes = model.config.n_classes
    results = []
    for scores, targets in zip(final_scores(model, groups.words), groups.targets, strict=True):
        n = targets.shape[0]
        results.append(
            (
                float(loss_terms(scores, targets, loss, n_classes)) / n,
                float((scores.argmax(-1) == targets).sum()) / n,
            )
        )
    return results
