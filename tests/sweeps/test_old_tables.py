"""Results tables written by the previous version (columns ``states`` and ``minimal_states``) still load,
resume and are rewritten under the current names."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from dfalens.sweeps.grid import run_grid
from dfalens.sweeps.phase_diagram import PHASE_COLUMNS, read_results, typed_row
from dfalens.sweeps.table import RENAMED_COLUMNS, ResultsTable, current_names

OLD = {new: old for old, new in RENAMED_COLUMNS.items()}


def _header(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()[0].split(",")


def test_the_counts_have_their_current_names() -> None:
    assert RENAMED_COLUMNS == {"states": "states_raw", "minimal_states": "states_minimal_trimmed"}
    assert {"states_raw", "states_minimal_trimmed"} <= set(PHASE_COLUMNS)
    assert not {"states", "minimal_states"} & set(PHASE_COLUMNS)
    # a column whose new name is present already is left alone (nothing overwritten)
    assert current_names({"states": 1, "states_raw": 2}) == {"states": 1, "states_raw": 2}


def test_an_old_table_is_read_resumed_and_rewritten(tmp_path: Path) -> None:
    spec = {"kind": "t"}
    cells = [("1",), ("2",)]
    columns = ["a", "states_raw", "states_minimal_trimmed"]
    (tmp_path / "sweep.json").write_text(json.dumps(spec), encoding="utf-8")
    (tmp_path / "results.csv").write_text("a,states,minimal_states\n1,7,4\n", encoding="utf-8")
    table = ResultsTable(tmp_path, spec, columns, ["a"], cells)
    assert table.pending() == [("2",)]
    assert table.done[("1",)] == {"a": "1", "states_raw": "7", "states_minimal_trimmed": "4"}
    table.add([{"a": 2, "states_raw": 9, "states_minimal_trimmed": 5}])
    rows = table.finish()
    assert [r["states_minimal_trimmed"] for r in rows] == ["4", "5"]
    assert _header(tmp_path / "results.csv") == columns
    with open(tmp_path / "results.csv", newline="") as fh:
        assert [r["states_raw"] for r in csv.DictReader(fh)] == ["7", "9"]


def test_read_results_maps_an_old_phase_diagram_table(tmp_path: Path) -> None:
    old_columns = [OLD.get(c, c) for c in PHASE_COLUMNS]
    assert "minimal_states" in old_columns
    values = {c: "1" for c in PHASE_COLUMNS} | {"closed": "true", "model": ""}
    values |= {"states_raw": "12", "states_minimal_trimmed": "3"}
    with open(tmp_path / "results.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(old_columns)
        writer.writerow([values[c] for c in PHASE_COLUMNS])
    (row,) = read_results(tmp_path)
    assert row["states_raw"] == 12 and row["states_minimal_trimmed"] == 3 and row["closed"] is True
    assert "minimal_states" not in row
    assert typed_row({"states": "5", "minimal_states": "2"}) == {
        "states_raw": 5,
        "states_minimal_trimmed": 2,
    }


def test_a_grid_sweep_resumes_on_a_table_of_the_previous_version(tmp_path: Path) -> None:
    base = {"epochs": 2, "max_len": 4, "test_lengths": (20,), "n_test_words": 5, "device": "cpu"}
    grid = ["seed=0..1"]
    kw = {"preset": "fast", "base": base, "eps": 0.1, "jobs": 1, "save_models": False}
    first = run_grid(tmp_path, grid, **kw)
    # rewrite the table as the previous version wrote it, with the second cell not yet done
    path = tmp_path / "results.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    old_header = [OLD.get(c, c) for c in lines[0].split(",")]
    assert "minimal_states" in old_header and "states" in old_header
    path.write_text("\n".join([",".join(old_header), lines[1]]) + "\n", encoding="utf-8")
    again = run_grid(tmp_path, grid, **kw)
    assert again == first  # the finished cell is kept, the missing one recomputed identically
    assert _header(path) == lines[0].split(",")
    assert "states_minimal_trimmed" in again[0] and "minimal_states" not in again[0]
