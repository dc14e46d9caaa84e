"""Any network -> its states -> its automaton: probes and loading, collection, clustering, quotients,
extraction.

A :class:`Probe` is the only way the rest of dfalens talks to a network (``initial``/``step``/``readout``
over an alphabet); :func:`extract` collects its states on every word, clusters them and reads off the
quotient automaton::

    import dfalens as dl
    probe = dl.probes.from_checkpoint("runs/parity/checkpoints/last.safetensors")  # or from_module(rnn, fc)
    ex = dl.probes.extract(probe, max_len=10)
    ex.closed, ex.minimal, ex.fidelity
    states = dl.probes.collect(probe, 6)                # the steps one at a time
    labels = dl.probes.cluster(states, "threshold", 0.01)
    machine, stats = dl.probes.quotient(states, labels)
"""

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
from dfalens.probes.loading import RecurrentSpec, from_checkpoint, infer_recurrent, read_weights
from dfalens.probes.probe import Probe, as_alphabet, from_model, from_module, from_step
from dfalens.probes.quotients import QuotientStats, quotient
from dfalens.probes.scaling import scale
from dfalens.probes.stateset import StateSet

__all__ = [
    "Exploration",
    "Extraction",
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
    "from_module",
    "from_step",
    "infer_recurrent",
    "predict",
    "quotient",
    "read_weights",
    "scale",
]
