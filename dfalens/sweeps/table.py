"""Grids of settings and the resumable results table of a sweep.

A sweep directory holds ``sweep.json`` (what was asked: the grid and the fixed settings) and
``results.csv`` (one row per finished cell). Rows are appended as cells finish, so a killed sweep loses at
most the cells in flight; rerunning the same command skips the finished cells. A directory that holds a
different sweep is refused before anything is written.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dfalens._budget import cell_budget, check_cells
from dfalens._files import atomic_write
from dfalens.errors import ConfigError

__all__ = [
    "parse_values",
    "parse_grid",
    "expand_grid",
    "format_value",
    "ResultsTable",
    "RENAMED_COLUMNS",
    "current_names",
]

RENAMED_COLUMNS = {"states": "states_raw", "minimal_states": "states_minimal_trimmed"}
"""Columns of ``results.csv`` renamed since the previous version (old name -> new name): the counts
have one name everywhere (``states_raw``, ``states_minimal`` complete, ``states_minimal_trimmed``).
Tables written with the old names are read, resumed and rewritten under the new ones."""


def current_names(row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with old column names (:data:`RENAMED_COLUMNS`) replaced by the current ones.

    A column whose new name is already present keeps its old name (nothing is overwritten).
    """
    return {
        RENAMED_COLUMNS[k] if k in RENAMED_COLUMNS and RENAMED_COLUMNS[k] not in row else k: v
        for k, v in row.items()
    }


_RANGE = re.compile(r"^(?P<lo>[-+0-9.eE]+)\.\.(?P<hi>[-+0-9.eE]+)(?::(?P<n>\d+))?$")


def format_value(value: Any) -> str:
    """The text of one table cell: floats with 10 significant digits, booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.10g}"
    if value is None:
        return ""
    return str(value)


def _base_types(tp: Any) -> tuple[Any, ...]:
    """The concrete types a field annotation admits (``int | None`` -> (int, NoneType))."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return tuple(t for a in typing.get_args(tp) for t in _base_types(a))
    if origin is typing.Literal:
        return (tp,)
    return (tp,)


def _convert(key: str, text: str, tp: Any) -> Any:
    """Convert the text ``text`` of grid key ``key`` to the field type ``tp``."""
    text = text.strip()
    options = _base_types(tp)
    if type(None) in options and text.lower() in ("none", "null"):
        return None
    for opt in options:
        if typing.get_origin(opt) is typing.Literal:
            allowed = typing.get_args(opt)
            for a in allowed:
                if str(a) == text:
                    return a
            continue
        try:
            if opt is bool:
                low = text.lower()
                if low in ("true", "1", "yes"):
                    return True
                if low in ("false", "0", "no"):
                    return False
                continue
            if opt is int:
                return int(text)
            if opt is float:
                value = float(text)
                if not math.isfinite(value):
                    continue
                return value
            if opt is str:
                return text
        except ValueError:
            continue
    names = ", ".join(
        "/".join(map(str, typing.get_args(o)))
        if typing.get_origin(o) is typing.Literal
        else getattr(o, "__name__", str(o))
        for o in options
    )
    raise ConfigError(f"grid value {text!r} for {key!r} is not a valid {names}")


def parse_values(key: str, text: str, tp: Any = str) -> list[Any]:
    """Parse the values of one grid axis.

    Parameters
    ----------
    key : str
        The axis name (for messages).
    text : str
        Comma-separated values (``"32,64,100"``), an inclusive integer range (``"0..9"``) or ``n`` evenly
        spaced numbers (``"0.1..1.0:10"``); ranges and values may be mixed (``"0..3,10"``).
    tp : type
        The field annotation the values must fit (``int``, ``float``, ``bool``, ``str``, a ``Literal``,
        unions with None).

    Returns
    -------
    list
        The values, in the order given, duplicates removed.
    """
    out: list[Any] = []
    limit = cell_budget()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        m = _RANGE.match(part)
        if m and any(t in (int, float) for t in _base_types(tp)):
            lo, hi, n = m["lo"], m["hi"], m["n"]
            if n is None:
                try:
                    a, b = int(lo), int(hi)
                except ValueError as exc:
                    raise ConfigError(
                        f"range {part!r} for {key!r} needs integer ends (or a count: {lo}..{hi}:N)"
                    ) from exc
                if b < a:
                    raise ConfigError(f"range {part!r} for {key!r} is empty (end below start)")
                check_cells(len(out) + b - a + 1, f"grid axis {key!r}", limit)
                out.extend(_convert(key, str(v), tp) for v in range(a, b + 1))
            else:
                count = int(n)
                if count < 1:
                    raise ConfigError(f"range {part!r} for {key!r} needs a count of at least 1")
                check_cells(len(out) + count, f"grid axis {key!r}", limit)
                a_f, b_f = float(lo), float(hi)
                vals = [a_f + (b_f - a_f) * i / max(count - 1, 1) for i in range(count)]
                out.extend(_convert(key, format_value(v), tp) for v in vals)
        else:
            out.append(_convert(key, part, tp))
    check_cells(len(out), f"grid axis {key!r}", limit)
    unique: list[Any] = []
    seen: set[str] = set()
    for v in out:
        mark = repr(v)
        if mark not in seen:
            seen.add(mark)
            unique.append(v)
    if not unique:
        raise ConfigError(f"grid key {key!r} has no values; give e.g. --grid {key}=1,2,3")
    return unique


def parse_grid(items: Sequence[str], fields: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Parse ``KEY=VALUES`` strings into grid axes over known fields.

    Parameters
    ----------
    items : sequence of str
        One ``KEY=VALUES`` per axis (see :func:`parse_values` for VALUES).
    fields : mapping of str to type
        The keys a grid may vary and their annotations.

    Returns
    -------
    dict of str to list
        Axes in the order given.

    Raises
    ------
    ConfigError
        An empty grid, a malformed item, an unknown or repeated key, or a bad value.
    """
    if not items:
        raise ConfigError("the grid is empty; give at least one --grid KEY=VALUES (e.g. seed=0..3)")
    axes: dict[str, list[Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"grid item {item!r} is not KEY=VALUES (e.g. hidden=32,64)")
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"unknown grid key {key!r}; known keys: {known}")
        if key in axes:
            raise ConfigError(f"grid key {key!r} is given twice; put all its values in one --grid")
        axes[key] = parse_values(key, text, fields[key])
    check_cells(math.prod(len(v) for v in axes.values()), "the grid")
    return axes


def expand_grid(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """All combinations of the axes, the last axis varying fastest.

    Parameters
    ----------
    axes : mapping of str to sequence
        Axis name -> values.

    Returns
    -------
    list of dict
        One dict per grid cell.
    """
    if not axes:
        raise ConfigError("the grid is empty; give at least one axis")
    for key, values in axes.items():
        if len(values) == 0:
            raise ConfigError(f"grid key {key!r} has no values")
    check_cells(math.prod(len(v) for v in axes.values()), "the grid")
    keys = list(axes)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes.values())]


def _first_difference(a: Any, b: Any, prefix: str = "") -> str:
    """Name the first setting that differs between two manifests (for the error message)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
    return f"{prefix.rstrip('.')}: {json.dumps(a)} there, {json.dumps(b)} now"


class ResultsTable:
    """``DIR/results.csv`` with its manifest ``DIR/sweep.json``; resumes and refuses foreign sweeps.

    Parameters
    ----------
    directory : path
        The sweep directory (created if missing).
    spec : dict
        JSON-able description of the sweep (grid and fixed settings). A directory whose manifest differs is
        refused with :class:`ConfigError` and left untouched.
    columns : sequence of str
        Column names of ``results.csv``.
    key : sequence of str
        Columns that identify a cell.
    cells : iterable of tuple of str
        The formatted keys of every cell of this sweep, in table order; rows of other cells make the
        directory foreign.

    Attributes
    ----------
    done : dict
        Finished rows (as text) by cell key.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        spec: Mapping[str, Any],
        columns: Sequence[str],
        key: Sequence[str],
        cells: Iterable[tuple[str, ...]],
    ) -> None:
        self.directory = Path(directory)
        self.csv_path = self.directory / "results.csv"
        self.manifest_path = self.directory / "sweep.json"
        self.columns = list(columns)
        self.key = list(key)
        self.order = {c: i for i, c in enumerate(cells)}
        self.spec = json.loads(json.dumps(dict(spec)))
        if self.directory.exists() and not self.directory.is_dir():
            raise ConfigError(f"{self.directory} exists and is not a directory; choose another -o")
        self.done: dict[tuple[str, ...], dict[str, str]] = {}
        if self.manifest_path.exists():
            try:
                old = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"{self.manifest_path} is unreadable ({exc}); use a new -o DIR"
                ) from exc
            if old != self.spec:
                raise ConfigError(
                    f"{self.directory} holds a different sweep ({_first_difference(old, self.spec)}); "
                    "rerun with the same options or use a new -o DIR"
                )
        if self.csv_path.exists():
            self._load()
        self._started = False

    def start(self) -> None:
        """Create the directory, the manifest and the table (with the finished rows) on disk.

        Opening a table only reads and checks; nothing is written until this (or :meth:`add`).
        """
        if self._started:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.manifest_path.exists():
            atomic_write(self.manifest_path, json.dumps(self.spec, indent=1) + "\n")
        self._rewrite()
        self._started = True

    def _load(self) -> None:
        text = self.csv_path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):  # a row cut short by a killed sweep
            text = text[: text.rfind("\n") + 1]
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None:
            return
        if list(current_names(dict.fromkeys(reader.fieldnames))) != self.columns:
            raise ConfigError(
                f"{self.csv_path} has other columns than this sweep writes; use a new -o DIR"
            )
        for row in map(current_names, reader):
            k = tuple(row[c] for c in self.key)
            if k not in self.order:
                raise ConfigError(
                    f"{self.csv_path} holds a cell outside this grid "
                    f"({', '.join(f'{c}={v}' for c, v in zip(self.key, k, strict=True))}); "
                    "rerun with the same options or use a new -o DIR"
                )
            self.done[k] = row

    def _text(self, rows: Iterable[Mapping[str, str]]) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()

    def _rewrite(self) -> None:
        rows = sorted(self.done.values(), key=lambda r: self.order[self.cell_key(r)])
        atomic_write(self.csv_path, self._text(rows))

    def cell_key(self, row: Mapping[str, Any]) -> tuple[str, ...]:
        """The formatted key of a row (or of a cell's settings)."""
        return tuple(
            v if isinstance(v, str) else format_value(v) for v in (row[c] for c in self.key)
        )

    def pending(self) -> list[tuple[str, ...]]:
        """Keys of the cells still to run, in table order."""
        return [k for k in self.order if k not in self.done]

    def add(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append finished rows (values are formatted with :func:`format_value`) and flush them to disk."""
        text_rows = []
        for row in rows:
            missing = [c for c in self.columns if c not in row]
            if missing:
                raise ConfigError(f"a sweep row lacks the columns {missing}")
            t = {
                c: row[c] if isinstance(row[c], str) else format_value(row[c]) for c in self.columns
            }
            k = self.cell_key(t)
            if k not in self.order:
                raise ConfigError(f"row {k} is not a cell of this sweep")
            self.done[k] = t
            text_rows.append(t)
        if not text_rows:
            return
        self.start()
        chunk = self._text(text_rows).split("\n", 1)[1]
        with open(self.csv_path, "a", encoding="utf-8", newline="") as fh:
            fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())

    def finish(self) -> list[dict[str, str]]:
        """Write ``results.csv`` in table order (and the manifest) and return its rows."""
        self._started = False
        self.start()
        return [self.done[k] for k in self.order if k in self.done]
