"""``extract-dfa`` exit codes 0/3/4 and ``--words``, on checkpoints whose answers are known: RNNs with
hand-set weights (an exact parity network, an unbounded counter) and one trained on short words."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dfalens.automata import parity, run
from dfalens.cli import app
from dfalens.probes import from_checkpoint, predict


class Net(nn.Module):
    def __init__(self, hidden: int, nonlinearity: str = "tanh") -> None:
        super().__init__()
        self.rnn = nn.RNN(2, hidden, batch_first=True, nonlinearity=nonlinearity)
        self.head = nn.Linear(hidden, 2)

    def set(self, w_ih: list, w_hh: list, b: list, head_w: list, head_b: list) -> Net:
        with torch.no_grad():
            self.rnn.weight_ih_l0.copy_(torch.tensor(w_ih))
            self.rnn.weight_hh_l0.copy_(torch.tensor(w_hh))
            self.rnn.bias_ih_l0.copy_(torch.tensor(b))
            self.rnn.bias_hh_l0.zero_()
            self.head.weight.copy_(torch.tensor(head_w))
            self.head.bias.copy_(torch.tensor(head_b))
        return self


def exact_parity(gain: float = 20.0) -> Net:
    """tanh units for (state, symbol) pairs, saturated: exactly parity on every word.

    O = -(h0 + h3) / 2 is 1 when the active unit leads to odd ((even, 1) or (odd, 0)), 0 for the
    others and for h0 = 0, so the zero initial state is "even"."""
    g = gain
    return Net(4).set(
        w_ih=[[g, 0], [0, g], [g, 0], [0, g]],
        w_hh=[[g / 2, 0, 0, g / 2]] * 2 + [[-g / 2, 0, 0, -g / 2]] * 2,
        b=[-g / 2, -g / 2, -1.5 * g, -1.5 * g],
        head_w=[[0, 0, 0, 0], [-g / 2, 0, 0, -g / 2]],
        head_b=[0, -g / 2],
    )


def counter() -> Net:
    """ReLU units max(#a - #b, 0) and max(#b - #a, 0); class 1 iff more a's than b's."""
    return Net(2, "relu").set(
        w_ih=[[1, -1], [-1, 1]],
        w_hh=[[1, -1], [-1, 1]],
        b=[0, 0],
        head_w=[[0, 0], [10, 0]],
        head_b=[0, -5],
    )


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("nets")
    paths = {"parity": root / "parity.pt", "counter": root / "counter.pt"}
    torch.save(exact_parity().state_dict(), paths["parity"])
    torch.save(counter().state_dict(), paths["counter"])
    return paths


def run_cli(argv: list, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        app.extract_dfa_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return int(info.value.code), out, err


COUNTER = ["--nonlinearity", "relu", "--alphabet", "ab", "--max-len", "6"]


def test_exact_parity_network_exits_0(nets: dict[str, Path], tmp_path: Path, capsys) -> None:
    words = tmp_path / "val.txt"
    words.write_text("\n".join(["0110", "1" * 15, "10" * 12, "ε", ""]) + "\n")
    code, out, err = run_cli([nets["parity"], "--task", "parity", "--words", words], capsys)
    assert code == 0, out + err
    assert "consistent: yes" in out and "given words: 4;" in out
    assert "task parity: equivalent" in out
    code, out, _ = run_cli([nets["parity"], "--task", "parity", "--json"], capsys)
    record = json.loads(out)
    assert code == 0 and record["exit_code"] == 0 and record["verdict"] == "equivalent"
    assert record["consistent"] is True and record["network_counterexample"] is None
    assert record["words_checked"] == 2046 + 256 + 2 * 256
    assert run_cli([nets["parity"]], capsys)[0] == 0  # no task: consistent is enough


@pytest.mark.slow
def test_counter_network_exits_4(nets: dict[str, Path], tmp_path: Path, capsys) -> None:
    # more a's than b's is not regular: every collected word can be reproduced, never all words
    code, out, _ = run_cli([nets["counter"], *COUNTER, "--json"], capsys)
    record = json.loads(out)
    assert code == 4 and record["exit_code"] == 4 and record["consistent"] is False
    assert record["agreement"] == 1.0
    words = tmp_path / "val.txt"
    words.write_text("".join("a" * n + "b" * (n - 1) + "\n" for n in range(1, 30)))
    out_svg = tmp_path / "m.svg"
    code, out, _ = run_cli([nets["counter"], *COUNTER, "--words", words, "-o", out_svg], capsys)
    assert code == 4 and "consistent: NO" in out and "given words: 29;" in out
    assert out_svg.exists()  # the best guess is still written, and said to be one


def test_network_that_disagrees_with_the_task_exits_3(
    nets: dict[str, Path], tmp_path: Path, capsys
) -> None:
    # the exact parity network against "even number of 1s" (the complement): the network's own
    # shortest disagreement is shown, and the machine's
    task = tmp_path / "even.json"
    task.write_text(
        json.dumps(
            {
                "format": "dfalens.machine",
                "version": 1,
                "alphabet": ["0", "1"],
                "start": 0,
                "delta": [[0, 1], [1, 0]],
                "output": [1, 0],
                "state_names": None,
            }
        )
    )
    code, out, _ = run_cli([nets["parity"], "--task", task], capsys)
    assert code == 3
    assert "NOT equivalent; on '0' the network outputs 0, the task 1" in out
    assert "and on '0' the extraction outputs 0, the task 1" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0110\n\n1012\n", "line 3: symbol '2' is not in the alphabet"),
        ("", "holds no words"),
        ("\n  \n", "holds no words"),
    ],
)
def test_bad_word_files_exit_2_and_write_nothing(
    nets: dict[str, Path], tmp_path: Path, capsys, text: str, message: str
) -> None:
    words = tmp_path / "w.txt"
    words.write_text(text)
    out = tmp_path / "m.svg"
    args = [nets["parity"], "--nonlinearity", "tanh", "--words", words, "-o", out]
    code, stdout, err = run_cli(args, capsys)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert stdout == "" and not out.exists()


def test_missing_word_file_exits_2(nets: dict[str, Path], tmp_path: Path, capsys) -> None:
    code, _, err = run_cli([nets["parity"], "--words", tmp_path / "nope.txt"], capsys)
    assert code == 2 and "does not exist" in err


def test_help_documents_the_exit_codes(capsys) -> None:
    code, out, _ = run_cli(["-h"], capsys)
    assert code == 0
    for line in ("0  extracted", "2  bad input", "3  --task", "4  extracted, but", "--words"):
        assert line in out


def train_short_parity(length: int, seed: int) -> Net:
    """An RNN(2 -> 16) trained with Adam on every word of ``length`` symbols (streaming parity);
    with length 6 and seed 0 it is right on every word up to length 8 and wrong on one of
    length 9 and three of length 10."""
    torch.manual_seed(seed)
    words = torch.tensor(
        np.array([[int(b) for b in np.binary_repr(i, length)] for i in range(2**length)])
    )
    x = nn.functional.one_hot(words, 2).float()
    y = words.cumsum(1) % 2
    net = Net(16)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(300):
        out, _ = net.rnn(x)
        loss = nn.functional.cross_entropy(net.head(out).reshape(-1, 2), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


@pytest.mark.slow
def test_parity_trained_on_short_words_exits_3_naming_its_error(tmp_path: Path, capsys) -> None:
    torch.set_num_threads(1)
    path = tmp_path / "short.pt"
    torch.save(train_short_parity(6, seed=0).state_dict(), path)
    code, out, _ = run_cli([path, "--task", "parity", "--json"], capsys)
    record = json.loads(out)
    assert code == 3 and record["verdict"] == "not equivalent"
    word = record["network_counterexample"]
    assert len(word) > 6  # right on what it was trained on, wrong beyond
    network = int(predict(from_checkpoint(path), [word])[0])
    assert network == record["network_output"] != int(run(parity(), [word])[0])
    # the machine alone is parity: comparing only the machine said "equivalent" here
    assert record["counterexample"] is None and record["closed"] is True
    assert record["consistent"] is False


def test_empty_word_flags(nets: dict[str, Path], capsys) -> None:
    # no start symbol: the empty word is ignored unless asked for
    base = [nets["parity"], "--alphabet", "01", "--max-len", "4", "--json"]
    for extra, expected in (([], False), (["--include-empty"], True), (["--exclude-empty"], False)):
        code, out, _ = run_cli(base + extra, capsys)
        assert code == 0
        assert json.loads(out)["settings"]["include_empty"] is expected
