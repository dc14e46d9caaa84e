"""Checkpoint loading: safe by construction, shape inference, and one refusal per bad input."""

from __future__ import annotations

import builtins
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from dfalens.errors import CheckpointError, ConfigError, DataError
from dfalens.probes import from_checkpoint, from_module, predict
from dfalens.probes.assumptions import AssumptionWarning, Choice
from dfalens.probes.loading import infer_recurrent, read_checkpoint, read_weights

torch.set_num_threads(1)


class Net(nn.Module):
    def __init__(self, cell: type[nn.RNNBase] = nn.GRU, **kw):
        super().__init__()
        torch.manual_seed(0)
        self.rnn = cell(2, 6, batch_first=True, **kw)
        self.fc = nn.Linear(6, 2)


def _words() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 2, size=(9, 8))


def _reference(net: Net, words: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x = nn.functional.one_hot(torch.as_tensor(words), 2).float()
    with torch.no_grad():
        out, _ = net.rnn(x)
        return out[:, -1], net.fc(out[:, -1])


def _run(probe, words: np.ndarray) -> torch.Tensor:
    h = probe.initial(words.shape[0])
    for t in range(words.shape[1]):
        h = probe.step(h, words[:, t])
    return h


def _assert_same_network(probe, net: Net) -> None:
    words = _words()
    h = _run(probe, words)
    top, scores = _reference(net, words)
    torch.testing.assert_close(probe.readout(h), scores, rtol=1e-5, atol=1e-6)
    n_h = net.rnn.hidden_size
    torch.testing.assert_close(h[:, (net.rnn.num_layers - 1) * n_h : net.rnn.num_layers * n_h], top)


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda sd: sd, id="bare"),
        pytest.param(lambda sd: {f"module.{k}": v for k, v in sd.items()}, id="module-prefix"),
        pytest.param(lambda sd: {f"_orig_mod.{k}": v for k, v in sd.items()}, id="compile-prefix"),
        pytest.param(
            lambda sd: {"state_dict": sd, "epoch": 3, "lr": 0.1}, id="state_dict-container"
        ),
        pytest.param(
            lambda sd: {"model_state_dict": {"net": sd}, "optimizer_state_dict": {"state": {}}},
            id="nested-containers",
        ),
    ],
)
def test_gru_state_dict_variants(tmp_path, wrap):
    net = Net()
    path = tmp_path / "gru.pt"
    torch.save(wrap(net.state_dict()), path)
    probe = from_checkpoint(path)
    assert "inferred GRU at 'rnn'" in probe.description
    assert "readout 'fc.weight' (2 outputs)" in probe.description
    assert probe.alphabet == ("0", "1") and probe.state_dim == 6
    _assert_same_network(probe, net)


def test_lstm_two_layers_and_legacy_format(tmp_path):
    net = Net(nn.LSTM, num_layers=2)
    path = tmp_path / "lstm.pth"
    torch.save(net.state_dict(), path, _use_new_zipfile_serialization=False)
    probe = from_checkpoint(path, alphabet="ab")
    assert "inferred LSTM" in probe.description and "2 layers" in probe.description
    assert probe.state_dim == 2 * 6 * 2 and probe.alphabet == ("a", "b")
    _assert_same_network(probe, net)


def test_plain_rnn_nonlinearity(tmp_path):
    net = Net(nn.RNN, nonlinearity="relu")
    path = tmp_path / "rnn.ckpt"
    torch.save(net.state_dict(), path)
    relu = from_checkpoint(path, nonlinearity="relu")
    assert "RNN(relu)" in relu.description
    _assert_same_network(relu, net)
    with pytest.warns(AssumptionWarning, match="assuming a tanh RNN"):
        tanh = from_checkpoint(path)
    assert "nonlinearity tanh (default" in tanh.description  # says it guessed
    assert tanh.assumptions.nonlinearity.source == "default"
    assert relu.assumptions.nonlinearity == Choice("relu", "given")
    words = _words()
    assert not torch.allclose(tanh.readout(_run(tanh, words)), relu.readout(_run(relu, words)))
    with pytest.raises(ConfigError, match="tanh' or 'relu"):
        from_checkpoint(path, nonlinearity="sigmoid")
    gru = tmp_path / "gru.pt"
    torch.save(Net().state_dict(), gru)
    with pytest.raises(ConfigError, match="plain RNNs only"):
        from_checkpoint(gru, nonlinearity="relu")


def test_foreign_safetensors_embedding_and_scalar_input(tmp_path):
    torch.manual_seed(1)
    emb, rnn, head = nn.Embedding(3, 4), nn.GRU(4, 5), nn.Linear(5, 2)
    tensors = {f"embed.{k}": v for k, v in emb.state_dict().items()}
    tensors |= {f"rnn.{k}": v for k, v in rnn.state_dict().items()}
    tensors |= {f"head.{k}": v for k, v in head.state_dict().items()}
    path = tmp_path / "emb.safetensors"
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata={"who": "them"})
    probe = from_checkpoint(path)
    assert probe.alphabet == ("0", "1", "2") and "embedding 'embed.weight'" in probe.description
    ref = from_module(rnn, head, alphabet="012", input_encoding=emb)
    words = np.random.default_rng(2).integers(0, 3, size=(4, 6))
    torch.testing.assert_close(_run(probe, words), _run(ref, words))
    # one input unit: the symbol index is the input value
    scalar = nn.RNN(1, 4, nonlinearity="relu")
    path = tmp_path / "scalar.pt"
    torch.save({"rnn": scalar.state_dict(), "out": nn.Linear(4, 2).state_dict()}, path)
    p = from_checkpoint(path, nonlinearity="relu", h0=1.0)
    assert p.alphabet == ("0", "1") and "fed as a number" in p.description
    with torch.no_grad():
        _, ref_h = scalar(torch.tensor([[[1.0]]]), torch.ones(1, 1, 4))
    torch.testing.assert_close(p.step(p.initial(1), [1]), ref_h[0])


def test_module_choice_and_readout_choice(tmp_path):
    torch.manual_seed(2)
    a, b = nn.GRU(2, 4), nn.LSTM(2, 3)
    sd = {f"enc.{k}": v for k, v in a.state_dict().items()}
    sd |= {f"dec.{k}": v for k, v in b.state_dict().items()}
    sd |= {"head4.weight": torch.randn(2, 4), "head3.weight": torch.randn(2, 3)}
    path = tmp_path / "two.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"2 recurrent modules \('enc', 'dec'\).*--module"):
        from_checkpoint(path)
    p = from_checkpoint(path, module="dec")
    assert "inferred LSTM at 'dec'" in p.description and "head3.weight" in p.description
    with pytest.raises(CheckpointError, match="no recurrent module 'nope'"):
        from_checkpoint(path, module="nope")
    # two heads reading the same width: ask, then obey --readout
    sd = Net().state_dict() | {"aux.weight": torch.randn(3, 6), "aux.bias": torch.randn(3)}
    torch.save(sd, path)
    with pytest.raises(
        CheckpointError, match=r"several layers.*fc\.weight.*aux\.weight.*--readout"
    ):
        from_checkpoint(path)
    assert from_checkpoint(path, readout="aux").n_classes == 3
    assert from_checkpoint(path, readout="fc.weight").n_classes == 2
    with pytest.raises(CheckpointError, match="names no 2-D weight"):
        from_checkpoint(path, readout="missing")


def test_infer_recurrent_shapes():
    lstm = nn.LSTM(3, 5, num_layers=2, proj_size=2, bias=False)
    spec = infer_recurrent({f"m.{k}": v for k, v in lstm.state_dict().items()})
    assert (spec.cell, spec.input_size, spec.hidden_size, spec.num_layers, spec.proj_size) == (
        "LSTM",
        3,
        5,
        2,
        2,
    )
    assert spec.prefix == "m." and not spec.bias and spec.out_size == 2
    assert infer_recurrent(nn.RNN(4, 7).state_dict()).cell == "RNN"
    with pytest.raises(CheckpointError, match="not 1, 3 or 4 times"):
        infer_recurrent({"weight_hh_l0": torch.zeros(10, 5), "weight_ih_l0": torch.zeros(10, 2)})


# ------------------------------------------------------------------------------------------------
# refusals


class _WritesFile:
    def __init__(self, target: Path, how: str):
        self.target, self.how = target, how

    def __reduce__(self):
        if self.how == "system":
            return (os.system, (f"touch {self.target}",))
        return (builtins.open, (str(self.target), "w"))


@pytest.mark.parametrize("how", ["system", "open"])
@pytest.mark.parametrize("fmt", ["zip", "legacy", "raw-pickle"])
def test_malicious_pickle_is_read_as_data_and_never_runs(tmp_path, how, fmt):
    target = tmp_path / "pwned"
    payload = {"rnn.weight_hh_l0": torch.ones(3, 1), "x": _WritesFile(target, how)}
    path = tmp_path / "evil.pt"
    if fmt == "raw-pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=fmt == "zip")
    assert not target.exists()
    ckpt = read_checkpoint(path)
    assert not target.exists()
    assert list(ckpt.weights) == ["rnn.weight_hh_l0"] and ckpt.modules is None
    torch.testing.assert_close(ckpt.weights["rnn.weight_hh_l0"], torch.ones(3, 1))
    assert any(how in g for g in ckpt.pickle_globals)
    with pytest.raises(CheckpointError, match="lacks a 2-D weight_ih_l0") as err:
        from_checkpoint(path)
    assert "\n" not in str(err.value)
    assert not target.exists()


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("cell", [nn.RNN, nn.GRU])
def test_whole_pickled_model_gives_the_modules_predictions(tmp_path, fmt, cell):
    net = Net(cell)
    path = tmp_path / "whole.pt"
    torch.save(net, path, _use_new_zipfile_serialization=fmt == "zip")
    probe = from_checkpoint(path)
    assert "read as data (nothing in it run)" in probe.description
    _assert_same_network(probe, net)
    ckpt = read_checkpoint(path)
    assert ckpt.modules is not None and ckpt.modules.get("rnn").kind == cell.__name__
    assert ckpt.modules.get("rnn").attributes["batch_first"] is True
    assert list(ckpt.weights) == list(net.state_dict())
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"model": nn.DataParallel(net), "epoch": 4}, wrapped)
    assert list(read_weights(wrapped)[0]) == list(net.state_dict())
    assert read_checkpoint(wrapped).modules.get("fc").attributes["out_features"] == 2
    outer = nn.Module()
    outer.enc = nn.Module()
    outer.enc._orig_mod = net  # as torch.compile wraps a submodule
    nested = tmp_path / "nested.pt"
    torch.save(outer, nested)
    ckpt = read_checkpoint(nested)
    assert list(ckpt.weights) == [f"enc.{k}" for k in net.state_dict()]
    assert (
        ckpt.modules.get("enc.rnn.").kind == cell.__name__ and ckpt.modules.get("enc.nope") is None
    )


def test_trust_pickle_runs_the_files_code_with_a_warning(tmp_path):
    net = Net()
    path = tmp_path / "whole.pt"
    torch.save(net, path)
    with pytest.warns(UserWarning, match=r"trust_pickle=True.*torch\.nn\.modules\.rnn\.GRU"):
        probe = from_checkpoint(path, trust_pickle=True)
    assert "trust_pickle" in probe.description
    _assert_same_network(probe, net)


def test_mlflow_folder_is_read_as_its_model_file(tmp_path):
    net = Net()
    folder = tmp_path / "mlflow_model"
    (folder / "data").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors:\n  pytorch:\n    model_data: data\n")
    torch.save(net, folder / "data" / "model.pth")
    _assert_same_network(from_checkpoint(folder), net)
    (folder / "data" / "model.pth").unlink()
    with pytest.raises(CheckpointError, match="MLflow model folder without data/model.pth"):
        from_checkpoint(folder)


def test_file_level_refusals(tmp_path):
    good = tmp_path / "good.pt"
    torch.save(Net().state_dict(), good)
    data = good.read_bytes()
    cases = {
        "missing.pt": (None, "no such file"),
        "empty.pt": (b"", "empty"),
        "trunc.pt": (data[: len(data) // 2], "truncated or corrupt"),
        "text.pt": (b"hello, this is not a checkpoint\n", "not a checkpoint"),
        "trunc.safetensors": (b"\x40\x00\x00\x00\x00\x00\x00\x00{", "truncated or corrupt"),
    }
    for name, (content, pattern) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(CheckpointError, match=pattern) as err:
            from_checkpoint(path)
        assert "\n" not in str(err.value)
    legacy = tmp_path / "legacy.pt"
    torch.save(Net().state_dict(), legacy, _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        from_checkpoint(legacy)
    with pytest.raises(CheckpointError, match="directory"):
        from_checkpoint(tmp_path)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(CheckpointError, match="holds a Tensor, not a state_dict"):
        from_checkpoint(tensor)


def test_content_refusals(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"fc.weight": torch.zeros(2, 3), "fc.bias": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="no recurrent weights"):
        from_checkpoint(path)
    torch.save(nn.GRU(2, 4).state_dict(), path)
    with pytest.raises(CheckpointError, match="no readout found.*--readout"):
        from_checkpoint(path)
    bi = Net(bidirectional=True).state_dict()
    torch.save(bi, path)
    with pytest.raises(CheckpointError, match="bidirectional"):
        from_checkpoint(path, readout="fc")
    sd = Net().state_dict()
    sd["rnn.weight_hh_l0"][0, 0] = float("nan")
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match="'rnn.weight_hh_l0' contains NaN or inf"):
        from_checkpoint(path)
    sd = Net().state_dict()
    sd["fc.bias"][0] = float("inf")
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match="fc.bias"):
        from_checkpoint(path)
    torch.save(Net().state_dict(), path)
    with pytest.raises(DataError, match="3 symbols but the network's input width is 2"):
        from_checkpoint(path, alphabet="abc")


def test_read_weights_strips_and_flattens(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"model": {"module.enc": {"_orig_mod.w": torch.ones(1)}}, "step": 5}, path)
    weights, meta = read_weights(path)
    assert list(weights) == ["enc.w"] and meta == {}


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_dfalens_checkpoint_is_exact(tmp_path, cell):
    from dfalens.trainers.checkpoints import save_checkpoint
    from dfalens.trainers.models import ModelConfig, build_model

    model = build_model(ModelConfig(cell=cell, hidden=7, layers=2, gain=1.0), seed=3)
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, model, {"task": "parity", "alphabet": ["a", "b"], "epoch": 12})
    probe = from_checkpoint(path)
    assert probe.alphabet == ("a", "b") and probe.state_dim == model.config.state_dim
    assert "task parity" in probe.description and "epoch 12" in probe.description
    words = _words()
    with torch.no_grad():
        ref = model.final_state(torch.as_tensor(words))
        scores = model(torch.as_tensor(words))
    h = _run(probe, words)
    torch.testing.assert_close(h, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(probe.readout(h), scores, rtol=1e-5, atol=1e-6)
    assert from_checkpoint(path, alphabet="xy").alphabet == ("x", "y")
    with pytest.raises(DataError, match="3 symbols but the model reads 2"):
        from_checkpoint(path, alphabet="xyz")
    # a safetensors file without dfalens metadata is read as foreign weights
    foreign = tmp_path / "foreign.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(foreign))
    p = from_checkpoint(foreign, nonlinearity="relu" if cell == "rnn" else None, h0=1.0)
    assert "inferred" in p.description
    torch.testing.assert_close(_run(p, words), ref, rtol=1e-5, atol=1e-6)


def test_pickled_module_attributes_decide_instead_of_guesses(tmp_path: Path) -> None:
    """A whole pickled model (its class gone) is read as data, and its attributes drive inference."""
    package = types.ModuleType("vanished_pkg")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(3, 4, padding_idx=0)
            self.rnn = nn.RNN(4, 8, nonlinearity="relu", batch_first=True)
            self.head = nn.Sequential(nn.Linear(8, 1), nn.Sigmoid())

    Net.__module__ = package.__name__
    Net.__qualname__ = "Net"
    package.Net = Net
    sys.modules[package.__name__] = package
    try:
        torch.manual_seed(0)
        net = Net()
        torch.save(net, tmp_path / "model.pt")
    finally:
        del sys.modules[package.__name__]
    probe = from_checkpoint(tmp_path / "model.pt")
    a = probe.assumptions
    assert (a.nonlinearity.value, a.nonlinearity.source) == ("relu", "inferred")
    assert a.decision.value == "probability > 0.5" and a.decision.source == "inferred"
    assert probe.n_symbols == 2 and "padding_idx" in a.excluded[0]
    # the probe computes what the module computes
    words = torch.tensor([[1, 2, 2, 1], [2, 2, 1, 1]])
    with torch.no_grad():
        out, _ = net.rnn(net.emb(words))
        expected = (net.head(out[:, -1]) > 0.5).long()[:, 0].numpy()
    assert np.array_equal(predict(probe, [[0, 1, 1, 0], [1, 1, 0, 0]]), expected)
