"""The `dfalens tasks` command, through the real click group and its error contract."""

from __future__ import annotations

import json

import pytest

from dfalens.automata import from_json, tomita
from dfalens.cli import app


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        app.main(args)
    out, err = capsys.readouterr()
    return int(info.value.code), out, err


def test_tasks_lists_every_name_with_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["tasks"], capsys)
    assert code == 0
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:] if line.strip()}
    assert rows["parity"] == "2" and rows["tomita3"] == "5" and rows["tomita7"] == "5"
    assert rows["modK"] == "-" and "random:SEED" in rows and "PATH.json" in rows


def test_tasks_shows_one_machine_and_its_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["tasks", "tomita3"], capsys)
    assert code == 0 and "5 states complete, 4 without the dead state" in out
    code, out, _ = _run(["tasks", "tomita3", "--json"], capsys)
    assert code == 0 and json.loads(out)["version"] == 1
    assert from_json(out) == tomita(3)


@pytest.mark.parametrize(
    ("arg", "needle"), [("tomit", "unknown task 'tomit'; valid tasks: parity"), ("BAD.json", "")]
)
def test_bad_task_is_one_line_and_exit_2(
    arg: str, needle: str, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    if arg.endswith(".json"):
        path = tmp_path / arg
        path.write_text('{"format": "dfalens.machine", "version": 7}')
        arg, needle = str(path), "schema version 7 is not supported"
    code, out, err = _run(["tasks", arg], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and needle in err and err.count("\n") == 1
    assert "Traceback" not in err


def test_click_runner_on_the_group() -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(app.cli, ["tasks", "parity"])
    assert result.exit_code == 0 and "2 states complete, 2 without the dead state" in result.output
