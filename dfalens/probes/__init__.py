"""Any network -> its states -> its automaton: probes and loading, collection, clustering, quotients,
extraction."""

from dfalens.probes.clustering import cluster
from dfalens.probes.collection import (
    Exploration,
    collect,
    collect_words,
    count_words,
    encode_words,
    explore,
    predict,
)
from dfalens.probes.extraction import Extraction, extract
from dfalens.probes.hooks import PrefixProbe, from_nnsight, from_transformer_lens
from dfalens.probes.loading import RecurrentSpec, from_checkpoint, infer_recurrent, read_weights
from dfalens.probes.probe import Probe, as_alphabet, from_model, from_module, from_step
from dfalens.probes.quotients import QuotientStats, quotient
from dfalens.probes.scaling import scale
from dfalens.probes.stateset import StateSet

__all__ = [
    "Exploration",
    "Extraction",
    "PrefixProbe",
    "Probe",
    "QuotientStats",
    "RecurrentSpec",
    "StateSet",
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
    "from_nnsight",
    "from_transformer_lens",
    "from_module",
    "from_step",
    "infer_recurrent",
    "predict",
    "quotient",
    "read_weights",
    "scale",
]
