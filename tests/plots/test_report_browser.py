"""The report in a real browser: headless Chromium opens the page from file:// and is driven like a user.

Needs the system Chromium (Debian's ``chromium``; ``.ci/run`` installs it) and playwright (the ``test``
extra; it downloads no browser here). Without them the tests skip and say why.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from report_helpers import EPOCHS, LANDMARKS, synthetic_timeline

from dfalens.automata.rendering import available_renderer
from dfalens.plots.report import run_report, write_report
from dfalens.timeline import timeline

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / ".pytest_cache" / "screenshots"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install 'dfalens[test]')"
    )
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium on PATH: apt-get install chromium (CI installs it in .ci/run)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


class Page:
    """A report opened in a fresh tab, collecting console errors."""

    def __init__(self, browser: object, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1250, "height": 1000})  # type: ignore[attr-defined]
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        started = time.perf_counter()
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_selector(".dfalens-report[data-ready]", timeout=20_000)
        self.ready_s = time.perf_counter() - started

    def text(self, role: str) -> str:
        return self.page.inner_text(f'[data-role="{role}"]')

    def attr(self, role: str, name: str) -> str | None:
        return self.page.get_attribute(f'[data-role="{role}"]', name)

    def slide(self, index: int) -> None:
        slider = self.page.locator('[data-role="slider"]')
        slider.evaluate(
            "(el, i) => { el.value = String(i); el.dispatchEvent(new Event('input')); }", index
        )

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.mark.skipif(available_renderer() is None, reason="no Graphviz renderer (dot or pygraphviz)")
def test_slider_keys_and_landmarks(browser: object, tmp_path: Path) -> None:
    tl = synthetic_timeline()
    page_path, _ = write_report(tl, tmp_path / "report.html", load_states=False)
    view = Page(browser, page_path)
    assert view.ready_s < 5.0
    assert view.text("epoch") == "0" and view.text("states-raw") == "(1 states)"
    first_svg = view.attr("automaton-raw", "data-svg")
    assert view.page.locator('[data-role="automaton-raw"] svg g.node').count() == 1

    view.slide(3)  # epoch 30: the longer words merged by parity, 5 states
    assert view.text("epoch") == "30" and view.text("states-raw") == "(5 states)"
    assert view.text("states-min") == "(2 states)"
    assert view.attr("automaton-raw", "data-svg") != first_svg
    assert view.page.locator('[data-role="automaton-raw"] svg g.node').count() == 5
    # states that merge by the next checkpoint are highlighted: here all five fold into two
    titles = "els => els.map(e => e.textContent)"
    raw = '[data-role="automaton-raw"]'
    merging = view.page.locator(f"{raw} g.node.dl-merging title").evaluate_all(titles)
    assert sorted(merging) == ["q0", "q1", "q2", "q3", "q4"]
    assert "differs on '1'" in view.text("equivalence")

    view.page.keyboard.press("ArrowRight")
    assert view.text("epoch") == "40"
    assert "equivalent to parity" in view.text("equivalence")
    assert view.page.locator(f"{raw} g.node.dl-merging").count() == 0  # nothing merges after 40
    view.page.keyboard.press("ArrowLeft")
    view.page.keyboard.press("ArrowLeft")
    assert view.text("epoch") == "20" and view.text("states-raw") == "(15 states)"
    # from the prefix tree at 20 to 30, the 12 words of length 2 and 3 fold into two parity states
    # while ε, 0 and 1 stay alone
    merging = view.page.locator(f"{raw} g.node.dl-merging title").evaluate_all(titles)
    assert len(merging) == 12

    # the landmark markers sit where the timeline says, in order along the axis
    marks = view.page.locator("[data-landmark]")
    found = {
        marks.nth(i).get_attribute("data-landmark"): int(marks.nth(i).get_attribute("data-epoch"))
        for i in range(marks.count())
    }
    assert found == LANDMARKS
    xs = {k: float(view.page.get_attribute(f'[data-landmark="{k}"]', "data-x")) for k in found}
    assert xs["memorisation"] < xs["generalisation"] < xs["merger"]

    # a click on the curves jumps to the nearest checkpoint; the cursor follows
    box = view.page.locator('[data-role="curves"]').bounding_box()
    assert box is not None
    view.page.mouse.click(box["x"] + box["width"] - 14, box["y"] + box["height"] / 2)
    assert view.text("epoch") == str(EPOCHS[-1])
    cursor_x = float(view.page.get_attribute('[data-role="cursor"]', "x1"))
    assert cursor_x > xs["merger"]

    # play runs to the end and stops
    view.slide(0)
    view.page.click('[data-role="play"]')
    view.page.wait_for_function(
        "() => document.querySelector('[data-role=epoch]').textContent === '50'", timeout=10_000
    )
    assert "play" in view.text("play")
    assert view.errors == []
    shot = view.shot("report_synthetic.png")
    assert shot.stat().st_size > 10_000


@pytest.mark.skipif(available_renderer() is None, reason="no Graphviz renderer (dot or pygraphviz)")
def test_two_inline_views_in_one_page(browser: object, tmp_path: Path) -> None:
    # what Jupyter does with _repr_html_: fragments inside a page, each driving only itself
    tl = synthetic_timeline()
    doc = tmp_path / "notebook.html"
    body = "".join(f"<div class='cell'>{tl._repr_html_()}</div>" for _ in range(2))
    doc.write_text(f"<!DOCTYPE html><html><body>{body}</body></html>", encoding="utf-8")
    view = Page(browser, doc)
    view.page.wait_for_function(
        "() => document.querySelectorAll('.dfalens-report[data-ready]').length === 2"
    )
    first, second = view.page.locator(".dfalens-report").all()
    first.locator('[data-role="slider"]').evaluate(
        "el => { el.value = '5'; el.dispatchEvent(new Event('input')); }"
    )
    assert first.locator('[data-role="epoch"]').inner_text() == "50"
    assert second.locator('[data-role="epoch"]').inner_text() == "0"
    second.focus()
    view.page.keyboard.press("ArrowRight")  # keys go to the focused view only
    assert second.locator('[data-role="epoch"]').inner_text() == "10"
    assert first.locator('[data-role="epoch"]').inner_text() == "50"
    assert view.errors == []


@pytest.mark.skipif(available_renderer() is None, reason="no Graphviz renderer (dot or pygraphviz)")
def test_views_whose_scripts_run_out_of_place(browser: object, tmp_path: Path) -> None:
    # classic Jupyter inserts the HTML, then runs each script as a new element in <head>
    fragment = synthetic_timeline()._repr_html_()
    doc = tmp_path / "classic.html"
    doc.write_text("<!DOCTYPE html><html><head></head><body></body></html>", encoding="utf-8")
    view = Page.__new__(Page)
    view.page = browser.new_page()  # type: ignore[attr-defined]
    view.errors = []
    view.page.on("pageerror", lambda e: view.errors.append(str(e)))
    view.page.goto(doc.resolve().as_uri())
    view.page.evaluate(
        """html => { for (let k = 0; k < 2; k++) {
            const cell = document.createElement('div'); cell.innerHTML = html;
            document.body.appendChild(cell);
            for (const old of cell.querySelectorAll('script:not([type])')) {
                const s = document.createElement('script'); s.textContent = old.textContent;
                document.head.appendChild(s); } } }""",
        fragment,
    )
    view.page.wait_for_function(
        "() => document.querySelectorAll('.dfalens-report[data-ready]').length === 2"
    )
    epochs = view.page.locator('[data-role="epoch"]').all_inner_texts()
    assert epochs == ["0", "0"] and view.errors == []


@pytest.mark.slow
@pytest.mark.skipif(available_renderer() is None, reason="no Graphviz renderer (dot or pygraphviz)")
def test_report_of_a_trained_run(browser: object, tiny_run: Path, tmp_path: Path) -> None:
    timeline(tiny_run).write(tiny_run)  # what `dfalens timeline RUN` leaves behind
    saved = json.loads((tiny_run / "timeline.json").read_text())
    out = run_report(tiny_run, tmp_path / "report.html").path
    view = Page(browser, out)
    assert view.ready_s < 5.0
    n = len(saved["rows"])
    assert view.text("frame-pos") == f"frame 1 of {n}"
    view.slide(n - 1)
    assert view.text("epoch") == str(saved["rows"][-1]["epoch"])
    assert view.text("states-raw") == f"({saved['rows'][-1]['states_raw']} states)"
    marks = view.page.locator("[data-landmark]")
    found = {
        marks.nth(i).get_attribute("data-landmark"): int(marks.nth(i).get_attribute("data-epoch"))
        for i in range(marks.count())
    }
    expected = {
        k: saved[f"{k}_epoch"]
        for k in ("memorisation", "merger", "generalisation")
        if saved[f"{k}_epoch"] is not None
    }
    assert found == expected
    # the projection is drawn, and hovering a point names its word
    canvas = view.page.locator('[data-role="projection"]')
    painted = canvas.evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) n++; } return n; }"
    )
    assert painted > 100
    # hovering a point names its word and its state
    x, y = view.page.evaluate("document.querySelector('.dfalens-report').dfalens.point(0)")
    box = canvas.bounding_box()
    assert box is not None
    view.page.mouse.move(box["x"] + x + 1, box["y"] + y + 1)
    tip = view.text("tooltip")
    near = view.page.evaluate(
        """() => { const r = document.querySelector('.dfalens-report');
        const d = JSON.parse(r.querySelector('script.dfalens-data').textContent).projection;
        const p0 = r.dfalens.point(0);
        return d.words.filter((w, i) => { const p = r.dfalens.point(i);
            return Math.hypot(p[0] - p0[0], p[1] - p0[1]) < 3; }); }"""
    )
    assert tip.split()[0] in near and "state q" in tip  # word 0 ("0") or one drawn on top of it
    view.page.select_option('[data-role="colour"]', "state")
    assert view.errors == []
    view.shot("report_trained.png")
