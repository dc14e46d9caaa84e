"""Probing recurrent models: any network as a step function, its states, and their automata."""

from dfalens.probes.collect import (
    Exploration,
    collect,
    collect_words,
    count_words,
    encode_words,
    explore,
    predict,
)
from dfalens.probes.loading import RecurrentSpec, from_checkpoint, infer_recurrent, read_weights
from dfalens.probes.probe import Probe, as_alphabet, from_model, from_module, from_step
from dfalens.probes.scale import scale
from dfalens.probes.stateset import StateSet

__all__ = [
    "Exploration",
    "Probe",
    "RecurrentSpec",
    "StateSet",
    "as_alphabet",
    "collect",
    "collect_words",
    "count_words",
    "encode_words",
    "explore",
    "from_checkpoint",
    "from_model",
    "from_module",
    "from_step",
    "infer_recurrent",
    "predict",
    "read_weights",
    "scale",
]
