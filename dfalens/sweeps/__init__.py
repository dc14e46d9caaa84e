"""Many runs at once: grids of settings, the phase diagram (Fig. 9), resumable results tables, and the
executors that run them (local processes, a Dask cluster).

Every sweep writes one row per finished cell to ``DIR/results.csv`` as it goes, so an interrupted sweep
resumes where it stopped::

    import dfalens as dl
    rows = dl.sweeps.run_grid("sweeps/width", ["hidden=16,32,64", "seed=0..2"], preset="fast")
    rows = dl.sweeps.run_phase_diagram("sweeps/phase", seeds=(0, 1))
    dl.plots.save_figure(dl.plots.plot_phase_diagram(rows), "phase.png")
"""

from dfalens._executors import Executor, default_jobs, make_executor
from dfalens.sweeps.grid import parse_grid_items, run_grid
from dfalens.sweeps.phase_diagram import (
    PHASE_COLUMNS,
    PhaseCell,
    axis_values,
    phase_config,
    read_results,
    run_phase_diagram,
)
from dfalens.sweeps.table import ResultsTable, expand_grid, parse_grid

__all__ = [
    "PHASE_COLUMNS",
    "Executor",
    "PhaseCell",
    "ResultsTable",
    "axis_values",
    "default_jobs",
    "expand_grid",
    "make_executor",
    "parse_grid",
    "parse_grid_items",
    "phase_config",
    "read_results",
    "run_grid",
    "run_phase_diagram",
]
