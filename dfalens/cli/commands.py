"""The list of ``dfalens`` subcommands; each lives in its own module of this package.

A command returns an int to choose its exit code (0 ok, 2 user error, 3 not equivalent); raising
:class:`dfalens.DfalensError` gives a one-line error and exit 2. Command modules import torch and the
heavy parts of dfalens inside their callbacks, so ``dfalens --help`` and ``dfalens tasks`` stay fast.
"""

from __future__ import annotations

import click

from dfalens.cli.demo import demo
from dfalens.cli.extract import extract
from dfalens.cli.report import report
from dfalens.cli.sweep import sweep
from dfalens.cli.tasks import tasks
from dfalens.cli.theory import theory
from dfalens.cli.timeline import timeline
from dfalens.cli.train import train

COMMANDS: list[click.Command] = [tasks, train, extract, timeline, report, sweep, theory, demo]
