"""Minimisation speed: dfalens vs automata-lib and pyformlang, and a 1,000,000-state machine.

Test machines are random 50-state, 2-symbol DFAs blown up language-preservingly: each state is copied,
every transition goes to some copy of its original target, and every copy is reachable (copies are
handed out breadth-first, fresh ones first). Minimising the blow-up must give the minimal machine of the
base DFA, which the script checks.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/automata_bench.py [--big 1000000] [--small 10000]``
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections import deque
from collections.abc import Callable
from importlib.metadata import version

import numpy as np

from dfalens.automata import Machine, equivalent, minimize, trim


def base_machine(n: int, seed: int) -> Machine:
    """A random complete DFA over 2 symbols, restricted to its reachable part."""
    rng = np.random.default_rng(seed)
    return trim(Machine(rng.integers(0, n, size=(n, 2)), rng.integers(0, 2, size=n)))


def blow_up(base: Machine, n_total: int, seed: int) -> Machine:
    """A machine of ``n_total`` reachable states with the language of ``base``."""
    rng = np.random.default_rng(seed)
    n, k = base.delta.shape
    # Copies per state: every copy needs an incoming transition, so a state without one (only the
    # start can be) gets a single copy, and the remainder goes to states with two or more.
    indeg = np.bincount(base.delta.ravel(), minlength=n)
    counts = np.where(indeg > 0, 0, 1)
    spread = n_total - int(counts.sum())
    counts[indeg > 0] = spread // int(np.sum(indeg > 0))
    extra = np.flatnonzero(indeg >= 2)[: spread % int(np.sum(indeg > 0))]
    assert extra.size == spread % int(np.sum(indeg > 0))
    counts[extra] += 1
    offset = np.concatenate(
        [[0], np.cumsum(counts)[:-1]]
    )  # copies of q are offset[q] + 0..counts[q]-1
    orig = np.repeat(np.arange(n), counts)
    orig_list = orig.tolist()
    counts_list, offset_list = counts.tolist(), offset.tolist()
    base_delta = base.delta.tolist()
    delta = np.empty((n_total, k), dtype=np.int64)
    start = offset_list[base.start]
    fresh_list = [0] * n  # next copy of each state not yet handed out; the start is copy 0
    fresh_list[base.start] = 1
    rand = rng.random((n_total, k))
    queue = deque([start])
    while queue:
        q = queue.popleft()
        row = base_delta[orig_list[q]]
        for a in range(k):
            o = row[a]
            if fresh_list[o] < counts_list[o]:
                t = offset_list[o] + fresh_list[o]
                fresh_list[o] += 1
                queue.append(t)
            else:
                t = offset_list[o] + int(rand[q, a] * counts_list[o])
            delta[q, a] = t
    assert all(f == c for f, c in zip(fresh_list, counts_list, strict=True))
    return Machine(delta, base.output[orig], start, base.alphabet)


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def to_automata_lib(m: Machine):  # noqa: ANN201
    from automata.fa.dfa import DFA

    return DFA(
        states=set(range(m.n_states)),
        input_symbols=set(m.alphabet),
        transitions={
            q: dict(zip(m.alphabet, row, strict=True)) for q, row in enumerate(m.delta.tolist())
        },
        initial_state=m.start,
        final_states=set(np.flatnonzero(m.output == 1).tolist()),
    )


def to_pyformlang(m: Machine):  # noqa: ANN201
    from pyformlang.finite_automaton import DeterministicFiniteAutomaton, State, Symbol

    dfa = DeterministicFiniteAutomaton()
    states = [State(q) for q in range(m.n_states)]
    symbols = [Symbol(a) for a in m.alphabet]
    for q, row in enumerate(m.delta.tolist()):
        for a, t in enumerate(row):
            dfa.add_transition(states[q], symbols[a], states[t])
    dfa.add_start_state(states[m.start])
    for q in np.flatnonzero(m.output == 1).tolist():
        dfa.add_final_state(states[q])
    return dfa


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--base", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"automata-lib {version('automata-lib')}, pyformlang {version('pyformlang')}, "
        f"{platform.machine()} {platform.processor() or ''}".strip()
    )
    base = base_machine(args.base, args.seed)
    target = minimize(base)
    print(f"base: {base.n_states} reachable states, minimal {target.n_states}")

    # --- small instance: ours vs automata-lib vs pyformlang -----------------------------------
    small = blow_up(base, args.small, args.seed + 1)
    al = to_automata_lib(small)
    pf = to_pyformlang(small)
    # interleave the three so that load from other processes hits them alike; medians per tool
    times: dict[str, list[float]] = {"ours": [], "al": [], "pf": []}
    for _ in range(args.repeat):
        t, ours = timed(lambda: minimize(small), 5)
        times["ours"].append(t)
        t, al_min = timed(al.minify, 1)
        times["al"].append(t)
        t, pf_min = timed(pf.minimize, 1)
        times["pf"].append(t)
    assert ours == target
    t_ours, t_al, t_pf = (statistics.median(times[key]) for key in ("ours", "al", "pf"))
    n_al, n_pf = len(al_min.states), len(pf_min.states)
    print(
        f"{args.small:>9,} states -> {target.n_states}: dfalens {t_ours * 1e3:8.1f} ms | "
        f"automata-lib {t_al * 1e3:8.1f} ms ({n_al} states) | "
        f"pyformlang {t_pf * 1e3:8.1f} ms ({n_pf} states)   [medians of {args.repeat} rounds]"
    )
    best = min(t_al, t_pf)
    print(f"speed-up vs the faster peer: {best / t_ours:.1f}x (target >= 10x)")

    # --- big instance ----------------------------------------------------------------------
    t0 = time.perf_counter()
    big = blow_up(base, args.big, args.seed + 2)
    t_build = time.perf_counter() - t0
    t_big, big_min = timed(lambda: minimize(big), args.repeat)
    assert big_min == target
    t_eq, verdict = timed(lambda: equivalent(big, base), max(1, args.repeat // 2))
    assert verdict.equal
    print(
        f"{args.big:>9,} states -> {target.n_states}: minimize median {t_big:.3f} s over "
        f"{args.repeat} runs (target <= 2 s); equivalent(big, base) {t_eq:.3f} s; "
        f"(building the instance took {t_build:.1f} s, not timed)"
    )


if __name__ == "__main__":
    main()
