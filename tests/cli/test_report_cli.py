"""``dfalens report``, ``dfalens timeline --html`` and ``extract-dfa -o x.html``: what they write and say,
and bad input answered with one line, exit 2 and nothing half-written."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from cli_invoke import invoke

from dfalens.automata.rendering import available_renderer
from dfalens.trainers import make_config, train

torch.set_num_threads(1)

pytestmark = pytest.mark.skipif(
    available_renderer() is None, reason="no Graphviz renderer (dot or pygraphviz)"
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "run"
    cfg = make_config(
        "paper", hidden=16, max_len=4, epochs=6, checkpoints="every", test_lengths=(25,), seed=0
    )
    train(cfg, out)
    return out


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2, (out, err)
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    return err


@pytest.mark.slow
def test_report_page_and_gif(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page, gif = tmp_path / "sub" / "report.html", tmp_path / "merger.gif"
    code, out, err = invoke(
        ["report", str(run_dir), "-o", str(page), "--gif", str(gif), "--jobs", "1"], capsys
    )
    assert code == 0, err
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "dfalens-data" in text
    assert "7 frames (every checkpoint (7))" in out
    assert gif.read_bytes()[:6] == b"GIF89a"
    assert f"wrote {gif}" in out and "frames of " in out and "pixels" in out
    assert "epochs: memorisation" in out


@pytest.mark.slow
def test_timeline_html_and_extract_html(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "tl.html"
    code, out, err = invoke(
        ["timeline", str(run_dir), "-o", str(tmp_path), "--jobs", "1", "--html", str(page)], capsys
    )
    assert code == 0, err
    assert str(page) in out and page.stat().st_size > 1000
    one = tmp_path / "one.html"
    ckpt = sorted((run_dir / "checkpoints").glob("epoch_*.safetensors"))[-1]
    code, out, err = invoke(
        ["extract", str(ckpt), "--task", "parity", "--max-len", "4", "-o", str(one)], capsys
    )
    assert code in (0, 3), err  # 3: a 6-epoch network is not parity yet; the page is written anyway
    text = one.read_text(encoding="utf-8")
    data = json.loads(text.split('class="dfalens-data">', 1)[1].split("</script>", 1)[0])
    assert data["kind"] == "extraction" and data["projection"]["n"] == 30
    assert data["candidates"] and data["frames"][0]["equivalent"] in (True, False)


def test_run_without_checkpoints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    (empty / "checkpoints").mkdir(parents=True)
    out_page = tmp_path / "r.html"
    err = _one_line_error(*invoke(["report", str(empty), "-o", str(out_page)], capsys))
    assert "no epoch_" in err and not out_page.exists()


@pytest.mark.slow
def test_run_with_one_checkpoint(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = tmp_path / "one"
    (one / "checkpoints").mkdir(parents=True)
    shutil.copy(run_dir / "run.json", one / "run.json")
    first = sorted((run_dir / "checkpoints").glob("epoch_*.safetensors"))[0]
    shutil.copy(first, one / "checkpoints" / first.name)
    err = _one_line_error(*invoke(["report", str(one), "--gif", str(tmp_path / "a.gif")], capsys))
    assert "1 checkpoint" in err and "at least two" in err
    assert _files(one) == ["checkpoints", "run.json"] and not (tmp_path / "a.gif").exists()


@pytest.mark.slow
def test_stale_timeline(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = invoke(["timeline", str(run_dir), "-o", str(tmp_path), "--jobs", "1"], capsys)
    assert code == 0, err
    saved = json.loads((tmp_path / "timeline.json").read_text())
    saved["rows"] = saved["rows"][:-1]  # a timeline of an earlier, shorter state of the run
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(saved))
    page = tmp_path / "r.html"
    err = _one_line_error(
        *invoke(["report", str(run_dir), "-o", str(page), "--timeline", str(stale)], capsys)
    )
    assert "6 rows but the run has 7 checkpoints" in err and not page.exists()


def test_unwritable_outputs(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    before = _files(tmp_path)
    for args in (
        ["-o", str(blocker / "r.html")],  # a folder that is a file
        ["-o", str(tmp_path / "r.txt")],  # not a page
        ["-o", str(tmp_path)],  # a directory
        ["--gif", str(tmp_path / "m.png")],  # not a GIF
    ):
        err = _one_line_error(*invoke(["report", str(run_dir), *args], capsys))
        assert "cannot write" in err or "directory" in err or "takes a .gif" in err
    assert _files(tmp_path) == before


def test_gif_without_pillow(
    run_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    err = _one_line_error(
        *invoke(
            [
                "report",
                str(run_dir),
                "-o",
                str(tmp_path / "r.html"),
                "--gif",
                str(tmp_path / "m.gif"),
            ],
            capsys,
        )
    )
    assert "needs Pillow" in err and _files(tmp_path) == []
