"""Text views of a machine: Graphviz DOT and a plain transition table.

Nothing here constructs a machine, so the :class:`~dfalens.automata.Machine` type can use these views
(``render``, Jupyter display) without an import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from dfalens.automata.machine import Machine

__all__ = ["dead_states", "state_labels", "to_dot", "to_table"]


def _quote(text: str) -> str:
    """A DOT double-quoted string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "")
    return f'"{escaped}"'


def sink_mask(delta: np.ndarray, output: np.ndarray, start: int) -> np.ndarray:
    """Boolean mask of sink states: output 0, every transition a self-loop, not the start state.

    The one definition of a dead state in dfalens (:func:`dfalens.automata.dead_states` and the trimmed
    counts use it). In a minimal complete machine at most one state qualifies.
    """
    n = delta.shape[0]
    mask = (output == 0) & np.all(delta == np.arange(n)[:, None], axis=1)
    mask[start] = False
    return mask


def dead_states(machine: Machine) -> np.ndarray:
    """Boolean mask of sink states: output 0, every transition a self-loop, not the start state."""
    return sink_mask(machine.delta, machine.output, machine.start)


def state_labels(machine: Machine) -> list[str]:
    if machine.state_names is None:
        return [f"q{i}" for i in range(machine.n_states)]
    return [name if name else "ε" for name in machine.state_names]


def to_dot(
    machine: Machine,
    name: str = "machine",
    rankdir: str = "LR",
    hide_sink: bool = False,
    show_outputs: bool | None = None,
) -> str:
    """Graphviz DOT text of the machine.

    Parameters
    ----------
    machine : Machine
    name : str, default "machine"
        The graph name.
    rankdir : str, default "LR"
        Graphviz layout direction.
    hide_sink : bool, default False
        Leave out sink states (output 0, only self-loops) and the edges into them.
    show_outputs : bool, optional
        Write each state's output into its label (``"q0 / 1"``). By default only for machines whose
        outputs go beyond {0, 1}; a DFA marks output 1 with a double circle either way.

    Returns
    -------
    str
        Every identifier and label is quoted; the start state gets an arrow from an invisible node;
        parallel edges share one label (``"0,1"``); undefined transitions are omitted.
    """
    n = machine.n_states
    labels = state_labels(machine)
    dfa = int(machine.output.max()) <= 1
    if show_outputs is None:
        show_outputs = not dfa
    hidden = dead_states(machine) if hide_sink else np.zeros(n, dtype=bool)
    lines = [
        f"digraph {_quote(name)} {{",
        f"  rankdir={_quote(rankdir)};",
        '  node [shape="circle"];',
        '  "__start__" [shape="point", style="invis", label=""];',
    ]
    for q in np.flatnonzero(~hidden).tolist():
        out = int(machine.output[q])
        label = f"{labels[q]} / {out}" if show_outputs else labels[q]
        shape = ', shape="doublecircle"' if dfa and out == 1 else ""
        lines.append(f"  {_quote(f'q{q}')} [label={_quote(label)}{shape}];")
    lines.append(f'  "__start__" -> {_quote(f"q{machine.start}")};')
    src, sym = np.nonzero(machine.delta >= 0)
    dst = machine.delta[src, sym]
    keep = ~hidden[src] & ~hidden[dst]
    src, sym, dst = src[keep], sym[keep], dst[keep]
    order = np.lexsort((sym, dst, src))
    edges: dict[tuple[int, int], list[str]] = {}
    for s, d, a in zip(src[order].tolist(), dst[order].tolist(), sym[order].tolist(), strict=True):
        edges.setdefault((s, d), []).append(machine.alphabet[a])
    for (s, d), syms in edges.items():
        lines.append(f"  {_quote(f'q{s}')} -> {_quote(f'q{d}')} [label={_quote(','.join(syms))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_table(machine: Machine, max_rows: int = 40) -> str:
    """A plain-text transition table (``-`` for undefined), cut after ``max_rows`` states."""
    labels = state_labels(machine)
    header = ["", "state", "out", *machine.alphabet]
    rows = []
    for q in range(min(machine.n_states, max_rows)):
        targets = [labels[t] if t >= 0 else "-" for t in machine.delta[q].tolist()]
        mark = "->" if q == machine.start else ""
        rows.append([mark, labels[q], str(int(machine.output[q])), *targets])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [repr(machine)]
    for r in [header, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if machine.n_states > max_rows:
        lines.append(f"... {machine.n_states - max_rows} more states")
    return "\n".join(lines)
