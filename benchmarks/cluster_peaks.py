"""Measured peak memory and time of every clustering method, against the estimate that guards it.

Each (method, n, d) runs in a fresh subprocess; the peak is ``ru_maxrss`` after the call minus the
resident size just before it (the states already built). Data (``merged``): ``n`` states around ``n // 250 + 2``
centres (merged states, the common case of a trained network) with small noise;
``spread``: standard normal states (nothing merges; the cover's worst case).

Run: ``python benchmarks/cluster_peaks.py [n ...]`` (default sizes 2000 5000 10000, d = 16 and 64);
``METHODS=leader,threshold`` restricts the runs (names as in the table, without the data kind).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
from dfalens.probes.clustering import cluster
from dfalens.probes._costs import cluster_cost
import sklearn.cluster, hdbscan, scipy.cluster.hierarchy  # imported before the baseline
method, n, d, data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
c = max(2, n // 250)
centres = rng.normal(size=(c, d))
x = (centres[rng.integers(0, c, n)] + 1e-4 * rng.normal(size=(n, d))).astype(np.float32)
if data == "spread":  # unmerged: every state its own cluster at the default eps
    x = rng.normal(size=(n, d)).astype(np.float32)
kw = {"n_clusters": c} if method == "kmeans" else {}
if method.startswith("agglomerative"):
    method, kw = "agglomerative", {"linkage": method.split("-")[1]}
before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
t = time.perf_counter()
from dfalens.errors import BudgetError
try:
    labels = cluster(x, method, **kw)
except BudgetError as exc:
    print(json.dumps({"method": method, "refused": str(exc)}))
    sys.exit(0)
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
if method == "dbscan":  # the bound cluster() checks: squared sizes of the threshold components
    from dfalens.probes.clustering import _moments, _neighbour_pairs, _tiny
    m = _moments(x)
    kw = {"neighbour_pairs": _neighbour_pairs(x, max(0.01 * m.scale, _tiny(x)), m)}
est = cluster_cost(method, n, d, **kw)
name = method + (f"-{kw['linkage']}" if "linkage" in kw else "") + ("" if data == "merged" else f" ({data})")
print(json.dumps({"method": name, "n": n, "d": d, "clusters": int(labels.max()) + 1,
                  "measured": max(peak, 0), "estimate": est.bytes, "seconds": seconds,
                  "est_seconds": est.seconds}))
"""


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [2000, 5000, 10000]
    runs = [
        (m, "merged")
        for m in (
            "leader",
            "threshold",
            "kmeans",
            "agglomerative-single",
            "agglomerative-average",
            "dbscan",
            "hdbscan",
        )
    ]
    runs += [("leader", "spread"), ("threshold", "spread")]
    only = os.environ.get("METHODS")  # e.g. METHODS=leader,threshold,kmeans for the large sizes
    if only:
        runs = [r for r in runs if r[0] in only.split(",")]
    print("| method | n | d | clusters | estimated peak | measured peak | est. s | measured s |")
    print("|---|---|---|---|---|---|---|---|")
    for method, data in runs:
        for d in (16, 64):
            for n in sizes:
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, method, str(n), str(d), data],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                r = json.loads(out.stdout.strip().splitlines()[-1])
                if "refused" in r:
                    print(f"| {method} ({data}) | {n} | {d} | refused: {r['refused']} |||||")
                    continue
                print(
                    f"| {r['method']} | {n} | {d} | {r['clusters']} | {r['estimate'] / 2**20:.0f} MiB | "
                    f"{r['measured'] / 2**20:.0f} MiB | {r['est_seconds']:.2f} | {r['seconds']:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
