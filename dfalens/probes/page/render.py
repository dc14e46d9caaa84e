"""Building the self-contained report page: the template, the machines as Graphviz SVG, packed arrays.

The page is one HTML file: the style, the script and a JSON payload are written inline, so it opens from
``file://``, as an e-mail attachment or inside Jupyter with no network. The script draws everything from
the payload (see :func:`render_page`); Python only supplies data and the automata's SVG drawings, each
distinct drawing stored once.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from dfalens.automata import Machine
from dfalens.automata.rendering import image_bytes

__all__ = [
    "DRAW_BUDGET",
    "DRAW_LIMIT",
    "SvgStore",
    "pack",
    "project",
    "render_page",
    "subsample_words",
]

DRAW_LIMIT = 80
"""Machines with more states than this are not drawn (the page says how many states there are)."""

DRAW_BUDGET = 24_000_000
"""Characters of SVG text a page stores at most (about 3 MB once gzipped and base64-encoded); machines
asked for after it is spent are not drawn."""

PROJECTED_WORDS = 512
"""At most this many words (the shortest first) are shown in the 2-D projection."""

_XML_JUNK = re.compile(r"<\?xml.*?\?>|<!DOCTYPE.*?>|<!--.*?-->", re.DOTALL)
_BLANKS = re.compile(r">\s+<")


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _script_json(payload: dict[str, Any]) -> str:
    """JSON that can sit inside a ``<script>`` element: every ``<`` (only ever inside strings) is
    written ``\\u003c``, so no ``</script>`` or comment opener can end the element early."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")


def render_page(payload: dict[str, Any], *, fragment: bool = False) -> str:
    """The report page for ``payload``.

    Parameters
    ----------
    payload : dict
        JSON-ready data: ``kind`` ("timeline" or "extraction"), ``title``, ``frames`` (one dict per
        shown checkpoint), ``svgs`` (the distinct drawings frames refer to by index), and optionally
        ``curves``, ``landmarks``, ``projection``, ``settings``, ``candidates``, ``frame_note``. The
        drawings are stored gzipped (``svgs_gz``, base64) and unpacked by the browser.
    fragment : bool, default False
        Return a ``<div>`` for embedding (Jupyter's ``_repr_html_``) instead of a whole document.

    Returns
    -------
    str
        HTML with inline style, script and data; no external resource is referenced.
    """
    payload = dict(payload)
    svgs = payload.pop("svgs", [])
    # the drawings of neighbouring frames share most of their text: one gzip of all of them is a
    # fraction of the size (the script unpacks it with the browser's DecompressionStream)
    packed = gzip.compress(json.dumps(svgs, ensure_ascii=False).encode("utf-8"), 9, mtime=0)
    payload["svgs_gz"] = base64.b64encode(packed).decode("ascii")
    payload["n_svgs"] = len(svgs)
    style = _asset("report.css")
    script = _asset("report.js")
    body = _asset("report.html")
    data = _script_json(payload)
    title = html.escape(str(payload.get("title", "dfalens report")))
    inner = (
        f'<div class="dfalens-report">\n<style>{style}</style>\n{body}\n'
        f'<script type="application/json" class="dfalens-data">{data}</script>\n'
        f"<script>{script}</script>\n</div>"
    )
    if fragment:
        return inner
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n</head>\n<body>\n{inner}\n</body>\n</html>\n"
    )


_DEFAULTS = re.compile(r' font-family="Times,serif" font-size="14\.00"| fill="none" stroke="black"')
_IDS = re.compile(r'<g id="(?:node|edge)\d+" class=')
_DECIMALS = re.compile(r"-?\d+\.\d+")


def _clean_svg(data: bytes) -> str:
    """Graphviz's SVG made small: no XML prologue, comments, blank runs, element ids or the default
    font and stroke attributes (the page's style sets them), coordinates rounded to whole points."""
    text = data.decode("utf-8")
    text = _XML_JUNK.sub("", text)
    text = _DEFAULTS.sub("", text)
    text = _IDS.sub("<g class=", text)
    text = _DECIMALS.sub(lambda m: str(round(float(m.group(0)))), text)
    return _BLANKS.sub("><", text).strip()


@dataclass
class SvgStore:
    """Graphviz drawings of machines, each distinct machine drawn and stored once.

    Attributes
    ----------
    svgs : list of str
        The distinct drawings, in the order first asked for.
    limit : int
        Machines with more states are not drawn (:meth:`index` returns None).
    budget : int
        Most characters of SVG text stored; ``over_budget`` is set when a drawing did not fit.
    """

    svgs: list[str] = field(default_factory=list)
    limit: int = DRAW_LIMIT
    budget: int = DRAW_BUDGET
    spent: int = 0
    over_budget: bool = False
    _seen: dict[Machine, int | None] = field(default_factory=dict)

    def _keep(self, machine: Machine, data: bytes | None) -> int | None:
        found: int | None = None
        if data is not None:
            text = _clean_svg(data)
            if self.spent + len(text) > self.budget:
                self.over_budget = True
            else:
                self.spent += len(text)
                self.svgs.append(text)
                found = len(self.svgs) - 1
        self._seen[machine] = found
        return found

    def index(self, machine: Machine) -> int | None:
        """Index of the drawing of ``machine`` in :attr:`svgs` (None: too large, over the budget, or
        no Graphviz)."""
        if machine in self._seen:
            return self._seen[machine]
        data = image_bytes(machine, "svg") if machine.n_states <= self.limit else None
        return self._keep(machine, data)

    def draw_all(self, machines: Sequence[Machine], workers: int = 2) -> None:
        """Draw the distinct machines among ``machines`` now, ``workers`` Graphviz processes at a time
        (the drawing happens in the ``dot`` subprocess, so threads overlap; order is kept)."""
        todo = list(dict.fromkeys(m for m in machines if m not in self._seen))
        small = [m for m in todo if m.n_states <= self.limit]
        if workers > 1 and len(small) > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                drawn = list(pool.map(lambda m: image_bytes(m, "svg"), small))
        else:
            drawn = [image_bytes(m, "svg") for m in small]
        done = dict(zip(small, drawn, strict=True))
        for m in todo:
            self._keep(m, done.get(m))

    @property
    def drawn(self) -> bool:
        """At least one machine was drawn."""
        return bool(self.svgs)


def pack(values: np.ndarray, dtype: str = "u1") -> str:
    """Base64 of ``values`` as little-endian ``dtype`` (``u1`` or ``u2``), clipped to its range."""
    info = np.iinfo(np.dtype(dtype))
    arr = np.clip(np.asarray(values), info.min, info.max).astype(f"<{dtype}", copy=False)
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")


def subsample_words(depth: np.ndarray, limit: int = PROJECTED_WORDS) -> np.ndarray:
    """Indices of the words shown in the projection: all when few, else the ``limit`` shortest.

    Words are in breadth-first order, so the first ``limit`` nodes are the shortest words (the empty word
    excluded: its state is the network's initial state, not one it computed).
    """
    n = int(np.asarray(depth).size)
    idx = np.arange(n)
    idx = idx[np.asarray(depth) > 0]
    return idx[:limit]


def project(hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One PCA fitted over every frame and word, quantised for the page.

    Parameters
    ----------
    hidden : ndarray of float, shape (f, n, d)
        States of ``n`` words at ``f`` frames.

    Returns
    -------
    xy : ndarray of uint8, shape (f, n, 2)
        The first two principal components, scaled to 0..255 over all frames together (so positions
        are comparable between frames).
    explained : ndarray of float, shape (2,)
        Fraction of the variance the two components explain.
    """
    h = np.asarray(hidden, dtype=np.float64)
    f, n, d = h.shape
    flat = h.reshape(f * n, d)
    mean = flat.mean(axis=0)
    centred = flat - mean
    cov = centred.T @ centred / max(1, flat.shape[0] - 1)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][:2]
    comps = vecs[:, order]
    if comps.shape[1] < 2:
        comps = np.pad(comps, ((0, 0), (0, 2 - comps.shape[1])))
    # a deterministic sign: the largest loading of each component is positive
    signs = np.sign(comps[np.abs(comps).argmax(axis=0), np.arange(2)])
    comps = comps * np.where(signs == 0, 1.0, signs)
    xy = centred @ comps
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    q = np.rint((xy - lo) / span * 255).astype(np.uint8).reshape(f, n, 2)
    total = float(vals.sum())
    top = vals[order] if order.size == 2 else np.pad(vals[order], (0, 2 - order.size))
    explained = top / total if total > 0 else np.zeros(2)
    return q, np.asarray(explained, dtype=float)


def classes(output: np.ndarray) -> np.ndarray:
    """Predicted class from network scores of shape (..., k): ``> 0.5`` for one score, else argmax."""
    out = np.asarray(output)
    if out.shape[-1] == 0:
        return np.zeros(out.shape[:-1], dtype=np.int64)
    if out.shape[-1] == 1:
        return (out[..., 0] > 0.5).astype(np.int64)
    return np.argmax(out, axis=-1)


def number(value: Any) -> Any:
    """A JSON-safe scalar: NaN and inf become None, numpy scalars Python ones."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
