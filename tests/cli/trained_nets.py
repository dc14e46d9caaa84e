"""Tiny parity networks trained inside the tests, built and saved the way real projects save theirs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn


def all_words(length: int) -> np.ndarray:
    """Every binary word of ``length``, shape ``(2**length, length)``."""
    return np.array(
        [[int(b) for b in np.binary_repr(i, length)] for i in range(2**length)]
    ).reshape(2**length, length)


def parity_targets(words: np.ndarray) -> Tensor:
    """Parity after every prefix, shape ``(n, T)``."""
    return torch.as_tensor(np.cumsum(words, axis=1) % 2)


def train_tagger(
    net: nn.Module,
    outputs: Callable[[Tensor], Tensor],
    *,
    length: int = 8,
    steps: int = 250,
    lr: float = 0.03,
    logit: bool = False,
    seed: int = 0,
) -> nn.Module:
    """Train ``outputs(words) -> (n, T, k)`` to give parity after every prefix of every word.

    ``logit`` trains a one-output head with ``BCEWithLogitsLoss``; else cross-entropy over ``k`` outputs.
    """
    torch.manual_seed(seed)
    words = torch.as_tensor(all_words(length))
    y = parity_targets(words.numpy())
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        out = outputs(words)
        if logit:
            loss = nn.functional.binary_cross_entropy_with_logits(out[..., 0], y.float())
        else:
            loss = nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def train_last_step(
    net: nn.Module,
    outputs: Callable[[Tensor], Tensor],
    *,
    max_len: int = 7,
    steps: int = 200,
    lr: float = 0.03,
    seed: int = 0,
) -> nn.Module:
    """Train ``outputs(words) -> (n, k)`` (a many-to-one network) on every word of length 1..max_len."""
    torch.manual_seed(seed)
    data = [torch.as_tensor(all_words(n)) for n in range(1, max_len + 1)]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        loss = sum(nn.functional.cross_entropy(outputs(w), w.sum(1) % 2) for w in data) / len(data)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net
