"""The CLI shell's error contract: one line and exit 2 for user errors, exit 1 for internal errors."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from dfalens.cli import app
from dfalens.cli.commands import COMMANDS, load
from dfalens.errors import TaskError


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        app.main(argv)
    return int(info.value.code)


def test_unknown_command_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(["no-such-command"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    assert "Traceback" not in err


def test_bad_option_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(["tasks", "--no-such-option"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


def test_version_and_help_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(["--version"]) == 0
    assert "0.1.0" in capsys.readouterr().out
    assert _exit_code(["--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_commands_load_when_they_run_and_help_imports_no_torch() -> None:
    for name in COMMANDS:
        command = load(name)
        assert isinstance(command, click.Command) and command.name == name and command.help
    script = (
        "import sys\n"
        "from dfalens.cli.app import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules\n"
        "print('ok', ' '.join(sorted(n for n in sys.modules if n.startswith('dfalens.cli.'))))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1].split() == [
        "ok",
        "dfalens.cli._signals",
        "dfalens.cli.app",
        "dfalens.cli.commands",
    ]


def _group_with(callback: object) -> click.Group:
    group = click.Group()
    group.add_command(click.Command("boom", callback=callback))
    return group


def test_dfalens_error_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    def boom() -> None:
        raise TaskError("unknown task 'x'; run `dfalens tasks` to list them")

    assert app._run(_group_with(boom), ["boom"]) == 2
    assert capsys.readouterr().err == "error: unknown task 'x'; run `dfalens tasks` to list them\n"


def test_internal_error_exit_1_and_debug_reraises(capsys: pytest.CaptureFixture[str]) -> None:
    def boom() -> None:
        raise RuntimeError("bug")

    assert app._run(_group_with(boom), ["boom"]) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: bug" in err and "Traceback" not in err
    with pytest.raises(RuntimeError):
        app._run(_group_with(boom), ["boom", "--debug"])


def test_integer_return_is_exit_code() -> None:
    assert app._run(_group_with(lambda: 3), ["boom"]) == 3
