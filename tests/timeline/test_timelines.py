"""Merger timelines of tiny seeded training runs."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from dfalens.automata import tomita
from dfalens.errors import CheckpointError, ConfigError, DataError, TaskError
from dfalens.probes import extract, scale
from dfalens.timeline.events import compare_partitions
from dfalens.timeline.history import load_history, resolve_run
from dfalens.timeline.timelines import Row, Timeline, derived_epochs, first_stable, timeline
from dfalens.trainers import make_config, train

torch.set_num_threads(1)

# a small version of the paper's network that memorises, then merges, in a few hundred cheap epochs
TINY = {
    "hidden": 32,
    "max_len": 6,
    "lr": 0.1,
    "epochs": 300,
    "checkpoints": "every:10",
    "test_lengths": (25, 100),
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "run"
    train(make_config("paper", seed=0, **TINY), out)
    return out


@pytest.fixture(scope="module")
def tl(run_dir: Path) -> Timeline:
    return timeline(run_dir, jobs=1)


def test_merger_comes_after_memorisation(tl: Timeline) -> None:
    assert tl.task == "parity"
    assert tl.memorisation_epoch is not None and tl.merger_epoch is not None
    assert tl.merger_epoch > tl.memorisation_epoch
    assert tl.generalisation_epoch is not None
    last = tl.rows[-1]
    assert last.closed and last.equivalent and last.counterexample is None
    assert last.states_minimal == 2 and last.fidelity == 1.0
    # the tree grows before the merger: more raw states at some point than at the end
    raw = tl.column("states_raw")
    assert raw.max() > raw[-1]
    assert tl.rows[0].merges is None and tl.rows[0].train_loss is not None
    assert set(tl.test_lengths) == {25, 100}


def test_merge_split_accounting_is_consistent(tl: Timeline) -> None:
    assert tl.labels is not None
    for c in range(1, len(tl)):
        row, prev = tl.rows[c], tl.rows[c - 1]
        assert row.states_raw == prev.states_raw - row.merged_away + row.split_created
        ch = compare_partitions(tl.labels[c - 1], tl.labels[c])
        assert (ch.merges, ch.splits) == (row.merges, row.splits)
        ev = [e for e in tl.events if e.epoch == row.epoch]
        assert sum(e.kind == "merge" for e in ev) == row.merges
        assert sum(e.kind == "split" for e in ev) == row.splits
    assert any(e.kind == "merge" for e in tl.events)
    assert len(tl.words) == tl.labels.shape[1] == 127


def test_parallel_and_per_checkpoint_eps(run_dir: Path, tl: Timeline) -> None:
    par = timeline(run_dir, jobs=2, block=8)
    assert np.array_equal(par.labels, tl.labels)
    assert par.merger_epoch == tl.merger_epoch
    assert [e.to_dict() for e in par.events] == [e.to_dict() for e in tl.events]
    assert _rows(par) == _rows(tl)
    np.testing.assert_allclose(par.column("eps_abs"), tl.column("eps_abs"), rtol=1e-12)
    # other blocks, in this process: the same result
    again = timeline(run_dir, jobs=1, block=7)
    assert np.array_equal(again.labels, tl.labels)
    assert _rows(again) == _rows(tl)
    per = timeline(run_dir, jobs=1, pooled=False, method="threshold", events=False)
    eps = per.column("eps_abs")
    assert not np.allclose(eps, eps[0]) and per.events == ()
    assert per.settings["pooled"] is False and per.settings["scale"] is None


def _rows(t: Timeline) -> list[dict]:
    """Rows without the eps value (its last bits depend on how the pooled moments were summed)."""
    return [{k: v for k, v in r.to_dict().items() if k != "eps"} for r in t.rows]


def test_written_files(tl: Timeline, tmp_path: Path) -> None:
    csv_path, json_path = tl.write(tmp_path)
    data = json.loads(json_path.read_text())
    for key in ("merger_epoch", "memorisation_epoch", "generalisation_epoch", "rows"):
        assert key in data
    assert data["merger_epoch"] == tl.merger_epoch
    for row in data["rows"]:
        assert {"epoch", "states_raw", "states_minimal", "closed", "equivalent"} <= set(row)
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("epoch,step,train_loss") and len(lines) == len(tl) + 1
    back = Timeline.from_json(json_path)
    assert back.merger_epoch == tl.merger_epoch and len(back) == len(tl)
    assert back.rows[-1] == tl.rows[-1]
    assert back.task_machine == tl.task_machine
    assert not list(tmp_path.glob(".timeline*"))  # no temporary files left
    assert json_path.stat().st_mode & 0o044  # readable by others, like any written file


def test_never_generalising_run_has_no_merger(tmp_path: Path) -> None:
    out = tmp_path / "short"
    train(make_config("paper", seed=0, **{**TINY, "epochs": 2, "checkpoints": "every"}), out)
    tl = timeline(out, jobs=1)
    assert tl.merger_epoch is None and tl.memorisation_epoch is None
    assert tl.generalisation_epoch is None
    assert json.loads(tl.to_json())["merger_epoch"] is None


def test_checkpoint_files_and_missing_metrics(run_dir: Path, tmp_path: Path) -> None:
    info = resolve_run(run_dir)
    picked = list(info.paths[:5])
    tl = timeline(picked, jobs=1)
    assert tl.epochs.tolist() == [0, 10, 20, 30, 40]
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "metrics.jsonl").unlink()
    (copy / "run.json").unlink()
    bare = timeline(copy, jobs=1, task="parity")
    assert all(not r.loss for r in bare.rows)  # no per-length losses without the metrics file
    assert bare.rows[0].train_loss is not None  # the checkpoints record their training loss
    assert bare.merger_epoch is not None


def test_bad_input(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="holds no epoch_"):
        (tmp_path / "empty" / "checkpoints").mkdir(parents=True)
        timeline(tmp_path / "empty")
    with pytest.raises(CheckpointError):
        timeline(tmp_path)
    with pytest.raises(TaskError, match="alphabet"):
        timeline(run_dir, task=_three_symbol_task(), jobs=1)
    with pytest.raises(ConfigError):
        timeline(run_dir, method="kmeans")
    with pytest.raises(ConfigError):
        timeline(run_dir, eps=-1.0)
    # two runs mixed
    other = tmp_path / "other"
    train(make_config("paper", seed=1, **{**TINY, "epochs": 1, "checkpoints": "every"}), other)
    mixed = [resolve_run(run_dir).paths[1], resolve_run(other).paths[0]]
    with pytest.raises(CheckpointError, match="different runs"):
        timeline(mixed, jobs=1)
    same_epoch = [resolve_run(run_dir).paths[0], resolve_run(other).paths[0]]
    with pytest.raises(CheckpointError, match="different runs"):
        timeline(same_epoch, jobs=1)


def test_diverged_run_is_a_one_line_error(run_dir: Path, tmp_path: Path) -> None:
    from dfalens.trainers.checkpoints import load_checkpoint, save_checkpoint

    paths = list(resolve_run(run_dir).paths[:3])
    model, meta = load_checkpoint(paths[2])
    with torch.no_grad():
        model.rnn.weight_hh_l0.fill_(float("nan"))
    broken = tmp_path / "epoch_00020.safetensors"
    save_checkpoint(
        broken,
        model,
        {k: v for k, v in meta.items() if k not in ("format", "format_version", "model_config")},
    )
    with pytest.raises(DataError, match="NaN or inf at epoch 20"):
        timeline([paths[0], paths[1], broken], jobs=1)


def _three_symbol_task():
    from dfalens.automata import Machine

    return Machine(np.zeros((1, 3), dtype=int), np.zeros(1, dtype=int), alphabet=("a", "b", "c"))


def test_a_different_task_is_compared(run_dir: Path) -> None:
    tl = timeline(resolve_run(run_dir).paths[-2:], task=tomita(1), jobs=1)
    assert tl.task == "custom"
    assert not any(r.equivalent for r in tl.rows)
    assert all(r.counterexample is not None for r in tl.rows)


def test_history_matches_the_timeline(run_dir: Path, tl: Timeline) -> None:
    h = load_history(run_dir, epochs=[0, 100, 300])
    assert h.hidden.shape == (3, 127, 32) and h.epochs.tolist() == [0, 100, 300]
    assert h.words[:4] == ("ε", "0", "1", "00")
    assert math.isclose(h.stateset(2).hidden[5, 0], float(h.hidden[2, 5, 0]))
    assert h.scales().shape == (3,)
    with pytest.raises(CheckpointError, match="epoch 7"):
        load_history(run_dir, epochs=[7])


def test_derived_epoch_rules() -> None:
    ep = np.array([0, 10, 20, 30, 40])
    assert first_stable(ep, np.array([0, 1, 0, 1, 1], bool)) == 30
    assert first_stable(ep, np.array([1, 1, 1, 1, 0], bool)) is None
    assert first_stable(ep, np.ones(5, bool)) == 0
    d = derived_epochs(
        ep,
        np.array([0.3, 1e-2, 5e-4, 2e-3, 1e-4]),
        np.array([0, 0, 1, 1, 1], bool),
        metric_accuracy=np.array([0.5, 1.0, 0.9, 1.0, 1.0]),
    )
    assert d == {"memorisation_epoch": 20, "merger_epoch": 20, "generalisation_epoch": 30}


def test_timeline_type_validation() -> None:
    row = Row(0, None, None, None, 1, 1, True, True, None, None, 0.1)
    with pytest.raises(DataError):
        Timeline(rows=())
    with pytest.raises(DataError):
        Timeline(rows=(row, row))
    with pytest.raises(DataError):
        Timeline(rows=(row,)).column("nope")
    with pytest.raises(DataError):
        Timeline.from_json('{"no": 1}')


def test_pair_trajectories_of_a_run(run_dir: Path, tl: Timeline) -> None:
    from dfalens.timeline.pairs import far_counts, pair_trajectories

    traj = pair_trajectories(run_dir, n_pairs=200, seed=1)
    assert traj.distance.shape == (200, len(tl)) and traj.epochs.tolist() == tl.epochs.tolist()
    np.testing.assert_allclose(traj.eps_abs, tl.column("eps_abs"), rtol=1e-5)
    assert np.all(traj.pairs.length_i >= 1)
    far = far_counts(traj)
    # at the end no disagreeing pair is within eps, and some agreeing pairs are
    assert far["disagreeing"][-1] == int((~traj.pairs.agree).sum())
    assert far["agreeing"][-1] < int(traj.pairs.agree.sum())


@pytest.mark.parametrize(
    "cfg",
    [
        {"hidden": 12, "gain": 0.8},
        {"hidden": 12, "gain": 0.8, "nonlinearity": "tanh", "h0": "zeros"},
        {"hidden": 6, "cell": "gru"},
    ],
)
def test_block_states_and_predictions_match_the_models(tmp_path: Path, cfg: dict) -> None:
    from dfalens.probes import collect, from_model
    from dfalens.timeline.history import read_block
    from dfalens.trainers.checkpoints import save_checkpoint
    from dfalens.trainers.models import ModelConfig, build_model

    models, paths = [], []
    for seed in range(3):
        m = build_model(ModelConfig(**cfg), seed=seed).eval()
        p = tmp_path / f"epoch_{seed:05d}.safetensors"
        save_checkpoint(p, m, {"task": "parity", "alphabet": ["0", "1"], "epoch": seed})
        models.append(m)
        paths.append(p)
    block = read_block(paths)
    assert block.elman == (cfg.get("cell", "rnn") == "rnn")
    h, o = block.states(4)
    words = np.random.default_rng(0).integers(0, 2, size=(7, 13))
    pred = block.predict([2, 0], words)
    for c, m in enumerate(models):
        ref = collect(from_model(m), 4)
        np.testing.assert_allclose(h[c], ref.hidden, atol=1e-5)
        np.testing.assert_allclose(o[c], ref.output, atol=1e-5)
    with torch.no_grad():
        for row, c in enumerate([2, 0]):
            assert np.array_equal(pred[row], models[c](torch.from_numpy(words)).argmax(-1).numpy())
    bad = tmp_path / "epoch_00009.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        read_block([bad])


def test_every_row_is_what_extract_gives(run_dir: Path, tl: Timeline) -> None:
    """The timeline's workers and ``extract`` share one core: same clusters, same minimal machine."""
    h = load_history(run_dir)
    eps_abs = tl.settings["eps"] * tl.settings["scale"]
    for i in (0, 10, 15, len(tl.rows) - 1):
        s = tl.settings
        ex = extract(h.stateset(i), method=s["method"], eps_abs=eps_abs, order=s["order"])
        row = tl.rows[i]
        assert (ex.n_raw, ex.n_minimal, ex.closed) == (
            row.states_raw,
            row.states_minimal,
            row.closed,
        )


# -- one vocabulary: eps relative, eps_abs absolute; one return type per method ----------------------
def test_timeline_eps_abs_and_the_deprecated_relative(run_dir: Path) -> None:
    files = sorted((run_dir / "checkpoints").glob("epoch_*.safetensors"))[::8]
    rel = timeline(files, jobs=1, events=False)
    x = rel.settings["eps"] * rel.settings["scale"]
    ab = timeline(files, jobs=1, events=False, eps_abs=x)
    assert ab.settings["eps"] is None and ab.settings["eps_abs"] == x
    assert ab.column("states_raw").tolist() == rel.column("states_raw").tolist()
    np.testing.assert_allclose(ab.column("eps_abs"), rel.column("eps_abs"), rtol=1e-12)
    with pytest.warns(DeprecationWarning, match="relative"):
        old = timeline(files, jobs=1, events=False, eps=x, relative=False)
    assert old.column("states_raw").tolist() == ab.column("states_raw").tolist()
    with pytest.raises(ConfigError, match="not both"):
        timeline(files, eps=0.01, eps_abs=x)


def test_a_timeline_written_with_eps_rows_still_loads(tmp_path: Path, tl: Timeline) -> None:
    d = json.loads(tl.to_json())
    for r in d["rows"]:
        r["eps"] = r.pop("eps_abs")  # the previous version's name of the absolute distance
    path = tmp_path / "old.json"
    path.write_text(json.dumps(d), encoding="utf-8")
    old = Timeline.from_json(path)
    np.testing.assert_allclose(old.column("eps_abs"), tl.column("eps_abs"))
    with pytest.warns(DeprecationWarning, match="eps_abs"):
        assert old.rows[3].eps == tl.rows[3].eps_abs
    with pytest.warns(DeprecationWarning, match="eps_abs"):
        np.testing.assert_allclose(old.column("eps"), tl.column("eps_abs"))


def test_history_scale_and_scales(run_dir: Path, tl: Timeline) -> None:
    h = load_history(run_dir, epochs=[0, 100, 300])
    pooled, per = h.scale(), h.scales()
    assert isinstance(pooled, float) and per.shape == (3,)
    assert pooled == pytest.approx(scale(h.hidden.reshape(-1, h.hidden.shape[2])), rel=1e-6)
    assert per[1] == pytest.approx(scale(h.hidden[1]), rel=1e-6)
    with pytest.warns(DeprecationWarning, match="scales"):
        assert h.scale(pooled=False).tolist() == per.tolist()  # type: ignore[attr-defined]
    with pytest.warns(DeprecationWarning):
        assert h.scale(pooled=True) == pooled
    assert load_history(run_dir).scale() == pytest.approx(tl.settings["scale"], rel=1e-5)


def test_block_states_and_hidden(run_dir: Path) -> None:
    from dfalens.timeline.history import read_block

    block = read_block(sorted((run_dir / "checkpoints").glob("epoch_*.safetensors"))[:2])
    h, o = block.states(3)
    assert o.shape[:2] == h.shape[:2] == (2, 15)
    np.testing.assert_array_equal(block.hidden(3), h)
    with pytest.warns(DeprecationWarning, match="hidden"):
        h2, none = block.states(3, outputs=False)
    assert none is None
    np.testing.assert_array_equal(h2, h)
