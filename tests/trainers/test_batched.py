"""The stacked-parameter trainer: cell math, per-member optimizers, equality with separate runs, export."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from dfalens.errors import ConfigError
from dfalens.trainers import build_model, make_config, train
from dfalens.trainers.batched import (
    BatchedRun,
    Member,
    StackedOptimizer,
    stacked_final_scores,
    stacked_forward,
    stacked_loss,
    train_batched,
)
from dfalens.trainers.checkpoints import load_checkpoint
from dfalens.trainers.models import ModelConfig

torch.set_num_threads(1)


def _stack(models: list[torch.nn.Module]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([m.state_dict()[k] for m in models]) for k in models[0].state_dict()}


@pytest.mark.parametrize(
    ("cell", "nonlinearity", "layers"),
    [("rnn", "relu", 1), ("rnn", "tanh", 2), ("gru", "tanh", 2)],
)
def test_stacked_forward_equals_each_model(cell: str, nonlinearity: str, layers: int) -> None:
    cfg = ModelConfig(cell=cell, hidden=7, layers=layers, nonlinearity=nonlinearity, gain=0.9)
    models = [build_model(cfg, seed=s).eval() for s in range(3)]
    for m in models:
        m.fused = False
    params = _stack(models)
    words = torch.randint(0, 2, (3, 5, 9), generator=torch.Generator().manual_seed(1))
    shape = {"cell": cell, "layers": layers, "nonlinearity": nonlinearity, "n_symbols": 2}
    with torch.no_grad():
        final = stacked_forward(params, words, **shape)
        every = stacked_forward(params, words, every=True, **shape)
        chunked = stacked_final_scores(params, words, chunk=4, **shape)
        for i, m in enumerate(models):
            torch.testing.assert_close(final[i], m(words[i]), rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(every[i], m.forward_all(words[i]), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(chunked, final, rtol=1e-5, atol=1e-6)
        empty = stacked_forward(params, words[:, :, :0], **shape)
        torch.testing.assert_close(empty[0], models[0].readout(models[0].initial(5)))


@pytest.mark.parametrize(
    ("nonlinearity", "layers", "every"), [("relu", 1, False), ("tanh", 2, True)]
)
def test_fused_elman_gradients_equal_autograd(nonlinearity: str, layers: int, every: bool) -> None:
    cfg = ModelConfig(hidden=6, layers=layers, nonlinearity=nonlinearity, h0="learned", gain=1.0)
    params = _stack([build_model(cfg, seed=s) for s in range(3)])
    words = torch.randint(0, 2, (3, 4, 5), generator=torch.Generator().manual_seed(2))
    shape = {"cell": "rnn", "layers": layers, "nonlinearity": nonlinearity, "n_symbols": 2}
    results = []
    for fused in (True, False):
        leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
        out = stacked_forward(leaves, words, every=every, fused=fused, **shape)
        out.square().sum().backward()
        results.append((out.detach(), {k: v.grad for k, v in leaves.items()}))
    torch.testing.assert_close(results[0][0], results[1][0])
    for k in params:
        torch.testing.assert_close(results[0][1][k], results[1][1][k], rtol=1e-4, atol=1e-6)


def test_stacked_loss_ignores_padding() -> None:
    logits = torch.randn(2, 4, 3)
    targets = torch.tensor([[0, 1, 2, 0], [2, 2, 1, 0]])
    weights = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    got = stacked_loss(logits, targets, weights, "ce")
    ref0 = torch.nn.functional.cross_entropy(logits[0, :2], targets[0, :2])
    ref1 = torch.nn.functional.cross_entropy(logits[1], targets[1])
    torch.testing.assert_close(got, torch.stack([ref0, ref1]))
    mse = stacked_loss(logits, targets, weights, "mse")
    onehot = torch.nn.functional.one_hot(targets[0, :2], 3).float()
    torch.testing.assert_close(mse[0], torch.nn.functional.mse_loss(logits[0, :2], onehot))


@pytest.mark.parametrize(
    ("kind", "options"),
    [("sgd", {"momentum": 0.9, "weight_decay": 0.01}), ("adam", {"weight_decay": 0.01})],
)
def test_stacked_optimizer_is_independent_optimizers(kind: str, options: dict) -> None:
    """Updating a subset of rows equals stepping only those members' own torch optimizers."""
    gen = torch.Generator().manual_seed(0)
    shapes = {"w": (3, 4, 5), "b": (3, 4)}
    params = {k: torch.randn(s, generator=gen) for k, s in shapes.items()}
    lrs = [0.01, 0.02, 0.05]
    refs = [{k: v[i].clone().requires_grad_() for k, v in params.items()} for i in range(3)]
    cls = torch.optim.SGD if kind == "sgd" else torch.optim.Adam
    ref_opts = [cls(list(r.values()), lr=lr, **options) for r, lr in zip(refs, lrs, strict=True)]
    stacked = {k: v.clone() for k, v in params.items()}
    opt = StackedOptimizer(stacked, kind, torch.tensor(lrs), **options)
    for it in range(7):
        rows = torch.tensor([0, 2]) if it % 3 == 1 else torch.arange(3)
        grads = {k: torch.randn(len(rows), *s[1:], generator=gen) for k, s in shapes.items()}
        opt.step(rows, grads)
        for j, i in enumerate(rows.tolist()):
            for k in shapes:
                refs[i][k].grad = grads[k][j].clone()
            ref_opts[i].step()
    for i in range(3):
        for k in shapes:
            torch.testing.assert_close(stacked[k][i], refs[i][k].detach(), rtol=1e-5, atol=1e-6)
    assert opt.steps.tolist() == [7, 5, 7]


def _tiny(preset: str = "paper", **kw: object) -> object:
    base = {
        "epochs": 3,
        "hidden": 12,
        "max_len": 6,
        "test_lengths": (20,),
        "n_test_words": 8,
        "device": "cpu",
        "checkpoints": "every",
    }
    base.update(kw)
    return make_config(preset, **base)


MEMBERS = [
    Member(seed=0),
    Member(seed=1, gain=0.6, data_fraction=0.5),
    Member(seed=2, lr=0.05, data_fraction=0.3),
]


@pytest.mark.parametrize(
    "settings",
    [
        {"preset": "paper"},
        {"preset": "fast"},
        {"preset": "paper", "cell": "gru", "loss": "ce", "targets": "every", "momentum": 0.9},
    ],
    ids=["sgd-mse-relu", "adam", "gru-ce-streaming-momentum"],
)
def test_batched_equals_separate_runs(settings: dict) -> None:
    settings = dict(settings)
    cfg = _tiny(settings.pop("preset"), **settings)
    batched = train_batched(cfg, MEMBERS)
    assert isinstance(batched, BatchedRun) and len(batched) == 3
    for i, member in enumerate(MEMBERS):
        run = train(member.apply(cfg))
        sd = run.model.state_dict()
        for k, v in sd.items():
            torch.testing.assert_close(batched.params[k][i], v, rtol=1e-4, atol=1e-6)
        last = run.metrics[-1]
        assert batched.epochs[i] == run.epochs_done == 3
        assert batched.steps[i] == last["step"]
        assert batched.train_loss[i] == pytest.approx(last["train_loss"], rel=1e-5)
        assert batched.train_accuracy[i] == pytest.approx(last["train_accuracy"])
        assert batched.test_accuracy["20"][i] == pytest.approx(last["val_accuracy"]["20"])
        assert batched.test_loss["20"][i] == pytest.approx(last["val_loss"]["20"], rel=1e-4)
    # smaller subsets take fewer steps per epoch
    assert batched.steps[0] > batched.steps[2]


def test_converged_members_freeze_and_match_their_separate_runs() -> None:
    cfg = _tiny("fast", epochs=25, stop_loss=0.1, loss="ce", hidden=16, max_len=4, gain=1.0)
    members = [Member(seed=1, lr=0.03), Member(seed=3, lr=0.05), Member(seed=2, lr=0.001)]
    seen: list[np.ndarray] = []
    batched = train_batched(cfg, members, callback=lambda e, loss, active: seen.append(active))
    assert batched.stopped_early.tolist() == [True, True, False]
    assert batched.epochs.tolist() == [17, 21, 25]
    assert len(seen) == 25 and seen[-1].tolist() == [False, False, True]
    assert seen[16].tolist() == [False, True, True]
    for i, member in enumerate(members):
        run = train(member.apply(cfg))
        assert run.stopped_early == bool(batched.stopped_early[i])
        assert run.epochs_done == batched.epochs[i]
        assert run.metrics[-1]["step"] == batched.steps[i]
        for k, v in run.model.state_dict().items():
            torch.testing.assert_close(batched.params[k][i], v, rtol=1e-4, atol=1e-5)
    assert np.all(batched.train_loss[:2] < 0.1) and batched.train_loss[2] > 0.1


def test_diverged_members_freeze_without_counting_as_converged() -> None:
    cfg = _tiny("paper", epochs=20, stop_loss=1e-9, gain=1.5)
    members = [Member(seed=0, lr=0.01), Member(seed=0, lr=100.0)]
    batched = train_batched(cfg, members)
    assert batched.epochs.tolist()[0] == 20 and batched.epochs[1] < 5  # frozen once its loss is NaN
    assert not batched.stopped_early.any()
    assert np.isfinite(batched.train_loss[0]) and not np.isfinite(batched.train_loss[1])


def test_members_export_as_checkpoints_that_load_and_extract(tmp_path: object) -> None:
    from dfalens.probes import extract, from_model

    cfg = _tiny("fast", epochs=2)
    batched = train_batched(cfg, MEMBERS[:2])
    paths = batched.save(tmp_path)
    assert [p.name for p in paths] == ["member_0000.safetensors", "member_0001.safetensors"]
    model, meta = load_checkpoint(paths[1])
    assert meta["seed"] == 1 and meta["epoch"] == 2 and meta["task"] == "parity"
    assert model.config.gain == 0.6
    words = torch.randint(0, 2, (4, 7))
    with torch.no_grad():
        torch.testing.assert_close(model(words), batched.model(1)(words))
    rows = batched.rows()
    assert rows[1]["gain"] == 0.6 and rows[1]["epochs"] == 2 and "test_accuracy_20" in rows[1]
    ex = extract(from_model(model), max_len=4, method="threshold", eps=0.1)
    assert ex.n_raw >= 1 and ex.minimal.n_states >= 1


def test_bad_batched_settings() -> None:
    with pytest.raises(ConfigError, match="supports cells"):
        train_batched(_tiny(cell="lstm"), [Member()])
    with pytest.raises(ConfigError, match="at least one member"):
        train_batched(_tiny(), [])
    with pytest.raises(ConfigError, match="data_fraction"):
        train_batched(_tiny(), [Member(data_fraction=1.5)])
    with pytest.raises(ConfigError, match="no training words"):
        train_batched(_tiny(max_len=1), [Member(seed=s, data_fraction=0.05) for s in range(8)])


def test_member_apply_is_a_plain_config() -> None:
    cfg = _tiny()
    got = Member(seed=4, gain=0.3, data_fraction=0.5, lr=0.1).apply(cfg)
    assert (got.seed, got.gain, got.data_fraction, got.lr) == (4, 0.3, 0.5, 0.1)
    assert copy.deepcopy(got) == got and got.hidden == cfg.hidden


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_batched_on_cuda_matches_cpu(cell: str) -> None:
    cfg = _tiny("fast", cell=cell, stop_loss=None)
    on_cpu = train_batched(cfg, MEMBERS)
    on_gpu = train_batched(cfg, MEMBERS, device="cuda")
    assert on_gpu.steps.tolist() == on_cpu.steps.tolist()
    for k, v in on_cpu.params.items():
        torch.testing.assert_close(on_gpu.params[k], v, rtol=1e-3, atol=1e-4)
    assert on_gpu.model(0).rnn.weight_hh_l0.device.type == "cpu"
