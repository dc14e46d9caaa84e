"""``dfalens timeline``: the automaton at every checkpoint of a run, and when the run became it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dfalens import plots
from dfalens._files import (
    DirectoryLock,
    check_output_dir,
    check_output_file,
    refuse_existing,
    writing,
)
from dfalens.cli._format import epoch_text
from dfalens.cli._signals import set_kept
from dfalens.errors import CheckpointError
from dfalens.plots.report import write_report
from dfalens.timeline.timelines import timeline as compute

if TYPE_CHECKING:
    from dfalens.timeline.timelines import Timeline


@click.command("timeline")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--task", help="Ground truth (default: the run's task from run.json).")
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Where to write timeline.csv and timeline.json (default: RUN_DIR).",
)
@click.option(
    "--method",
    default="leader",
    show_default=True,
    help="Clustering: leader (the paper's greedy grouping), threshold, dbscan, agglomerative, hdbscan.",
)
@click.option(
    "--eps",
    default=0.01,
    show_default=True,
    type=float,
    help="Merge distance, relative to the norm of the per-unit std of the states.",
)
@click.option(
    "--per-checkpoint-eps",
    is_flag=True,
    help="Scale eps by each checkpoint's own std instead of the std pooled over all checkpoints.",
)
@click.option(
    "--max-len", type=int, help="Longest word collected (default: the run's training length)."
)
@click.option(
    "--jobs",
    type=int,
    help="Worker processes (default: 1, in this process, unless the states do not fit in memory; "
    "2 is faster on idle cores).",
)
@click.option("--plot", is_flag=True, help="Also write timeline.png (the Fig. 6 view).")
@click.option("--force", is_flag=True, help="Replace a timeline already in the output directory.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path),
    help="Also write the interactive report page (as `dfalens report`) to this .html file.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the derived epochs and last row as JSON."
)
def timeline(
    run_dir: Path,
    task: str | None,
    out_dir: Path | None,
    method: str,
    eps: float,
    per_checkpoint_eps: bool,
    max_len: int | None,
    jobs: int | None,
    plot: bool,
    html_path: Path | None,
    force: bool,
    as_json: bool,
) -> int:
    """Extract the automaton at every checkpoint of RUN_DIR; write timeline.csv and timeline.json.

    Prints the memorisation epoch (training loss < 1e-3), the merger epoch (first checkpoint from which
    the extraction is closed and equivalent to the task and stays so) and the generalisation epoch
    (accuracy 1.0 at length 1000, or the longest test length, from then on). Example:
    `dfalens timeline runs/parity`.
    """

    if not run_dir.is_dir():
        raise CheckpointError(
            f"{run_dir} is not a directory; pass a run directory (dfalens train -o)"
        )
    if html_path is not None:
        check_output_file(html_path, "the report", (".html", ".htm"))
    out = out_dir if out_dir is not None else run_dir
    names = ["timeline.csv", "timeline.json"] + (["timeline.png"] if plot else [])
    check_output_dir(out)
    refuse_existing(out, names, force)
    set_kept("nothing was written; rerun the same command")
    tl = compute(
        run_dir,
        task,
        max_len=max_len,
        method=method,
        eps=eps,
        pooled=not per_checkpoint_eps,
        jobs=jobs,
        progress=True,
    )
    png = None
    with (
        DirectoryLock(out, name=".timeline.lock"),
        writing(out, "no timeline", [out / n for n in names]),
    ):
        refuse_existing(out, names, force)  # again: another process may have written them meanwhile
        csv_path, json_path = tl.write(out)
        if plot:
            png = out / "timeline.png"
            _plot(tl, png)
    page = write_report(tl, html_path)[0] if html_path is not None else None
    last = tl.rows[-1]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "task": tl.task,
                    "memorisation_epoch": tl.memorisation_epoch,
                    "merger_epoch": tl.merger_epoch,
                    "generalisation_epoch": tl.generalisation_epoch,
                    "last": last.to_dict(),
                    "files": [str(csv_path), str(json_path)]
                    + [str(p) for p in (png, page) if p is not None],
                },
                indent=2,
            )
        )
        return 0
    click.echo(f"{len(tl)} checkpoints, task {tl.task}, {tl.n_words} words each")
    click.echo(f"memorisation epoch (train loss < 1e-3): {epoch_text(tl.memorisation_epoch)}")
    click.echo(f"merger epoch (closed and equivalent from then on): {epoch_text(tl.merger_epoch)}")
    length = tl.settings.get("generalisation_length")
    click.echo(
        f"generalisation epoch (accuracy 1.0 at length {length or 'n/a'}): "
        f"{epoch_text(tl.generalisation_epoch)}"
    )
    verdict = (
        "equivalent"
        if last.equivalent
        else (
            f"not equivalent (counterexample {last.counterexample!r})"
            if last.counterexample is not None
            else "not equivalent"
        )
    )
    click.echo(
        f"last checkpoint (epoch {last.epoch}): {last.states_raw} states, {last.states_minimal} minimal, "
        f"{'closed' if last.closed else 'open'}, {verdict}"
    )
    extra = "".join(f" and {p}" for p in (png, page) if p is not None)
    click.echo(f"wrote {csv_path} and {json_path}{extra}")
    return 0


def _plot(tl: Timeline, path: Path) -> None:
    plots.save_figure(plots.timeline_plot(tl), path, dpi=110)
