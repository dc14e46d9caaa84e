"""Timeline speed: ``dfalens.timeline`` against a straightforward sequential loop over checkpoints.

The loop is what one would write with the public API: for every checkpoint, load it, collect its states
on every word up to ``max_len`` through its probe (one batched step per depth), and keep them; then pool
the scale, and for every checkpoint cluster (leader, eps = 0.01 x pooled scale), build the quotient,
minimise it, compare it with the task, check fidelity on random words when closed, and count merges and
splits. The timeline does the same work with stacked state collection (one batched product per depth for
a block of checkpoints, once per parent word) in worker processes.

    python benchmarks/timeline_bench.py RUN_DIR [--jobs 2] [--limit N] [--repeat 2]

Prints the times, the ratio, and at how many checkpoints both produced identical clusters (the two
compute the states with different float32 summation orders, so a pair of states within rounding of eps
can fall on either side).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from dfalens.automata import equivalent, minimize, run
from dfalens.probes import cluster, collect, from_model, quotient
from dfalens.timeline import compare_partitions, resolve_run, resolve_task, timeline
from dfalens.trainers import load_checkpoint


def sequential(paths: list[Path], task_name: str | None, max_len: int) -> tuple[np.ndarray, float]:
    """The straightforward loop (one torch and one BLAS thread, the fastest setting for tiny nets)."""
    torch.set_num_threads(1)
    with threadpool_limits(1):
        t0 = time.perf_counter()
        models, states = [], []
        for p in paths:
            model, meta = load_checkpoint(p)
            models.append(model)
            states.append(collect(from_model(model), max_len))
        task, _ = resolve_task(task_name, resolve_run(paths), meta)
        allh = np.concatenate([s.hidden for s in states])
        scale = float(np.sqrt(allh.astype(np.float64).var(axis=0).sum()))
        eps = 0.01 * scale
        words = np.random.default_rng(0).integers(0, 2, size=(32, 50))
        labels = []
        for model, s in zip(models, states, strict=True):
            lab = cluster(s, "leader", eps_abs=eps)
            machine, stats = quotient(s, lab, names=False)
            small = minimize(machine)
            equivalent(small, task, include_empty=False)
            if stats.closed:
                with torch.no_grad():
                    net = model(torch.from_numpy(words)).argmax(-1).numpy()
                float(np.mean(run(small, words) == net))
            if labels:
                compare_partitions(labels[-1], lab)
            labels.append(lab)
        return np.stack(labels), time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="only the first N checkpoints")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--skip-sequential", action="store_true")
    args = parser.parse_args()
    info = resolve_run(args.run_dir)
    paths = list(info.paths[: args.limit]) if args.limit else list(info.paths)
    max_len = int(info.config.get("max_len", 10))
    print(
        f"{len(paths)} checkpoints, words up to length {max_len}; {platform.processor() or 'cpu'}, "
        f"{torch.get_num_threads()} torch threads available, torch {torch.__version__}, "
        f"numpy {np.__version__}"
    )
    times: dict[str, list[float]] = {"timeline jobs": [], "timeline jobs=1": [], "sequential": []}
    cpu: dict[str, list[float]] = {"timeline jobs=1": [], "sequential": []}
    for r in range(args.repeat):
        t0 = time.perf_counter()
        tl = timeline(paths, jobs=args.jobs)
        times["timeline jobs"].append(time.perf_counter() - t0)
        t0, c0 = time.perf_counter(), time.process_time()
        timeline(paths, jobs=1)
        times["timeline jobs=1"].append(time.perf_counter() - t0)
        cpu["timeline jobs=1"].append(time.process_time() - c0)
        if not args.skip_sequential:
            c0 = time.process_time()
            labels, dt = sequential(paths, None, max_len)
            times["sequential"].append(dt)
            cpu["sequential"].append(time.process_time() - c0)
            differ = [
                c
                for c, (a, b) in enumerate(zip(labels, tl.labels, strict=True))
                if compare_partitions(a, b).unchanged != len(np.unique(a))
            ]
            gap = max(
                (abs(len(np.unique(labels[c])) - len(np.unique(tl.labels[c]))) for c in differ),
                default=0,
            )
            same = f"{len(paths) - len(differ)}/{len(paths)} (others differ by <= {gap} states)"
        note = "(first call: starts the workers)" if r == 0 else "(workers running)"
        line = f"run {r + 1}: timeline jobs={args.jobs} {times['timeline jobs'][-1]:.2f} s {note}, "
        line += (
            f"jobs=1 {times['timeline jobs=1'][-1]:.2f} s (CPU {cpu['timeline jobs=1'][-1]:.2f} s)"
        )
        if not args.skip_sequential:
            seq = times["sequential"][-1]
            line += (
                f", sequential loop {seq:.2f} s (CPU {cpu['sequential'][-1]:.2f} s); "
                f"CPU ratio loop/timeline(jobs=1) "
                f"{cpu['sequential'][-1] / cpu['timeline jobs=1'][-1]:.1f}x; wall ratio "
                f"loop/timeline(jobs={args.jobs}) {seq / times['timeline jobs'][-1]:.1f}x, "
                f"loop/timeline(jobs=1) {seq / times['timeline jobs=1'][-1]:.1f}x; "
                f"identical clusters at {same}"
            )
        print(line, flush=True)
    raw = tl.column("states_raw")
    print(
        f"states per checkpoint: max {int(raw.max())}, last {int(raw[-1])}; merger epoch "
        f"{tl.merger_epoch}; per checkpoint {1000 * min(times['timeline jobs']) / len(paths):.1f} ms"
    )


if __name__ == "__main__":
    main()
