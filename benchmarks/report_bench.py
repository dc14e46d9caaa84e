"""Report budgets: the page of a run written (timeline + page), its size, and how soon headless Chromium
makes it interactive.

    python benchmarks/report_bench.py RUN_DIR [-o report.html] [--repeat 3]

The browser part needs playwright and a system Chromium (``chromium`` on PATH); without them it is skipped.
"Interactive" is the time from the start of navigation to the page's ready flag (data parsed, drawings
unpacked, first frame drawn).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import time
from pathlib import Path

from dfalens.plots.report import run_report, timeline_for


def _interactive(path: Path, repeat: int) -> list[float] | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        return None
    times = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        for _ in range(repeat):
            page = browser.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            started = time.perf_counter()
            page.goto(path.resolve().as_uri())
            page.wait_for_selector(".dfalens-report[data-ready]", timeout=60_000)
            times.append(time.perf_counter() - started)
            if errors:
                raise RuntimeError(f"page errors: {errors}")
            page.close()
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("-o", "--out", type=Path, default=Path("report.html"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}")
    started = time.perf_counter()
    tl = timeline_for(args.run_dir)
    computed = time.perf_counter()
    rep = run_report(args.run_dir, args.out, tl=tl)
    written = time.perf_counter()
    print(
        f"timeline {computed - started:.1f} s, page {written - computed:.1f} s, "
        f"total {written - started:.1f} s"
    )
    print(
        f"{rep.path}: {rep.bytes / 1e6:.2f} MB, {rep.frames} frames of {rep.checkpoints} checkpoints, "
        f"{rep.drawings} distinct drawings ({rep.frame_note})"
    )
    times = _interactive(rep.path, args.repeat)
    if times is None:
        print("interactive: not measured (needs playwright and chromium)")
    else:
        print("interactive after " + ", ".join(f"{t:.2f}" for t in times) + " s")


if __name__ == "__main__":
    main()
