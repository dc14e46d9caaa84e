"""Checkpoint files: round trip, metadata, damage detection, atomic writes, metrics lines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from dfalens._files import atomic_write
from dfalens.errors import CheckpointError
from dfalens.trainers import checkpoints as ck
from dfalens.trainers.models import ModelConfig, build_model

META = {"task": "parity", "alphabet": ["0", "1"], "epoch": 3, "step": 63, "seed": 0}


def _model(seed: int = 0):
    return build_model(ModelConfig("gru", 6, 2, n_symbols=2, n_classes=3, h0="learned"), seed=seed)


def test_round_trip_restores_model_and_metadata(tmp_path: Path) -> None:
    model = _model()
    path = tmp_path / "a.safetensors"
    ck.save_checkpoint(path, model, {**META, "train_loss": 0.25})
    loaded, meta = ck.load_checkpoint(path)
    assert not loaded.training and loaded.config == model.config
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert meta["task"] == "parity" and meta["alphabet"] == ["0", "1"]
    assert meta["epoch"] == 3 and meta["step"] == 63 and meta["train_loss"] == 0.25
    assert meta["format_version"] == ck.FORMAT_VERSION
    assert meta["model_config"] == model.config.to_dict()
    words = torch.randint(0, 2, (4, 7))
    assert torch.equal(loaded(words), model.eval()(words))
    assert ck.read_checkpoint_meta(path)["epoch"] == 3


def test_truncated_corrupt_missing_and_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "a.safetensors"
    ck.save_checkpoint(path, _model(), META)
    data = path.read_bytes()
    for cut in (4, 60, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            ck.load_checkpoint(bad)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 100)
    with pytest.raises(CheckpointError):
        ck.load_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="does not exist"):
        ck.load_checkpoint(tmp_path / "nope.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a dfalens checkpoint"):
        ck.load_checkpoint(foreign)


def test_torn_write_leaves_the_previous_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.safetensors"
    ck.save_checkpoint(path, _model(0), {**META, "epoch": 1})
    before = path.read_bytes()

    real_fdopen = os.fdopen

    class Torn:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data: bytes) -> None:
            self.handle.write(data[: len(data) // 2])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck.os, "fdopen", lambda fd, mode: Torn(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space"):
        ck.save_checkpoint(path, _model(1), {**META, "epoch": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert ck.load_checkpoint(path)[1]["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]  # no temp file left


def test_interrupted_replace_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.bin"
    atomic_write(path, b"old")

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(ck.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_list_checkpoints_sorted_and_ignores_others(tmp_path: Path) -> None:
    folder = tmp_path / ck.CHECKPOINT_DIR
    folder.mkdir()
    model = _model()
    for epoch in (10, 2, 0, 100):
        ck.save_checkpoint(ck.checkpoint_path(tmp_path, epoch), model, {**META, "epoch": epoch})
    ck.save_checkpoint(folder / "last.safetensors", model, META)
    (folder / "notes.txt").write_text("x")
    found = ck.list_checkpoints(tmp_path)
    assert [e for e, _ in found] == [0, 2, 10, 100]
    assert found[1][1].name == "epoch_00002.safetensors"
    with pytest.raises(CheckpointError):
        ck.list_checkpoints(tmp_path / "missing")


def test_metrics_lines_append_and_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    ck.append_metrics(path, {"epoch": 0, "train_loss": 0.5})
    ck.append_metrics(path, {"epoch": 1, "train_loss": 0.4})
    with open(path, "ab") as handle:
        handle.write(b'{"epoch": 2, "train_')  # a kill in the middle of an append
    assert [r["epoch"] for r in ck.read_metrics(path)] == [0, 1]
    ck.write_metrics(path, ck.read_metrics(path)[:1])
    assert path.read_text().count("\n") == 1
    path.write_text('{"epoch": 0}\nnot json\n{"epoch": 2}\n')
    with pytest.raises(CheckpointError, match="line 2"):
        ck.read_metrics(path)


def test_train_state_round_trip_with_adam(tmp_path: Path) -> None:
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randint(0, 2, (3, 4))).sum().backward()
    opt.step()
    gen = torch.Generator().manual_seed(5)
    torch.randperm(10, generator=gen)
    path = tmp_path / "state.safetensors"
    ck.save_train_state(path, model, opt, {"shuffle": gen}, {"epoch": 4, "step": 9})
    model2 = _model(seed=9)
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.01)
    gen2 = torch.Generator()
    meta = ck.load_train_state(path, model2, opt2, {"shuffle": gen2})
    assert meta == {"epoch": 4, "step": 9}
    assert torch.equal(torch.randperm(10, generator=gen), torch.randperm(10, generator=gen2))
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert s1.keys() == s2.keys()
    for i in s1:
        for key in s1[i]:
            assert torch.equal(torch.as_tensor(s1[i][key]), torch.as_tensor(s2[i][key]))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="--force"):
        ck.load_train_state(path, model2, opt2, {"shuffle": gen2})
