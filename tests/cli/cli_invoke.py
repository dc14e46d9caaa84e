"""Run a ``dfalens`` command in-process, as the console script does, and capture what it prints."""

from __future__ import annotations

import pytest

from dfalens.cli.app import _run, cli
from dfalens.cli.commands import COMMANDS


def invoke(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``dfalens ARGS`` (errors handled as the CLI does)."""
    for command in COMMANDS:
        cli.add_command(command)
    code = _run(cli, args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
