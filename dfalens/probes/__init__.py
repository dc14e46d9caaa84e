"""Probing recurrent models: any network as a step function, its states, and their automata."""

from dfalens.probes._unpickle import Inert, PickleLimits, pickle_globals, read_pickle
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
from dfalens.probes.history import History, load_history
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
from dfalens.probes.scaling import scale
from dfalens.probes.stateset import StateSet
from dfalens.probes.theory_fit import PairObservables, RateFit, closed_form_rates, fit_rates
from dfalens.probes.theory_predict import MergerPrediction, predict_mergers
from dfalens.probes.theory_run import TheoryRun, theory_run
from dfalens.probes.timelines import Row, Timeline, timeline

__all__ = [
    "Checkpoint",
    "Exploration",
    "Extraction",
    "History",
    "Inert",
    "MergerPrediction",
    "ModuleRecord",
    "PairObservables",
    "PickleLimits",
    "Probe",
    "QuotientStats",
    "RateFit",
    "RecurrentSpec",
    "Row",
    "StateSet",
    "TheoryRun",
    "Timeline",
    "as_alphabet",
    "closed_form_rates",
    "cluster",
    "collect",
    "collect_words",
    "count_words",
    "encode_words",
    "explore",
    "extract",
    "fit_rates",
    "from_checkpoint",
    "from_model",
    "from_module",
    "from_step",
    "infer_recurrent",
    "load_history",
    "module_record",
    "pickle_globals",
    "predict",
    "predict_mergers",
    "quotient",
    "read_checkpoint",
    "read_pickle",
    "read_weights",
    "scale",
    "theory_run",
    "timeline",
]
