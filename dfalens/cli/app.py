"""The click group, the shared error handling, and the console-script entry points."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Any

import click

from dfalens import __version__
from dfalens.cli._signals import Terminated, handle_sigterm, kept, stop_workers
from dfalens.cli.commands import LazyGroup, load
from dfalens.errors import DfalensError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USER = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class UserError(click.ClickException):
    """A one-line user error; exits 2."""

    exit_code = EXIT_USER

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _run(
    cmd: click.Command, argv: list[str] | None, prog_name: str = "dfalens", final: bool = False
) -> int:
    """Run a click command with dfalens' error contract.

    User errors print one line and exit 2; SIGINT exits 130 and SIGTERM 143 with a line saying what was
    kept; a closed or full standard output exits 2 with one line, a pipe closed by its reader (``| head``)
    ends quietly.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    if sys.stdout is None:
        click.echo("error: standard output is closed; redirect it (e.g. > out.txt)", err=True)
        return EXIT_USER
    try:
        with handle_sigterm():
            try:
                with cmd.make_context(prog_name, args, help_option_names=["-h", "--help"]) as ctx:
                    rv = cmd.invoke(ctx)
            except BaseException:
                stop_workers_on_interrupt(sys.exc_info()[1], final)
                raise
    except click.exceptions.Exit as exc:
        return _flushed(int(exc.exit_code))
    except (KeyboardInterrupt, click.exceptions.Abort) as exc:
        terminated = isinstance(exc, Terminated) or isinstance(exc.__context__, Terminated)
        what = "terminated" if terminated else "interrupted"
        hint = kept()
        click.echo(f"{what}" + (f"; {hint}" if hint else ""), err=True)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
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
    except OSError as exc:
        if debug:
            raise
        if _from_stdout(exc):
            return _stdout_error(exc)
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"error: {where}{exc.strerror or exc}", err=True)
        return EXIT_USER
    except Exception as exc:  # an internal error: a bug of ours
        if debug:
            raise
        click.echo(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback "
            "and please report it)",
            err=True,
        )
        return EXIT_INTERNAL
    return _flushed(int(rv) if isinstance(rv, int) else EXIT_OK)


def stop_workers_on_interrupt(exc: BaseException | None, final: bool = False) -> None:
    """After SIGINT or SIGTERM, shut worker processes down before the message is printed.

    With ``final`` (the process exits next) a second Ctrl-C is ignored from here on, so it cannot
    interrupt the cleanup or the interpreter's shutdown with a traceback.
    """
    if not isinstance(exc, KeyboardInterrupt | click.exceptions.Abort):
        return
    if final and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(KeyboardInterrupt):
        stop_workers()


def _flushed(code: int) -> int:
    """``code`` once standard output is flushed (exit 2 with one line when it cannot be)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return _quiet_pipe()
    except OSError as exc:
        return _stdout_error(exc)
    return code


def _from_stdout(exc: OSError) -> bool:
    """True when ``exc`` was raised writing to standard output (through ``click.echo``)."""
    if isinstance(exc, BrokenPipeError):
        return True
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "echo" and "click" in code.co_filename:
            stream = tb.tb_frame.f_locals.get("file")
            name = getattr(stream, "name", None)
            return stream is not None and stream is not sys.stderr and name != "<stderr>"
        tb = tb.tb_next
    return False


def _silence_stdout() -> None:
    """Point standard output at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until the interpreter exits


def _quiet_pipe() -> int:
    """The reader of our output left (``| head``): stop without a message."""
    _silence_stdout()
    return EXIT_OK


def _stdout_error(exc: OSError) -> int:
    if isinstance(exc, BrokenPipeError):
        return _quiet_pipe()
    _silence_stdout()
    click.echo(
        f"error: cannot write to standard output ({exc.strerror or exc}); redirect it to a "
        "writable file",
        err=True,
    )
    return EXIT_USER


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="dfalens")
def cli() -> None:
    """dfalens: extract finite automata from recurrent networks and time their emergence.

    Add --debug anywhere to see a traceback instead of a one-line error.
    """


def main(argv: list[str] | None = None) -> None:
    """Console script ``dfalens``."""
    sys.exit(_run(cli, argv, final=True))


def extract_dfa_main(argv: list[str] | None = None) -> None:
    """Console script ``extract-dfa`` (the same as ``dfalens extract``)."""

    sys.exit(_run(load("extract"), argv, "extract-dfa", final=True))
