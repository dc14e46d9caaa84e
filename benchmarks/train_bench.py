"""Training speed of the paper preset on the CPU, against a research-style reference loop.

The reference is written the way research code usually is (and the way the official code of van Rossem &
Saxe 2025 is): ``nn.RNN`` + ``nn.Linear``, one ``torch.utils.data.DataLoader`` per length over a
``TensorDataset`` of one-hot float words, ``shuffle=True``, batch 128, lengths 1..10 in turn each epoch,
``nn.MSELoss`` on one-hot targets, ``torch.optim.SGD``, torch's default thread count. dfalens runs the same
batching semantics through :func:`dfalens.trainers.train`'s epoch (one thread, pre-built tensors, no
DataLoader, the fused Elman recurrence on the CPU).

Usage::

    python benchmarks/train_bench.py speed [--epochs 30] [--repeats 3]
    python benchmarks/train_bench.py landmarks [--seeds 0 1 2 3 4] [--epochs 1000]

``speed`` prints milliseconds per training epoch (no evaluation) of the reference loop (torch's default
threads, and one thread) and of dfalens (fused Elman recurrence, and plain ``nn.RNN``), interleaved, with
ratios; then the cost of one checkpoint of the paper preset (training-set loss, the six test lengths,
files). ``landmarks``
trains the paper preset per seed and prints the first epochs with training loss < 1e-3 and with accuracy 1.0
at length 1000.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dfalens._files import atomic_write
from dfalens.trainers import checkpoints as ck  # noqa: E402
from dfalens.trainers import make_config, train  # noqa: E402
from dfalens.trainers.evaluate import evaluate_long  # noqa: E402
from dfalens.trainers.loop import _Trainer  # noqa: E402


class ReferenceModel(nn.Module):
    """The paper's network as research code writes it."""

    def __init__(self, hidden: int = 100, gain: float = 0.1) -> None:
        super().__init__()
        self.rnn = nn.RNN(2, hidden, 1, nonlinearity="relu", batch_first=True)
        self.fc = nn.Linear(hidden, 2)
        for param in self.parameters():
            if param.dim() == 2:
                nn.init.xavier_normal_(param, gain=gain)
            else:
                nn.init.zeros_(param)
        self.h0 = torch.ones(1, 1, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x, self.h0.repeat(1, x.shape[0], 1))
        return self.fc(out[:, -1])


def reference_setup(
    seed: int = 0,
) -> tuple[ReferenceModel, torch.optim.Optimizer, list[DataLoader]]:
    torch.manual_seed(seed)
    model = ReferenceModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02)
    loaders = []
    for length in range(1, 11):
        words = torch.tensor(list(itertools.product([0, 1], repeat=length)))
        x = nn.functional.one_hot(words, 2).float()
        y = nn.functional.one_hot(words.sum(1) % 2, 2).float()
        loaders.append(DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True))
    return model, optimizer, loaders


def reference_epoch(model: ReferenceModel, optimizer: torch.optim.Optimizer, loaders: list) -> None:
    criterion = nn.MSELoss()
    for loader in loaders:
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()


def time_epochs(fn, epochs: int) -> tuple[float, float]:
    """Wall and CPU (all threads of the process) milliseconds per epoch."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        fn()
    return (
        (time.perf_counter() - start) / epochs * 1e3,
        (time.process_time() - cpu) / epochs * 1e3,
    )


def speed(epochs: int, repeats: int) -> None:
    default_threads = torch.get_num_threads()
    ref_model, ref_opt, loaders = reference_setup()
    trainer = _Trainer(make_config("paper", device="cpu"), torch.device("cpu"))

    def ref_epoch() -> None:
        reference_epoch(ref_model, ref_opt, loaders)

    def ours(fused: bool):
        def run_epoch() -> None:
            trainer.model.fused = fused
            trainer.train_epoch()

        return run_epoch

    contenders = {
        f"reference loop, {default_threads} threads (torch default)": (ref_epoch, default_threads),
        "reference loop, 1 thread": (ref_epoch, 1),
        "dfalens, 1 thread (fused Elman, the default)": (ours(True), 1),
        "dfalens, 1 thread, nn.RNN on the CPU": (ours(False), 1),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):  # interleaved, so that load changes hit every contender alike
        for name, (fn, threads) in contenders.items():
            torch.set_num_threads(threads)
            wall, used = time_epochs(fn, epochs)
            times[name].append(wall)
            cpu[name].append(used)
    torch.set_num_threads(1)
    ours_name = "dfalens, 1 thread (fused Elman, the default)"
    print(f"ms per training epoch (21 SGD steps), {epochs} epochs x {repeats} interleaved rounds:")
    for name, values in times.items():
        ratio = [r / o for r, o in zip(values, times[ours_name], strict=True)]
        print(
            f"  {name:<48} wall {fmt(values)}  ratio to dfalens: "
            f"{', '.join(f'{x:.2f}' for x in ratio)}"
        )
    print("CPU ms per epoch (process time, all threads):")
    for name, values in cpu.items():
        ratio = statistics.median(values) / statistics.median(cpu[ours_name])
        print(f"  {name:<48} {fmt(values)}  ratio of medians: {ratio:.2f}")

    trainer.model.fused = True
    train_eval = median_ms(trainer.train_loss, 5)
    long_eval = median_ms(lambda: evaluate_long(trainer.model, trainer.test_set, "mse"), 3)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)

        def write() -> None:
            data = ck.checkpoint_bytes(trainer.model, {"epoch": 1})
            atomic_write(path / "a.safetensors", data)
            atomic_write(path / "last.safetensors", data)
            ck.save_train_state(
                path / "s.safetensors", trainer.model, trainer.optimizer, {"s": trainer.shuffle}, {}
            )

        files = median_ms(write, 5)
    print("cost of one checkpoint of the paper preset (ms, median):")
    print(f"  training-set loss and accuracy (2,046 words): {train_eval:.1f}")
    print(f"  six test lengths 25..10000, 10 words each, one pass: {long_eval:.1f}")
    print(f"  checkpoint + last + training state files (fsync'd): {files:.1f}")
    torch.set_num_threads(default_threads)


def median_ms(fn, repeats: int) -> float:
    values = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        values.append((time.perf_counter() - start) * 1e3)
    return statistics.median(values)


def fmt(values: list[float]) -> str:
    return f"median {statistics.median(values):.1f} (runs: {', '.join(f'{v:.1f}' for v in values)})"


def landmarks(seeds: list[int], epochs: int) -> None:
    print("seed  first epoch loss<1e-3  first epoch acc@1000 = 1.0  wall s")
    for seed in seeds:
        config = make_config("paper", seed=seed, epochs=epochs, device="cpu", test_lengths=(1000,))
        start = time.perf_counter()
        run = train(config)
        wall = time.perf_counter() - start
        s = run.summary(length=1000)
        print(
            f"{seed:>4}  {str(s['first_epoch_loss_below']):>21}  "
            f"{str(s['first_epoch_accuracy_1']):>26}  {wall:6.0f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p_speed = sub.add_parser("speed")
    p_speed.add_argument("--epochs", type=int, default=30)
    p_speed.add_argument("--repeats", type=int, default=3)
    p_land = sub.add_parser("landmarks")
    p_land.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p_land.add_argument("--epochs", type=int, default=1000)
    args = parser.parse_args()
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
        f"{torch.get_num_threads()} default threads, {platform.processor() or platform.machine()}"
    )
    if args.what == "speed":
        speed(args.epochs, args.repeats)
    else:
        landmarks(args.seeds, args.epochs)


if __name__ == "__main__":
    main()
