"""Figs. 2 and 8: the parity automaton, and the network's final automaton after minimisation.

The extraction at the end of training has many redundant states; Hopcroft/Moore minimisation reduces it to
the two-state parity automaton. Also writes the final machine, raw and minimal, as SVG (or DOT).

    python examples/fig08_minimal_automaton.py OUT_DIR [--run runs/paper]
"""

from __future__ import annotations

import warnings

from _common import get_timeline, parse, save
from matplotlib.figure import Figure

from dfalens import plots
from dfalens.automata import equivalent, minimize, render


def main() -> None:
    args = parse(__doc__.splitlines()[0])
    tl = get_timeline(args.run, machines=True)
    raw = tl.machines[-1]
    small = minimize(raw, keep_sink=False)
    task = minimize(tl.task_machine, keep_sink=False)
    verdict = equivalent(small, task, include_empty=False)
    print(
        f"final extraction: {raw.n_states} states -> {small.n_states} after minimisation; {verdict}"
    )
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    a, b, c = fig.subplots(1, 3, width_ratios=[1.6, 1.0, 1.0])
    plots.automaton(
        raw, ax=a, title=f"extracted at epoch {tl.rows[-1].epoch}: {raw.n_states} states"
    )
    plots.automaton(small, ax=b, title=f"minimised: {small.n_states} states (Fig. 8)")
    plots.automaton(task, ax=c, title="the parity automaton (Fig. 2)")
    for ax in (a, b):
        ax.get_legend().remove()
    save(fig, args.out_dir, "fig08_minimal_automaton.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m, name in ((raw, "final_raw.svg"), (small, "final_minimal.svg")):
            print(render(m, args.out_dir / name))


if __name__ == "__main__":
    main()
