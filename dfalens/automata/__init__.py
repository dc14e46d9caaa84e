"""Finite automata on numpy: the :class:`Machine` type, its algorithms, ground truths, I/O and drawing.

No torch here, and no Graphviz package is imported until something is drawn::

    from dfalens import automata as fa
    m = fa.tomita(3)
    fa.run(m, ["", "10", "1101"])                 # outputs, vectorised over words
    fa.minimize(m).n_states, fa.n_states_trimmed(m)
    v = fa.equivalent(m, fa.tomita(4))             # Verdict with the shortest counterexample
    v.equal, v.word_str, v.output_a, v.output_b
    fa.render(m, "tomita3.svg")                   # or .png/.pdf/.dot
"""

from __future__ import annotations

from dfalens.automata.dot import dead_states, to_dot, to_table
from dfalens.automata.equivalence import Verdict, consistent, equivalent
from dfalens.automata.interop import from_aalpy, from_automata_lib, to_aalpy, to_automata_lib
from dfalens.automata.io import (
    from_dict,
    from_json,
    to_dict,
    to_json,
    to_networkx,
)
from dfalens.automata.library import (
    TaskInfo,
    from_transitions,
    get_task_machine,
    list_tasks,
    mod_count,
    parity,
    random_machine,
    tomita,
)
from dfalens.automata.machine import UNDEFINED, Machine
from dfalens.automata.minimization import minimal_state_map, minimize, n_states_trimmed
from dfalens.automata.ops import complete, final_states, reachable, run, trace, trim
from dfalens.automata.rendering import RenderWarning, available_renderer, mimebundle, render

__all__ = [
    "Machine",
    "UNDEFINED",
    "run",
    "final_states",
    "trace",
    "complete",
    "reachable",
    "trim",
    "minimize",
    "minimal_state_map",
    "n_states_trimmed",
    "equivalent",
    "Verdict",
    "consistent",
    "parity",
    "mod_count",
    "tomita",
    "random_machine",
    "from_transitions",
    "get_task_machine",
    "list_tasks",
    "TaskInfo",
    "to_json",
    "from_json",
    "to_dict",
    "from_dict",
    "to_dot",
    "to_networkx",
    "to_table",
    "dead_states",
    "render",
    "mimebundle",
    "available_renderer",
    "RenderWarning",
    "to_aalpy",
    "from_aalpy",
    "to_automata_lib",
    "from_automata_lib",
]
