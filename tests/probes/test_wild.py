"""Networks in the wild: trained networks with redundant states, start and end symbols, three or
more symbols, recovered exactly by both paths (white-box clustering and refinement, black-box L*
through ``extract``), and non-regular networks that never get a clean report."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from dfalens.automata import Machine, equivalent, run
from dfalens.probes import (
    Probe,
    collect,
    extract,
    from_classifier,
    from_module,
    from_step,
    predict,
    refine,
    verdict,
)
from dfalens.probes._checking import Checker
from dfalens.probes.verdicts import exit_code

# "the a's minus the b's is a multiple of 3" over a, b, c: three states, c does nothing
MOD3 = Machine([[1, 2, 0], [2, 0, 1], [0, 1, 2]], [1, 0, 0], 0, ("a", "b", "c"))
# "contains ab" over a, b, c
CONTAINS_AB = Machine([[1, 0, 0], [1, 2, 0], [2, 2, 2]], [0, 0, 1], 0, ("a", "b", "c"))


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _all_words(k: int, n: int) -> list[tuple[int, ...]]:
    return [w for m in range(n + 1) for w in itertools.product(range(k), repeat=m)]


def train_wide_gru(
    task: Machine, hidden: int = 64, steps: int = 300, seed: int = 0, lr: float = 0.01
) -> Probe:
    """A wide GRU trained with Adam on <s> word </s> (the class read after </s>): a network whose
    states of one automaton state lie far apart (redundant states)."""
    k = len(task.alphabet)
    rng = np.random.default_rng(seed)
    words = _all_words(k, 6)
    words += [tuple(rng.integers(k, size=rng.integers(7, 16)).tolist()) for _ in range(2000)]
    width = max(len(w) for w in words) + 2
    x = torch.full((len(words), width), k + 1, dtype=torch.long)  # padded with </s>
    for i, w in enumerate(words):
        x[i, : len(w) + 1] = torch.tensor((k,) + w)  # <s> word, then </s> from len(w) + 1 on
    last = torch.tensor([len(w) + 1 for w in words])
    y = torch.as_tensor(run(task, [list(w) for w in words]))
    torch.manual_seed(seed)
    gru = nn.GRU(k + 2, hidden, batch_first=True)
    head = nn.Linear(hidden, 2)
    opt = torch.optim.Adam([*gru.parameters(), *head.parameters()], lr=lr)
    onehot = nn.functional.one_hot(x, k + 2).float()
    for _ in range(steps):
        idx = torch.randint(len(words), (256,))
        out, _ = gru(onehot[idx])
        logits = head(out[torch.arange(256), last[idx]])
        loss = nn.functional.cross_entropy(logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    names = [*task.alphabet, "<s>", "</s>"]
    return from_module(gru.eval(), head.eval(), alphabet=names, bos="<s>", eos="</s>")
