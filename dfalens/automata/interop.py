"""Machines to and from the objects of two other automata libraries: AALpy and automata-lib.

Both are optional (``pip install dfalens[interop]``); each function imports its library when called and
says how to install it when it is missing. Conversions keep the language: a machine with outputs in
{0, 1} becomes a DFA (1 = accepting), any other output set an AALpy Moore machine. Undefined transitions
stay undefined where the other library allows partial machines (automata-lib) and go to an explicit
non-accepting sink where it does not (AALpy).
"""

from __future__ import annotations

import importlib
from collections.abc import Hashable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from dfalens.automata.machine import UNDEFINED, Machine
from dfalens.automata.ops import complete
from dfalens.errors import ConfigError, MachineError

__all__ = ["from_aalpy", "from_automata_lib", "to_aalpy", "to_automata_lib"]

_PIP = {"aalpy": "aalpy", "automata": "automata-lib"}


def _library(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ConfigError(
            f"this needs the {_PIP[name.split('.')[0]]} package; install it with "
            f"`pip install {_PIP[name.split('.')[0]]}` (or `pip install dfalens[interop]`)"
        ) from None


def _is_dfa(machine: Machine) -> bool:
    return bool(np.isin(machine.output, (0, 1)).all())


def to_aalpy(machine: Machine) -> Any:
    """An AALpy ``Dfa`` (outputs in {0, 1}) or ``MooreMachine`` (other outputs) of the same language.

    State ids are the state names when the machine has distinct ones, else ``q0``, ``q1``, ...; a partial
    machine is completed with a sink first (AALpy machines are complete).
    """
    aut = _library("aalpy.automata")
    m = complete(machine)
    names = _state_ids(m)
    if _is_dfa(m):
        states = [aut.DfaState(names[q], bool(m.output[q])) for q in range(m.n_states)]
        cls = aut.Dfa
    else:
        states = [aut.MooreState(names[q], int(m.output[q])) for q in range(m.n_states)]
        cls = aut.MooreMachine
    for q, state in enumerate(states):
        for a, symbol in enumerate(m.alphabet):
            state.transitions[symbol] = states[int(m.delta[q, a])]
    return cls(states[m.start], states)


def _state_ids(m: Machine) -> list[str]:
    names = m.state_names
    if names is not None and len(set(names)) == len(names) and all(names):
        return list(names)
    return [f"q{q}" for q in range(m.n_states)]


def from_aalpy(automaton: Any, alphabet: Sequence[Hashable] | None = None) -> Machine:
    """A :class:`Machine` from an AALpy ``Dfa`` or ``MooreMachine``.

    Parameters
    ----------
    automaton : aalpy Dfa or MooreMachine
    alphabet : sequence, optional
        The input symbols in column order; default: the symbols found on the transitions, sorted by
        their text.

    Raises
    ------
    MachineError
        For another kind of automaton, or Moore outputs that are not non-negative integers.
    """
    states = list(getattr(automaton, "states", ()))
    if not states or not hasattr(automaton, "initial_state"):
        raise MachineError(
            "from_aalpy needs an AALpy Dfa or MooreMachine (with states and initial_state)"
        )
    symbols = (
        list(alphabet)
        if alphabet is not None
        else sorted({s for state in states for s in state.transitions}, key=str)
    )
    index = {id(s): i for i, s in enumerate(states)}
    delta = np.full((len(states), max(len(symbols), 1)), UNDEFINED, dtype=np.int64)
    output = np.zeros(len(states), dtype=np.int64)
    for i, state in enumerate(states):
        for a, symbol in enumerate(symbols):
            target = state.transitions.get(symbol)
            if target is not None:
                delta[i, a] = index[id(target)]
        if hasattr(state, "is_accepting"):
            output[i] = int(bool(state.is_accepting))
        else:
            value = getattr(state, "output", None)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise MachineError(
                    f"state {state.state_id!r} has output {value!r}; dfalens machines need non-negative "
                    "integer outputs (map the outputs to 0, 1, ... first)"
                )
            output[i] = int(value)
    names = [str(s.state_id) for s in states]
    return Machine(
        delta, output, index[id(automaton.initial_state)], tuple(str(s) for s in symbols), names
    )


def to_automata_lib(machine: Machine) -> Any:
    """An automata-lib ``DFA`` (partial when the machine is) of a machine with outputs in {0, 1}."""
    if not _is_dfa(machine):
        raise MachineError(
            "automata-lib DFAs accept or reject: this machine has outputs other than 0 and 1"
        )
    dfa_module = _library("automata.fa.dfa")
    names = _state_ids(machine)
    transitions = {
        names[q]: {
            symbol: names[int(machine.delta[q, a])]
            for a, symbol in enumerate(machine.alphabet)
            if machine.delta[q, a] != UNDEFINED
        }
        for q in range(machine.n_states)
    }
    return dfa_module.DFA(
        states=set(names),
        input_symbols=set(machine.alphabet),
        transitions=transitions,
        initial_state=names[machine.start],
        final_states={names[q] for q in np.flatnonzero(machine.output == 1)},
        allow_partial=not machine.is_complete,
    )


def from_automata_lib(dfa: Any, alphabet: Sequence[str] | None = None) -> Machine:
    """A :class:`Machine` from an automata-lib ``DFA`` (missing transitions become undefined).

    Parameters
    ----------
    dfa : automata.fa.dfa.DFA
    alphabet : sequence of str, optional
        Column order of the symbols; default: ``dfa.input_symbols`` sorted.
    """
    if not all(hasattr(dfa, k) for k in ("states", "transitions", "initial_state", "final_states")):
        raise MachineError("from_automata_lib needs an automata-lib DFA")
    symbols = list(alphabet) if alphabet is not None else sorted(dfa.input_symbols, key=str)
    states = sorted(dfa.states, key=str)
    index = {s: i for i, s in enumerate(states)}
    delta = np.full((len(states), max(len(symbols), 1)), UNDEFINED, dtype=np.int64)
    for s, row in dfa.transitions.items():
        for a, symbol in enumerate(symbols):
            if symbol in row:
                delta[index[s], a] = index[row[symbol]]
    output = np.array([int(s in dfa.final_states) for s in states], dtype=np.int64)
    return Machine(
        delta,
        output,
        index[dfa.initial_state],
        tuple(str(s) for s in symbols),
        [str(s) for s in states],
    )
