"""Rendering: a real SVG through pygraphviz when present, the DOT fallback, Jupyter display."""

from __future__ import annotations

import importlib.util

import pytest

from dfalens.automata import Machine, RenderWarning, mod_count, parity, render, tomita
from dfalens.automata import rendering as render_mod
from dfalens.errors import ConfigError

HAS_RENDERER = (
    importlib.util.find_spec("pygraphviz") is not None
    or render_mod.available_renderer() is not None
)
needs_renderer = pytest.mark.skipif(not HAS_RENDERER, reason="no Graphviz renderer installed")


@pytest.fixture
def no_renderer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_mod.shutil, "which", lambda name: None)
    monkeypatch.setattr(render_mod, "_has_pygraphviz", lambda: False)


@needs_renderer
def test_renders_a_real_svg_and_png(tmp_path) -> None:
    out = render(tomita(3), tmp_path / "sub" / "t3.svg")
    assert out == tmp_path / "sub" / "t3.svg"
    svg = out.read_text()
    assert "<svg" in svg and ">q4<" in svg and svg.count('<g id="node') == 5
    assert svg.count('<g id="edge') == 10  # 9 merged transitions and the start arrow
    png = render(parity(), tmp_path / "p.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png", "sub"]  # no temp files left
    assert tomita(1).render(tmp_path / "t1.pdf").read_bytes()[:4] == b"%PDF"


def test_dot_is_written_without_any_renderer(tmp_path, no_renderer: None) -> None:
    out = render(mod_count(3), tmp_path / "m.dot", hide_sink=True)
    assert out.read_text().startswith('digraph "machine"')


def test_fallback_writes_dot_beside_the_image_with_a_hint(tmp_path, no_renderer: None) -> None:
    assert render_mod.available_renderer() is None
    with pytest.warns(RenderWarning, match=r"pip install 'dfalens\[render\]'") as record:
        out = render(tomita(2), tmp_path / "t2.svg")
    assert out == tmp_path / "t2.dot"
    assert not (tmp_path / "t2.svg").exists()
    assert '"__start__" -> "q0"' in out.read_text()
    assert "dot -Tsvg" in str(record[0].message)


@needs_renderer
def test_a_failing_dot_binary_falls_back_to_pygraphviz(tmp_path, monkeypatch) -> None:
    pytest.importorskip("pygraphviz")
    graphviz = pytest.importorskip("graphviz")
    monkeypatch.setattr(render_mod.shutil, "which", lambda name: "/nonexistent/dot")

    def broken(self, *args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(graphviz.Source, "pipe", broken)
    assert render_mod.available_renderer() == "graphviz"
    out = render(parity(), tmp_path / "p.svg")
    assert "<svg" in out.read_text()


def test_a_broken_renderer_falls_back_to_dot(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(render_mod, "_renderers", lambda: ["pygraphviz"])

    def boom(dot: str, fmt: str, renderer: str) -> bytes:
        raise RuntimeError("layout crashed\nsecond line")

    monkeypatch.setattr(render_mod, "_render_bytes", boom)
    with pytest.warns(RenderWarning, match=r"\(pygraphviz: RuntimeError: layout crashed\); wrote"):
        out = render(parity(), tmp_path / "p.png")
    assert out.suffix == ".dot"


def test_unsupported_suffix() -> None:
    with pytest.raises(ConfigError, match=r"\.svg, \.png, \.pdf or \.dot"):
        render(parity(), "picture.jpeg")


@needs_renderer
def test_jupyter_bundle_has_svg_and_text() -> None:
    bundle = tomita(4)._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"]
    assert "state" in bundle["text/plain"]


def test_jupyter_bundle_without_renderer_and_never_raising(no_renderer: None, monkeypatch) -> None:
    bundle = tomita(4)._repr_mimebundle_()
    assert set(bundle) == {"text/plain"} and "q3" in bundle["text/plain"]

    def boom(*args, **kwargs):
        raise ValueError("broken")

    monkeypatch.setattr(render_mod, "to_table", boom)
    assert render_mod.mimebundle(parity()) == {"text/plain": repr(parity())}
    monkeypatch.setattr(render_mod, "mimebundle", boom)
    assert parity()._repr_mimebundle_() == {"text/plain": repr(parity())}


def test_big_machines_are_shown_as_text_only(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(render_mod, "image_bytes", lambda *a, **k: calls.append(1))
    big = Machine([[i + 1 if i < 499 else 0] for i in range(500)], [0] * 500, alphabet=("a",))
    bundle = render_mod.mimebundle(big)
    assert set(bundle) == {"text/plain"} and not calls
