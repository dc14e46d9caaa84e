"""Ground-truth machines: parity, modular counting, the Tomita grammars, random tasks, and a registry.

The Tomita grammars follow the definitions of Weiss et al. (ICML 2018) as copied into AALpy's
``TomitaSUL``; every table below is the minimal complete DFA, numbered breadth-first from the start.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfalens._budget import check_memory
from dfalens.automata.io import from_json
from dfalens.automata.machine import UNDEFINED, Machine
from dfalens.automata.minimization import minimize
from dfalens.errors import ConfigError, MachineError, TaskError

__all__ = [
    "parity",
    "mod_count",
    "tomita",
    "random_machine",
    "from_transitions",
    "get_task_machine",
    "list_tasks",
    "TaskInfo",
    "TOMITA_DESCRIPTIONS",
]

BINARY = ("0", "1")
_STATE_BYTES = 160
"""Bytes per state of a machine while it is built and minimised (transitions, outputs, partitions)."""

# (delta, output) of the minimal complete Tomita DFAs; state 0 is the start.
_TOMITA: dict[int, tuple[list[list[int]], list[int]]] = {
    1: ([[1, 0], [1, 1]], [1, 0]),
    2: ([[1, 2], [1, 1], [0, 1]], [1, 0, 0]),
    3: ([[0, 1], [2, 0], [3, 4], [2, 3], [4, 4]], [1, 1, 0, 1, 0]),
    4: ([[1, 0], [2, 0], [3, 0], [3, 3]], [1, 1, 1, 0]),
    5: ([[1, 2], [0, 3], [3, 0], [2, 1]], [1, 0, 0, 0]),
    6: ([[1, 2], [2, 0], [0, 1]], [1, 0, 0]),
    7: ([[0, 1], [2, 1], [2, 3], [4, 3], [4, 4]], [1, 1, 1, 1, 0]),
}

TOMITA_DESCRIPTIONS: dict[int, str] = {
    1: "1* (no 0 at all)",
    2: "(10)*",
    3: "no odd-length block of 1s later followed by an odd-length block of 0s",
    4: "no 000 substring",
    5: "even number of 0s and even number of 1s",
    6: "(#0 - #1) = 0 mod 3",
    7: "0*1*0*1* (at most one occurrence of 10)",
}


def parity() -> Machine:
    """Streaming parity: the output is the number of 1s read so far, mod 2 (2 states).

    Examples
    --------
    >>> parity().run(["", "1", "11", "0110"]).tolist()
    [0, 1, 0, 0]
    """
    return mod_count(2)


def mod_count(k: int) -> Machine:
    """Count the 1s modulo ``k``: a Moore machine whose output is that count (outputs 0..k-1).

    Parameters
    ----------
    k : int
        The modulus, at least 2. ``mod_count(2)`` is :func:`parity`.

    Returns
    -------
    Machine
        ``k`` states over ``("0", "1")``; state ``i`` means "i ones mod k" and outputs ``i``.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
        raise TaskError(f"mod_count needs an integer modulus >= 2, got {k!r}")
    check_memory(
        _STATE_BYTES * int(k), f"task mod{int(k)} ({int(k):,} states)", "choose a smaller K"
    )
    states = np.arange(int(k))
    delta = np.stack([states, (states + 1) % k], axis=1)
    return Machine(delta, states, 0, BINARY)


def tomita(n: int) -> Machine:
    """The minimal complete DFA of Tomita grammar ``n`` (1..7), over ``("0", "1")``.

    Sizes are 2, 3, 5, 4, 4, 3, 5 states; :data:`TOMITA_DESCRIPTIONS` says what each accepts.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or int(n) not in _TOMITA:
        raise TaskError(f"Tomita grammars are numbered 1..7, got {n!r}")
    delta, output = _TOMITA[int(n)]
    return Machine(delta, output, 0, BINARY)


def random_machine(
    max_states: int = 7,
    p_new: float = 0.75,
    n_symbols: int = 2,
    seed: int | np.random.Generator | None = None,
    n_outputs: int = 2,
    max_tries: int = 1000,
) -> Machine:
    """A random task machine, drawn as in van Rossem & Saxe (2025, App. D.5).

    Starting from the initial state, visit states in the order they were created and, for each symbol in
    index order, send the transition to a new state with probability ``p_new`` (while fewer than
    ``max_states`` exist) or else to a uniformly chosen existing state. Outputs are drawn uniformly from
    ``0..n_outputs-1`` per state.

    Parameters
    ----------
    max_states : int, default 7
        At least 2.
    p_new : float, default 0.75
        In (0, 1].
    n_symbols : int, default 2
        Symbols are named ``"0"``, ``"1"``, ... .
    seed : int or numpy.random.Generator, optional
    n_outputs : int, default 2
    max_tries : int, default 1000
        See Notes.

    Returns
    -------
    Machine
        The machine as generated (every state reachable, not minimised), whose minimal machine has more
        than one state.

    Notes
    -----
    A draw whose language is trivial (its minimal machine has one state, e.g. all outputs equal) is
    thrown away and the whole machine (transitions and outputs) drawn again from the same generator, up
    to ``max_tries`` times; so a seed always gives the same machine.
    """
    for name, value in (
        ("max_states", max_states),
        ("n_symbols", n_symbols),
        ("n_outputs", n_outputs),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
    if not isinstance(p_new, int | float | np.floating) or isinstance(p_new, bool):
        raise ConfigError(f"p_new must be a number in (0, 1], got {p_new!r}")
    check_memory(
        _STATE_BYTES * int(max_states) * max(int(n_symbols), 1),
        f"a random machine of {int(max_states):,} states x {int(n_symbols):,} symbols",
        "choose fewer states or symbols",
    )
    if max_states < 2:
        raise ConfigError(f"max_states must be >= 2 for a non-trivial machine, got {max_states}")
    if not 0.0 < p_new <= 1.0:
        raise ConfigError(f"p_new must be in (0, 1], got {p_new}")
    if n_symbols < 1 or n_outputs < 2:
        raise ConfigError(
            f"need n_symbols >= 1 and n_outputs >= 2, got {n_symbols} and {n_outputs}"
        )
    rng = np.random.default_rng(seed)
    alphabet = tuple(str(i) for i in range(n_symbols))
    for _ in range(max_tries):
        delta = np.full((max_states, n_symbols), UNDEFINED, dtype=np.int64)
        n = 1
        q = 0
        while q < n:  # states in creation order = breadth-first order
            for a in range(n_symbols):
                if n < max_states and rng.random() < p_new:
                    delta[q, a] = n
                    n += 1
                else:
                    delta[q, a] = rng.integers(n)
            q += 1
        output = rng.integers(n_outputs, size=n)
        m = Machine(delta[:n], output, 0, alphabet)
        if minimize(m).n_states > 1:
            return m
    raise ConfigError(
        f"no non-trivial machine in {max_tries} draws; raise p_new or max_states, or max_tries"
    )


def from_transitions(
    transitions: Mapping[Hashable, Mapping[str, Hashable]],
    outputs: Mapping[Hashable, int],
    start: Hashable | None = None,
    alphabet: Sequence[str] | None = None,
) -> Machine:
    """Build a machine from named states.

    Parameters
    ----------
    transitions : mapping state -> mapping symbol -> state
        Missing entries are undefined transitions.
    outputs : mapping state -> int
        The output of every state (a state that only appears as a target still needs one).
    start : state, optional
        Defaults to the first key of ``transitions``.
    alphabet : sequence of str, optional
        Defaults to the symbols used, sorted.

    Returns
    -------
    Machine
        States numbered in order of first appearance (``transitions`` keys, then targets, then
        ``outputs`` keys), named ``str(state)``.

    Examples
    --------
    >>> m = from_transitions({"even": {"0": "even", "1": "odd"}, "odd": {"0": "odd", "1": "even"}},
    ...                      {"even": 0, "odd": 1})
    >>> m.state_names, m.delta.tolist()
    (('even', 'odd'), [[0, 1], [1, 0]])
    """
    order: dict[Hashable, int] = {}

    def index(q: Hashable) -> int:
        return order.setdefault(q, len(order))

    for q in transitions:
        index(q)
    for row in transitions.values():
        for target in row.values():
            index(target)
    for q in outputs:
        index(q)
    if not order:
        raise MachineError("from_transitions got no states; give at least one transition or output")
    if alphabet is None:
        alphabet = sorted({str(a) for row in transitions.values() for a in row})
        if not alphabet:
            raise MachineError("no symbol appears in transitions; pass alphabet=...")
    alphabet = tuple(str(a) for a in alphabet)
    col = {a: i for i, a in enumerate(alphabet)}
    delta = np.full((len(order), len(alphabet)), UNDEFINED, dtype=np.int64)
    for q, row in transitions.items():
        for a, target in row.items():
            if str(a) not in col:
                raise MachineError(
                    f"transition {q!r} --{a}--> {target!r} uses symbol {a!r}, not in alphabet {alphabet}"
                )
            delta[order[q], col[str(a)]] = order[target]
    missing = [q for q in order if q not in outputs]
    if missing:
        raise MachineError(f"states {missing[:5]!r} have no output; give every state an output")
    out = []
    for q in order:
        v = outputs[q]
        if isinstance(v, bool | np.bool_):
            v = int(v)
        if not isinstance(v, int | np.integer):
            raise MachineError(f"output of state {q!r} is {v!r}; outputs must be integers")
        out.append(int(v))
    if start is None:
        start = next(iter(order))
    if start not in order:
        raise MachineError(f"start state {start!r} is not among the states")
    return Machine(delta, out, order[start], alphabet, [str(q) for q in order])


@dataclass(frozen=True)
class TaskInfo:
    """One entry of :func:`list_tasks`.

    Attributes
    ----------
    name : str
        The name, or the pattern of names, that :func:`get_task_machine` accepts.
    example : str
        A concrete name to try.
    description : str
    """

    name: str
    example: str
    description: str


def list_tasks() -> tuple[TaskInfo, ...]:
    """The task names :func:`get_task_machine` understands (fixed names and patterns)."""
    tasks = [
        TaskInfo("parity", "parity", "number of 1s mod 2 (streaming parity)"),
        TaskInfo("modK", "mod3", "number of 1s mod K, output 0..K-1 (K >= 2), K states"),
    ]
    tasks += [
        TaskInfo(f"tomita{n}", f"tomita{n}", f"Tomita {n}: {desc}")
        for n, desc in TOMITA_DESCRIPTIONS.items()
    ]
    tasks += [
        TaskInfo(
            "random:SEED",
            "random:0",
            "random task machine as in van Rossem & Saxe 2025 (<= 7 states, binary outputs)",
        ),
        TaskInfo("PATH.json", "machine.json", "a machine saved with to_json (dfalens.machine v1)"),
    ]
    return tuple(tasks)


_MOD = re.compile(r"mod(\d+)")
_TOM = re.compile(r"tomita(\d+)")
_RAND = re.compile(r"random:(\d+)")


def get_task_machine(name: str | Path) -> Machine:
    """The ground-truth machine of a task name.

    Parameters
    ----------
    name : str or Path
        ``parity``, ``modK`` (e.g. ``mod3``), ``tomitaN`` (N = 1..7), ``random:SEED``, or the path of a
        machine JSON file (see :func:`dfalens.automata.from_json`). Names are case-insensitive.

    Returns
    -------
    Machine

    Raises
    ------
    TaskError
        For an unknown name (the message lists the valid ones).
    MachineError
        For a JSON file that is not a valid machine.
    """
    if isinstance(name, Path):
        return from_json(name)
    text = str(name).strip()
    key = text.lower()
    if key == "parity":
        return parity()
    if m := _MOD.fullmatch(key):
        return mod_count(int(m.group(1)))
    if m := _TOM.fullmatch(key):
        return tomita(int(m.group(1)))
    if m := _RAND.fullmatch(key):
        return random_machine(seed=int(m.group(1)))
    if key.endswith(".json") or "/" in text or Path(text).is_file():
        if not Path(text).is_file():
            raise TaskError(
                f"task file {text!r} does not exist; give the path of a machine JSON file"
            )
        return from_json(Path(text))
    valid = ", ".join(t.name for t in _pattern_names())
    raise TaskError(f"unknown task {text!r}; valid tasks: {valid} (see `dfalens tasks`)")


def _pattern_names() -> Iterable[TaskInfo]:
    """The entries of :func:`list_tasks`, with the seven Tomita names folded into ``tomitaN``."""
    seen_tomita = False
    for t in list_tasks():
        if t.name.startswith("tomita"):
            if seen_tomita:
                continue
            seen_tomita = True
            yield TaskInfo("tomitaN (N=1..7)", t.example, t.description)
        else:
            yield t
