"""CUDA: cuDNN models agree with the CPU, training runs and checkpoints load on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dfalens.trainers import checkpoints as ck
from dfalens.trainers import make_config, train
from dfalens.trainers.models import ModelConfig, build_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_cuda_model_matches_cpu_and_steps(cell: str) -> None:
    cpu = build_model(ModelConfig(cell, 24, 2, gain=0.8), seed=0)
    gpu = build_model(ModelConfig(cell, 24, 2, gain=0.8), seed=0).to("cuda")
    words = torch.randint(0, 2, (16, 30), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = cpu(words)
        got = gpu(words.cuda())
        state = gpu.initial(16)
        for t in range(words.shape[1]):
            state = gpu.step(state, words[:, t].cuda())
    assert torch.allclose(got.cpu(), expected, rtol=1e-4, atol=1e-5)
    assert torch.allclose(gpu.readout(state), got, rtol=1e-4, atol=1e-5)


def test_train_on_cuda_and_reload_on_cpu(tmp_path: Path) -> None:
    config = make_config("fast", epochs=4, checkpoints="every:2", test_lengths=(50,), device="cuda")
    run = train(config, tmp_path / "run")
    assert run.model is not None and next(run.model.parameters()).is_cuda
    model, meta = ck.load_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert meta["epoch"] == 4 and next(model.parameters()).device.type == "cpu"
    resumed = train(config.replace(epochs=6), tmp_path / "run", resume=True)
    assert resumed.epochs_done == 6
