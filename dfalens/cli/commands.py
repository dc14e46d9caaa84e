"""The ``dfalens`` subcommands, one module each, loaded only when they run.

A command returns an int to choose its exit code (0 ok, 2 user error, 3 not equivalent, 4 not
reproduced); raising :class:`dfalens.DfalensError` gives a one-line error and exit 2. Each command module
imports what it needs at its top; the group imports a command's module only when that command runs, so
``dfalens --help`` and ``dfalens tasks`` do not pay for torch and the plotting stack.
"""

from __future__ import annotations

import importlib

import click

__all__ = ["COMMANDS", "LazyGroup", "load"]

COMMANDS: dict[str, str] = {
    "tasks": "List the task names that --task accepts, or show the machine of one.",
    "train": "Train a network on a task; write run.json, metrics.jsonl and checkpoints.",
    "extract": "Extract the minimal automaton of the recurrent network in a checkpoint.",
    "timeline": "Extract the automaton at every checkpoint of a run; find the merger epoch.",
    "report": "Write an interactive report of a run: the automaton at every checkpoint.",
    "sweep": "Train many networks: the phase diagram, or a grid over settings.",
    "theory": "Predict which pairs of hidden states merge, from the first part of a run.",
    "demo": "Train a parity RNN on the CPU, then show when it became the automaton.",
}
"""Each command's name (also its module ``dfalens.cli.NAME`` and the function in it) and the line that
``dfalens --help`` shows for it."""


def load(name: str) -> click.Command:
    """The command ``name``, importing its module now."""
    return getattr(importlib.import_module(f"dfalens.cli.{name}"), name)


class LazyGroup(click.Group):
    """A click group whose commands are imported when they are invoked (or asked for their help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl(list(COMMANDS.items()))
