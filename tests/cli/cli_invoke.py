"""Run a ``dfalens`` command in-process, as the console script does, and capture what it prints."""

from __future__ import annotations

import pytest

from dfalens.cli.app import _run, cli


def invoke(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``dfalens ARGS`` (errors handled as the CLI does)."""
    code = _run(cli, args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
