"""JSON schema, DOT text, networkx graph, text table."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from automata_oracle import machines
from hypothesis import given
from hypothesis import strategies as st

from dfalens.automata import (
    Machine,
    from_dict,
    from_json,
    mod_count,
    parity,
    to_dict,
    to_dot,
    to_json,
    to_networkx,
    to_table,
    tomita,
)
from dfalens.errors import MachineError

names = st.text(alphabet='ab"\\\n é€', max_size=5)


@given(m=machines(), data=st.data())
def test_json_round_trip(m: Machine, data: st.DataObject) -> None:
    if data.draw(st.booleans()):
        m = Machine(
            m.delta,
            m.output,
            m.start,
            m.alphabet,
            data.draw(st.lists(names, min_size=m.n_states, max_size=m.n_states)),
        )
    back = from_json(to_json(m))
    assert back == m
    assert back.state_names == m.state_names
    assert from_dict(json.loads(to_json(m, indent=2))) == m


def test_json_schema_fields(tmp_path) -> None:
    d = to_dict(parity())
    assert d == {
        "format": "dfalens.machine",
        "version": 1,
        "alphabet": ["0", "1"],
        "start": 0,
        "delta": [[0, 1], [1, 0]],
        "output": [0, 1],
        "state_names": None,
    }
    path = tmp_path / "p.json"
    path.write_text(to_json(parity()))
    assert from_json(path) == parity()
    assert from_json(str(path)) == parity()


def _doc(**changes: object) -> str:
    d = to_dict(tomita(2))
    for key, value in changes.items():
        if value is KeyError:
            del d[key]
        else:
            d[key] = value
    return json.dumps(d)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"format": "dfalens.machine", "version": 1,', "not valid JSON"),
        ("{}", "not a dfalens machine"),
        ("[1, 2]", "does not exist"),  # not JSON text: read as a path
        (_doc(version=2), "version 2 is not supported"),
        (_doc(version="1"), "version '1' is not supported"),
        (_doc(delta=[[1, 2], [1, 1], [0, 7]]), r"delta\[2\]\[1\] = 7 points to a missing state"),
        (_doc(delta=[[1, 2], [1, 1], [0, -2]]), "points to a missing state"),
        (_doc(delta=[[1, 2], [1, 1], [0, 1.5]]), r"delta\[2\]\[1\] is 1.5"),
        (_doc(delta=[[1, 2], [1, 1], [0]]), "has 1 entries but the alphabet has 2"),
        (_doc(delta=[]), "non-empty list"),
        (_doc(output=[1, 0, "1"]), r"output\[2\] is '1'"),
        (_doc(output=[1, 0, True]), r"output\[2\] is True"),
        (_doc(output=[1, 0, -1]), "non-negative"),
        (_doc(output=[1, 0]), "2 entries for 3 states"),
        (_doc(output=KeyError), "lacks the field 'output'"),
        (_doc(start=5), "out of range"),
        (_doc(start="0"), "must be an integer"),
        (_doc(alphabet=["0", 1]), "list of strings"),
        (_doc(alphabet=["0", "0"]), "distinct"),
        (_doc(state_names=["a"]), "state_names has 1 entries"),
        (_doc(state_names="abc"), "list of strings or null"),
    ],
)
def test_bad_json_gives_one_line_machine_error(text: str, match: str) -> None:
    with pytest.raises(MachineError, match=match) as info:
        from_json(text)
    assert "\n" not in str(info.value)


def test_bad_json_file_names_the_file(tmp_path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{oops")
    with pytest.raises(MachineError, match=r"bad\.json is not valid JSON"):
        from_json(path)
    path.write_text(_doc(version=9))
    with pytest.raises(MachineError, match=r"bad\.json: machine schema version 9"):
        from_json(path)
    with pytest.raises(MachineError, match="does not exist"):
        from_json(tmp_path / "absent.json")
    path.write_bytes(b"\xff\xfe{")
    with pytest.raises(MachineError, match="cannot read"):
        from_json(path)


def test_dot_text_for_a_dfa() -> None:
    dot = to_dot(tomita(1))
    assert dot.startswith('digraph "machine" {')
    assert '"__start__" [shape="point", style="invis", label=""];' in dot
    assert '"__start__" -> "q0";' in dot
    assert '"q0" [label="q0", shape="doublecircle"];' in dot
    assert '"q1" [label="q1"];' in dot
    assert '"q1" -> "q1" [label="0,1"];' in dot  # parallel edges merged
    assert dot.count("->") == 4
    # every node id, attribute value and label is quoted
    quoted = re.compile(r'"(?:[^"\\]|\\.)*"')
    for line in dot.splitlines()[1:-1]:
        bare = quoted.sub("Q", line).strip()
        assert re.fullmatch(r"(\w+=Q|node \[.*\]|Q( -> Q)?( \[.*\])?);", bare), line
        assert not re.search(r"=(?!Q)", bare), line


def test_dot_text_for_moore_machines_names_and_escaping() -> None:
    dot = to_dot(mod_count(3))
    assert '"q2" [label="q2 / 2"];' in dot and "doublecircle" not in dot
    m = Machine([[1, -1], [1, 0]], [0, 1], alphabet=('"', "a\\b"), state_names=["", 'say "hi"\n'])
    dot = to_dot(m, name="x y", show_outputs=True)
    assert 'digraph "x y" {' in dot
    assert '"q0" [label="ε / 0"];' in dot
    assert r'"q1" [label="say \"hi\"\n / 1", shape="doublecircle"];' in dot
    assert r'"q0" -> "q1" [label="\""];' in dot
    assert r'"q1" -> "q1" [label="\""];' in dot
    assert r'"q1" -> "q0" [label="a\\b"];' in dot
    assert dot.count("->") == 4  # the undefined transition is omitted


def test_dot_hide_sink_and_pygraphviz_parses_it() -> None:
    dot = to_dot(tomita(3), hide_sink=True)
    assert '"q4"' not in dot and '"q2" -> "q3"' in dot
    pgv = pytest.importorskip("pygraphviz")
    g = pgv.AGraph(string=to_dot(Machine([[1, -1], [1, 0]], [0, 1], alphabet=('"', "a\\b"))))
    assert {n for n in g.nodes()} == {"__start__", "q0", "q1"}
    assert g.get_edge("q0", "q1").attr["label"] == '"'


@given(m=machines())
def test_networkx_graph_has_every_defined_transition(m: Machine) -> None:
    g = to_networkx(m)
    assert g.number_of_nodes() == m.n_states
    assert g.number_of_edges() == int(np.sum(m.delta >= 0))
    for q, a in zip(*np.nonzero(m.delta >= 0), strict=True):
        sym = m.alphabet[a]
        assert g.edges[int(q), int(m.delta[q, a]), sym]["symbol_index"] == a
    assert g.nodes[m.start]["start"] and g.graph["alphabet"] == m.alphabet
    assert [g.nodes[q]["output"] for q in range(m.n_states)] == m.output.tolist()


def test_text_table() -> None:
    text = to_table(Machine([[1, -1], [1, 0]], [0, 1], start=1))
    lines = text.splitlines()
    assert lines[1].split() == ["state", "out", "0", "1"]
    assert lines[2].split() == ["q0", "0", "q1", "-"]
    assert lines[3].split() == ["->", "q1", "1", "q1", "q0"]
    assert to_table(mod_count(50), max_rows=5).endswith("... 45 more states")
