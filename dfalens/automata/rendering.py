"""Drawing machines: SVG/PNG/PDF through Graphviz when it can be found, else the DOT text with a hint.

Renderers, tried in order:

1. the ``graphviz`` Python package, when the ``dot`` binary is on ``PATH``;
2. ``pygraphviz >= 2`` (its wheels bundle the Graphviz libraries, so no system install is needed:
   ``pip install 'dfalens[render]'``);
3. none: the DOT text is written beside the requested path and a :class:`RenderWarning` says how to get
   the image.

Neither package is imported until a drawing is asked for.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dfalens._files import atomic_write
from dfalens.automata.dot import to_dot, to_table
from dfalens.errors import ConfigError

if TYPE_CHECKING:
    from dfalens.automata.machine import Machine

__all__ = ["render", "mimebundle", "available_renderer", "RenderWarning", "IMAGE_FORMATS"]

IMAGE_FORMATS = ("svg", "png", "pdf")
DOT_SUFFIXES = ("dot", "gv")
MAX_SVG_STATES = 300
"""Above this many states :func:`mimebundle` shows the text table instead of a drawing."""

HINT = (
    "install the renderer with `pip install 'dfalens[render]'` (pygraphviz, bundles Graphviz) "
    "or install Graphviz (e.g. `apt-get install graphviz`), or run `dot -T{fmt} {dot} -o {out}`"
)


class RenderWarning(UserWarning):
    """Rendering fell back to writing DOT text."""


def _has_pygraphviz() -> bool:
    try:
        import pygraphviz

        major = int(pygraphviz.__version__.split(".")[0])
    except Exception:
        return False
    return major >= 2


def available_renderer() -> str | None:
    """``"graphviz"`` (dot binary found), ``"pygraphviz"``, or None when no renderer is usable."""
    if shutil.which("dot") is not None:
        try:
            import graphviz  # noqa: F401
        except ImportError:
            pass
        else:
            return "graphviz"
    if _has_pygraphviz():
        return "pygraphviz"
    return None


def _render_bytes(dot: str, fmt: str, renderer: str) -> bytes:
    if renderer == "graphviz":
        import graphviz

        return graphviz.Source(dot).pipe(format=fmt)
    import pygraphviz

    graph = pygraphviz.AGraph(string=dot)
    data = graph.draw(format=fmt, prog="dot")
    if not data:
        raise RuntimeError("pygraphviz returned no data")
    return bytes(data)


def image_bytes(machine: Machine, fmt: str = "svg", **dot_kwargs: Any) -> bytes | None:
    """The drawing as bytes in ``fmt``, or None when no renderer works."""
    dot = to_dot(machine, **dot_kwargs)
    for renderer in _renderers():
        try:
            return _render_bytes(dot, fmt, renderer)
        except Exception:
            continue
    return None


def _renderers() -> list[str]:
    first = available_renderer()
    if first is None:
        return []
    return [first, "pygraphviz"] if first == "graphviz" and _has_pygraphviz() else [first]


def render(machine: Machine, path: str | os.PathLike[str], **dot_kwargs: Any) -> Path:
    """Draw the machine to ``path``; the format comes from the suffix (.svg, .png, .pdf, .dot, .gv).

    Parameters
    ----------
    machine : Machine
    path : str or path-like
    **dot_kwargs
        Passed to :func:`dfalens.automata.to_dot` (``hide_sink``, ``show_outputs``, ``rankdir`` ...).

    Returns
    -------
    Path
        The file written: ``path`` itself, or, when no renderer works, ``path`` with the suffix ``.dot``
        (a :class:`RenderWarning` then says how to get the image). Files are written atomically.

    Raises
    ------
    ConfigError
        For a suffix that is not one of the supported formats.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in IMAGE_FORMATS + DOT_SUFFIXES:
        raise ConfigError(
            f"cannot render to {path.name!r}: use a .svg, .png, .pdf or .dot (.gv) file name"
        )
    dot = to_dot(machine, **dot_kwargs)
    if fmt in DOT_SUFFIXES:
        atomic_write(path, dot.encode("utf-8"))
        return path
    errors = []
    for renderer in _renderers():
        try:
            data = _render_bytes(dot, fmt, renderer)
        except Exception as exc:  # a broken renderer must not lose the machine: fall back
            errors.append(f"{renderer}: {type(exc).__name__}: {exc}".splitlines()[0])
            continue
        atomic_write(path, data)
        return path
    dot_path = path.with_suffix(".dot")
    atomic_write(dot_path, dot.encode("utf-8"))
    why = "; ".join(errors) if errors else "no Graphviz renderer found"
    warnings.warn(
        f"could not draw {path.name} ({why}); wrote {dot_path} instead. To get the image, "
        + HINT.format(fmt=fmt, dot=dot_path, out=path),
        RenderWarning,
        stacklevel=2,
    )
    return dot_path


def mimebundle(machine: Machine) -> dict[str, str]:
    """Jupyter display data: an SVG drawing when a renderer exists, always a text table. Never raises."""
    try:
        bundle = {"text/plain": to_table(machine)}
    except Exception:
        return {"text/plain": repr(machine)}
    try:
        if machine.n_states <= MAX_SVG_STATES:
            svg = image_bytes(machine, "svg")
            if svg is not None:
                bundle["image/svg+xml"] = svg.decode("utf-8")
    except Exception:
        pass
    return bundle
