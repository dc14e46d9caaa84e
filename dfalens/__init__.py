"""dfalens: extract finite automata from trained recurrent networks, and find when a network becomes one.

Subpackages load on first use, so ``import dfalens`` stays cheap (torch is imported from
:mod:`dfalens.trainers` up)::

    import dfalens as dl
    dl.automata.tomita(3)          # numpy only
    dl.probes.from_module(...)     # any network -> states -> automaton (imports torch here)
    dl.timeline.timeline("runs/parity")   # extraction across a run's checkpoints

Packages, each importing only those before it: ``automata`` <- ``trainers`` <- ``probes`` <-
``timeline`` <- ``theory`` <- ``sweeps`` <- ``plots`` <- ``cli``.
"""

from __future__ import annotations

import importlib
from typing import Any

from dfalens.errors import DfalensError

__version__ = "0.1.0"
_SUBPACKAGES = ("automata", "trainers", "probes", "timeline", "theory", "sweeps", "plots", "cli")
_SHORTCUTS = {"extract": "dfalens.probes"}

__all__ = ["DfalensError", "__version__", "extract", *_SUBPACKAGES]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"dfalens.{name}")
    if name in _SHORTCUTS:
        return getattr(importlib.import_module(_SHORTCUTS[name]), name)
    raise AttributeError(f"module 'dfalens' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
