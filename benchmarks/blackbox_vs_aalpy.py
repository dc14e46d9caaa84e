"""Black-box extraction speed: dfalens ``learn`` (batched L*) vs AALpy's L*, on the same classifiers.

Four word classifiers, all torch networks called on a list of words:

- ``random10x4``: a random minimal 10-state Moore machine over 4 symbols, run as a one-hot linear RNN (the
  state vector times one transition matrix per symbol, so the network implements the machine exactly);
- ``bigru``: a bidirectional GRU trained here on "contains abc" over {a, b, c} (100% on every word up to
  length 8 and on 20,000 random words up to ``--max-len``, checked before learning);
- ``sum16``: the sum of the symbols mod 7 over 16 symbols (7 states, 7 labels), as a one-hot linear RNN;
- ``random12x16``: a random minimal 12-state machine over 16 symbols, as a one-hot linear RNN.

dfalens learns through ``from_classifier(classify, alphabet)``: every batch of queries is one call.
AALpy is used as its users do with a model they can call: a ``SUL`` whose ``step`` appends the symbol to
the word read so far and returns the network's label for that prefix (one call per step; AALpy caches
queries), ``RandomWordEqOracle`` and ``run_Lstar(..., automaton_type="moore")`` with Rivest-Schapire
counterexample processing (its default). Both equivalence oracles check ``--n-check`` random words per
round with lengths up to ``--max-len`` (dfalens: uniform lengths 0..max_len; AALpy: walks of 1..max_len
steps). Agreement is measured on ``--held-out`` fresh random words of lengths 0..max_len, against the
network. Times (wall clock and process CPU time) are medians over ``--repeat`` rounds, each running
dfalens five times and AALpy once, after one warm-up call of the network; training the BiGRU is not
timed.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/blackbox_vs_aalpy.py [--n-check 2000] [--max-len 10]``
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from dfalens.automata import Machine, equivalent, minimize, random_machine, run
from dfalens.probes import from_classifier, learn

Words = list[tuple[int, ...]]


def pad(words: Words) -> tuple[torch.Tensor, torch.Tensor]:
    """Words as a (batch, max_len) LongTensor padded with 0, and their lengths."""
    lengths = torch.tensor([len(w) for w in words])
    x = torch.zeros(len(words), max(1, int(lengths.max())), dtype=torch.long)
    flat = list(itertools.chain.from_iterable(words))
    if flat:
        x[torch.arange(x.shape[1])[None, :] < lengths[:, None]] = torch.tensor(flat)
    return x, lengths


class OneHotRNN(nn.Module):
    """A Moore machine as a recurrent network: one-hot state times per-symbol transition matrices."""

    def __init__(self, machine: Machine) -> None:
        super().__init__()
        n, k = machine.delta.shape
        trans = torch.zeros(k, n, n)
        trans[
            torch.arange(k)[:, None],
            torch.arange(n)[None, :],
            torch.as_tensor(machine.delta.T.copy()),
        ] = 1
        self.register_buffer("trans", trans)
        self.register_buffer(
            "readout", nn.functional.one_hot(torch.as_tensor(machine.output)).float()
        )
        self.start = machine.start
        self.n = n

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = nn.functional.one_hot(torch.full((x.shape[0],), self.start), self.n).float()
        for t in range(x.shape[1]):
            nxt = torch.bmm(h[:, None, :], self.trans[x[:, t]])[:, 0]
            h = torch.where((t < lengths)[:, None], nxt, h)
        return h @ self.readout


class BiGRU(nn.Module):
    """A bidirectional GRU word classifier: both directions' final states feed a linear head."""

    def __init__(self, n_symbols: int, hidden: int) -> None:
        super().__init__()
        self.n_symbols = n_symbols
        self.gru = nn.GRU(n_symbols, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, 2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        onehot = nn.functional.one_hot(x, self.n_symbols).float()
        packed = pack_padded_sequence(
            onehot, lengths.clamp(min=1), batch_first=True, enforce_sorted=False
        )
        _, h = self.gru(packed)
        return self.head(torch.cat([h[0], h[1]], -1) * (lengths > 0)[:, None])  # () -> zero state


def as_classify(net: nn.Module) -> Callable[[Words], np.ndarray]:
    def classify(words: Words) -> np.ndarray:
        with torch.no_grad():
            return net(*pad(words)).argmax(-1).numpy()

    return classify


def random_words(rng: np.random.Generator, k: int, n: int, max_len: int) -> Words:
    lengths = rng.integers(0, max_len + 1, size=n)
    return [tuple(rng.integers(k, size=m).tolist()) for m in lengths]


def all_words(k: int, max_len: int) -> Words:
    return [w for m in range(max_len + 1) for w in itertools.product(range(k), repeat=m)]


def contains(pattern: tuple[int, ...], k: int) -> Machine:
    """Minimal DFA of "contains ``pattern``" (KMP automaton)."""
    n = len(pattern)
    delta = np.zeros((n + 1, k), dtype=np.int64)
    for q in range(n + 1):
        for a in range(k):
            if q == n:
                delta[q, a] = n
                continue
            w = pattern[:q] + (a,)
            delta[q, a] = max(j for j in range(n + 1) if w[len(w) - j :] == pattern[:j])
    return Machine(delta, [0] * n + [1], 0, tuple("abcdefghijklmnop"[:k]))


def train_bigru(truth: Machine, max_len: int, seed: int) -> BiGRU:
    """Adam until the network labels every word up to length 8 and 20,000 random ones like ``truth``."""
    rng = np.random.default_rng(seed)
    k = truth.n_symbols
    words = all_words(k, 6) + random_words(rng, k, 6000, max_len + 2)
    x, lengths = pad(words)
    y = torch.as_tensor(run(truth, [list(w) for w in words]))
    check = all_words(k, 8) + random_words(rng, k, 20_000, max_len)
    torch.manual_seed(seed)
    net = BiGRU(k, 16)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(60):
        for idx in torch.randperm(len(words)).split(256):
            loss = nn.functional.cross_entropy(net(x[idx], lengths[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        if np.array_equal(as_classify(net)(check), run(truth, [list(w) for w in check])):
            return net
        net.train()
    raise SystemExit("the BiGRU did not reach 100% on the check words; try another --seed")


def aalpy_lstar(
    classify: Callable[[Words], np.ndarray], k: int, n_check: int, max_len: int, seed: int
) -> tuple[Machine, dict]:
    """AALpy 2.0 L* for Moore machines over a step-by-step SUL; the model as a dfalens Machine."""
    from aalpy.base import SUL
    from aalpy.learning_algs import run_Lstar
    from aalpy.oracles import RandomWordEqOracle

    class ClassifierSUL(SUL):
        def __init__(self) -> None:
            super().__init__()
            self.word: list[int] = []

        def pre(self) -> None:
            self.word = []

        def post(self) -> None:
            pass

        def step(self, letter: int | None) -> int:
            if letter is not None:
                self.word.append(letter)
            return int(classify([tuple(self.word)])[0])

    random.seed(seed)
    alphabet = list(range(k))
    sul = ClassifierSUL()
    oracle = RandomWordEqOracle(
        alphabet, sul, num_walks=n_check, min_walk_len=1, max_walk_len=max_len
    )
    model, info = run_Lstar(
        alphabet, sul, oracle, automaton_type="moore", return_data=True, print_level=0
    )
    index = {id(s): i for i, s in enumerate(model.states)}
    delta = [[index[id(s.transitions[a])] for a in alphabet] for s in model.states]
    output = [int(s.output) for s in model.states]
    return Machine(delta, output, index[id(model.initial_state)], tuple(map(str, alphabet))), info


def renamed(machine: Machine, alphabet: tuple[str, ...]) -> Machine:
    return Machine(machine.delta, machine.output, machine.start, alphabet)


def compare(
    name: str, net: nn.Module, truth: Machine, alphabet: str, args: argparse.Namespace
) -> dict:
    """Learn ``net`` with both tools (interleaved, ``--repeat`` times each); one printed row."""
    classify = as_classify(net)
    k = truth.n_symbols
    held = random_words(np.random.default_rng(args.seed + 99), k, args.held_out, args.max_len)
    labels = classify(held)  # also warms the network up before anything is timed
    held_lists = [list(w) for w in held]
    clf = from_classifier(classify, alphabet)
    t_ours, t_theirs, cpu_ours, cpu_theirs = [], [], [], []
    for _ in range(args.repeat):  # interleaved, so that load from other processes hits both alike
        for _ in range(5):  # ours is short: median of 5 per round against preemption spikes
            t0, c0 = time.perf_counter(), time.process_time()
            ours = learn(clf, max_len=args.max_len, n_check=args.n_check, seed=args.seed)
            t_ours.append(time.perf_counter() - t0)
            cpu_ours.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        theirs, info = aalpy_lstar(classify, k, args.n_check, args.max_len, args.seed)
        t_theirs.append(time.perf_counter() - t0)
        cpu_theirs.append(time.process_time() - c0)
    row = {
        "name": name,
        "truth": minimize(truth).n_states,
        "ours_s": statistics.median(t_ours),
        "ours_cpu": statistics.median(cpu_ours),
        "ours_states": ours.n_states,
        "ours_agree": float(np.mean(run(ours.machine, held_lists) == labels)),
        "ours_exact": equivalent(ours.machine, renamed(truth, ours.machine.alphabet)).equal,
        "ours_cost": f"{ours.calls} calls, {ours.labelled} words, {ours.rounds} rounds",
        "aalpy_s": statistics.median(t_theirs),
        "aalpy_cpu": statistics.median(cpu_theirs),
        "aalpy_states": theirs.n_states,
        "aalpy_agree": float(np.mean(run(theirs, held_lists) == labels)),
        "aalpy_exact": equivalent(theirs, renamed(truth, theirs.alphabet)).equal,
        "aalpy_cost": (
            f"{info['steps_learning'] + info['steps_eq_oracle']} steps "
            f"({info['queries_learning']} + {info['queries_eq_oracle']} queries), "
            f"{info['learning_rounds']} rounds"
        ),
    }
    row["ratio"] = row["aalpy_s"] / row["ours_s"]
    row["cpu_ratio"] = row["aalpy_cpu"] / row["ours_cpu"]
    print(
        f"{name:<11} truth {row['truth']:>2} states | dfalens {row['ours_s']:7.3f} s, "
        f"{row['ours_states']} states, agreement {row['ours_agree']:.4f}, equal {row['ours_exact']}, "
        f"{row['ours_cost']} | AALpy {row['aalpy_s']:7.3f} s, {row['aalpy_states']} states, "
        f"agreement {row['aalpy_agree']:.4f}, equal {row['aalpy_exact']}, {row['aalpy_cost']} | "
        f"speed-up {row['ratio']:.0f}x wall, {row['cpu_ratio']:.0f}x CPU time",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n-check", type=int, default=2000, help="random check words per round, both"
    )
    parser.add_argument("--max-len", type=int, default=10)
    parser.add_argument("--held-out", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=list(CASES))
    args = parser.parse_args()
    torch.set_num_threads(1)

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
        f"aalpy {version('aalpy')}, {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}; n_check {args.n_check}, max_len {args.max_len}, "
        f"held-out {args.held_out}"
    )
    rows = [CASES[name](args) for name in args.only]
    print(
        "\n| classifier | truth | dfalens: wall (CPU), states, agreement "
        "| AALpy: wall (CPU), states, agreement | speed-up wall (CPU) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['truth']} | {r['ours_s'] * 1e3:.0f} ms ({r['ours_cpu'] * 1e3:.0f} ms), "
            f"{r['ours_states']}, {r['ours_agree']:.4f} | {r['aalpy_s']:.2f} s ({r['aalpy_cpu']:.2f} s), "
            f"{r['aalpy_states']}, {r['aalpy_agree']:.4f} | {r['ratio']:.0f}x ({r['cpu_ratio']:.0f}x) |"
        )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


def random_minimal(states: int, symbols: int) -> Machine:
    """The first random machine (by seed) whose minimal machine has exactly ``states`` states."""
    for seed in itertools.count():
        m = minimize(random_machine(max_states=states, n_symbols=symbols, seed=seed))
        if m.n_states == states:
            return m
    raise AssertionError("unreachable")


def case_random10x4(args: argparse.Namespace) -> dict:
    truth = random_minimal(10, 4)
    return compare("random10x4", OneHotRNN(truth), truth, "abcd", args)


def case_bigru(args: argparse.Namespace) -> dict:
    truth = contains((0, 1, 2), 3)
    t0 = time.perf_counter()
    net = train_bigru(truth, args.max_len, args.seed).eval()
    print(f"bigru trained in {time.perf_counter() - t0:.1f} s (not timed below)", flush=True)
    return compare("bigru", net, truth, "abc", args)


def case_sum16(args: argparse.Namespace) -> dict:
    states = np.arange(7)
    truth = Machine((states[:, None] + np.arange(16)[None, :]) % 7, states, 0, SIXTEEN)
    return compare("sum16", OneHotRNN(truth), truth, "".join(SIXTEEN), args)


def case_random12x16(args: argparse.Namespace) -> dict:
    truth = random_minimal(12, 16)
    return compare("random12x16", OneHotRNN(truth), truth, "".join(SIXTEEN), args)


SIXTEEN = tuple("abcdefghijklmnop")
CASES: dict[str, Callable[[argparse.Namespace], dict]] = {
    "random10x4": case_random10x4,
    "bigru": case_bigru,
    "sum16": case_sum16,
    "random12x16": case_random12x16,
}


if __name__ == "__main__":
    main()
