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

from dfalens.probes._unpickle import Inert, PickleLimits, pickle_globals, read_pickle
from dfalens.probes.assumptions import Assumptions, AssumptionWarning, Choice
from dfalens.probes.blackbox import Classifier, Learned, from_classifier, learn
from dfalens.probes.clustering import cluster
from dfalens.probes.collection import (
    Exploration,
    collect,
    collect_extended,
    collect_words,
    count_words,
    encode_words,
    explore,
    predict,
)
from dfalens.probes.evidence import Evidence, WordSample
from dfalens.probes.extraction import Extraction, empty_word_counts, extract
from dfalens.probes.hooks import PrefixProbe, from_nnsight, from_transformer_lens
from dfalens.probes.inference import from_state_dict, infer_stack
from dfalens.probes.loading import (
    Checkpoint,
    RecurrentSpec,
    from_checkpoint,
    infer_recurrent,
    read_checkpoint,
    read_weights,
)
from dfalens.probes.module_records import ModuleRecord, module_record
from dfalens.probes.probe import Probe, as_alphabet, from_model, from_module, from_step
from dfalens.probes.quotients import QuotientStats, quotient
from dfalens.probes.refinement import Refinement, refine, suffix_classes
from dfalens.probes.scaling import scale
from dfalens.probes.stateset import StateSet
from dfalens.probes.verdicts import TaskVerdict, verdict
from dfalens.probes.wordlists import parse_words, read_words

__all__ = [
    "Refinement",
    "empty_word_counts",
    "refine",
    "suffix_classes",
    "AssumptionWarning",
    "Assumptions",
    "Choice",
    "Evidence",
    "Classifier",
    "Learned",
    "from_classifier",
    "learn",
    "Exploration",
    "Extraction",
    "PrefixProbe",
    "Checkpoint",
    "Inert",
    "ModuleRecord",
    "PickleLimits",
    "Probe",
    "QuotientStats",
    "RecurrentSpec",
    "StateSet",
    "TaskVerdict",
    "WordSample",
    "as_alphabet",
    "cluster",
    "collect",
    "collect_extended",
    "collect_words",
    "count_words",
    "encode_words",
    "explore",
    "extract",
    "from_checkpoint",
    "from_model",
    "from_nnsight",
    "from_transformer_lens",
    "from_state_dict",
    "from_module",
    "from_step",
    "infer_recurrent",
    "infer_stack",
    "parse_words",
    "module_record",
    "pickle_globals",
    "predict",
    "quotient",
    "read_checkpoint",
    "read_pickle",
    "read_weights",
    "read_words",
    "scale",
    "verdict",
]
