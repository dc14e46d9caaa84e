"""``dfalens tasks``: list the ground-truth task names, or show one task's machine."""

from __future__ import annotations

import click

from dfalens.automata import (
    get_task_machine,
    list_tasks,
    minimize,
    n_states_trimmed,
    to_json,
    to_table,
)


@click.command("tasks")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="With NAME: print the machine as JSON.")
def tasks(name: str | None, as_json: bool) -> int:
    """List the task names that --task accepts, or show the machine of task NAME.

    NAME is one of the listed names (parity, mod3, tomita3, random:0) or a machine JSON file.
    """
    if name is None:
        rows = [("NAME", "STATES", "DESCRIPTION")]
        for t in list_tasks():
            fixed = t.name == t.example
            states = str(minimize(get_task_machine(t.example)).n_states) if fixed else "-"
            rows.append((t.name, states, t.description))
        width = [max(len(r[i]) for r in rows) for i in range(2)]
        for r in rows:
            click.echo(f"{r[0]:<{width[0]}}  {r[1]:>{width[1]}}  {r[2]}")
        click.echo("\nSTATES: minimal complete DFA size. Show one task with `dfalens tasks NAME`.")
        return 0
    machine = get_task_machine(name)
    if as_json:
        click.echo(to_json(machine, indent=2))
        return 0
    click.echo(to_table(machine))
    click.echo(
        f"minimal: {minimize(machine).n_states} states complete, "
        f"{n_states_trimmed(machine)} without the dead state"
    )
    return 0
