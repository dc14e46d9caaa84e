"""Shared test configuration: hypothesis profiles, a headless matplotlib, one torch thread."""

from __future__ import annotations

import os

import matplotlib
import torch
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")
torch.set_num_threads(1)  # the machines are shared, and tiny networks run fastest on one thread

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
