"""Every figure of dfalens (matplotlib; nothing here picks a backend or opens a window).

One convention for every plot function:

- a one-panel function takes ``ax=`` (an Axes; a new figure when None) and returns that Axes;
- a many-panel function (:func:`overview`, :func:`snapshots`, :func:`plot_fig10`, :func:`plot_xor`,
  :func:`plot_phase_diagram`) takes ``fig=`` (a Figure or a SubFigure, to compose it into a larger
  figure; a new figure when None) and returns that figure.

No plot function writes a file or closes a figure: :func:`save_figure` is the one place a figure becomes a
file (it takes an Axes or a figure, and releases the figure)::

    import dfalens as dl
    ax = dl.plots.timeline_plot(tl)
    dl.plots.save_figure(ax, "timeline.png")
    dl.plots.save_figure(dl.plots.overview(tl), "overview.png")
"""

from dfalens.plots._save import save_figure
from dfalens.plots.automaton import automaton, automaton_layout
from dfalens.plots.pairs import (
    far_pairs_plot,
    length_heatmap,
    mean_distance_plot,
    pair_distance_plot,
)
from dfalens.plots.phase import plot_phase_diagram
from dfalens.plots.report import (
    run_report,
    write_animation,
    write_extraction_report,
    write_report,
)
from dfalens.plots.theory import (
    fig10_theory_curves,
    plot_fig10,
    plot_fig10_run,
    plot_fig10_theory,
    plot_pair_fits,
    plot_prediction,
    plot_twopoint_fit,
    plot_twopoint_grid,
    plot_xor,
)
from dfalens.plots.timeline import (
    loss_by_length,
    overview,
    snapshot_epochs,
    snapshots,
    timeline_plot,
    training_curves,
)

__all__ = [
    "automaton",
    "automaton_layout",
    "far_pairs_plot",
    "fig10_theory_curves",
    "length_heatmap",
    "loss_by_length",
    "mean_distance_plot",
    "overview",
    "pair_distance_plot",
    "plot_fig10",
    "plot_fig10_run",
    "plot_fig10_theory",
    "plot_pair_fits",
    "plot_phase_diagram",
    "plot_prediction",
    "plot_twopoint_fit",
    "plot_twopoint_grid",
    "plot_xor",
    "run_report",
    "save_figure",
    "snapshot_epochs",
    "snapshots",
    "timeline_plot",
    "training_curves",
    "write_animation",
    "write_extraction_report",
    "write_report",
]
