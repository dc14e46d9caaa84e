"""A tiny trained run shared by the report tests (a few seconds of training)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dfalens.trainers import make_config, train


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("report") / "run"
    cfg = make_config(
        "paper",
        hidden=16,
        max_len=4,
        epochs=12,
        lr=0.3,
        checkpoints="every",
        test_lengths=(25,),
        seed=0,
    )
    train(cfg, out)
    return out
