"""Conventions of real networks: stacks and cells, initial states, heads and their decision rules,
padding, vocabularies, start and end symbols; each checked against the network's own computation."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import save_file
from torch import Tensor, nn

from dfalens.errors import CheckpointError, ConfigError
from dfalens.probes import (
    Assumptions,
    AssumptionWarning,
    Choice,
    from_checkpoint,
    from_module,
    from_state_dict,
    infer_stack,
)
from dfalens.probes._conventions import find_vocab
from dfalens.probes._heads import decision_rule

torch.set_num_threads(1)
WORDS = np.random.default_rng(0).integers(0, 3, size=(7, 6))


def run(probe, words: np.ndarray) -> Tensor:
    h = probe.initial(words.shape[0])
    for t in range(words.shape[1]):
        h = probe.step(h, words[:, t])
    return h


def onehot(words: np.ndarray, n: int = 3) -> Tensor:
    return nn.functional.one_hot(torch.as_tensor(words), n).float()


def prefixed(prefix: str, module: nn.Module) -> dict[str, Tensor]:
    return {f"{prefix}{k}": v for k, v in module.state_dict().items()}


# ---------------------------------------------------------------------------------------------------
# stacks and cells


def test_stack_of_modules_matches_chained_forward():
    torch.manual_seed(0)
    gru, lstm, head = (
        nn.GRU(3, 5, batch_first=True),
        nn.LSTM(5, 4, batch_first=True),
        nn.Linear(4, 2),
    )
    probe = from_module(nn.ModuleList([gru, lstm]), head, alphabet="abc")
    h = run(probe, WORDS)
    with torch.no_grad():
        x, hg = gru(onehot(WORDS))
        y, (hl, cl) = lstm(x)
    assert probe.state_dim == 5 + 4 + 4
    torch.testing.assert_close(h, torch.cat([hg[0], hl[0], cl[0]], 1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(probe.readout(h), head(y[:, -1]), rtol=1e-5, atol=1e-6)


def test_cells_in_a_loop_match_their_calls():
    torch.manual_seed(1)
    c1, c2 = nn.RNNCell(3, 5, nonlinearity="relu"), nn.LSTMCell(5, 4)
    head = nn.Linear(4, 3)
    probe = from_module([c1, c2], head, alphabet="abc")
    x = onehot(WORDS)
    h1 = torch.zeros(7, 5)
    h2 = c2_state = (torch.zeros(7, 4), torch.zeros(7, 4))
    with torch.no_grad():
        for t in range(WORDS.shape[1]):
            h1 = c1(x[:, t], h1)
            c2_state = c2(h1, c2_state)
        h2 = c2_state
    h = run(probe, WORDS)
    torch.testing.assert_close(h, torch.cat([h1, h2[0], h2[1]], 1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(probe.readout(h), head(h2[0]), rtol=1e-5, atol=1e-6)
    assert probe.assumptions.nonlinearity == Choice("relu", "inferred", "module attribute")


def test_infer_stack_orders_by_index_and_checks_chaining():
    torch.manual_seed(2)
    sd: dict[str, Tensor] = {}
    widths = [3] + [4] * 11
    for i in range(11):  # layers.0 ... layers.10: numeric, not string, order
        sd |= prefixed(f"layers.{i}.rnn.", nn.GRU(widths[i], widths[i + 1]))
    specs = infer_stack(sd)
    assert [s.prefix for s in specs] == [f"layers.{i}.rnn." for i in range(11)]
    bad = prefixed("mach.0.", nn.GRU(3, 4)) | prefixed("mach.1.", nn.GRU(5, 4))
    with pytest.raises(CheckpointError, match="do not chain.*--module"):
        infer_stack(bad)
    assert infer_stack(bad, module="mach.1")[0].input_size == 5
    cells = prefixed("cell.", nn.GRUCell(2, 6))
    (spec,) = infer_stack(cells)
    assert spec.is_cell and spec.cell == "GRU" and spec.state_dim == 6


def test_bidirectional_points_to_the_black_box_path():
    with pytest.raises(ConfigError, match="from_classifier"):
        from_module(nn.GRU(2, 3, bidirectional=True))
    sd = prefixed("rnn.", nn.LSTM(2, 3, bidirectional=True)) | {"fc.weight": torch.zeros(2, 6)}
    with pytest.raises(CheckpointError, match="from_classifier"):
        from_state_dict(sd, readout="fc")


# ---------------------------------------------------------------------------------------------------
# initial states


@pytest.mark.parametrize("h0,value", [("ones", 1.0), ("zeros", 0.0), (0.25, 0.25), ("-1.5", -1.5)])
def test_h0_options(h0, value):
    probe = from_module(nn.RNN(2, 4), nn.Linear(4, 2), h0=h0)
    assert torch.equal(probe.initial(2), torch.full((2, 4), value))
    assert probe.assumptions.h0.source == "given"


def test_learned_h0_found_in_the_weights():
    torch.manual_seed(3)
    rnn, head = nn.GRU(2, 4, batch_first=True), nn.Linear(4, 2)
    h0 = torch.randn(1, 1, 4)
    sd = prefixed("rnn.", rnn) | prefixed("fc.", head) | {"init_hidden": h0}
    probe = from_state_dict(sd)
    assert torch.equal(probe.initial(1), h0.reshape(1, 4))
    assert probe.assumptions.h0 == Choice("learned", "inferred", "weights 'init_hidden'")
    words = WORDS % 2
    with torch.no_grad():
        out, _ = rnn(onehot(words, 2), h0.expand(1, 7, 4).contiguous())
    torch.testing.assert_close(run(probe, words)[:, :4], out[:, -1], rtol=1e-5, atol=1e-6)
    # a given h0 wins; a learned LSTM h0 without c0 gets c0 = 0
    assert from_state_dict(sd, h0="zeros").assumptions.h0 == Choice("zeros", "given")
    lstm = prefixed("rnn.", nn.LSTM(2, 3)) | {"fc.weight": torch.zeros(2, 3), "h_0": torch.ones(3)}
    assert torch.equal(from_state_dict(lstm).initial(1)[0], torch.tensor([1.0] * 3 + [0.0] * 3))
    with pytest.raises(CheckpointError, match="several tensors could be the initial state"):
        from_state_dict(sd | {"model.h0": h0})
    with pytest.raises(CheckpointError, match="has 5 values for a state of 4"):
        from_state_dict(sd | {"init_hidden": torch.zeros(5)})


# ---------------------------------------------------------------------------------------------------
# heads and decision rules


@given(st.lists(st.floats(-5, 5, width=32), min_size=1, max_size=20), st.floats(-2, 2))
def test_one_output_scores_keep_the_decision(logits, threshold):
    z = torch.tensor(logits)[:, None]
    rule, _ = decision_rule(1, False, threshold)
    score = rule(z).numpy().astype(np.float32)[:, 0]  # as collection stores it
    assert np.array_equal(score > 0.5, z[:, 0].numpy().astype(np.float64) > threshold)
    near = torch.tensor([[np.nextafter(np.float32(0), np.float32(1))], [0.0]])
    assert (decision_rule(1, False, None)[0](near)[:, 0].float() > 0.5).tolist() == [True, False]


def test_decision_rules_follow_the_head():
    rnn = nn.GRU(2, 4)
    logit = from_module(rnn, nn.Linear(4, 1))
    assert logit.assumptions.decision.value == "logit > 0"
    assert logit.assumptions.decision.source == "default"
    prob = from_module(rnn, nn.Sequential(nn.Linear(4, 1), nn.Sigmoid()))
    assert prob.assumptions.decision == Choice(
        "probability > 0.5", "inferred", "one output after a sigmoid"
    )
    h = torch.randn(50, 4)
    torch.manual_seed(4)
    lin = nn.Linear(4, 1)
    for head, thr, truth in (
        (lin, None, lambda y: y > 0),
        (lin, 0.3, lambda y: y > 0.3),
        (nn.Sequential(lin, nn.Sigmoid()), 0.8, lambda y: torch.sigmoid(y) > 0.8),
    ):
        p = from_module(rnn, head, threshold=thr)
        with torch.no_grad():
            want = truth(lin(h[:, :4]))[:, 0]
        assert torch.equal(p.readout(h)[:, 0] > 0.5, want)
    with pytest.raises(ConfigError, match="one-output heads"):
        from_module(rnn, nn.Linear(4, 2), threshold=0.5)
    with pytest.raises(ConfigError, match=r"probability in \(0, 1\)"):
        from_module(rnn, nn.Sequential(nn.Linear(4, 1), nn.Sigmoid()), threshold=2.0)


def test_sequential_head_from_weights_and_attributes():
    torch.manual_seed(5)
    rnn = nn.GRU(2, 4)
    head = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Linear(6, 1), nn.Sigmoid())
    sd = prefixed("rnn.", rnn) | prefixed("head.", head)
    with pytest.warns(AssumptionWarning, match="assuming ReLU"):
        guessed = from_state_dict(sd)
    assert guessed.assumptions.head.value == "Linear(4->6), ReLU, Linear(6->6), Linear(6->1)"
    attrs = {
        "head.1": {"class": "torch.nn.modules.activation.Tanh"},
        "head.4": {"class": "Sigmoid"},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error", AssumptionWarning)
        known = from_state_dict(sd, attributes=attrs)
    assert known.assumptions.head.source == "inferred"
    assert known.assumptions.decision.value == "probability > 0.5"
    h = torch.randn(20, 4)
    with torch.no_grad():
        want = head(h)[:, 0] > 0.5
    assert torch.equal(known.readout(h)[:, 0] > 0.5, want)


# ---------------------------------------------------------------------------------------------------
# inputs: padding, vocabularies, start and end symbols


def test_padding_rows_are_left_out():
    torch.manual_seed(6)
    emb = nn.Embedding(3, 4, padding_idx=0)
    probe = from_module(nn.GRU(4, 5), nn.Linear(5, 2), alphabet=None, input_encoding=emb)
    assert probe.alphabet == ("1", "2") and probe.assumptions.excluded == ("'0' (padding)",)
    named = from_module(nn.GRU(4, 5), nn.Linear(5, 2), alphabet="ab", input_encoding=emb)
    assert named.alphabet == ("a", "b")
    # symbol i of the probe is embedding row i + 1
    gru = nn.GRU(4, 5)
    p = from_module(gru, None, alphabet=["<pad>", "x", "y"], input_encoding=emb)
    with torch.no_grad():
        _, want = gru(emb(torch.tensor([[2]])))
    torch.testing.assert_close(p.step(p.initial(1), [1]), want[0])
    # from weights: an all-zero row, or a padding name in the saved vocabulary
    w = torch.randn(3, 4)
    w[0] = 0
    sd = {"emb.weight": w} | prefixed("rnn.", nn.GRU(4, 5)) | {"fc.weight": torch.randn(2, 5)}
    assert from_state_dict(sd).alphabet == ("1", "2")
    vocab = ("<PAD>", "a", "b")
    p = from_state_dict(sd | {"emb.weight": torch.randn(3, 4)}, vocab=vocab)
    assert p.alphabet == ("a", "b") and "named '<PAD>'" in p.assumptions.excluded[0]


def test_vocabulary_forms():
    assert find_vocab({"stoi": {"<pad>": 0, "a": 1}}) == ("stoi", ("<pad>", "a"))
    assert find_vocab({"hp": {"itos": ["x", "y"]}}) == ("itos", ("x", "y"))
    assert find_vocab({"alphabet": "01"}) == ("alphabet", ("0", "1"))
    assert find_vocab({"idx_to_token": {0: "a", 1: "b"}}) == ("idx_to_token", ("a", "b"))
    assert find_vocab({"epoch": 3}) is None
    assert find_vocab({}, {"vocab": json.dumps({"a": 1, "b": 0})}) == ("vocab", ("b", "a"))
    with pytest.raises(CheckpointError, match="indices"):
        find_vocab({"vocab": {"a": 0, "b": 2}})


def test_vocab_in_safetensors_metadata(tmp_path):
    torch.manual_seed(7)
    sd = prefixed("rnn.", nn.GRU(3, 4)) | {"fc.weight": torch.randn(2, 4)}
    path = tmp_path / "net.safetensors"
    save_file(sd, str(path), metadata={"vocab": json.dumps(["<pad>", "a", "b"])})
    probe = from_checkpoint(path)
    assert probe.alphabet == ("a", "b") and probe.assumptions.alphabet.source == "inferred"


def test_bos_eos_feed_the_network_its_symbols():
    torch.manual_seed(8)
    emb, gru, head = nn.Embedding(4, 3), nn.GRU(3, 5, batch_first=True), nn.Linear(5, 2)
    vocab = ["a", "b", "<s>", "</s>"]
    probe = from_module(gru, head, alphabet=vocab, input_encoding=emb, bos="<s>", eos="</s>")
    assert probe.alphabet == ("a", "b")
    assert probe.assumptions.bos == "<s>" and probe.assumptions.eos == "</s>"
    words = WORDS % 2
    seq = torch.cat([torch.full((7, 1), 2), torch.as_tensor(words), torch.full((7, 1), 3)], 1)
    with torch.no_grad():
        out, _ = gru(emb(seq))
    h = run(probe, words)
    torch.testing.assert_close(h, out[:, -2], rtol=1e-5, atol=1e-6)  # the state after w
    torch.testing.assert_close(probe.readout(h), head(out[:, -1]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="both"):
        from_module(gru, head, alphabet=vocab, input_encoding=emb, bos="<s>", eos="<s>")
    with pytest.raises(ConfigError, match="not in the vocabulary"):
        from_module(gru, head, alphabet=vocab, input_encoding=emb, eos="<eos>")


def test_vocab_that_does_not_fit_is_refused():
    sd = prefixed("rnn.", nn.GRU(3, 4)) | {"fc.weight": torch.randn(2, 4)}
    with pytest.raises(CheckpointError, match="2 entries but the network reads 3 inputs"):
        from_state_dict(sd, vocab=("a", "b"))
    assert from_state_dict(sd, vocab=("a", "b"), alphabet="xyz").alphabet == ("x", "y", "z")


def test_attributes_decide_nonlinearity_and_padding():
    torch.manual_seed(9)
    rnn = nn.RNN(4, 5, nonlinearity="relu")
    sd = (
        {"emb.weight": torch.randn(3, 4)} | prefixed("rnn.", rnn) | {"fc.weight": torch.randn(2, 5)}
    )
    attrs = {"rnn": {"class": "RNN", "nonlinearity": "relu"}, "emb": {"padding_idx": 2}}
    with warnings.catch_warnings():
        warnings.simplefilter("error", AssumptionWarning)
        probe = from_state_dict(sd, attributes=attrs)
    assert probe.assumptions.nonlinearity == Choice("relu", "inferred", "module attribute")
    assert probe.alphabet == ("0", "1") and "padding_idx" in probe.assumptions.excluded[0]


def test_assumptions_record_round_trips_to_json():
    a = Assumptions(
        nonlinearity=Choice("relu", "given"),
        h0=Choice("ones", "given"),
        decision=Choice("logit > 0", "default", "one output"),
        bos="<s>",
        excluded=("'<pad>' (padding)",),
    )
    d = json.loads(json.dumps(a.to_dict()))
    assert d["nonlinearity"] == {"value": "relu", "source": "given", "note": ""}
    assert d["head"] is None and d["bos"] == "<s>" and d["eos"] is None
    assert "decision logit > 0 (default: one output)" in a.summary()
    with pytest.raises(ValueError, match="source"):
        Choice("x", "guessed")


def test_unindexed_two_layer_head_is_flagged():
    torch.manual_seed(10)
    sd = (
        prefixed("rnn.", nn.GRU(2, 4))
        | prefixed("fc1.", nn.Linear(4, 6))
        | prefixed("fc2.", nn.Linear(6, 2))
    )
    with pytest.warns(
        AssumptionWarning, match=r"'fc1.weight' gives 6 values and fc2.weight reads 6"
    ):
        probe = from_state_dict(sd)
    assert probe.n_classes == 6  # read as told; the warning says why that may be wrong
