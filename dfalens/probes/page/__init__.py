"""The self-contained HTML report page (inline style, script and data; no network).

It lives below :mod:`dfalens.timeline` and :mod:`dfalens.plots` so that :class:`dfalens.probes.Extraction`
and :class:`dfalens.timeline.Timeline` can show it in Jupyter (``_repr_html_``) without importing upward;
:mod:`dfalens.plots.report` writes it to files.
"""

from dfalens.probes.page.one import extraction_html, extraction_payload
from dfalens.probes.page.render import (
    DRAW_BUDGET,
    DRAW_LIMIT,
    PROJECTED_WORDS,
    SvgStore,
    classes,
    pack,
    project,
    render_page,
    subsample_words,
)

__all__ = [
    "DRAW_BUDGET",
    "DRAW_LIMIT",
    "PROJECTED_WORDS",
    "SvgStore",
    "classes",
    "extraction_html",
    "extraction_payload",
    "pack",
    "project",
    "render_page",
    "subsample_words",
]
