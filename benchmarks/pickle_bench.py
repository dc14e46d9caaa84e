"""Reading pickled checkpoints: the restricted unpickler against torch.load, and hostile files.

Honest files: a whole ``torch.save(model)`` of an LSTM language model (zip and legacy format), read by
``read_pickle`` and by ``torch.load(weights_only=False)`` (the peer, which runs the file's code); the two
must give equal weights. Hostile files: a billion-laughs DAG (30 levels, each referring to the previous
twice), self-referential containers, 5,000-deep nesting and top-down nesting, through ``read_checkpoint``;
each must end (read or a one-line CheckpointError) quickly.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/pickle_bench.py [--hidden 512] [--repeat 7]``
"""

from __future__ import annotations

import argparse
import pickle
import platform
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dfalens.errors import CheckpointError
from dfalens.probes import module_record, read_checkpoint, read_pickle


class LanguageModel(nn.Module):
    def __init__(self, vocab: int, hidden: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, hidden, padding_idx=0)
        self.rnn = nn.LSTM(hidden, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, vocab)


def interleaved(fns: list[Callable[[], Any]], repeat: int) -> list[float]:
    """Median seconds of each function, timed in alternation (so load from others hits both)."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, slot in zip(fns, times, strict=True):
            start = time.perf_counter()
            out = fn()
            slot.append(time.perf_counter() - start)
            del out
    return [statistics.median(t) for t in times]


def outcome(fn: Callable[[], Any]) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        ckpt = fn()
        what = f"read: {len(ckpt.weights)} tensors"
    except CheckpointError as exc:
        what = f"CheckpointError: {str(exc)[:70]}..."
    return time.perf_counter() - start, what


def top_down_nesting(n: int) -> bytes:
    make = b"".join(b"]r" + struct.pack("<I", i) + b"0" for i in range(n))
    link = b"".join(
        b"j" + struct.pack("<I", i + 1) + b"j" + struct.pack("<I", i) + b"a0"
        for i in reversed(range(n - 1))
    )
    return b"\x80\x02" + make + link + b"j" + struct.pack("<I", n - 1) + b"."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--vocab", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"Python {platform.python_version()}, torch {torch.__version__}")
    tmp = Path(tempfile.mkdtemp())
    model = LanguageModel(args.vocab, args.hidden)
    expected = model.state_dict()
    for fmt in ("zip", "legacy"):
        path = tmp / f"lm-{fmt}.pt"
        torch.save(model, path, _use_new_zipfile_serialization=fmt == "zip")
        state = module_record(read_pickle(path)).state_dict()
        assert list(state) == list(expected)
        assert all(torch.equal(state[k], v) for k, v in expected.items())
        ours, peer = interleaved(
            [
                lambda path=path: read_pickle(path),
                lambda path=path: torch.load(path, weights_only=False),  # runs the file's code
            ],
            args.repeat,
        )
        size = path.stat().st_size / 2**20
        print(
            f"{fmt}: {size:.1f} MiB, read_pickle {ours * 1e3:.1f} ms, "
            f"torch.load(weights_only=False) {peer * 1e3:.1f} ms, ratio {ours / peer:.2f}"
        )

    node: Any = {"t": torch.ones(1)}
    chain: Any = [torch.ones(1)]
    for _ in range(30):
        node, chain = {"a": node, "b": node}, [chain, chain]
    loop: list[Any] = []
    loop.append(loop)
    table: dict[str, Any] = {"w": torch.ones(3), "loop": loop}
    table["self"] = table
    hostile = {
        "billion laughs (dicts)": {"model": node},
        "billion laughs (lists)": {"w": torch.ones(1), "x": chain},
        "self-referential": {"state_dict": table},
    }
    for name, obj in hostile.items():
        path = tmp / "hostile.pt"
        torch.save(obj, path)
        seconds, what = outcome(lambda path=path: read_checkpoint(path))
        print(f"{name}: {path.stat().st_size} bytes, {seconds * 1e3:.1f} ms, {what}")
    raw = {
        "5,000-deep lists": b"\x80\x02" + b"]" * 5000 + b"a" * 4999 + b".",
        "3,000 lists nested top-down": top_down_nesting(3000),
        "memo index 2^31-1": b"\x80\x02]r\xff\xff\xff\x7f.",
        "pickle.dumps(30-level DAG)": pickle.dumps({"x": chain}, protocol=2),
    }
    for name, data in raw.items():
        path = tmp / "hostile.pkl"
        path.write_bytes(data)
        seconds, what = outcome(lambda path=path: read_checkpoint(path))
        print(f"{name}: {len(data)} bytes, {seconds * 1e3:.1f} ms, {what}")


if __name__ == "__main__":
    main()
