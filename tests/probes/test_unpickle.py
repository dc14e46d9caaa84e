"""The restricted unpickler: nothing in a file ever runs, every read is bounded, modules read as data."""

from __future__ import annotations

import builtins
import importlib
import io
import os
import pickle
import struct
import subprocess
import sys
import time
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from dfalens.errors import CheckpointError
from dfalens.probes import (
    Inert,
    PickleLimits,
    _unpickle,
    module_record,
    pickle_globals,
    read_checkpoint,
    read_pickle,
)
from dfalens.probes._pickle_scan import SEALED_CALLS, Budget

torch.set_num_threads(1)


class _Call:
    """Pickles as ``fn(*args)``: unpickled normally, it runs the call."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __call__(self, *args):  # pickle wants the callee of a reduce to be callable
        raise AssertionError("never called while pickling")

    def __reduce__(self):
        return (self.fn, self.args)


def _payloads(marker: Path) -> dict[str, _Call]:
    touch = f"open({str(marker)!r}, 'w').close()"
    imported_os = _Call(builtins.__import__, "os")
    return {
        "os.system": _Call(os.system, f"touch {marker}"),
        "exec": _Call(builtins.exec, touch),
        "eval": _Call(builtins.eval, touch),
        "Popen": _Call(subprocess.Popen, ["touch", str(marker)]),
        "check_call": _Call(subprocess.check_call, ["touch", str(marker)]),
        "__import__+getattr": _Call(_Call(getattr, imported_os, "system"), f"touch {marker}"),
    }


def _save(obj, path: Path, fmt: str) -> Path:
    if fmt == "raw":
        path.write_bytes(pickle.dumps(obj, protocol=2))
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=fmt == "zip")
    return path


@pytest.mark.parametrize("fmt", ["zip", "legacy", "raw"])
@pytest.mark.parametrize(
    "kind", ["os.system", "exec", "eval", "Popen", "check_call", "__import__+getattr"]
)
def test_payloads_never_run_and_come_back_inert(tmp_path, kind, fmt):
    marker = tmp_path / "pwned"
    weight = torch.arange(6.0).reshape(2, 3)
    path = _save({"w": weight, "x": _payloads(marker)[kind]}, tmp_path / "evil.pt", fmt)
    names = pickle_globals(path)
    obj = read_pickle(path)
    ckpt = read_checkpoint(path)
    time.sleep(0.05)  # a spawned process would have touched the marker by now
    assert not marker.exists()
    torch.testing.assert_close(obj["w"], weight)
    assert list(ckpt.weights) == ["w"] and ckpt.modules is None
    record = obj["x"]
    assert isinstance(record, Inert) and "inert" in repr(record)
    assert type(record).name() in names or kind == "__import__+getattr"
    if kind == "__import__+getattr":  # a call of a record: the callee is the getattr record
        callee = record.args[0]
        assert type(callee).name() == "builtins.getattr"
        assert type(callee.args[0]).name() == "builtins.__import__"
        assert callee.args[0].args == ("os",) and callee.args[1] == "system"
    else:
        assert record.args and str(marker) in str(record.args[0])
    # control: the same bytes, unpickled normally, do run (the payloads are real)
    if fmt == "raw":
        result = pickle.loads(path.read_bytes())  # noqa: S301 (the point of the control)
        if isinstance(result["x"], subprocess.Popen):
            result["x"].wait()
        assert marker.exists()


def _temp_module(tmp_path: Path, name: str, source: str):
    (tmp_path / f"{name}.py").write_text(source)
    sys.path.insert(0, str(tmp_path))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))


_MODEL_SOURCE = """
import torch
from torch import nn

class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.emb = nn.Embedding(5, 3, padding_idx=0)
        self.rnn = nn.RNN(3, 4, nonlinearity="relu", batch_first=True)
        self.head = nn.Linear(4, 1)
        self.act = nn.Sigmoid()
        self.register_buffer("h0", torch.full((1, 4), 0.25))
        self.vocab = ["<pad>", "a", "b", "c", "d"]
        self.threshold = 0.5
"""


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_custom_module_of_an_unavailable_class_is_recovered(tmp_path, fmt):
    mod = _temp_module(tmp_path, "dfalens_tmp_tagger", _MODEL_SOURCE)
    model = mod.Tagger()
    path = _save(model, tmp_path / "tagger.pt", fmt)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    del sys.modules["dfalens_tmp_tagger"], mod
    (tmp_path / "dfalens_tmp_tagger.py").unlink()
    with pytest.raises(ModuleNotFoundError):  # the class is really gone
        torch.load(path, weights_only=False)  # trusted load only to prove it; nothing hostile here

    assert "dfalens_tmp_tagger.Tagger" in pickle_globals(path)
    root = module_record(read_pickle(path))
    assert root.type_name == "dfalens_tmp_tagger.Tagger" and root.kind == "Tagger"
    assert list(root.children) == ["emb", "rnn", "head", "act"]
    assert root.attributes["vocab"] == ["<pad>", "a", "b", "c", "d"]
    assert root.attributes["threshold"] == 0.5
    torch.testing.assert_close(root.buffers["h0"], torch.full((1, 4), 0.25))
    rnn = root.get("rnn")
    assert rnn.kind == "RNN" and rnn.attributes["nonlinearity"] == "relu"
    assert rnn.attributes["batch_first"] is True and rnn.attributes["bidirectional"] is False
    assert (rnn.attributes["num_layers"], rnn.attributes["input_size"]) == (1, 3)
    assert rnn.attributes["hidden_size"] == 4
    assert root.get("emb").attributes["padding_idx"] == 0
    head = root.get("head").attributes
    assert (head["in_features"], head["out_features"]) == (4, 1)
    assert root.get("act").kind == "Sigmoid" and not root.get("act").parameters
    state = root.state_dict()
    assert list(state) == list(expected)
    for key, value in expected.items():
        torch.testing.assert_close(state[key], value)
    ckpt = read_checkpoint(path)
    assert ckpt.modules.get("rnn").attributes["nonlinearity"] == "relu"
    assert list(ckpt.weights) == list(expected)
    assert "dfalens_tmp_tagger.Tagger" in ckpt.pickle_globals


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_tensors_dtypes_views_and_sharing_survive(tmp_path, fmt):
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    obj = {
        "base": base,
        "view": base[1:, ::2],
        "t": base.T,
        "long": torch.arange(5),
        "bool": torch.tensor([True, False, True]),
        "half": torch.linspace(-1, 1, 7, dtype=torch.float16),
        "bf16": torch.linspace(-1, 1, 7, dtype=torch.bfloat16),
        "cplx": torch.tensor([1 + 2j, -3j], dtype=torch.complex64),
        "param": nn.Parameter(torch.ones(2, 2)),
        "empty": torch.zeros(0, 3),
        "scalar": torch.tensor(3.5),
        "size": torch.Size([2, 3]),
        "dtype": torch.float32,
    }
    out = read_pickle(_save(obj, tmp_path / "t.pt", fmt))
    for key, value in obj.items():
        if isinstance(value, torch.Tensor):
            assert out[key].dtype == value.dtype and out[key].shape == value.shape, key
            assert torch.equal(out[key], value.detach()), key
        else:
            assert out[key] == value
    assert out["view"].data_ptr() != out["base"].data_ptr()
    assert out["view"].untyped_storage().data_ptr() == out["base"].untyped_storage().data_ptr()


def test_truncated_files_fail_in_one_line(tmp_path):
    for fmt in ("zip", "legacy"):
        path = _save(nn.GRU(2, 3), tmp_path / f"whole-{fmt}.pt", fmt)
        data = path.read_bytes()
        for cut in (4, 40, len(data) // 3, len(data) // 2, len(data) - 9):
            path.write_bytes(data[:cut])
            with pytest.raises(
                CheckpointError, match="truncated or corrupt|not a torch.save"
            ) as err:
                read_checkpoint(path)
            assert "\n" not in str(err.value)


def _billion_laughs(levels: int, kind: str):
    node = [torch.ones(1)] if kind == "list" else {"t": torch.ones(1)}
    for _ in range(levels):
        node = [node, node] if kind == "list" else {"a": node, "b": node}
    return node


@pytest.mark.parametrize("fmt", ["zip", "legacy", "raw"])
@pytest.mark.parametrize("kind", ["list", "dict"])
def test_billion_laughs_reads_fast(tmp_path, kind, fmt):
    path = _save({"w": torch.ones(2), "x": _billion_laughs(30, kind)}, tmp_path / "bl.pt", fmt)
    start = time.perf_counter()
    obj = read_pickle(path)
    ckpt = read_checkpoint(path)
    assert time.perf_counter() - start < 5.0
    assert obj["x"][0] is obj["x"][1] if kind == "list" else obj["x"]["a"] is obj["x"]["b"]
    if kind == "list":
        assert list(ckpt.weights) == ["w"]
    else:  # the shared dict is flattened once, under its first path
        assert list(ckpt.weights) == ["w", "x" + ".a" * 30 + ".t"]


@pytest.mark.parametrize("fmt", ["zip", "legacy", "raw"])
def test_self_referential_containers_read_fast(tmp_path, fmt):
    loop: list = []
    loop.append(loop)
    table: dict = {"w": torch.ones(3)}
    table["self"] = table
    table["loop"] = loop
    path = _save({"state_dict": table}, tmp_path / "self.pt", fmt)
    start = time.perf_counter()
    obj = read_pickle(path)
    weights = read_checkpoint(path).weights
    assert time.perf_counter() - start < 5.0
    inner = obj["state_dict"]
    assert inner["self"] is inner and inner["loop"][0] is inner["loop"]
    assert list(weights) == ["w"]


def test_self_referential_records_and_module_cycles(tmp_path):
    model = nn.Sequential(nn.Linear(2, 2))
    model.add_module("again", model)
    path = tmp_path / "cycle.pt"
    torch.save(model, path)
    with pytest.raises(CheckpointError, match="refers to itself") as err:
        read_checkpoint(path)
    assert "\n" not in str(err.value)
    record = read_pickle(path)
    assert record.attrs["_modules"]["again"] is record and "Sequential" in repr(record)


def _top_down_nesting(n: int) -> bytes:
    """n lists, memoised empty, then each appended into the next from the top down: the depth is
    only visible once built (the opcode walk sees depth 2)."""
    make = b"".join(b"]r" + struct.pack("<I", i) + b"0" for i in range(n))
    link = b"".join(
        b"j" + struct.pack("<I", i + 1) + b"j" + struct.pack("<I", i) + b"a0"
        for i in reversed(range(n - 1))
    )
    return b"\x80\x02" + make + link + b"j" + struct.pack("<I", n - 1) + b"."


@pytest.mark.parametrize(
    ("stream", "limits", "match"),
    [
        pytest.param(
            b"\x80\x02" + b"]" * 5000 + b"a" * 4999 + b".", None, "levels of nesting", id="deep"
        ),
        pytest.param(
            b"\x80\x02" + b"(" * 3000 + b"K\x01" + b"t" * 3000 + b".",
            None,
            "levels of nesting",
            id="deep-tuples",
        ),
        pytest.param(_top_down_nesting(3000), None, "levels of nesting", id="deep-top-down"),
        pytest.param(b"\x80\x02]r\xff\xff\xff\x7f.", None, "memo entries", id="memo-index"),
        pytest.param(
            b"\x80\x02]" + b"K\x01a" * 50 + b".",
            PickleLimits(max_opcodes=40),
            "pickle opcodes",
            id="opcodes",
        ),
        pytest.param(
            b"\x80\x02]" + b"]a" * 50 + b".", PickleLimits(max_objects=20), "objects", id="objects"
        ),
        pytest.param(b"\x80\x02]h\x05.", None, "missing memo entry", id="bad-get"),
        pytest.param(b"\x80\x02K\x01K\x02", None, "ends inside a pickle", id="no-stop"),
    ],
)
def test_bounds_and_malformed_streams_fail_fast_in_one_line(tmp_path, stream, limits, match):
    path = tmp_path / "bad.pkl"
    path.write_bytes(stream)
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=match) as err:
        read_pickle(path, limits=limits)
    assert time.perf_counter() - start < 5.0
    assert "\n" not in str(err.value)


def test_limits_on_file_and_tensor_sizes(tmp_path):
    path = _save({"w": torch.ones(100)}, tmp_path / "w.pt", "zip")
    with pytest.raises(CheckpointError, match="bytes of file"):
        read_pickle(path, limits=PickleLimits(max_bytes=100))
    with pytest.raises(CheckpointError, match="tensor elements"):
        read_pickle(path, limits=PickleLimits(max_elements=99))
    assert read_pickle(path, limits=PickleLimits(max_elements=100))["w"].numel() == 100


def test_not_a_pickle(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match="not a pickle"):
        read_pickle(path)


class _WithState:
    """Pickles as ``fn(*args)`` followed by BUILD with ``state`` (and SETITEMS with ``entries``)."""

    def __init__(self, fn, args, state, entries=None):
        self.fn, self.args, self.state, self.entries = fn, args, state, entries

    def __reduce__(self):
        return (self.fn, self.args, self.state, None, iter(self.entries or []))


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_state_set_on_a_tensor_is_refused(tmp_path, fmt):
    # run normally, BUILD would call Tensor.__setstate__ -> set_(...) with a 10^12-element zero-stride view
    base = torch.ones(2)
    evil = _WithState(
        torch._utils._rebuild_parameter,
        (base, False, OrderedDict()),
        (base, 0, (10**6, 10**6), (0, 0)),
    )
    path = _save({"w": evil}, tmp_path / "evil.pt", fmt)
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="state or items set on a tensor") as err:
        read_checkpoint(path)
    assert time.perf_counter() - start < 5.0 and "\n" not in str(err.value)


def test_ordered_dict_attributes_cannot_shadow_its_methods(tmp_path):
    table = _WithState(
        OrderedDict,
        (),
        {"items": "shadow", "get": "shadow", "_metadata": {"": 1}},
        [("w", torch.ones(2))],
    )
    path = _save({"state_dict": table}, tmp_path / "od.pt", "zip")
    inner = read_pickle(path)["state_dict"]
    assert type(inner) is OrderedDict and list(inner.items()) == [("w", inner["w"])]
    assert vars(inner) == {"_metadata": {"": 1}}
    assert list(read_checkpoint(path).weights) == ["w"]


def test_plain_pickle_with_embedded_storages(tmp_path):
    tensors = {f"t{i}": torch.randn(300, dtype=torch.float64) for i in range(4)}
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(tensors, protocol=4))
    out = read_pickle(path)
    for key, value in tensors.items():
        assert torch.equal(out[key], value)


def test_big_endian_zip_archive(tmp_path):
    obj = {"f": torch.linspace(-2, 2, 9), "c": torch.tensor([1 - 2j], dtype=torch.complex64)}
    little = _save(obj, tmp_path / "little.pt", "zip")
    big = tmp_path / "big.pt"
    with zipfile.ZipFile(little) as src, zipfile.ZipFile(big, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("byteorder"):
                data = b"big"
            elif "/data/" in info.filename:
                data = bytes(
                    torch.frombuffer(bytearray(data), dtype=torch.uint8)
                    .view(-1, 4)
                    .flip(1)
                    .flatten()
                )
            dst.writestr(info, data)
    out = read_pickle(big)
    assert torch.equal(out["f"], obj["f"]) and torch.equal(out["c"], obj["c"])


def test_tensor_makers_are_sealed():
    reader = _unpickle._Reader(io.BytesIO(b"."), Budget(PickleLimits()), lambda pid: None)
    assert {f"{m}.{n}" for m, n in reader._rebuilders} <= SEALED_CALLS


@pytest.fixture(scope="module")
def whole_model_files(tmp_path_factory) -> dict[str, Any]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(4, 3, padding_idx=0), nn.GRU(3, 4), nn.Linear(4, 2))
    folder = tmp_path_factory.mktemp("whole")
    out: dict[str, Any] = {}
    for fmt in ("zip", "legacy"):
        out[fmt] = _save(model, folder / f"{fmt}.pt", fmt).read_bytes()
    with zipfile.ZipFile(folder / "zip.pt") as archive:
        out["entries"] = [(info, archive.read(info)) for info in archive.infolist()]
    return out


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fmt=st.sampled_from(["data.pkl", "legacy"]),
    edits=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4
    ),
)
def test_any_corruption_reads_or_fails_in_one_line(tmp_path, whole_model_files, fmt, edits):
    def corrupt(blob: bytes) -> bytes:
        data = bytearray(blob)
        for where, byte in edits:
            data[int(where * len(data))] = byte
        return bytes(data)

    path = tmp_path / "fuzzed.pt"
    if fmt == "legacy":
        path.write_bytes(corrupt(whole_model_files["legacy"]))
    else:
        with zipfile.ZipFile(path, "w") as archive:
            for info, data in whole_model_files["entries"]:
                archive.writestr(
                    info, corrupt(data) if info.filename.endswith("data.pkl") else data
                )
    start = time.perf_counter()
    try:
        read_checkpoint(path)
    except CheckpointError as err:
        assert "\n" not in str(err)
    assert time.perf_counter() - start < 5.0


def test_rebuild_from_type_cannot_recurse(tmp_path):
    # _rebuild_from_type_v2(F, None, (F, None, (... (F, None, ()) ...))) with F itself, 950 deep: run
    # normally each level calls the next (recursion as deep as the file says); here it is inert at once
    n = 950
    rebuild = b"ctorch._tensor\n_rebuild_from_type_v2\nq\x00"
    stream = b"\x80\x02" + rebuild + b"h\x00N" * n + b")" + b"\x87" * n + b"R."
    path = tmp_path / "nested.pkl"
    path.write_bytes(stream)
    start = time.perf_counter()
    out = read_pickle(path)
    assert time.perf_counter() - start < 5.0
    assert isinstance(out, Inert) and type(out).name() == "torch._tensor._rebuild_from_type_v2"
