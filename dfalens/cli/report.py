"""``dfalens report RUN -o report.html``: the run as one self-contained, interactive page (and a GIF)."""

from __future__ import annotations

from pathlib import Path

import click

from dfalens._files import check_output_file
from dfalens.cli._format import epoch_text
from dfalens.errors import CheckpointError
from dfalens.plots.report import run_report, timeline_for, write_animation
from dfalens.plots.report.animation import needs
from dfalens.timeline.frames import MAX_FRAMES


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(path_type=Path),
    help="The HTML page to write (default: RUN_DIR/report.html unless only --gif/--mp4 is given).",
)
@click.option("--task", help="Ground truth (default: the run's task).")
@click.option(
    "--timeline",
    "saved",
    type=click.Path(path_type=Path),
    help="A timeline.json of this run whose settings to reuse (default: RUN_DIR/timeline.json if present).",
)
@click.option(
    "--gif", type=click.Path(path_type=Path), help="Also write the run as a GIF (needs Pillow)."
)
@click.option(
    "--mp4", type=click.Path(path_type=Path), help="Also write the run as an MP4 (needs ffmpeg)."
)
@click.option(
    "--frames",
    type=click.IntRange(min=2),
    default=MAX_FRAMES,
    show_default=True,
    help="Most checkpoints shown in the page (longer runs: a subsample dense around the landmarks).",
)
@click.option("--jobs", type=int, help="Worker processes for the timeline (default: automatic).")
def report(
    run_dir: Path,
    out: Path | None,
    task: str | None,
    saved: Path | None,
    gif: Path | None,
    mp4: Path | None,
    frames: int,
    jobs: int | None,
) -> int:
    """Write an interactive report of RUN_DIR: the automaton at every checkpoint, the curves, the hidden
    states and the verdict, in one HTML file that opens offline (no network, no CDN).

    Example: `dfalens report runs/parity -o report.html --gif merger.gif`.
    """
    if not run_dir.is_dir():
        raise CheckpointError(
            f"{run_dir} is not a directory; pass a run directory (dfalens train -o)"
        )
    if out is None and gif is None and mp4 is None:
        out = run_dir / "report.html"
    # every output is checked before any work, so a bad one leaves nothing half-written
    if out is not None:
        check_output_file(out, "the report", (".html", ".htm"))
    for path, fmt in ((gif, "gif"), (mp4, "mp4")):
        if path is not None:
            check_output_file(path, f"the {fmt.upper()}", (f".{fmt}",))
            needs(fmt)
    tl = timeline_for(run_dir, task=task, saved=saved, jobs=jobs, progress=True)
    if out is not None:
        rep = run_report(run_dir, out, limit=frames, tl=tl)
        click.echo(
            f"wrote {rep.path} ({_size(rep.bytes)}): {rep.frames} frames ({rep.frame_note}), "
            f"{rep.drawings} distinct automaton drawings"
        )
    for path in (gif, mp4):
        if path is not None:
            anim = write_animation(tl, path)
            click.echo(
                f"wrote {anim.path} ({_size(anim.bytes)}): {anim.frames} frames of "
                f"{anim.size[0]}x{anim.size[1]} pixels"
            )
    marks = ", ".join(
        f"{name} {epoch_text(getattr(tl, f'{name}_epoch'))}"
        for name in ("memorisation", "merger", "generalisation")
    )
    click.echo(f"epochs: {marks}")
    return 0
