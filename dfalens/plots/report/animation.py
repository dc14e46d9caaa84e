"""The run as a GIF or MP4: the automaton and the curves, one picture per shown checkpoint.

Frames are drawn with matplotlib (:func:`dfalens.plots.automaton` for the machine) and joined with Pillow
(GIF) or ffmpeg (MP4); the file is written atomically.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfalens._files import atomic_write, check_output_file
from dfalens.errors import ConfigError, DataError
from dfalens.plots.automaton import automaton
from dfalens.timeline import Timeline
from dfalens.timeline.frames import select_frames

__all__ = ["Animation", "ANIMATION_FRAMES", "write_animation", "needs"]

ANIMATION_FRAMES = 48
"""Pictures in an animation by default (a subsample dense around the landmarks for longer runs)."""

_MARKS = (("memorisation", "#7b3294"), ("merger", "#d95f02"), ("generalisation", "#1b9e77"))


@dataclass(frozen=True)
class Animation:
    """What :func:`write_animation` wrote: ``path``, ``bytes``, ``frames`` and ``size`` (w, h) pixels."""

    path: Path
    bytes: int
    frames: int
    size: tuple[int, int]


def needs(fmt: str) -> None:
    """Raise ConfigError when the tool ``fmt`` ("gif" or "mp4") needs is missing."""
    if fmt == "gif":
        try:
            import PIL.Image  # noqa: F401
        except ImportError:
            raise ConfigError("--gif needs Pillow: pip install pillow") from None
    elif fmt == "mp4":
        if shutil.which("ffmpeg") is None:
            raise ConfigError("--mp4 needs ffmpeg on PATH (e.g. apt-get install ffmpeg)")
    else:
        raise ConfigError(f"animations are .gif or .mp4, not {fmt!r}")


def _pictures(tl: Timeline, rows: list[int], dpi: int) -> list[bytes]:
    """One PNG per row: one figure, the curves drawn once, the machine and the cursor redrawn."""
    import matplotlib.pyplot as plt  # here, not at import: extract-dfa and the CLI stay light

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [1.1, 1]})
    ep = tl.epochs
    right.plot(ep, tl.column("states_raw"), color="#444", lw=1.4, label="raw states")
    right.plot(
        ep, tl.column("states_minimal"), color="#d62728", lw=1.2, ls="--", label="minimal states"
    )
    right.set_yscale("log")
    right.set_xlabel("epoch")
    right.set_ylabel("states")
    loss = tl.column("train_loss")
    if np.isfinite(loss).any():
        twin = right.twinx()
        twin.plot(ep, loss, color="#1f77b4", lw=1.0, label="training loss")
        twin.set_yscale("log")
        twin.set_ylabel("training loss", color="#1f77b4")
    right.fill_between(
        ep,
        0,
        1,
        where=tl.column("equivalent"),
        color="#2ca02c",
        alpha=0.2,
        transform=right.get_xaxis_transform(),
        label="equivalent",
    )
    for name, colour in _MARKS:
        epoch = getattr(tl, f"{name}_epoch")
        if epoch is not None:
            right.axvline(epoch, color=colour, ls=":", lw=1.2)
    cursor = right.axvline(ep[0], color="black", lw=1.6)
    right.legend(loc="upper right", fontsize=8)
    pngs = []
    try:
        for i, r in enumerate(rows):
            row = tl.rows[r]
            left.clear()
            automaton(
                tl.machines[r], ax=left, title=f"extracted automaton: {row.states_raw} states"
            )
            cursor.set_xdata([row.epoch, row.epoch])
            verdict = (
                "closed, equivalent" if row.equivalent else ("closed" if row.closed else "open")
            )
            right.set_title(f"epoch {row.epoch}: {verdict}")
            if i == 0:
                fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=dpi)
            pngs.append(buf.getvalue())
    finally:
        plt.close(fig)
    return pngs


def write_animation(
    tl: Timeline,
    path: str | os.PathLike[str],
    *,
    frames: int = ANIMATION_FRAMES,
    fps: float = 4.0,
    dpi: int = 72,
) -> Animation:
    """Write the run as a ``.gif`` (Pillow) or ``.mp4`` (ffmpeg).

    Parameters
    ----------
    tl : Timeline
        Computed with machines (:func:`dfalens.timeline.timeline`).
    path : path
        ``.gif`` or ``.mp4``; checked (and the tool looked for) before any drawing.
    frames : int, default 48
        Most pictures (every checkpoint for shorter runs).
    fps : float, default 4
    dpi : int, default 72
        A picture is 10 x 4 inches.
    """
    target = Path(path)
    fmt = target.suffix.lower().lstrip(".")
    check_output_file(target, "the animation", (".gif", ".mp4"))
    needs(fmt)
    if not tl.machines:
        raise DataError(
            "this timeline holds no machines (read from JSON?); recompute it with timeline()"
        )
    landmarks = (tl.memorisation_epoch, tl.merger_epoch, tl.generalisation_epoch)
    rows, _ = select_frames(tl.epochs, landmarks, max(2, frames))
    pngs = _pictures(tl, rows.tolist(), dpi)
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "gif":
        import PIL.Image

        images = [PIL.Image.open(io.BytesIO(p)).convert("RGB") for p in pngs]
        size = images[0].size
        palette = [im.quantize(colors=128) for im in images]
        buf = io.BytesIO()
        palette[0].save(
            buf,
            format="GIF",
            save_all=True,
            append_images=palette[1:],
            duration=int(1000 / fps),
            loop=0,
            optimize=True,
        )
        data = buf.getvalue()
    else:
        size = _png_size(pngs[0])
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.mp4"
            cmd = [
                "ffmpeg",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "image2pipe",
                "-framerate",
                str(fps),
                "-i",
                "-",
                "-vf",
                "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                "-pix_fmt",
                "yuv420p",
                str(out),
            ]
            done = subprocess.run(cmd, input=b"".join(pngs), capture_output=True, check=False)
            if done.returncode != 0 or not out.is_file():
                message = done.stderr.decode(errors="replace").strip().splitlines()
                raise ConfigError(f"ffmpeg failed: {message[-1] if message else 'no output'}")
            data = out.read_bytes()
    atomic_write(target, data)
    return Animation(target, len(data), len(pngs), size)


def _png_size(png: bytes) -> tuple[int, int]:
    width = int.from_bytes(png[16:20], "big")
    height = int.from_bytes(png[20:24], "big")
    return width, height
