"""The training loop: determinism, exact resume, run directories, stopping, metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from dfalens.errors import ConfigError, TaskError
from dfalens.trainers import checkpoints as ck
from dfalens.trainers import load_run, make_config, train
from dfalens.trainers.config import TrainConfig


def tiny(**changes) -> TrainConfig:
    """A seconds-long setting: parity up to length 6, 16 units, batches of 16."""
    base = {
        "hidden": 16,
        "max_len": 6,
        "batch_size": 16,
        "epochs": 6,
        "lr": 0.05,
        "gain": 0.5,
        "test_lengths": (20,),
        "n_test_words": 4,
        "device": "cpu",
    }
    base.update(changes)
    return make_config("paper", **base)


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def strip_time(rows) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]


class Kill(Exception):
    """Stands in for a killed process."""


def killer(at_epoch: int):
    def callback(epoch: int, row) -> None:
        if epoch == at_epoch:
            raise Kill

    return callback


def test_seeded_runs_are_bit_identical_and_seeds_differ() -> None:
    a = train(tiny(seed=3))
    b = train(tiny(seed=3))
    c = train(tiny(seed=4))
    assert same_weights(weights(a.model), weights(b.model))
    assert strip_time(a.metrics) == strip_time(b.metrics)
    assert not same_weights(weights(a.model), weights(c.model))
    assert [r["epoch"] for r in a.metrics] == list(range(7))
    assert a.metrics[-1]["step"] == 6 * sum(-(-(2**n) // 16) for n in range(1, 7))


def test_run_directory_contents(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = train(tiny(checkpoints="every:2", epochs=5), out)
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["epochs"] == 5 and record["config"]["task"] == "parity"
    assert set(record["versions"]) >= {"dfalens", "torch", "numpy"}
    assert record["task_machine"]["delta"] == [[0, 1], [1, 0]]
    epochs = [e for e, _ in ck.list_checkpoints(out)]
    assert epochs == [0, 2, 4, 5]
    rows = ck.read_metrics(out / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == epochs
    assert set(rows[0]) >= {"epoch", "step", "train_loss", "val_loss", "val_accuracy"}
    assert set(rows[0]["val_accuracy"]) == {"20"}
    model, meta = ck.load_checkpoint(out / "checkpoints" / "last.safetensors")
    assert meta["epoch"] == 5 and meta["task"] == "parity" and meta["alphabet"] == ["0", "1"]
    assert meta["seed"] == 0 and meta["train_loss"] == rows[-1]["train_loss"]
    assert same_weights(weights(model), weights(run.model))
    first, meta0 = ck.load_checkpoint(ck.checkpoint_path(out, 0))
    assert meta0["epoch"] == 0 and meta0["step"] == 0
    loaded = load_run(out)
    assert loaded.config == run.config and loaded.epochs_done == 5
    assert strip_time(loaded.metrics) == strip_time(run.metrics)
    assert loaded.machine is not None and loaded.machine.n_states == 2


@pytest.mark.parametrize(
    ("optimizer", "lr", "schedule"), [("sgd", 0.05, "every:3"), ("adam", 0.01, "every")]
)
def test_resume_after_a_kill_ends_with_the_uninterrupted_weights(
    tmp_path: Path, optimizer: str, lr: float, schedule: str
) -> None:
    config = tiny(optimizer=optimizer, lr=lr, checkpoints=schedule, epochs=7, momentum=0.0)
    whole = train(config, tmp_path / "whole")
    out = tmp_path / "killed"
    with pytest.raises(Kill):
        train(config, out, callback=killer(4))  # dies after epoch 4 (last state: epoch 3 or 4)
    resumed = train(config, out, resume=True)
    assert same_weights(weights(resumed.model), weights(whole.model))
    rows = ck.read_metrics(out / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [r["epoch"] for r in whole.metrics]  # no duplicates
    assert strip_time(rows) == strip_time(whole.metrics)
    last, _ = ck.load_checkpoint(out / "checkpoints" / "last.safetensors")
    assert same_weights(weights(last), weights(whole.model))


def test_resume_extends_a_finished_run(tmp_path: Path) -> None:
    long = train(tiny(epochs=8, checkpoints="every:2"), tmp_path / "long")
    out = tmp_path / "short"
    train(tiny(epochs=4, checkpoints="every:2"), out)
    again = train(tiny(epochs=4, checkpoints="every:2"), out, resume=True)  # nothing to do
    assert again.epochs_done == 4 and [r["epoch"] for r in again.metrics] == [0, 2, 4]
    extended = train(tiny(epochs=8, checkpoints="every:2"), out, resume=True)
    assert same_weights(weights(extended.model), weights(long.model))
    assert [r["epoch"] for r in ck.read_metrics(out / "metrics.jsonl")] == [0, 2, 4, 6, 8]
    with pytest.raises(ConfigError, match="trained 8 epochs"):
        train(tiny(epochs=5, checkpoints="every:2"), out, resume=True)


def test_resume_from_deleted_newer_files(tmp_path: Path) -> None:
    """A kill between the checkpoint and the state write: the files newer than the state are redone."""
    config = tiny(epochs=6, checkpoints="every:2")
    whole = train(config, tmp_path / "whole")
    out = tmp_path / "run"
    with pytest.raises(Kill):
        train(config, out, callback=killer(4))
    # pretend the state of epoch 4 was never written: roll it back to epoch 2's
    with pytest.raises(Kill):
        train(config, tmp_path / "ref2", callback=killer(2))
    (out / ck.STATE_FILE).write_bytes((tmp_path / "ref2" / ck.STATE_FILE).read_bytes())
    resumed = train(config, out, resume=True)
    assert same_weights(weights(resumed.model), weights(whole.model))
    assert [r["epoch"] for r in ck.read_metrics(out / "metrics.jsonl")] == [0, 2, 4, 6]


def test_existing_run_is_never_overwritten_without_a_flag(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny(epochs=2), out)
    snapshot = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="--resume .* --force"):
        train(tiny(epochs=2, seed=1), out)
    with pytest.raises(ConfigError, match=r"settings differ in lr \(run: 0.05, now: 0.1\)"):
        train(tiny(epochs=2, lr=0.1), out, resume=True)
    with pytest.raises(TaskError):
        train(tiny(epochs=2, task="nosuchtask"), out, force=True)
    with pytest.raises(ConfigError, match="exclude"):
        train(tiny(epochs=2), out, resume=True, force=True)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == snapshot
    forced = train(tiny(epochs=3, seed=1, checkpoints="every:3"), out, force=True)
    assert [e for e, _ in ck.list_checkpoints(out)] == [0, 3] and forced.epochs_done == 3


def test_bad_output_paths_and_nothing_to_resume(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        train(tiny(epochs=1), blocker)
    with pytest.raises(ConfigError, match="cannot write"):
        train(tiny(epochs=1), blocker / "run")
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(tiny(epochs=1), tmp_path / "empty", resume=True)
    assert blocker.read_text() == "x"


def test_stop_loss_ends_early_with_a_final_checkpoint(tmp_path: Path) -> None:
    config = tiny(epochs=400, stop_loss=0.05, checkpoints="log:5", optimizer="adam", lr=0.02)
    run = train(config, tmp_path / "run")
    assert run.stopped_early and run.epochs_done < 400
    assert run.metrics[-1]["epoch"] == run.epochs_done
    assert run.metrics[-1]["train_loss"] < 0.05
    assert run.summary()["stopped_early"]
    again = train(config, tmp_path / "run", resume=True)  # a stopped run stays stopped
    assert again.epochs_done == run.epochs_done
    assert load_run(tmp_path / "run").stopped_early


def test_divergence_stops_training_and_keeps_the_finite_checkpoints(tmp_path: Path) -> None:
    run = train(tiny(epochs=50, lr=100.0, gain=1.5, checkpoints="every:1"), tmp_path / "run")
    assert run.diverged and not run.stopped_early
    assert run.epochs_done < 50  # stopped at once, not after the remaining epochs
    losses = [row["train_loss"] for row in run.metrics]
    assert not math.isfinite(losses[-1]) and all(math.isfinite(x) for x in losses[:-1])
    kept = ck.list_checkpoints(tmp_path / "run")
    assert max(int(e) for e, _ in kept) == run.metrics[-2]["epoch"]  # no checkpoint of NaN weights
    model, _ = ck.load_checkpoint(tmp_path / "run" / "checkpoints" / ck.LAST)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert load_run(tmp_path / "run").diverged
    assert not train(tiny(epochs=3)).diverged


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gated_cells_streaming_and_multiclass_train(cell: str) -> None:
    config = tiny(
        task="mod3", cell=cell, targets="every", loss="ce", optimizer="adam", lr=0.01, epochs=3
    )
    run = train(config)
    assert run.model.config.n_classes == 3 and run.model.config.cell == cell
    losses = [r["train_loss"] for r in run.metrics]
    assert losses[-1] < losses[0]


def test_summary_landmarks() -> None:
    run = train(tiny(optimizer="adam", lr=0.02, epochs=60, checkpoints="every:5"))
    s = run.summary(length=20)
    assert s["epochs"] == 60 and s["accuracy_length"] == 20
    first = s["first_epoch_loss_below"]
    if first is not None:
        assert [r["train_loss"] < 1e-3 for r in run.metrics if r["epoch"] < first] == [False] * len(
            [r for r in run.metrics if r["epoch"] < first]
        )
    assert run.summary(length=999)["accuracy_length"] == 20  # falls back to the longest tested
    with pytest.raises(ConfigError):
        run.first_epoch_accuracy(999)
