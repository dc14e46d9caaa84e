"""dfalens: extract finite automata from trained recurrent networks, and find when a network becomes one.

Subpackages load on first use, so ``import dfalens`` stays cheap (torch is imported only by
:mod:`dfalens.probes` and :mod:`dfalens.trainers`)::

    import dfalens as dl
    dl.automata.tomita(3)          # numpy only
    dl.probes.from_module(...)     # imports torch here
"""

from __future__ import annotations

import importlib
from typing import Any

from dfalens.errors import DfalensError

__version__ = "0.1.0"
__all__ = ["DfalensError", "__version__", "automata", "probes", "trainers", "extract", "timeline"]

_SUBPACKAGES = {"automata", "probes", "trainers", "cli"}
_SHORTCUTS = {"extract": "dfalens.probes", "timeline": "dfalens.probes"}


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"dfalens.{name}")
    if name in _SHORTCUTS:
        return getattr(importlib.import_module(_SHORTCUTS[name]), name)
    raise AttributeError(f"module 'dfalens' has no attribute {name!r}")
