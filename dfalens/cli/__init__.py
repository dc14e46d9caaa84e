"""Command-line entry points ``dfalens`` and ``extract-dfa``.

Each command is a thin wrapper over one library call. User errors (:class:`dfalens.DfalensError`, bad
options) print one line and exit 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

from dfalens.cli.app import extract_dfa_main, main

__all__ = ["main", "extract_dfa_main"]
