"""Networks in the wild: the white-box path (clustering, then refinement) and the black-box path (L*)
of ``dfalens.extract``, and AALpy's L*, on the same four networks in one run.

Networks (all trained here, seeded; training is not timed):

- ``paper``: the paper's parity network at the demo's size (``dfalens demo`` settings: the ``paper``
  preset, 64 ReLU units, words up to length 8, SGD lr 0.05, 400 epochs), through ``from_model``;
  ``--paper-full``: the ``paper`` preset itself (100 units, words up to 10, lr 0.02, 1000 epochs);
- ``redundant``: a wide GRU (64 units) trained with Adam on ``<s> word </s>`` for "the a's minus the
  b's is a multiple of 3" over {a, b, c}: a start and an end symbol, redundant states;
- ``sym16``: a GRU (32 units, Adam) over 16 symbols for "contains ab";
- ``stack2``: a 2-layer GRU (2 x 24 units, Adam) for "contains abc" over {a, b, c, d}.

For each network: ``extract(probe)`` (white-box, default strategy), ``extract(from_classifier(...))``
(black-box, the same network's ``predict`` as the classifier) and AALpy 2.0 ``run_Lstar`` (Moore, the
step-by-step SUL of ``benchmarks/blackbox_vs_aalpy.py``, ``RandomWordEqOracle`` with 2000 walks of
length 1-20). Reported: states of the minimal machine, equivalence with the task (the empty word
ignored for networks without a start symbol, whose output before any input is untrained; AALpy's
machine keeps a start state of its own for it then), agreement with the
network on 4000 fresh random words of lengths 0-40 (the empty word excluded), wall time, peak
traced memory (``tracemalloc``: Python and numpy allocations, not torch's) and the path/stop reason.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/wild_bench.py [--only NAME ...]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dfalens.automata import Machine, equivalent, run
from dfalens.probes import (
    Probe,
    extract,
    from_classifier,
    from_model,
    from_module,
    predict,
)
from dfalens.trainers import make_config, train

sys.path.insert(0, str(Path(__file__).parent))
from blackbox_vs_aalpy import aalpy_lstar, contains  # noqa: E402

MOD3 = Machine([[1, 2, 0], [2, 0, 1], [0, 1, 2]], [1, 0, 0], 0, ("a", "b", "c"))
PARITY = Machine([[0, 1], [1, 0]], [0, 1], 0, ("0", "1"))


def train_gru(
    task: Machine,
    hidden: int,
    layers: int,
    steps: int,
    lr: float,
    start_end: bool,
    max_train_len: int,
    seed: int = 0,
) -> Probe:
    """A GRU trained with Adam on random words up to ``max_train_len`` (with ``<s>``/``</s>``
    around each word when ``start_end``), the class read at the end."""
    k = task.n_symbols
    rng = np.random.default_rng(seed)
    n = 8000
    lengths = rng.integers(0, max_train_len + 1, size=n)
    words = [tuple(rng.integers(k, size=m).tolist()) for m in lengths]
    extra = 2 if start_end else 0
    width = max_train_len + extra
    vocab = k + extra
    x = torch.full((n, max(width, 1)), k + 1 if start_end else 0, dtype=torch.long)
    for i, w in enumerate(words):
        row = ((k,) + w) if start_end else w
        if row:
            x[i, : len(row)] = torch.tensor(row)
    last = torch.tensor([len(w) + (1 if start_end else -1) for w in words])
    y = torch.as_tensor(run(task, [list(w) for w in words]))
    keep = last >= 0  # without start/end symbols the empty word has no output position
    x, last, y = x[keep], last[keep], y[keep]
    torch.manual_seed(seed)
    gru = nn.GRU(vocab, hidden, num_layers=layers, batch_first=True)
    head = nn.Linear(hidden, 2)
    opt = torch.optim.Adam([*gru.parameters(), *head.parameters()], lr=lr)
    onehot = nn.functional.one_hot(x, vocab).float()
    for _ in range(steps):
        idx = torch.randint(x.shape[0], (256,))
        out, _ = gru(onehot[idx])
        loss = nn.functional.cross_entropy(head(out[torch.arange(256), last[idx]]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    names = list(task.alphabet) + (["<s>", "</s>"] if start_end else [])
    if start_end:
        return from_module(gru.eval(), head.eval(), alphabet=names, bos="<s>", eos="</s>")
    return from_module(gru.eval(), head.eval(), alphabet=names)


def paper_network(epochs: int, full: bool) -> Probe:
    """The demo's network, or with ``full`` the ``paper`` preset itself (100 units, words up to
    length 10, lr 0.02, 1000 epochs), tested only at lengths 25 and 100 and checkpointed once."""
    settings: dict[str, Any] = {
        "task": "parity",
        "hidden": 64,
        "max_len": 8,
        "lr": 0.05,
        "epochs": epochs,
        "checkpoints": f"every:{epochs}",
        "test_lengths": (25, 100),
        "seed": 0,
    }
    if full:
        settings = {"task": "parity", "checkpoints": "every:1000", "test_lengths": (25, 100)}
    with tempfile.TemporaryDirectory() as tmp:
        result = train(make_config("paper", **settings), Path(tmp) / "run", force=True)
    assert result.model is not None
    return from_model(result.model)


def measured(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()``, its wall time (s) and peak traced memory (MiB)."""
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, wall, peak


def renamed(m: Machine, alphabet: tuple[str, ...]) -> Machine:
    return Machine(m.delta, m.output, m.start, alphabet)


def bench(name: str, probe: Probe, task: Machine, max_len: int, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(7)
    k = probe.n_symbols
    lengths = rng.integers(1, 41, size=4000)
    held = np.full((4000, 40), -1, dtype=np.int64)
    for i, m in enumerate(lengths):
        held[i, :m] = rng.integers(k, size=m)
    net_held = predict(probe, [tuple(r[r >= 0]) for r in held])
    task_agree = float(np.mean(run(task, held) == net_held))
    print(
        f"\n{name}: {k} symbols, task {task.n_states} states; network = task on "
        f"{task_agree:.4f} of the held-out words",
        flush=True,
    )

    def agree(m: Machine) -> float:
        return float(np.mean(run(m, held) == net_held))

    ex, wall, peak = measured(lambda: extract(probe, max_len=max_len))
    ref = ex.minimal
    include = bool(ex.settings["include_empty"])  # no start symbol: the empty word is untrained

    def same(m: Machine) -> bool:
        return equivalent(m, task, include_empty=include).equal

    print(
        f"  white-box  {ex.n_minimal:3d} states ({ex.n_raw} clusters), eq task "
        f"{same(ref)}, held-out {agree(ref):.4f}, {wall:7.2f} s, "
        f"{peak:7.1f} MiB, consistent {ex.consistent}, path {ex.settings['path']}, "
        f"refinement {ex.settings.get('refinement', {}).get('stopped')}",
        flush=True,
    )
    clf = from_classifier(lambda ws: predict(probe, ws), probe.alphabet)
    bb, wall, peak = measured(lambda: extract(clf, max_len=max_len))
    print(
        f"  black-box  {bb.n_minimal:3d} states, eq task {same(bb.minimal)}, "
        f"held-out {agree(bb.minimal):.4f}, {wall:7.2f} s, {peak:7.1f} MiB, consistent "
        f"{bb.consistent}, {bb.settings['queries']} queries, {bb.settings['calls']} calls, "
        f"{bb.settings['rounds']} rounds",
        flush=True,
    )
    if args.no_aalpy:
        return

    def classify(words: list[tuple[int, ...]]) -> np.ndarray:
        return predict(probe, words)

    (theirs, info), wall, peak = measured(
        lambda: aalpy_lstar(classify, k, args.n_check, 2 * max_len, 0)
    )
    theirs = renamed(theirs, probe.alphabet)
    print(
        f"  AALpy L*   {theirs.n_states:3d} states, eq task {same(theirs)}, "
        f"held-out {agree(theirs):.4f}, {wall:7.2f} s, {peak:7.1f} MiB, "
        f"{info.get('queries_learning', '?')} + {info.get('queries_eq_oracle', '?')} queries, "
        f"{info.get('steps_learning', '?')} + {info.get('steps_eq_oracle', '?')} steps",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--paper-epochs", type=int, default=400)
    parser.add_argument("--paper-full", action="store_true", help="the paper preset, 1000 epochs")
    parser.add_argument("--n-check", type=int, default=2000)
    parser.add_argument("--no-aalpy", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    nets: dict[str, Callable[[], tuple[Probe, Machine, int]]] = {
        "paper": lambda: (paper_network(args.paper_epochs, args.paper_full), PARITY, 10),
        "redundant": lambda: (
            train_gru(MOD3, 64, 1, 1500, 0.02, True, 15),
            MOD3,
            6,
        ),
        "sym16": lambda: (
            train_gru(contains((0, 1), 16), 32, 1, 1500, 0.01, False, 12),
            contains((0, 1), 16),
            3,
        ),
        "stack2": lambda: (
            train_gru(contains((0, 1, 2), 4), 24, 2, 1500, 0.01, False, 15),
            contains((0, 1, 2), 4),
            6,
        ),
    }
    for name, make in nets.items():
        if args.only and name not in args.only:
            continue
        t = time.perf_counter()
        probe, task, max_len = make()
        print(f"[{name}] trained in {time.perf_counter() - t:.1f} s", flush=True)
        bench(name, probe, renamed(task, probe.alphabet), max_len, args)


if __name__ == "__main__":
    main()
