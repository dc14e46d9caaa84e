"""Timelines over probes given one per epoch: (epoch, Probe) and (epoch, PrefixProbe) pairs."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from dfalens.automata import get_task_machine, tomita
from dfalens.errors import ConfigError, TaskError
from dfalens.probes import PrefixProbe, Probe, extract, from_step, from_transformer_lens
from dfalens.timeline import Timeline, timeline

PERMS = {"parity": [1, 0, 2], "mod3": [2, 0, 1], "const": [0, 1, 2]}
"""How a 1 moves a one-hot state of 3 units (a 0 leaves it): parity, a counter mod 3, nothing."""


def _machine_probe(kind: str, alphabet: str = "01", units: int = 3) -> Probe:
    """A one-hot network computing ``kind``; its two outputs say class 1 for an odd count of 1s
    (parity) or a count of 1s not divisible by 3 (mod3); const always says 0."""
    perm = torch.tensor((PERMS[kind] + list(range(3, units)))[:units])
    assert kind == "const" or units >= 3

    def step(h: Tensor, symbols: Tensor) -> Tensor:
        return torch.where(symbols[:, None] == 1, h[:, perm], h)

    def readout(h: Tensor) -> Tensor:
        if kind == "mod3":
            return torch.stack([h[:, 0], h[:, 1] + h[:, 2]], dim=1)
        return h[:, :2]

    return from_step(torch.eye(units)[0], step, readout, alphabet)


def _prefix_parity() -> PrefixProbe:
    """A 'causal model' whose state after a prefix is the one-hot parity of its 1s."""

    def forward(words: Tensor) -> tuple[Tensor, Tensor]:
        counts = torch.cat([torch.zeros_like(words[:, :1]), words.cumsum(1)], dim=1)
        states = nn.functional.one_hot(counts % 2, 2).float()
        return states, states

    return PrefixProbe(forward, ("0", "1"), 2, 2, torch.device("cpu"), "parity by prefix")


def test_equivalence_flips_where_the_probes_change_machine() -> None:
    kinds = {0: "const", 10: "parity", 20: "mod3", 30: "parity", 40: "parity"}
    pairs = [(e, _machine_probe(k)) for e, k in reversed(kinds.items())]  # any order
    tl = timeline(pairs, "parity", max_len=6, fidelity_words=16, fidelity_length=20)
    assert isinstance(tl, Timeline)
    assert [r.epoch for r in tl.rows] == list(kinds)
    assert [r.equivalent for r in tl.rows] == [k == "parity" for k in kinds.values()]
    assert [r.closed for r in tl.rows] == [True] * 5
    assert [r.states_minimal for r in tl.rows] == [1, 2, 3, 2, 2]
    # the first row that stays equivalent, not the transient one at epoch 10
    assert tl.merger_epoch == 30
    assert tl.memorisation_epoch is None and tl.generalisation_epoch is None
    assert all(r.train_loss is None and r.accuracy == {} for r in tl.rows)
    # closed extractions agree with the network everywhere
    assert all(r.fidelity == pytest.approx(1.0) for r in tl.rows)
    # merges and splits: 1 -> 2 -> 3 -> 2 -> 2 clusters of the words up to length 6
    first, *rest = tl.rows
    assert first.merges is None
    assert rest[0].splits >= 1 and rest[1].splits >= 1 and rest[2].merges >= 1
    assert rest[3].merges == 0 and rest[3].splits == 0
    assert tl.rows[-1].counterexample is None and tl.rows[0].counterexample is not None
    assert tl.settings["n_checkpoints"] == 5 and tl.settings["run_dir"] is None


def test_prefix_probes_and_jobs_forced_to_one() -> None:
    pairs = [(1, _machine_probe("const", units=2)), (2, _prefix_parity())]
    with pytest.warns(UserWarning, match="jobs=2 ignored"):
        tl = timeline(pairs, get_task_machine("parity"), max_len=5, jobs=2)
    assert [r.equivalent for r in tl.rows] == [False, True]
    assert tl.merger_epoch == 2
    assert tl.rows[1].fidelity == pytest.approx(1.0)


def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_bad_probe_sources_are_one_line_errors() -> None:
    parity = _machine_probe("parity")
    with pytest.raises(ConfigError) as err:
        timeline([], "parity")
    assert "(epoch, probe)" in _one_line(err)
    with pytest.raises(ConfigError) as err:
        timeline([(0, parity), (1, parity)])
    assert "task=" in _one_line(err)
    with pytest.raises(ConfigError) as err:
        timeline([(0, parity), (1, _machine_probe("parity", alphabet="ab"))], "parity")
    assert "alphabet" in _one_line(err)
    with pytest.raises(ConfigError) as err:
        timeline([(0, parity), (1, _machine_probe("parity", units=4))], "parity")
    assert "state_dim" in _one_line(err)
    with pytest.raises(ConfigError) as err:
        timeline([(0, parity), (0, parity)], "parity")
    assert "epoch 0" in _one_line(err)
    with pytest.raises(ConfigError) as err:
        timeline([(0, parity), parity], "parity")
    assert "source item 1" in _one_line(err)
    with pytest.raises(ConfigError) as err:
        timeline([("0", parity)], "parity")
    assert "integer epoch" in _one_line(err)
    no_readout = from_step(torch.eye(3)[0], lambda h, s: h)
    with pytest.raises(ConfigError) as err:
        timeline([(0, no_readout)], "parity")
    assert "no readout" in _one_line(err)
    short = PrefixProbe(_prefix_parity().forward_fn, ("0", "1"), 2, 2, torch.device("cpu"), "", 8)
    with pytest.raises(ConfigError) as err:
        timeline([(0, short)], "parity", max_len=4)
    assert "fidelity_length=8" in _one_line(err)
    with pytest.raises(TaskError):  # the task reads other symbols than the probes
        timeline([(0, _machine_probe("parity", alphabet="ab"))], "parity")


@pytest.mark.slow
def test_transformer_checkpoints_as_probes() -> None:
    transformer_lens = pytest.importorskip("transformer_lens")
    torch.manual_seed(0)
    cfg = transformer_lens.HookedTransformerConfig(
        n_layers=1, d_model=32, n_ctx=16, d_head=16, n_heads=2, d_vocab=3, d_vocab_out=2,
        act_fn="relu", d_mlp=64, normalization_type=None, seed=0,
    )  # fmt: skip
    model = transformer_lens.HookedTransformer(cfg)
    words = np.array(list(itertools.product((0, 1), repeat=8)))
    tokens = torch.cat([torch.full((len(words), 1), 2), torch.from_numpy(words)], dim=1)
    ones = np.concatenate([np.ones((len(words), 1)), words], 1)
    labels = torch.from_numpy(np.cumprod(ones, 1)).long().reshape(-1)  # Tomita 1: only 1s so far
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    saved = {}
    for step in range(41):
        if step % 10 == 0:
            saved[step] = copy.deepcopy(model).eval()
        opt.zero_grad()
        nn.functional.cross_entropy(model(tokens).reshape(-1, 2), labels).backward()
        opt.step()
    hook = "blocks.0.hook_resid_post"
    pairs = [(e, from_transformer_lens(m, hook, "01", bos=2)) for e, m in saved.items()]
    # a transformer's prefix states are looser than the paper's RNN's: eps 0.01 closes nothing here
    tl = timeline(pairs, tomita(1), max_len=6, eps=0.1, pooled=False, fidelity_length=14)
    assert not tl.rows[0].equivalent  # the untrained model
    assert tl.rows[-1].equivalent and tl.rows[-1].fidelity == pytest.approx(1.0)
    assert tl.merger_epoch is not None and 0 < tl.merger_epoch <= 40
    # every row is what extract gives for that probe at the row's distance
    for (epoch, probe), row in zip(pairs, tl.rows, strict=True):
        ex = extract(
            probe,
            max_len=6,
            method="leader",
            eps_abs=row.eps_abs,
            include_empty=False,
            fidelity_lengths=(14,),
        )
        assert (row.epoch, row.states_raw, row.states_minimal, row.closed) == (
            epoch,
            ex.n_raw,
            ex.n_minimal,
            ex.closed,
        )
