"""The click group, the shared error handling, and the console-script entry points."""

from __future__ import annotations

import sys
from typing import Any

import click

from dfalens import __version__
from dfalens.cli import commands
from dfalens.cli.extract import extract
from dfalens.errors import DfalensError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USER = 2
EXIT_NOT_EQUIVALENT = 3
EXIT_NOT_REPRODUCED = 4  # extract-dfa: extracted, but the machine does not reproduce the network


class UserError(click.ClickException):
    """A one-line user error; exits 2."""

    exit_code = EXIT_USER

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _run(cmd: click.Command, argv: list[str] | None) -> int:
    """Run a click command with dfalens' error contract: one line + exit 2 for user errors."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    try:
        rv = cmd.main(args=args, prog_name=None, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_USER
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        if debug:
            raise
        # click's usage errors: keep them to one line
        msg = exc.format_message().strip().splitlines()[-1] if exc.format_message() else str(exc)
        click.echo(f"error: {msg}", err=True)
        return EXIT_USER
    except DfalensError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        return EXIT_USER
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as exc:  # an internal error: a bug of ours
        if debug:
            raise
        click.echo(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback "
            "and please report it)",
            err=True,
        )
        return EXIT_INTERNAL
    return int(rv) if isinstance(rv, int) else EXIT_OK


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="dfalens")
def cli() -> None:
    """dfalens: extract finite automata from recurrent networks and time their emergence.

    Add --debug anywhere to see a traceback instead of a one-line error.
    """


def _register() -> None:
    """Attach every subcommand (one module each) to the group."""

    for command in commands.COMMANDS:
        cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Console script ``dfalens``."""
    _register()
    sys.exit(_run(cli, argv))


def extract_dfa_main(argv: list[str] | None = None) -> None:
    """Console script ``extract-dfa`` (the same as ``dfalens extract``)."""

    sys.exit(_run(extract, argv))
