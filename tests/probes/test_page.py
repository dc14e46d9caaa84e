"""The report page's building blocks: safe inline JSON, one drawing per distinct machine, the PCA
projection, and the page of one extraction (also what Jupyter shows)."""

from __future__ import annotations

import base64
import gzip
import json
import re

import numpy as np
import pytest
import torch

from dfalens.automata import Machine, mod_count, parity
from dfalens.automata.rendering import available_renderer
from dfalens.probes import collect, extract, from_step, verdict
from dfalens.probes.page import (
    SvgStore,
    classes,
    extraction_payload,
    pack,
    project,
    render_page,
    subsample_words,
)


def _payload(page: str) -> dict:
    text = re.search(
        r'<script type="application/json" class="dfalens-data">(.*?)</script>', page, re.S
    )
    assert text is not None
    return json.loads(text.group(1))


def _svgs(data: dict) -> list[str]:
    return json.loads(gzip.decompress(base64.b64decode(data["svgs_gz"])))


def test_page_is_self_contained_and_script_safe() -> None:
    evil = "</script><script>alert(1)</script><!--"
    page = render_page({"kind": "extraction", "title": evil, "frames": [], "svgs": [evil]})
    assert page.count("</script>") == 2  # the data block and the script, nothing injected
    assert "<title>&lt;/script&gt;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no network resource
    data = _payload(page)
    assert data["title"] == evil and _svgs(data) == [evil] and data["n_svgs"] == 1
    fragment = render_page({"kind": "extraction", "frames": [], "svgs": []}, fragment=True)
    assert fragment.startswith('<div class="dfalens-report">') and "<html" not in fragment


def test_projection_is_one_fit_scaled_over_all_frames() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(30, 5)) * np.array([5.0, 2.0, 0.1, 0.1, 0.1])
    frames = np.stack([base, base * 2.0])  # the second frame is the first, stretched
    xy, explained = project(frames)
    assert xy.shape == (2, 30, 2) and xy.dtype == np.uint8
    assert xy.min() == 0 and xy.max() == 255
    assert explained.sum() > 0.98 and explained[0] >= explained[1]
    # one common scale: the stretched frame spreads wider than the first
    assert np.ptp(xy[1, :, 0].astype(int)) > 1.5 * np.ptp(xy[0, :, 0].astype(int))
    np.testing.assert_array_equal(project(frames)[0], xy)  # deterministic, signs included


def test_pack_round_trips_and_clips() -> None:
    values = np.array([0, 1, 300, 65535, 70000])
    raw = base64.b64decode(pack(values, "u2"))
    np.testing.assert_array_equal(np.frombuffer(raw, "<u2"), [0, 1, 300, 65535, 65535])
    assert base64.b64decode(pack(np.array([-3, 7]))) == bytes([0, 7])
    np.testing.assert_array_equal(classes(np.array([[0.2], [0.7]])), [0, 1])
    np.testing.assert_array_equal(classes(np.array([[0.9, 0.1], [0.2, 0.8]])), [0, 1])
    np.testing.assert_array_equal(subsample_words(np.array([0, 1, 1, 2, 2]), 3), [1, 2, 3])


@pytest.mark.skipif(available_renderer() is None, reason="no Graphviz renderer (dot or pygraphviz)")
def test_svg_store_draws_each_distinct_machine_once() -> None:
    store = SvgStore(limit=5)
    a = parity()
    again = Machine(a.delta.copy(), a.output.copy(), a.start, a.alphabet)
    big = Machine(np.zeros((6, 2), dtype=int), np.zeros(6, dtype=int))
    assert store.index(a) == 0 and store.index(again) == 0
    assert store.index(big) is None  # over the limit: not drawn
    assert len(store.svgs) == 1 and store.svgs[0].startswith("<svg")
    assert "<title>q0</title>" in store.svgs[0] and "<?xml" not in store.svgs[0]
    assert store.spent == len(store.svgs[0]) and not store.over_budget
    tight = SvgStore(budget=len(store.svgs[0]))  # room for exactly one drawing
    tight.draw_all([a, mod_count(3), a])
    assert len(tight.svgs) == 1 and tight.index(a) == 0 and tight.index(mod_count(3)) is None
    assert tight.over_budget


def _parity_probe():
    def step(h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        flip = s.to(h.dtype)[:, None]
        return torch.where(flip > 0, 1.0 - h, h)

    def readout(h: torch.Tensor) -> torch.Tensor:
        return torch.cat([1 - h[:, :1], h[:, :1]], dim=1)

    return from_step(lambda b: torch.zeros(b, 2), step, readout, alphabet="01")


def test_extraction_page_and_jupyter_view() -> None:
    probe = _parity_probe()
    states = collect(probe, 5)
    ex = extract(states, method="threshold", eps=0.1)
    tv = verdict(ex, parity(), probe)
    page = render_page(extraction_payload(ex, states, task_verdict=tv, task_name="parity"))
    data = _payload(page)
    frame = data["frames"][0]
    assert frame["states_minimal"] == ex.n_minimal == 2 and frame["equivalent"] is True
    assert frame["counterexample"] is None and frame["closed"] is True
    assert frame["consistent"] is ex.consistent and frame["verdict_text"] == str(tv)
    proj = data["projection"]
    assert proj["n"] == 62 and proj["words"][:3] == [
        "0",
        "1",
        "00",
    ]  # words up to length 5, ε left out
    labels = np.frombuffer(base64.b64decode(proj["state"]), "<u2")
    np.testing.assert_array_equal(labels, ex.labels[1:63])
    assert [c["method"] for c in data["candidates"]] == ["threshold"]
    not_it = verdict(ex, Machine([[0, 0]], [1]), probe)  # the network answers 0 on "0"
    wrong = _payload(render_page(extraction_payload(ex, task_verdict=not_it, task_name="one")))
    assert wrong["frames"][0]["equivalent"] is False and wrong["frames"][0]["counterexample"] == "0"
    assert "the network answers 0" in wrong["frames"][0]["verdict_text"]
    assert wrong["projection"] is None
    html = ex._repr_html_()
    assert (
        html.startswith('<div class="dfalens-report">') and _payload(html)["kind"] == "extraction"
    )
