"""``dfalens demo`` with the training shrunk to a few epochs (the real settings are run by `make demo`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from cli_invoke import invoke

from dfalens.cli import demo as demo_module
from dfalens.timeline import Timeline

torch.set_num_threads(1)


@pytest.fixture()
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    small = {
        **demo_module.DEMO_SETTINGS,
        "hidden": 8,
        "max_len": 3,
        "epochs": 4,
        "checkpoints": "every",
    }
    monkeypatch.setattr(demo_module, "DEMO_SETTINGS", small)


def test_demo_writes_everything(
    tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    code, text, err = invoke(["demo", "-o", str(out)], capsys)
    assert code == 0, err
    for name in ("timeline.png", "timeline.csv", "timeline.json", "run/run.json"):
        assert (out / name).is_file(), name
    for stem in ("automaton_raw", "automaton_minimal"):
        drawn = list(out.glob(f"{stem}.*"))
        assert drawn and drawn[0].suffix in (".svg", ".dot") and drawn[0].stat().st_size > 0
    for phrase in ("memorisation epoch", "merger epoch", "generalisation epoch", "final automaton"):
        assert phrase in text
    # the verdict line says exactly what the timeline's last row holds
    last = Timeline.from_json(out / "timeline.json").rows[-1]
    (line,) = [ln for ln in text.splitlines() if ln.startswith("final automaton:")]
    found = re.fullmatch(
        r"final automaton: (\d+) states \(largest tree: \d+\), (\d+) after minimisation, "
        r"(closed|open), (equivalent to parity|not equivalent to parity(?: \(they differ on (.*)\))?)",
        line,
    )
    assert found is not None, line
    assert (int(found[1]), int(found[2])) == (last.states_raw, last.states_minimal)
    assert found[3] == ("closed" if last.closed else "open")
    assert found[4].startswith("equivalent") == last.equivalent
    if not last.equivalent and last.counterexample is not None:
        assert found[5] == repr(last.counterexample)
    page = out / "report.html"
    assert f"report (open in a browser): {page}" in text
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    # a second call reuses the finished run instead of training again
    code, text, _ = invoke(["demo", "-o", str(out), "--jobs", "1"], capsys)
    assert code == 0 and "reusing the finished run" in text


def test_demo_config_is_the_paper_network() -> None:
    cfg = demo_module.demo_config()
    paper = demo_module.demo_config(paper=True)
    assert (cfg.cell, cfg.nonlinearity, cfg.h0, cfg.optimizer, cfg.loss, cfg.gain) == (
        paper.cell,
        paper.nonlinearity,
        paper.h0,
        paper.optimizer,
        paper.loss,
        paper.gain,
    )
    assert paper.hidden == 100 and paper.max_len == 10 and paper.epochs == 1000


def test_demo_bad_output(tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = invoke(["demo", "-o", str(blocker)], capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
