"""The report of a run: one self-contained HTML page (``run_report``), the page of one extraction
(``write_extraction_report``), and the run as a GIF or MP4 (``write_animation``).

The page itself is built by :mod:`dfalens.probes.page` (below the packages whose objects show it in
Jupyter); this package writes it, and the animations, to files.
"""

from dfalens.plots.report.animation import ANIMATION_FRAMES, Animation, write_animation
from dfalens.plots.report.html import (
    Report,
    check_timeline,
    run_report,
    timeline_for,
    write_extraction_report,
    write_report,
)

__all__ = [
    "ANIMATION_FRAMES",
    "Animation",
    "Report",
    "check_timeline",
    "run_report",
    "timeline_for",
    "write_animation",
    "write_extraction_report",
    "write_report",
]
