"""Writing the report page of a run or of one extraction to a file (see :mod:`dfalens.probes.page`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfalens._files import atomic_write, check_output_file
from dfalens.automata import Machine
from dfalens.errors import DataError
from dfalens.probes import Extraction, Probe, StateSet, TaskVerdict, collect, verdict
from dfalens.probes.page import extraction_html, render_page
from dfalens.timeline import Timeline, timeline
from dfalens.timeline.frames import MAX_FRAMES, timeline_payload
from dfalens.timeline.history import resolve_run

__all__ = [
    "Report",
    "check_timeline",
    "run_report",
    "timeline_for",
    "write_extraction_report",
    "write_report",
]

_REUSED = ("method", "eps", "eps_abs", "pooled", "max_len")


@dataclass(frozen=True)
class Report:
    """What :func:`run_report` wrote.

    Attributes
    ----------
    path : Path
    bytes : int
        Size of the file.
    frames : int
        Checkpoints shown.
    checkpoints : int
        Checkpoints in the run.
    frame_note : str
        Which checkpoints are shown.
    drawings : int
        Distinct automaton drawings stored.
    timeline : Timeline
    """

    path: Path
    bytes: int
    frames: int
    checkpoints: int
    frame_note: str
    drawings: int
    timeline: Timeline


def check_timeline(saved: Timeline, epochs: np.ndarray, source: str) -> None:
    """Raise DataError when a saved timeline's rows are not the run's checkpoints."""
    rows = saved.epochs
    if rows.shape != epochs.shape or np.any(rows != epochs):
        extra = np.setdiff1d(rows, epochs)
        missing = np.setdiff1d(epochs, rows)
        detail = (
            f"epoch {int(extra[0])} is not a checkpoint of the run"
            if extra.size
            else f"it lacks the checkpoint of epoch {int(missing[0])}"
        )
        raise DataError(
            f"{source} has {rows.size} rows but the run has {epochs.size} checkpoints ({detail}); "
            "run `dfalens timeline` on the run again, or remove the stale file"
        )


def write_report(
    tl: Timeline,
    path: str | os.PathLike[str],
    *,
    load_states: bool = True,
    limit: int = MAX_FRAMES,
    title: str | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Write the report page of a computed timeline to ``path`` (atomically); returns the payload too."""
    target = check_output_file(path, "the report", (".html", ".htm"))
    payload = timeline_payload(tl, limit=limit, title=title, load_states=load_states)
    n_svgs = len(payload["svgs"])
    text = render_page(payload)
    atomic_write(target, text)
    payload["n_svgs"] = n_svgs
    return target, payload


def timeline_for(
    run_dir: str | os.PathLike[str],
    *,
    task: str | None = None,
    saved: str | os.PathLike[str] | None = None,
    jobs: int | None = None,
    progress: bool = False,
) -> Timeline:
    """The timeline of a run for its report, after checking the run and any saved timeline of it.

    Parameters
    ----------
    run_dir : path
        A run directory with at least two checkpoints.
    task : str, optional
        Ground truth (default: the run's).
    saved : path, optional
        A ``timeline.json`` of this run (default: ``RUN_DIR/timeline.json`` when present): its method,
        eps, pooling and word length are reused, and its rows must be the run's checkpoints.
    jobs : int, optional
        Worker processes of the timeline.

    Raises
    ------
    CheckpointError
        No checkpoints.
    DataError
        Fewer than two checkpoints, or a saved timeline that disagrees with the run.
    """
    info = resolve_run(run_dir)
    if info.epochs.size < 2:
        raise DataError(
            f"{run_dir} has {info.epochs.size} checkpoint; a report shows training, so it needs at "
            "least two (train with more checkpoints, e.g. --checkpoints every:5)"
        )
    options: dict[str, Any] = {}
    source = Path(saved) if saved is not None else Path(run_dir) / "timeline.json"
    if saved is not None or source.is_file():
        old = Timeline.from_json(source)
        check_timeline(old, info.epochs, str(source))
        options = {k: old.settings[k] for k in _REUSED if old.settings.get(k) is not None}
        if old.settings.get("relative") is False and "eps" in options:  # written before eps_abs
            options["eps_abs"] = options.pop("eps")
    return timeline(run_dir, task, jobs=jobs, progress=progress, **options)


def run_report(
    run_dir: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    task: str | None = None,
    saved: str | os.PathLike[str] | None = None,
    limit: int = MAX_FRAMES,
    jobs: int | None = None,
    progress: bool = False,
    tl: Timeline | None = None,
) -> Report:
    """Compute the timeline of a run (see :func:`timeline_for`) and write its report page.

    Parameters
    ----------
    run_dir : path
    path : path
        The ``.html`` file to write (checked before any work).
    task, saved, jobs, progress
        See :func:`timeline_for`.
    limit : int, default 300
        Most frames shown.
    tl : Timeline, optional
        An already computed timeline of this run (skips the computation and the checks).

    Raises
    ------
    CheckpointError, DataError
        See :func:`timeline_for`.
    ConfigError
        An output path that cannot be written.
    """
    target = check_output_file(path, "the report", (".html", ".htm"))
    if tl is None:
        tl = timeline_for(run_dir, task=task, saved=saved, jobs=jobs, progress=progress)
    written, payload = write_report(tl, target, limit=limit)
    return Report(
        path=written,
        bytes=written.stat().st_size,
        frames=len(payload["frames"]),
        checkpoints=len(tl),
        frame_note=payload["frame_note"],
        drawings=payload["n_svgs"],
        timeline=tl,
    )


def write_extraction_report(
    ex: Extraction,
    path: str | os.PathLike[str],
    states: StateSet | None = None,
    *,
    probe: Probe | None = None,
    task: Machine | None = None,
    task_verdict: TaskVerdict | None = None,
    task_name: str | None = None,
    source: str | None = None,
) -> Path:
    """Write the one-checkpoint report page (automaton, projection, verdict, settings, candidates).

    Parameters
    ----------
    ex : Extraction
    path : path
        The ``.html`` file.
    states : StateSet, optional
        The states ``ex`` clustered, for the projection.
    probe : Probe, optional
        Without ``states``, collect them again from this network (words up to the extraction's
        ``max_len``).
    task, task_name : optional
        Ground truth for the verdict, which is about the network (:func:`dfalens.probes.verdict`).
    task_verdict : TaskVerdict, optional
        That verdict when the caller has it already (then ``task`` is not asked again).
    source : str, optional
        What was extracted (a checkpoint path), for the title.
    """
    target = check_output_file(path, "the report", (".html", ".htm"))
    if states is None and probe is not None and ex.settings.get("max_len") is not None:
        states = collect(probe, int(ex.settings["max_len"]))
    title = f"dfalens extraction: {Path(source).name}" if source else None
    tv = task_verdict
    if tv is None and task is not None:
        tv = verdict(ex, task, probe)
    text = extraction_html(
        ex, states, task_verdict=tv, task_name=task_name, title=title, source=source
    )
    return atomic_write(target, text)
