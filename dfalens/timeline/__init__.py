"""Extraction across a run's checkpoints: one row per checkpoint, merges and splits, the landmark epochs,
and the pair statistics of the paper's Figs. 7, 12, 14 and 15.

::

    import dfalens as dl
    tl = dl.timeline.timeline("runs/parity", task="parity")
    tl.merger_epoch, tl.generalisation_epoch
"""

from dfalens.timeline.events import Change, Event, compare_partitions
from dfalens.timeline.frames import select_frames, timeline_html, timeline_payload
from dfalens.timeline.history import (
    Block,
    History,
    RunInfo,
    load_history,
    resolve_run,
    resolve_task,
)
from dfalens.timeline.pairs import (
    ByLength,
    Pairs,
    PairTrajectories,
    diverged_fraction,
    far_counts,
    mean_distance,
    merged_fraction,
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
    "compare_partitions",
    "diverged_fraction",
    "far_counts",
    "load_history",
    "mean_distance",
    "merged_fraction",
    "pair_trajectories",
    "resolve_run",
    "resolve_task",
    "select_frames",
    "timeline",
    "timeline_html",
    "timeline_payload",
]
