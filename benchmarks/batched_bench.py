"""Batched (stacked-parameter) training of M small RNNs vs a loop over M separate ``nn.RNN`` models.

Two settings, both timed in the same process with interleaved repeats (median reported). On the CPU the
time is the process CPU time (torch runs one thread), which other processes on a shared machine do not
inflate; on a GPU it is the wall time between device synchronisations.

``appendix``
    The ecosystem note's Appendix A benchmark: H = 16, T = 20, B = 64, a fresh random batch every step
    shared by all models, the target the running parity at every position (cross-entropy over all B*T
    positions), tanh, Adam lr 1e-2 per model. Inputs are one-hot over 2 symbols here (the note fed the
    bit as a 1-dim float), so both sides use dfalens' input convention.
``phase``
    One phase-diagram step shape: H = 100 ReLU units, T = 10, B = 128, SGD lr 0.02, cross-entropy after the
    last symbol, as in the Fig. 9 sweep.

Sides: ``loop`` (M ``nn.RNN`` + ``nn.Linear`` models, each with its own torch optimizer, stepped one after
the other), ``batched`` (:func:`dfalens.trainers.batched.stacked_forward` with the hand-written Elman
recurrence + :class:`~dfalens.trainers.batched.StackedOptimizer`), and ``batched-autograd`` (the same cell
recorded step by step with autograd).

Usage::

    python benchmarks/batched_bench.py                      # M = 64, both settings, CPU
    python benchmarks/batched_bench.py --members 64 400 --device cuda --out figures.txt
    python benchmarks/batched_bench.py --quick              # a few seconds, for checking the script
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfalens.trainers import StackedOptimizer, stacked_forward, stacked_loss  # noqa: E402

SETTINGS = {
    "appendix": {
        "hidden": 16,
        "steps_t": 20,
        "batch": 64,
        "nonlinearity": "tanh",
        "every": True,
        "optimizer": "adam",
        "lr": 1e-2,
    },
    "phase": {
        "hidden": 100,
        "steps_t": 10,
        "batch": 128,
        "nonlinearity": "relu",
        "every": False,
        "optimizer": "sgd",
        "lr": 0.02,
    },
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _batches(n: int, batch: int, length: int, device: torch.device, seed: int) -> list:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        words = torch.randint(0, 2, (batch, length), generator=gen)
        parity = words.cumsum(dim=1) % 2
        out.append((words.to(device), parity.to(device)))
    return out


def loop_side(m: int, s: dict, device: torch.device) -> Callable[[list], None]:
    """M separate nn.RNN models with their own optimizers."""
    torch.manual_seed(0)
    models = []
    for _ in range(m):
        rnn = nn.RNN(2, s["hidden"], nonlinearity=s["nonlinearity"], batch_first=True).to(device)
        head = nn.Linear(s["hidden"], 2).to(device)
        params = list(rnn.parameters()) + list(head.parameters())
        opt = (torch.optim.Adam if s["optimizer"] == "adam" else torch.optim.SGD)(
            params, lr=s["lr"]
        )
        models.append((rnn, head, opt))

    def run(batches: list) -> None:
        for words, parity in batches:
            x = F.one_hot(words, 2).float()
            for rnn, head, opt in models:
                opt.zero_grad(set_to_none=True)
                out, _ = rnn(x)
                if s["every"]:
                    loss = F.cross_entropy(head(out).reshape(-1, 2), parity.reshape(-1))
                else:
                    loss = F.cross_entropy(head(out[:, -1]), parity[:, -1])
                loss.backward()
                opt.step()

    return run


def batched_side(m: int, s: dict, device: torch.device, fused: bool) -> Callable[[list], None]:
    """One stacked cell over M members and one per-member optimizer."""
    gen = torch.Generator().manual_seed(0)
    h = s["hidden"]

    def draw(*shape: int, std: float) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * std).to(device)

    params = {
        "rnn.weight_ih_l0": draw(m, h, 2, std=0.3),
        "rnn.weight_hh_l0": draw(m, h, h, std=h**-0.5),
        "rnn.bias_ih_l0": torch.zeros(m, h, device=device),
        "rnn.bias_hh_l0": torch.zeros(m, h, device=device),
        "head.weight": draw(m, 2, h, std=0.3),
        "head.bias": torch.zeros(m, 2, device=device),
    }
    h0 = torch.zeros(m, h, device=device)
    opt = StackedOptimizer(params, s["optimizer"], torch.full((m,), s["lr"], device=device))
    rows = torch.arange(m, device=device)
    names = list(params)
    shape = {"cell": "rnn", "layers": 1, "nonlinearity": s["nonlinearity"], "n_symbols": 2}
    ones = torch.ones(m, s["batch"], device=device)

    def run(batches: list) -> None:
        for words, parity in batches:
            leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
            leaves["h0"] = h0
            w = words.expand(m, -1, -1)
            scores = stacked_forward(leaves, w, every=s["every"], fused=fused, **shape)
            target = parity.expand(m, -1, -1) if s["every"] else parity[:, -1].expand(m, -1)
            loss = stacked_loss(scores, target, ones, "ce").sum()
            grads = torch.autograd.grad(loss, [leaves[k] for k in names])
            opt.step(rows, dict(zip(names, grads, strict=True)))

    return run


def measure(setting: str, m: int, steps: int, repeats: int, device: torch.device) -> dict:
    s = SETTINGS[setting]
    batches = _batches(steps, s["batch"], s["steps_t"], device, seed=1)
    sides = {
        "loop": loop_side(m, s, device),
        "batched": batched_side(m, s, device, fused=True),
        "batched-autograd": batched_side(m, s, device, fused=False),
    }
    for run in sides.values():  # warm-up (allocator, cuDNN/oneDNN plans)
        run(batches[:2])
    # on the CPU (one thread) the process CPU time is the figure: it does not count the time other
    # processes hold the core; on a GPU the wall time between device synchronisations
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    times: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(repeats):
        for name, run in sides.items():
            _sync(device)
            t0 = clock()
            run(batches)
            _sync(device)
            times[name].append(clock() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, nargs="+", default=[64])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script")
    parser.add_argument("--out", type=Path, help="also append the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.members, args.steps, args.repeats = [4], 3, 1
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    lines = [
        f"# batched_bench: device={device} ({torch.cuda.get_device_name() if device.type == 'cuda' else platform.processor() or 'cpu'}), "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, steps {args.steps}, "
        f"repeats {args.repeats} (median {'wall' if device.type == 'cuda' else 'CPU'} seconds)",
        f"{'setting':<9} {'M':>5} {'loop s':>9} {'batched s':>10} {'autograd s':>11} "
        f"{'loop/batched':>13} {'autograd/batched':>17}",
    ]
    print(lines[0], flush=True)
    print(lines[1], flush=True)
    for setting in args.settings:
        for m in args.members:
            t = measure(setting, m, args.steps, args.repeats, device)
            line = (
                f"{setting:<9} {m:>5} {t['loop']:>9.3f} {t['batched']:>10.3f} "
                f"{t['batched-autograd']:>11.3f} {t['loop'] / t['batched']:>12.1f}x "
                f"{t['batched-autograd'] / t['batched']:>16.2f}x"
            )
            lines.append(line)
            print(line, flush=True)
    if args.out is not None:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
