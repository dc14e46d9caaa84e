"""States from inside models with no recurrent step: TransformerLens hooks and nnsight module paths."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from dfalens.automata import equivalent, run, tomita
from dfalens.errors import ConfigError
from dfalens.probes import (
    collect,
    collect_words,
    explore,
    extract,
    from_module,
    from_nnsight,
    from_transformer_lens,
    predict,
)

transformer_lens = pytest.importorskip("transformer_lens")
nnsight = pytest.importorskip("nnsight")

BOS = 2


def _words(max_len: int) -> list[tuple[int, ...]]:
    return [w for n in range(max_len + 1) for w in itertools.product((0, 1), repeat=n)]


@pytest.fixture(scope="module")
def tomita1_transformer() -> object:
    """A 1-layer HookedTransformer trained on Tomita 1 (only 1s so far) at every position, BOS first."""
    torch.manual_seed(0)
    cfg = transformer_lens.HookedTransformerConfig(
        n_layers=1, d_model=32, n_ctx=16, d_head=16, n_heads=2, d_vocab=3, d_vocab_out=2,
        act_fn="relu", d_mlp=64, normalization_type=None, seed=0,
    )  # fmt: skip
    model = transformer_lens.HookedTransformer(cfg)
    words = np.array([w for w in itertools.product((0, 1), repeat=8)])
    tokens = torch.cat([torch.full((len(words), 1), BOS), torch.from_numpy(words)], dim=1)
    labels = torch.from_numpy(np.cumprod(np.concatenate([np.ones((len(words), 1)), words], 1), 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(tokens).reshape(-1, 2), labels.long().reshape(-1))
        loss.backward()
        opt.step()
    model.eval()
    return model


def test_transformer_states_extract_the_language_it_learned(tomita1_transformer: object) -> None:
    probe = from_transformer_lens(tomita1_transformer, "blocks.0.hook_resid_post", "01", bos=BOS)
    words = _words(6)
    truth = run(tomita(1), words)
    assert np.array_equal(predict(probe, words), truth)  # the network learned it
    ex = extract(probe, max_len=6, fidelity_lengths=(14,))
    assert ex.fidelity == {14: 1.0}
    assert ex.closed and equivalent(ex.minimal, tomita(1)).equal


def test_one_forward_pass_gives_the_states_of_every_prefix(tomita1_transformer: object) -> None:
    probe = from_transformer_lens(tomita1_transformer, "blocks.0.hook_resid_post", "01", bos=BOS)
    tree = collect(probe, 4)
    # each node's state equals the state of its word run on its own (causal attention)
    for node in (0, 1, 6, 20, 30):
        length = int(tree.depth[node])
        path = [node]
        while tree.parent[path[-1]] >= 0:
            path.append(int(tree.parent[path[-1]]))
        word = [int(tree.symbol[p]) for p in reversed(path[:-1])]
        states, _ = probe.run(np.array([word], dtype=np.int64).reshape(1, length))
        np.testing.assert_allclose(tree.hidden[node], states[0, length], rtol=1e-5, atol=1e-5)
    sub = collect_words(probe, ["0110", "1"])
    assert sub.hidden.shape == (6, probe.state_dim)


def test_bad_hooks_and_tokens_are_one_line_errors(tomita1_transformer: object) -> None:
    with pytest.raises(ConfigError, match="no hook 'blocks.0.hook_resid_pots'; did you mean"):
        from_transformer_lens(tomita1_transformer, "blocks.0.hook_resid_pots", "01")
    with pytest.raises(ConfigError, match="not one vector per position"):
        from_transformer_lens(tomita1_transformer, "blocks.0.attn.hook_pattern", "01")
    with pytest.raises(ConfigError, match="outside the model's vocabulary"):
        from_transformer_lens(tomita1_transformer, "hook_embed", "01", tokens=[0, 7])
    probe = from_transformer_lens(tomita1_transformer, "hook_embed", "01", bos=BOS)
    with pytest.raises(ConfigError, match="needs a recurrent step"):
        explore(probe, 0.1)
    with pytest.raises(ConfigError, match="do not fit the model's context of 15 symbols"):
        predict(probe, ["0" * 16])


class _Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.emb = nn.Embedding(2, 8)
        self.rnn = nn.GRU(8, 12, batch_first=True)
        self.head = nn.Linear(12, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.emb(x))
        return self.head(out)


def test_nnsight_module_path_gives_the_recurrent_states() -> None:
    model = _Classifier()
    via_hooks = from_nnsight(nnsight.NNsight(model), "rnn", "01")
    direct = from_module(model.rnn, readout=model.head, alphabet="01", input_encoding=model.emb)
    a, b = collect(via_hooks, 5), collect(direct, 5)
    # no start symbol: the empty word has a zero state in both
    np.testing.assert_allclose(a.hidden, b.hidden, rtol=1e-5, atol=1e-5)
    words = ["0110101", "1", "000111"]
    assert np.array_equal(predict(via_hooks, words), predict(direct, words))
    with pytest.raises(ConfigError, match="no module 'rnn.cell'"):
        from_nnsight(nnsight.NNsight(model), "rnn.cell", "01")
