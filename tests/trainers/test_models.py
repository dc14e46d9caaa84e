"""Models: the probe protocol (step == forward), fused vs torch kernels, initialisation, configs."""

from __future__ import annotations

import itertools

import pytest
import torch

from dfalens.errors import ConfigError
from dfalens.trainers.models import ModelConfig, RecurrentModel, build_model

CASES = [
    (cell, layers, nonlin, h0)
    for cell, layers, nonlin, h0 in itertools.product(
        ("rnn", "gru", "lstm"), (1, 2), ("relu", "tanh"), ("ones", "learned")
    )
    if cell == "rnn" or nonlin == "relu"
]


def _words(batch: int = 6, steps: int = 9, k: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, k, (batch, steps), generator=torch.Generator().manual_seed(seed))


def _perturb(model: RecurrentModel, seed: int = 0) -> None:
    """Give biases and h0 nonzero values so that every term of the cell matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "bias" in name or name == "h0":
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)


@pytest.mark.parametrize(("cell", "layers", "nonlin", "h0"), CASES)
def test_step_matches_forward_exactly(cell: str, layers: int, nonlin: str, h0: str) -> None:
    config = ModelConfig(cell, 12, layers, nonlin, n_symbols=3, n_classes=4, h0=h0, gain=1.0)
    model = build_model(config, seed=1)
    _perturb(model)
    words = _words()
    state = model.initial(words.shape[0])
    assert state.shape == (6, config.state_dim)
    for t in range(words.shape[1]):
        state = model.step(state, words[:, t])
    if cell == "rnn" or layers == 1:
        same = torch.equal
    else:  # torch's GRU/LSTM kernels project upper-layer inputs for all steps at once
        same = lambda a, b: torch.allclose(a, b, rtol=1e-6, atol=1e-7)  # noqa: E731
    assert same(model.readout(state), model(words))
    assert same(state, model.final_state(words))
    with torch.no_grad():
        assert same(model(words), model.readout(state))
    all_steps = model.forward_all(words)
    assert all_steps.shape == (6, 9, 4)
    assert torch.equal(all_steps[:, -1], model(words))


def test_state_layout_lstm_is_h_layers_then_c_layers() -> None:
    model = build_model(ModelConfig("lstm", 5, 2, n_symbols=2), seed=0)
    _perturb(model)
    words = _words(k=2)
    x = model.eye[words]
    h = model.initial(words.shape[0]).view(-1, 4, 5).transpose(0, 1)
    out, (hn, cn) = model.rnn(x, (h[:2].contiguous(), h[2:].contiguous()))
    state = model.final_state(words)
    expected = torch.cat([hn[0], hn[1], cn[0], cn[1]], dim=1)
    assert torch.allclose(state, expected, atol=1e-6)
    assert torch.allclose(model.readout(state), model.head(out[:, -1]), atol=1e-6)


@pytest.mark.parametrize(("layers", "nonlin"), [(1, "relu"), (1, "tanh"), (2, "relu")])
def test_fused_elman_agrees_with_nn_rnn_in_values_and_gradients(layers: int, nonlin: str) -> None:
    model = build_model(ModelConfig("rnn", 16, layers, nonlin, h0="learned", gain=1.0), seed=2)
    _perturb(model, seed=3)
    words = _words(k=2, batch=20, steps=11)
    results = []
    for fused in (True, False):
        model.fused = fused
        model.zero_grad()
        out = model.forward_all(words)
        (out**2).mean().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (out_f, grad_f), (out_m, grad_m) = results
    assert torch.allclose(out_f, out_m, rtol=1e-5, atol=1e-6)
    for name in grad_m:
        assert torch.allclose(grad_f[name], grad_m[name], rtol=1e-4, atol=1e-7), name


def test_initialisation_gain_zero_biases_and_h0_modes() -> None:
    model = build_model(ModelConfig("rnn", 300, 1, gain=0.5), seed=0)
    w = model.rnn.weight_hh_l0
    expected = 0.5 * (2.0 / (300 + 300)) ** 0.5
    assert abs(float(w.detach().std()) - expected) / expected < 0.03
    assert torch.all(model.rnn.bias_ih_l0 == 0) and torch.all(model.head.bias == 0)
    assert torch.all(model.h0 == 1) and not model.h0.requires_grad
    zeros = build_model(ModelConfig(h0="zeros", hidden=4), seed=0)
    assert torch.all(zeros.initial(2) == 0)
    learned = build_model(ModelConfig(h0="learned", hidden=4), seed=0)
    assert learned.h0.requires_grad and "h0" in dict(learned.named_parameters())
    gru = build_model(ModelConfig("gru", 200, 1, gain=1.0), seed=0)
    for block in gru.rnn.weight_hh_l0.chunk(3):  # each gate initialised as its own matrix
        assert abs(float(block.detach().std()) - (2.0 / 400) ** 0.5) < 0.005


def test_build_model_is_seeded_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = build_model(ModelConfig(hidden=8), seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    b = build_model(ModelConfig(hidden=8), seed=7)
    c = build_model(ModelConfig(hidden=8), seed=8)
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    assert all(torch.equal(x, y) for x, y in pairs)
    assert not torch.equal(a.rnn.weight_hh_l0, c.rnn.weight_hh_l0)


def test_empty_words_give_the_initial_state() -> None:
    model = build_model(ModelConfig(hidden=4), seed=0)
    empty = torch.zeros((3, 0), dtype=torch.long)
    assert torch.equal(model.final_state(empty), model.initial(3))
    assert model.forward_all(empty).shape == (3, 0, 2)


def test_long_words_are_read_in_chunks_without_gradients() -> None:
    model = build_model(ModelConfig(hidden=8, nonlinearity="tanh", gain=1.0), seed=0)
    words = _words(batch=3, steps=1300, k=2)
    with torch.no_grad():
        chunked = model.final_state(words)
    with torch.enable_grad():
        whole = model.final_state(words).detach()
    assert torch.isfinite(chunked).all() and torch.equal(chunked, whole)


def test_model_config_validation_and_round_trip() -> None:
    config = ModelConfig("gru", 7, 2, n_symbols=3, n_classes=5, h0="zeros", gain=0.2)
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert config.state_dim == 14 and ModelConfig("lstm", 7, 2).state_dim == 28
    for bad in (
        {"cell": "transformer"},
        {"hidden": 0},
        {"layers": -1},
        {"gain": 0.0},
        {"gain": -1.0},
        {"n_classes": 1},
        {"h0": "random"},
        {"nonlinearity": "gelu"},
    ):
        with pytest.raises(ConfigError):
            ModelConfig(**bad)
    with pytest.raises(ConfigError, match="unknown"):
        ModelConfig.from_dict({"cell": "rnn", "width": 3})
