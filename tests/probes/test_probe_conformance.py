"""One conformance suite for every probe adapter, in the manner of scikit-learn's estimator checks.

Every way of getting a :class:`~dfalens.probes.Probe` (a dfalens model, ``torch.nn`` RNN/GRU/LSTM modules,
plain callables, a dfalens checkpoint, a foreign ``state_dict`` file) must behave the same: the shapes of
``initial``/``step``/``readout``, batch independence, determinism, detached outputs, the alphabet, the
accepted symbol types and the refusal of symbols outside the alphabet.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dfalens.automata import Machine, to_json
from dfalens.errors import DataError, DfalensError
from dfalens.probes import Probe, from_checkpoint, from_model, from_module, from_step
from dfalens.trainers import ModelConfig, build_model, make_config, train
from dfalens.trainers.checkpoints import save_checkpoint

torch.set_num_threads(1)

WORDS = np.random.default_rng(0).integers(0, 3, size=(7, 6))
"""Seven words of length six over three symbols (every adapter below reads three symbols)."""


class _Net(nn.Module):
    """A plain torch network as users save it: a recurrent module and a linear readout."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.rnn = nn.GRU(3, 5, batch_first=True)
        self.fc = nn.Linear(5, 2)


def _dfalens_model(cell: str = "rnn", layers: int = 1) -> nn.Module:
    config = ModelConfig(cell=cell, hidden=6, layers=layers, n_symbols=3, gain=1.0)
    return build_model(config, seed=1)


def _make_model(_: Path) -> Probe:
    return from_model(_dfalens_model("gru", layers=2), alphabet="abc")


def _make_model_tanh_rnn(_: Path) -> Probe:
    return from_model(_dfalens_model("rnn"))


def _make_rnn(_: Path) -> Probe:
    torch.manual_seed(3)
    return from_module(nn.RNN(3, 5, num_layers=2), nn.Linear(5, 2), alphabet="abc")


def _make_gru(_: Path) -> Probe:
    torch.manual_seed(4)
    return from_module(nn.GRU(3, 5, batch_first=True), nn.Linear(5, 3), alphabet="abc")


def _make_lstm(_: Path) -> Probe:
    torch.manual_seed(5)
    return from_module(nn.LSTM(3, 4, num_layers=2), nn.Linear(4, 2), alphabet="abc")


def _make_step(_: Path) -> Probe:
    g = torch.Generator().manual_seed(6)
    w = torch.randn(4, 4, generator=g) * 0.5
    u = torch.randn(3, 4, generator=g)
    v = torch.randn(4, 2, generator=g)
    return from_step(
        torch.ones(4),
        lambda h, s: torch.tanh(h @ w + u[s]),
        lambda h: h @ v,
        alphabet="abc",
    )


def _make_dfalens_checkpoint(tmp: Path) -> Probe:
    path = tmp / "last.safetensors"
    save_checkpoint(
        path, _dfalens_model("lstm"), {"task": "t", "alphabet": ["a", "b", "c"], "epoch": 3}
    )
    return from_checkpoint(path)


def _make_state_dict(tmp: Path) -> Probe:
    path = tmp / "weights.pt"
    torch.save(_Net().state_dict(), path)
    return from_checkpoint(path, alphabet="abc")


def _make_trained_run(run_dir: Path) -> Probe:
    return from_checkpoint(run_dir / "checkpoints" / "last.safetensors")


ADAPTERS: dict[str, Callable[[Path], Probe]] = {
    "from_model-gru": _make_model,
    "from_model-rnn": _make_model_tanh_rnn,
    "from_module-rnn": _make_rnn,
    "from_module-gru": _make_gru,
    "from_module-lstm": _make_lstm,
    "from_step": _make_step,
    "from_checkpoint-dfalens": _make_dfalens_checkpoint,
    "from_checkpoint-state_dict": _make_state_dict,
    "from_checkpoint-trained_run": _make_trained_run,
}
"""Every adapter, each giving a probe over three symbols."""


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained by dfalens (two epochs) on a three-symbol task: words with a multiple of 3 a's."""
    root = tmp_path_factory.mktemp("conformance")
    delta = [[1, 0, 0], [2, 1, 1], [0, 2, 2]]
    task = root / "mod3a.json"
    task.write_text(to_json(Machine(delta, [1, 0, 0], alphabet=("a", "b", "c"))))
    config = make_config(
        "fast", task=str(task), hidden=6, max_len=3, epochs=2, test_lengths=(25,), seed=0
    )
    train(config, root / "run")
    return root / "run"


@pytest.fixture(params=list(ADAPTERS), ids=list(ADAPTERS))
def probe(request: pytest.FixtureRequest, tmp_path: Path) -> Probe:
    if request.param == "from_checkpoint-trained_run":
        return _make_trained_run(request.getfixturevalue("trained_run"))
    return ADAPTERS[request.param](tmp_path)


def _run(probe: Probe, words: np.ndarray) -> torch.Tensor:
    h = probe.initial(words.shape[0])
    for t in range(words.shape[1]):
        h = probe.step(h, words[:, t])
    return h


def test_shapes(probe: Probe) -> None:
    for batch in (1, 4):
        h = probe.initial(batch)
        assert h.shape == (batch, probe.state_dim)
        assert h.dtype.is_floating_point and h.device == probe.device
        h2 = probe.step(h, torch.zeros(batch, dtype=torch.long))
        assert h2.shape == (batch, probe.state_dim) and h2.dtype == h.dtype
        y = probe.readout(h2)
        assert y.shape == (batch, probe.n_classes)
    assert probe.n_classes >= 2
    assert probe.description and "\n" not in probe.description


def test_initial_rows_are_independent_copies(probe: Probe) -> None:
    h = probe.initial(3)
    torch.testing.assert_close(h[0], h[2])
    h[0] += 1.0  # writing into one batch's state must not change the next call's
    torch.testing.assert_close(probe.initial(1)[0], h[1])


def test_batch_gives_what_single_words_give(probe: Probe) -> None:
    batched = _run(probe, WORDS)
    single = torch.cat([_run(probe, WORDS[i : i + 1]) for i in range(WORDS.shape[0])])
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(probe.readout(batched), probe.readout(single), rtol=1e-5, atol=1e-6)


def test_deterministic(probe: Probe) -> None:
    a, b = _run(probe, WORDS), _run(probe, WORDS)
    assert torch.equal(a, b)
    assert torch.equal(probe.readout(a), probe.readout(b))
    # different words reach different states (the probe is not ignoring its input)
    assert not torch.equal(a[0], _run(probe, (WORDS[:1] + 1) % 3)[0])


def test_outputs_are_detached(probe: Probe) -> None:
    h = probe.initial(2)
    h2 = probe.step(h, [0, 1])
    y = probe.readout(h2)
    for t in (h, h2, y):
        assert not t.requires_grad and t.grad_fn is None
    # also when the caller hands in a state that requires grad
    live = h.clone().requires_grad_(True)
    assert not probe.step(live, 1).requires_grad
    assert not probe.readout(live).requires_grad


def test_alphabet(probe: Probe) -> None:
    assert probe.n_symbols == len(probe.alphabet) == 3
    assert all(isinstance(a, str) for a in probe.alphabet)
    assert len(set(probe.alphabet)) == 3


@pytest.mark.parametrize(
    "symbols",
    [
        pytest.param(lambda: torch.tensor([2, 0, 1]), id="tensor"),
        pytest.param(lambda: np.array([2, 0, 1]), id="ndarray"),
        pytest.param(lambda: np.array([2, 0, 1], dtype=np.int32), id="ndarray-int32"),
        pytest.param(lambda: [2, 0, 1], id="list"),
        pytest.param(lambda: (2, 0, 1), id="tuple"),
    ],
)
def test_step_accepts_array_likes(probe: Probe, symbols: Callable[[], object]) -> None:
    h = probe.initial(3)
    want = probe.step(h, torch.tensor([2, 0, 1], device=probe.device))
    torch.testing.assert_close(probe.step(h, symbols()), want)


def test_step_with_one_int_applies_to_every_row(probe: Probe) -> None:
    h = _run(probe, WORDS[:3])
    for s in range(probe.n_symbols):
        torch.testing.assert_close(probe.step(h, s), probe.step(h, [s, s, s]))
        torch.testing.assert_close(probe.step(h, np.int64(s)), probe.step(h, [s, s, s]))


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(3, id="int-too-large"),
        pytest.param(-1, id="int-negative"),
        pytest.param([0, 3, 1], id="list-too-large"),
        pytest.param(np.array([0, -1, 1]), id="ndarray-negative"),
        pytest.param(torch.tensor([0, 1, 7]), id="tensor-too-large"),
    ],
)
def test_out_of_range_symbols_are_refused(probe: Probe, bad: object) -> None:
    h = probe.initial(3)
    with pytest.raises(DfalensError, match="symbol"):
        probe.step(h, bad)


def test_wrong_number_of_symbols_is_refused(probe: Probe) -> None:
    with pytest.raises(DataError, match="batch of 3"):
        probe.step(probe.initial(3), [0, 1])


def test_non_integer_symbols_are_refused(probe: Probe) -> None:
    with pytest.raises(DataError, match="integer"):
        probe.step(probe.initial(2), np.array([0.0, 1.5]))
