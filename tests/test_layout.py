"""The package's architecture, checked: imports run one way and none hide inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dfalens

ROOT = Path(dfalens.__file__).parent
ORDER = ("automata", "trainers", "probes", "timeline", "theory", "sweeps", "plots", "cli")
"""Packages from the bottom up: each may import those before it (and the shared base modules)."""
BASE = {"errors", "_files", "_executors", "_budget"}


def _modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py"))


def _rank(module: str) -> int:
    """-1 for the base modules, else the position of the package in ORDER."""
    parts = module.split(".")
    if parts[0] != "dfalens" or len(parts) == 1:
        return -2  # not dfalens, or the top-level package itself
    if parts[1] in BASE:
        return -1
    return ORDER.index(parts[1])


def _imports(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node, alias.name) for alias in node.names)
    return found


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    return ".".join(rel.parts)


def test_every_module_belongs_to_a_known_package() -> None:
    for path in _modules():
        parts = path.relative_to(ROOT).parts
        assert len(parts) == 1 or parts[0] in ORDER, f"{path}: not in one of the packages {ORDER}"
        if len(parts) == 1:
            assert path.stem in BASE | {"__init__"}, f"{path}: a top-level module outside BASE"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_one_way(path: Path) -> None:
    here = _rank(_package(path)) if path.parent != ROOT else -1
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node, module in _imports(tree):
        if not module.startswith("dfalens"):
            continue
        there = _rank(module)
        assert there <= here, (
            f"{path.relative_to(ROOT)}:{node.lineno} imports {module}, which sits above it "
            f"(order: base <- {' <- '.join(ORDER)})"
        )


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_dfalens_import_inside_a_function(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for node, module in _imports(fn):
                assert not module.startswith("dfalens"), (
                    f"{path.relative_to(ROOT)}:{node.lineno} imports {module} inside {fn.name}(): "
                    "a hidden cycle; move the concept to the package where it belongs"
                )


def test_automata_needs_no_torch() -> None:
    for path in (ROOT / "automata").rglob("*.py"):
        for node, module in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            assert module.split(".")[0] != "torch", f"{path}:{node.lineno} imports torch"


def test_dir_shows_the_api() -> None:
    assert dir(dfalens) == sorted(dfalens.__all__)
    assert all(not name.startswith("_") or name == "__version__" for name in dir(dfalens))
    for package in ORDER:
        assert getattr(dfalens, package).__name__ == f"dfalens.{package}"
