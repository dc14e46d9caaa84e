"""The report page for one extraction: the automaton, the projection of the states, the verdict, the
settings and the candidates the strategy tried."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from dfalens.probes.page.render import (
    SvgStore,
    classes,
    number,
    pack,
    project,
    render_page,
    subsample_words,
)
from dfalens.probes.stateset import StateSet

if TYPE_CHECKING:
    from dfalens.probes.extraction import Extraction
    from dfalens.probes.verdicts import TaskVerdict

__all__ = ["extraction_html", "extraction_payload"]

_TRACE_KEYS = (
    "method",
    "eps",
    "eps_abs",
    "n_clusters",
    "n_raw",
    "n_minimal",
    "closed",
    "agreement",
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    value = number(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _words(states: StateSet, upto: int) -> list[str]:
    """The words of the first ``upto`` nodes (breadth-first, so every parent is named first)."""
    parent, symbol = np.asarray(states.parent), np.asarray(states.symbol)
    names = [""] * upto
    for i in range(1, upto):
        names[i] = names[parent[i]] + states.alphabet[symbol[i]]
    return [w if w else "ε" for w in names]


def extraction_payload(
    ex: Extraction,
    states: StateSet | None = None,
    *,
    task_verdict: TaskVerdict | None = None,
    task_name: str | None = None,
    title: str | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """JSON-ready data of the one-checkpoint report.

    Parameters
    ----------
    ex : Extraction
    states : StateSet, optional
        The states the extraction clustered (``ex.labels`` labels its nodes); without them the page has
        no projection.
    task_verdict : TaskVerdict, optional
        :func:`dfalens.probes.verdict` of the extraction against a task: about the network, not only
        the machine (without it the page says no task was checked).
    task_name : str, optional
        The task's name, for the verdict line.
    title, source : str, optional
        Page title and a description of what was extracted (a checkpoint path, a network).
    """
    store = SvgStore()
    verdict: bool | None = None
    counterexample = None
    if task_verdict is not None:
        verdict = task_verdict.equal
        if not verdict:
            counterexample = (
                task_verdict.network_word_str
                if task_verdict.network_word is not None
                else task_verdict.machine.word_str
            )
    fidelity = None if ex.fidelity is None else {str(k): v for k, v in ex.fidelity.items()}
    frame = {
        "epoch": None,
        "index": 0,
        "states_raw": ex.n_raw,
        "states_minimal": ex.n_minimal,
        "closed": bool(ex.closed),
        "consistent": bool(ex.consistent),
        "equivalent": verdict,
        "counterexample": counterexample,
        "verdict_text": None if task_verdict is None else str(task_verdict),
        "fidelity": _jsonable(fidelity),
        "agreement": number(ex.agreement),
        # drawn with short state names (q0, q1, ...): the member words make unreadable nodes
        "raw": store.index(replace(ex.machine, state_names=None)),
        "minimal": store.index(ex.minimal),
        "merging": [],
    }
    projection = None
    if states is not None and states.hidden.shape[0] == ex.labels.shape[0]:
        idx = subsample_words(states.depth)
        xy, explained = project(np.asarray(states.hidden)[idx][None])
        words = _words(states, int(idx.max()) + 1 if idx.size else 0)
        projection = {
            "words": [words[i] for i in idx.tolist()],
            "n": int(idx.size),
            "xy": pack(xy),
            "state": pack(np.asarray(ex.labels)[idx], "u2"),
            "output": pack(classes(np.asarray(states.output)[idx]), "u1"),
            "explained": [float(e) for e in explained],
        }
    trace = ex.settings.get("trace") or []
    candidates = [_jsonable(dict(c)) for c in trace]
    settings = {k: _jsonable(v) for k, v in ex.settings.items() if k != "trace"}
    return {
        "kind": "extraction",
        "title": title or "dfalens extraction",
        "source": source,
        "task": task_name,
        "frames": [frame],
        "svgs": store.svgs,
        "draw_limit": store.limit,
        "over_budget": store.over_budget,
        "projection": projection,
        "settings": settings,
        "candidates": candidates,
        "frame_note": None,
    }


def extraction_html(
    ex: Extraction,
    states: StateSet | None = None,
    *,
    task_verdict: TaskVerdict | None = None,
    task_name: str | None = None,
    title: str | None = None,
    source: str | None = None,
    fragment: bool = False,
) -> str:
    """The one-checkpoint report page (see :func:`extraction_payload`; ``fragment`` for Jupyter)."""
    payload = extraction_payload(
        ex, states, task_verdict=task_verdict, task_name=task_name, title=title, source=source
    )
    return render_page(payload, fragment=fragment)
