"""One vocabulary across the package, checked: no public signature takes the retired parameter names.

A merge distance is ``eps`` (relative to the state scale) or ``eps_abs`` (absolute), never a ``relative``
flag; the empty word is ``include_empty``. The old names still work for one release through decorators
that keep them out of every signature, so this test keeps the public API from growing them back.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import dfalens

ROOT = Path(dfalens.__file__).parent
RETIRED = {"relative", "ignore_empty", "include_root"}
PACKAGES = ("automata", "trainers", "probes", "timeline", "theory", "sweeps", "plots", "cli")


def _public_modules() -> list[Path]:
    out = []
    for p in sorted(ROOT.rglob("*.py")):
        parts = p.relative_to(ROOT).with_suffix("").parts
        if not any(part.startswith("_") and part != "__init__" for part in parts):
            out.append(p)
    return out


def _args(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    a = fn.args
    return [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]


def _public_functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Module-level functions and methods of module-level classes whose names are public."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith(
            "_"
        ):
            found.append(node)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            found.extend(
                m
                for m in node.body
                if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
                and (not m.name.startswith("_") or m.name == "__init__")
            )
    return found


@pytest.mark.parametrize("path", _public_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_public_function_takes_a_retired_name(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for fn in _public_functions(tree):
        bad = RETIRED & set(_args(fn))
        assert not bad, (
            f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name}() takes {sorted(bad)}: use eps / eps_abs "
            "and include_empty (old names belong in a deprecation decorator, not the signature)"
        )


@pytest.mark.parametrize("package", PACKAGES)
def test_exported_signatures_use_one_vocabulary(package: str) -> None:
    """Through the decorators too: ``inspect.signature`` of every export has no retired name."""
    mod = importlib.import_module(f"dfalens.{package}")
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name)
        targets = [obj] if inspect.isfunction(obj) else []
        if inspect.isclass(obj):
            targets = [
                f
                for n, f in vars(obj).items()
                if inspect.isfunction(f) and (not n.startswith("_") or n == "__init__")
            ]
        for fn in targets:
            params = set(inspect.signature(fn).parameters)
            assert not RETIRED & params, f"dfalens.{package}.{name}: {sorted(RETIRED & params)}"
            assert not {"eps", "relative"} <= params


def test_one_return_type_per_method() -> None:
    from dfalens.timeline.history import Block, History

    assert inspect.signature(History.scale).return_annotation == "float"
    assert inspect.signature(History.scales).return_annotation == "np.ndarray"
    assert inspect.signature(Block.states).return_annotation == "tuple[np.ndarray, np.ndarray]"
    assert inspect.signature(Block.hidden).return_annotation == "np.ndarray"
