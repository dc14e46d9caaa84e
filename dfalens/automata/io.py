"""Machine I/O: the versioned JSON schema and a networkx graph (DOT text and tables: :mod:`.dot`).

JSON schema, version 1 (``to_json`` writes it, ``from_json`` reads it)::

    {
      "format": "dfalens.machine",      # fixed
      "version": 1,                     # schema version; readers refuse versions they do not know
      "alphabet": ["0", "1"],           # symbol names, one per column of delta
      "start": 0,                       # index of the initial state
      "delta": [[0, 1], [1, 0]],        # delta[q][a] = next state, or -1 for undefined
      "output": [0, 1],                 # non-negative integer output per state (DFA: 1 = accept)
      "state_names": ["even", "odd"]    # optional: one string per state, or null
    }
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dfalens.automata.dot import state_labels
from dfalens.automata.machine import UNDEFINED, Machine
from dfalens.errors import MachineError

__all__ = [
    "FORMAT",
    "VERSION",
    "to_dict",
    "from_dict",
    "to_json",
    "from_json",
    "to_networkx",
]

FORMAT = "dfalens.machine"
VERSION = 1


def to_dict(machine: Machine) -> dict[str, Any]:
    """The machine as a JSON-ready dict in schema version 1 (see the module docstring)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "alphabet": list(machine.alphabet),
        "start": machine.start,
        "delta": machine.delta.tolist(),
        "output": machine.output.tolist(),
        "state_names": None if machine.state_names is None else list(machine.state_names),
    }


def to_json(machine: Machine, indent: int | None = None) -> str:
    """JSON text of the machine (schema version 1, see the module docstring).

    Parameters
    ----------
    machine : Machine
    indent : int, optional
        Passed to :func:`json.dumps`; None gives one line.
    """
    return json.dumps(to_dict(machine), indent=indent)


def _int_list(value: Any, what: str) -> list[int]:
    if not isinstance(value, list):
        raise MachineError(f"{what} must be a JSON list of integers, got {type(value).__name__}")
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int):
            raise MachineError(f"{what}[{i}] is {v!r}; it must be an integer")
    return value


def from_dict(data: Mapping[str, Any]) -> Machine:
    """Build a machine from a dict in schema version 1 (the inverse of :func:`to_dict`).

    Raises
    ------
    MachineError
        Naming the first problem: wrong format or version, a missing field, a value of the wrong type,
        a transition to a missing state.
    """
    if not isinstance(data, Mapping):
        raise MachineError(
            f"a machine must be a JSON object, got {type(data).__name__}; see dfalens.automata.io"
        )
    if data.get("format") != FORMAT:
        raise MachineError(
            f"not a dfalens machine: 'format' is {data.get('format')!r}, expected {FORMAT!r}"
        )
    version = data.get("version")
    if version != VERSION:
        raise MachineError(
            f"machine schema version {version!r} is not supported (this dfalens reads version "
            f"{VERSION}); re-export it with a matching dfalens"
        )
    for key in ("alphabet", "start", "delta", "output"):
        if key not in data:
            raise MachineError(
                f"machine JSON lacks the field {key!r}; see the schema in dfalens.automata.io"
            )
    alphabet = data["alphabet"]
    if not isinstance(alphabet, list) or not all(isinstance(a, str) for a in alphabet):
        raise MachineError("'alphabet' must be a list of strings (symbol names)")
    delta = data["delta"]
    if not isinstance(delta, list) or not delta:
        raise MachineError("'delta' must be a non-empty list of rows, one per state")
    rows = [_int_list(row, f"delta[{q}]") for q, row in enumerate(delta)]
    n = len(rows)
    for q, row in enumerate(rows):
        if len(row) != len(alphabet):
            raise MachineError(
                f"delta[{q}] has {len(row)} entries but the alphabet has {len(alphabet)} symbols"
            )
        for a, target in enumerate(row):
            if target != UNDEFINED and not 0 <= target < n:
                raise MachineError(
                    f"delta[{q}][{a}] = {target} points to a missing state (states are 0..{n - 1}, "
                    "-1 for undefined)"
                )
    output = _int_list(data["output"], "output")
    if len(output) != n:
        raise MachineError(f"'output' has {len(output)} entries for {n} states (one per delta row)")
    for q, v in enumerate(output):
        if v < 0:
            raise MachineError(f"output[{q}] is {v}; outputs must be non-negative integers")
    start = data["start"]
    if isinstance(start, bool) or not isinstance(start, int):
        raise MachineError(f"'start' is {start!r}; it must be an integer state index")
    names = data.get("state_names")
    if names is not None and (
        not isinstance(names, list) or not all(isinstance(s, str) for s in names)
    ):
        raise MachineError("'state_names' must be a list of strings or null")
    return Machine(
        np.array(rows, dtype=np.int64), np.array(output, dtype=np.int64), start, alphabet, names
    )


def from_json(source: str | Path) -> Machine:
    """Read a machine from JSON text or from a file path.

    Parameters
    ----------
    source : str or Path
        JSON text (a string starting with ``{``) or the path of a ``.json`` file.

    Raises
    ------
    MachineError
        For an unreadable file, text that is not JSON, or JSON that breaks the schema.
    """
    where = "machine JSON"
    if isinstance(source, Path) or not str(source).lstrip().startswith("{"):
        path = Path(source)
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise MachineError(f"machine file {where} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise MachineError(f"cannot read machine file {where}: {exc}") from None
    else:
        text = str(source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MachineError(
            f"{where} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "fix the file or re-export it with to_json"
        ) from None
    try:
        return from_dict(data)
    except MachineError as exc:
        if where == "machine JSON":
            raise
        raise MachineError(f"{where}: {exc}") from None


def to_networkx(machine: Machine) -> Any:
    """The machine as a :class:`networkx.MultiDiGraph`.

    Nodes are state indices with attributes ``output``, ``name`` and ``start`` (bool); each defined
    transition is an edge keyed by its symbol name, with attributes ``symbol`` (name) and
    ``symbol_index``. Graph attributes: ``alphabet``, ``start``.
    """
    import networkx as nx

    g = nx.MultiDiGraph(alphabet=machine.alphabet, start=machine.start)
    labels = state_labels(machine)
    g.add_nodes_from(
        (q, {"output": int(machine.output[q]), "name": labels[q], "start": q == machine.start})
        for q in range(machine.n_states)
    )
    src, sym = np.nonzero(machine.delta >= 0)
    dst = machine.delta[src, sym]
    g.add_edges_from(
        (s, d, machine.alphabet[a], {"symbol": machine.alphabet[a], "symbol_index": a})
        for s, d, a in zip(src.tolist(), dst.tolist(), sym.tolist(), strict=True)
    )
    return g
