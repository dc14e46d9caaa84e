"""Every figure of dfalens (matplotlib; nothing here picks a backend or opens a window).

Plot functions draw on the Axes they are given (``ax=``) or on a new figure, and return what they drew on;
:func:`save_figure` is the one place a figure becomes a file::

    import dfalens as dl
    ax = dl.plots.timeline_plot(tl)
    dl.plots.save_figure(ax, "timeline.png")
"""

from dfalens.plots._save import save_figure
from dfalens.plots.phase import plot_phase_diagram
from dfalens.plots.report import (
    run_report,
    write_animation,
    write_extraction_report,
    write_report,
)
from dfalens.plots.theory import (
    fig10_theory_curves,
    plot_fig10_run,
    plot_fig10_theory,
    plot_pair_fits,
    plot_prediction,
    plot_twopoint_fit,
    plot_twopoint_grid,
    plot_xor,
    theory_figures,
)
from dfalens.plots.timeline import (
    automaton,
    automaton_layout,
    far_pairs_plot,
    length_heatmap,
    loss_by_length,
    mean_distance_plot,
    overview,
    pair_distance_plot,
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
    "snapshots",
    "theory_figures",
    "timeline_plot",
    "training_curves",
    "write_animation",
    "write_extraction_report",
    "write_report",
]
