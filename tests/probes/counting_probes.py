"""Hand-built networks that count, shared by the tests: no finite automaton describes them."""

from __future__ import annotations

import torch

from dfalens.probes import Probe, from_step


def anbn_probe() -> Probe:
    """Class 1 exactly on a^n b^n (n >= 1): state (a's read, b's read, broken)."""

    def step(h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        na, nb, bad = h[:, 0], h[:, 1], h[:, 2]
        is_a = s == 0
        bad = torch.where(is_a & (nb > 0), torch.ones_like(bad), bad)
        na = torch.where(is_a, na + 1, na)
        nb = torch.where(is_a, nb, nb + 1)
        bad = torch.where(nb > na, torch.ones_like(bad), bad)
        return torch.stack([na, nb, bad], dim=1)

    def readout(h: torch.Tensor) -> torch.Tensor:
        yes = ((h[:, 0] == h[:, 1]) & (h[:, 0] > 0) & (h[:, 2] == 0)).float()[:, None]
        return torch.cat([1 - yes, yes], dim=1)

    return from_step(torch.zeros(3), step, readout, alphabet="ab")
