"""The list of ``dfalens`` subcommands; each lives in its own module of this package.

A command returns an int to choose its exit code (0 ok, 2 user error, 3 not equivalent); raising
:class:`dfalens.DfalensError` gives a one-line error and exit 2.
"""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []

from dfalens.cli.tasks import tasks  # noqa: E402

COMMANDS.append(tasks)

from dfalens.cli.extract import extract  # noqa: E402

COMMANDS.append(extract)

from dfalens.cli.train import train  # noqa: E402

COMMANDS.append(train)

from dfalens.cli.timeline import timeline  # noqa: E402

COMMANDS.append(timeline)

from dfalens.cli.demo import demo  # noqa: E402

COMMANDS.append(demo)

from dfalens.cli.sweep import sweep  # noqa: E402

COMMANDS.append(sweep)

from dfalens.cli.theory import theory  # noqa: E402

COMMANDS.append(theory)
