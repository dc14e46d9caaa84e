"""Probing recurrent models: any network as a step function, its states, and their automata."""

from dfalens.probes.cluster import cluster
from dfalens.probes.collect import (
    Exploration,
    collect,
    collect_words,
    count_words,
    encode_words,
    explore,
    predict,
)
from dfalens.probes.extraction import Extraction, extract
from dfalens.probes.history import History, load_history
from dfalens.probes.loading import RecurrentSpec, from_checkpoint, infer_recurrent, read_weights
from dfalens.probes.probe import Probe, as_alphabet, from_model, from_module, from_step
from dfalens.probes.quotient import QuotientStats, quotient
from dfalens.probes.scale import scale
from dfalens.probes.stateset import StateSet
from dfalens.probes.timeline import Row, Timeline, timeline

__all__ = [
    "Exploration",
    "Extraction",
    "History",
    "Probe",
    "QuotientStats",
    "RecurrentSpec",
    "Row",
    "StateSet",
    "Timeline",
    "as_alphabet",
    "cluster",
    "collect",
    "collect_words",
    "count_words",
    "encode_words",
    "explore",
    "extract",
    "from_checkpoint",
    "from_model",
    "from_module",
    "from_step",
    "infer_recurrent",
    "load_history",
    "predict",
    "quotient",
    "read_weights",
    "scale",
    "timeline",
]
