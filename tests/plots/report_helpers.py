"""A hand-made timeline for the report tests: a prefix tree that merges into parity."""

from __future__ import annotations

import numpy as np

from dfalens.automata import Machine, minimize, parity
from dfalens.timeline import Row, Timeline
from dfalens.timeline.history import tree_arrays, word_strings

EPOCHS = (0, 10, 20, 30, 40, 50)
LANDMARKS = {"memorisation": 20, "merger": 40, "generalisation": 30}


def quotient(
    labels: np.ndarray, parent: np.ndarray, symbol: np.ndarray, out: np.ndarray
) -> Machine:
    """The machine whose state q holds the words labelled q (first word's transition wins)."""
    n = int(labels.max()) + 1
    delta = np.full((n, 2), -1)
    delta[labels[parent[1:]][::-1], symbol[1:][::-1]] = labels[1:][::-1]
    output = np.zeros(n, dtype=int)
    output[labels[::-1]] = out[::-1]
    return Machine(delta, output, int(labels[0]))


def synthetic_timeline() -> Timeline:
    parent, symbol, depth = tree_arrays(2, 3)
    words = word_strings(parent, symbol, ("0", "1"))
    odd = np.array([w.count("1") % 2 for w in words])
    tree = np.arange(depth.size)
    labels = np.stack(
        [
            np.zeros(depth.size, dtype=int),  # one state: closed, not parity
            tree,
            tree,
            np.where(depth >= 2, 3 + odd, tree),  # longer words merged by parity
            odd,
            odd,
        ]
    )
    machines = [quotient(lab, parent, symbol, odd) for lab in labels]
    rows = []
    for c, (epoch, m) in enumerate(zip(EPOCHS, machines, strict=True)):
        closed = bool(np.all(m.delta >= 0))
        eq = c >= 4
        rows.append(
            Row(
                epoch=epoch,
                step=epoch,
                train_loss=0.25 * 10.0 ** (-c),
                val_loss=0.3 * 10.0 ** (-c),
                states_raw=m.n_states,
                states_minimal=minimize(m).n_states,
                closed=closed,
                equivalent=eq,
                counterexample=None if eq else "1",
                fidelity=1.0 if closed else None,
                eps_abs=0.01,
            )
        )
    return Timeline(
        rows=tuple(rows),
        memorisation_epoch=LANDMARKS["memorisation"],
        merger_epoch=LANDMARKS["merger"],
        generalisation_epoch=LANDMARKS["generalisation"],
        task="parity",
        task_machine=parity(),
        settings={"method": "leader", "run_dir": None},
        words=words,
        depth=depth,
        labels=labels,
        machines=tuple(machines),
    )
