"""Extraction across a run's checkpoints: one row per checkpoint, merges and splits, the landmark epochs,
and the pair statistics of the paper's Figs. 7, 12, 14 and 15.

::

    import dfalens as dl
    tl = dl.timeline.timeline("runs/parity", task="parity")
    tl.merger_epoch, tl.generalisation_epoch
"""

from dfalens.timeline.events import Change, Event
from dfalens.timeline.frames import select_frames, timeline_html, timeline_payload
from dfalens.timeline.history import Block, History, RunInfo, load_history
from dfalens.timeline.pairs import (
    ByLength,
    Pairs,
    PairTrajectories,
    pair_trajectories,
)
from dfalens.timeline.timelines import (
    GENERALISATION_LENGTH,
    MEMORISATION_LOSS,
    TIMELINE_METHODS,
    Row,
    Timeline,
    timeline,
)

__all__ = [
    "GENERALISATION_LENGTH",
    "MEMORISATION_LOSS",
    "TIMELINE_METHODS",
    "Block",
    "ByLength",
    "Change",
    "Event",
    "History",
    "PairTrajectories",
    "Pairs",
    "Row",
    "RunInfo",
    "Timeline",
    "load_history",
    "pair_trajectories",
    "select_frames",
    "timeline",
    "timeline_html",
    "timeline_payload",
]
