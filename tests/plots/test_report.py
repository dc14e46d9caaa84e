"""The report written from a timeline: frames, drawings stored once, merges, Jupyter's view, the GIF."""

from __future__ import annotations

import base64
import gzip
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from report_helpers import EPOCHS, LANDMARKS, synthetic_timeline

from dfalens.automata.rendering import available_renderer
from dfalens.errors import ConfigError
from dfalens.plots.report import write_animation, write_report
from dfalens.timeline import Timeline
from dfalens.timeline.frames import timeline_payload

needs_graphviz = pytest.mark.skipif(
    available_renderer() is None, reason="no Graphviz renderer (dot or pygraphviz)"
)


def _data(page: str) -> dict:
    found = re.search(r'class="dfalens-data">(.*?)</script>', page, re.S)
    assert found is not None
    return json.loads(found.group(1))


@needs_graphviz
def test_payload_frames_merges_and_one_drawing_per_machine() -> None:
    tl = synthetic_timeline()
    data = timeline_payload(tl)
    frames = data["frames"]
    assert [f["epoch"] for f in frames] == list(EPOCHS)
    assert data["landmarks"] == LANDMARKS and data["frame_note"] == "every checkpoint (6)"
    # checkpoints 10 and 20 hold the same prefix tree, 40 and 50 the same parity machine: one drawing
    assert frames[1]["raw"] == frames[2]["raw"] and frames[4]["raw"] == frames[5]["raw"]
    assert len(data["svgs"]) == len({f["raw"] for f in frames} | {f["minimal"] for f in frames})
    assert frames[3]["merging"] == ["q0", "q1", "q2", "q3", "q4"]
    assert frames[4]["merging"] == [] and frames[5]["merging"] == []  # nothing after the last
    assert data["curves"]["states_raw"] == [r.states_raw for r in tl.rows]
    assert data["projection"] is None  # no run to read the states from


@needs_graphviz
def test_jupyter_view_and_a_timeline_read_from_json(tmp_path: Path) -> None:
    tl = synthetic_timeline()
    fragment = tl._repr_html_()
    assert fragment.startswith('<div class="dfalens-report">')
    assert [f["epoch"] for f in _data(fragment)["frames"]] == list(EPOCHS)
    tl.write(tmp_path)
    bare = Timeline.from_json(tmp_path / "timeline.json")  # no machines, no labels
    path, _ = write_report(bare, tmp_path / "bare.html")
    data = _data(path.read_text(encoding="utf-8"))
    assert data["n_svgs"] == 0 and all(f["raw"] is None for f in data["frames"])
    assert json.loads(gzip.decompress(base64.b64decode(data["svgs_gz"]))) == []
    assert data["landmarks"] == LANDMARKS


def test_bad_output_paths_leave_nothing(tmp_path: Path) -> None:
    tl = synthetic_timeline()
    with pytest.raises(ConfigError, match="ending in .html"):
        write_report(tl, tmp_path / "report.svg")
    with pytest.raises(ConfigError, match=r"\.gif or \.mp4"):
        write_animation(tl, tmp_path / "movie.avi")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_gif_of_the_run(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    anim = write_animation(synthetic_timeline(), tmp_path / "run.gif", frames=3, dpi=40)
    assert anim.frames == 3 and anim.path.stat().st_size == anim.bytes
    with pil.open(anim.path) as im:
        assert im.n_frames == 3 and im.size == anim.size == (400, 160)
        first = np.asarray(im.convert("RGB"))
        im.seek(2)
        last = np.asarray(im.convert("RGB"))
    assert not np.array_equal(first, last)  # the picture changes over training


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not on PATH")
def test_mp4_of_the_run(tmp_path: Path) -> None:
    anim = write_animation(synthetic_timeline(), tmp_path / "run.mp4", frames=3, dpi=40)
    assert anim.frames == 3 and anim.path.read_bytes()[4:8] == b"ftyp"
