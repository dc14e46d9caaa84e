"""Probe adapters: stepping a torch module one symbol at a time equals its own forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dfalens.errors import ConfigError, DataError
from dfalens.probes import Probe, as_alphabet, from_model, from_module, from_step

torch.set_num_threads(1)


def _forward_state(rnn: nn.RNNBase, words: np.ndarray, n_symbols: int) -> torch.Tensor:
    """Final state of ``rnn`` on one-hot words, flattened in the probe's layout, via its forward pass."""
    x = nn.functional.one_hot(torch.as_tensor(words), n_symbols).to(next(rnn.parameters()).dtype)
    if not rnn.batch_first:
        x = x.transpose(0, 1)
    with torch.no_grad():
        _, state = rnn(x)
    n = words.shape[0]
    if isinstance(state, tuple):
        h, c = state
        return torch.cat([h.transpose(0, 1).reshape(n, -1), c.transpose(0, 1).reshape(n, -1)], 1)
    return state.transpose(0, 1).reshape(n, -1)


def _step_state(probe: Probe, words: np.ndarray) -> torch.Tensor:
    h = probe.initial(words.shape[0])
    for t in range(words.shape[1]):
        h = probe.step(h, words[:, t])
    return h


CELLS = [
    ("rnn-tanh", lambda **kw: nn.RNN(3, 6, nonlinearity="tanh", **kw)),
    ("rnn-relu", lambda **kw: nn.RNN(3, 6, nonlinearity="relu", **kw)),
    ("gru", lambda **kw: nn.GRU(3, 6, **kw)),
    ("lstm", lambda **kw: nn.LSTM(3, 6, **kw)),
]


@pytest.mark.parametrize("name,make", CELLS, ids=[c[0] for c in CELLS])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("batch_first", [False, True])
def test_step_matches_forward(name, make, layers, batch_first):
    torch.manual_seed(layers * 10 + batch_first)
    rnn = make(num_layers=layers, batch_first=batch_first)
    head = nn.Linear(6, 2)
    probe = from_module(rnn, head, alphabet="abc")
    words = np.random.default_rng(0).integers(0, 3, size=(17, 9))
    ref = _forward_state(rnn, words, 3)
    got = _step_state(probe, words)
    assert got.shape == (17, probe.state_dim)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    # readout sees the top layer's h, as after the module's forward
    x = nn.functional.one_hot(torch.as_tensor(words), 3).float()
    with torch.no_grad():
        out, _ = rnn(x if batch_first else x.transpose(0, 1))
    last = out[:, -1] if batch_first else out[-1]
    torch.testing.assert_close(probe.readout(got), head(last), rtol=1e-5, atol=1e-6)
    expected_dim = 6 * layers * (2 if name == "lstm" else 1)
    assert probe.state_dim == expected_dim
    assert probe.n_classes == 2
    assert probe.alphabet == ("a", "b", "c")


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_lstm_projection_and_no_bias():
    torch.manual_seed(1)
    rnn = nn.LSTM(2, 5, num_layers=2, proj_size=3, bias=False)
    probe = from_module(rnn, nn.Linear(3, 2))
    words = np.random.default_rng(1).integers(0, 2, size=(5, 7))
    torch.testing.assert_close(
        _step_state(probe, words), _forward_state(rnn, words, 2), rtol=1e-5, atol=1e-6
    )
    assert probe.state_dim == 2 * 3 + 2 * 5


def test_float64_module_keeps_dtype():
    torch.manual_seed(2)
    rnn = nn.GRU(2, 4).double()
    probe = from_module(rnn, nn.Linear(4, 2).double())
    words = np.random.default_rng(2).integers(0, 2, size=(4, 5))
    got = _step_state(probe, words)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, _forward_state(rnn, words, 2), rtol=1e-12, atol=1e-12)


def test_h0_and_encodings():
    torch.manual_seed(3)
    rnn = nn.RNN(1, 4, nonlinearity="relu", batch_first=True)
    probe = from_module(rnn, nn.Linear(4, 2), alphabet="01", input_encoding="index", h0=1.0)
    h = probe.initial(2)
    assert torch.equal(h, torch.ones(2, 4))
    out = probe.step(h, [0, 1])
    with torch.no_grad():
        _, ref = rnn(torch.tensor([[[0.0]], [[1.0]]]), torch.ones(1, 2, 4))
    torch.testing.assert_close(out, ref[0])
    emb = nn.Embedding(3, 2)
    gru = nn.GRU(2, 4)
    pe = from_module(gru, None, alphabet=None, input_encoding=emb)
    assert pe.alphabet == ("0", "1", "2") and pe.n_classes == 0
    with torch.no_grad():
        _, ref = gru(emb(torch.tensor([[2]])))
    torch.testing.assert_close(pe.step(pe.initial(1), [2]), ref[0])
    assert pe.readout(pe.initial(3)).shape == (3, 0)
    # a callable encoding and an LSTM (h0, c0) pair
    lstm = nn.LSTM(2, 3)
    pc = from_module(
        lstm,
        alphabet="xy",
        input_encoding=lambda s: torch.stack([s.float(), 1 - s.float()], 1),
        h0=(torch.full((1, 3), 0.5), torch.zeros(1, 3)),
    )
    assert torch.equal(pc.initial(1)[0], torch.tensor([0.5] * 3 + [0.0] * 3))


def test_refusals():
    with pytest.raises(DataError, match="3 symbols but the network's input width is 2"):
        from_module(nn.GRU(2, 4), alphabet="abc")
    with pytest.raises(ConfigError, match="bidirectional"):
        from_module(nn.GRU(2, 4, bidirectional=True))
    with pytest.raises(ConfigError, match="batch_first"):
        from_module(nn.GRU(2, 4), batch_first=True)
    with pytest.raises(ConfigError, match="eval"):
        from_module(nn.GRU(2, 4, num_layers=2, dropout=0.5))
    from_module(nn.GRU(2, 4, num_layers=2, dropout=0.5).eval())
    with pytest.raises(ConfigError, match="from_step"):
        from_module(nn.Linear(2, 2))  # type: ignore[arg-type]
    with pytest.raises(DataError, match="embedding has 3 rows"):
        from_module(nn.GRU(2, 4), alphabet="01", input_encoding=nn.Embedding(3, 2))
    with pytest.raises(DataError, match="h0 has 3 values"):
        from_module(nn.GRU(2, 4), h0=torch.zeros(3))
    with pytest.raises(DataError, match="repeats"):
        as_alphabet("aba")


def test_from_step_parity_and_checks():
    pts = torch.tensor([[0.0, 0.0], [1.0, 1.0]])

    def step(h, s):
        odd = (h[:, 0] > 0.5).long() ^ s
        return pts[odd]

    probe = from_step(pts[0], step, lambda h: h[:, :1], alphabet="01")
    assert probe.state_dim == 2 and probe.n_classes == 1 and probe.n_symbols == 2
    assert probe.assumptions.decision.value == "score > 0.5"
    h = probe.step(probe.initial(3), [1, 0, 1])
    assert torch.equal(h, pts[[1, 0, 1]])
    assert torch.equal(probe.step(h, 1), pts[[0, 1, 0]])  # one int applies to every row
    with pytest.raises(DataError, match="symbols for a batch"):
        probe.step(h, [0, 1])
    bad = from_step(pts[0], lambda h, s: h[:, :1], alphabet="01")
    with pytest.raises(DataError, match="step returned shape"):
        bad.step(bad.initial(2), [0, 1])
    with pytest.raises(DataError, match="1-D"):
        from_step(pts, step)


class _TinyModel(nn.Module):
    """The dfalens model interface, as the trainers implement it."""

    class Config:
        cell, hidden, layers, nonlinearity, n_symbols, n_classes = "rnn", 3, 1, "tanh", 2, 2

    def __init__(self):
        super().__init__()
        self.config = self.Config()
        self.cell = nn.RNNCell(2, 3)
        self.head = nn.Linear(3, 2)

    def initial(self, batch):
        return torch.ones(batch, 3)

    def step(self, state, symbols):
        return self.cell(nn.functional.one_hot(symbols, 2).float(), state)

    def readout(self, state):
        return self.head(state)


def test_from_model_duck_typed():
    torch.manual_seed(4)
    model = _TinyModel()
    probe = from_model(model)
    assert probe.alphabet == ("0", "1") and probe.state_dim == 3 and probe.n_classes == 2
    h = probe.step(probe.initial(2), torch.tensor([0, 1]))
    with torch.no_grad():
        ref = model.step(torch.ones(2, 3), torch.tensor([0, 1]))
    assert torch.equal(h, ref)
    assert not h.requires_grad  # under no_grad
    with pytest.raises(DataError, match="3 symbols but the model reads 2"):
        from_model(model, alphabet="abc")
    with pytest.raises(ConfigError, match="from_module"):
        from_model(nn.GRU(2, 2))


def test_learned_initial_state_collects() -> None:
    """A model whose h0 is a trained parameter still gives plain (gradient-free) states."""
    from dfalens.probes import collect, from_model
    from dfalens.trainers import ModelConfig, build_model

    cfg = ModelConfig(
        cell="rnn",
        hidden=8,
        layers=1,
        nonlinearity="relu",
        n_symbols=2,
        n_classes=2,
        h0="learned",
        gain=0.5,
    )
    states = collect(from_model(build_model(cfg, 0)), 3)
    assert states.n_nodes == 15 and np.isfinite(states.hidden).all()
