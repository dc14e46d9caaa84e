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
from dfalens.probes.probe import Probe, as_alphabet, from_model, from_module, from_step
from dfalens.probes.scale import scale
from dfalens.probes.stateset import StateSet

__all__ = [
    "Exploration",
    "Probe",
    "StateSet",
    "as_alphabet",
    "collect",
    "collect_words",
    "count_words",
    "encode_words",
    "explore",
    "from_model",
    "from_module",
    "from_step",
    "predict",
    "scale",
]
