"""One scale computation: whole, per set, pooled over sets and combined from parts all agree."""

from __future__ import annotations

import numpy as np

from dfalens.probes import scale
from dfalens.probes.scaling import pool, state_moments


def test_moments_pool_to_the_scale_of_everything() -> None:
    rng = np.random.default_rng(0)
    h = (rng.normal(size=(5, 300, 7)) * rng.uniform(0.1, 3.0, size=(5, 1, 7))).astype(np.float32)
    everything = h.reshape(-1, 7).astype(np.float64)
    want = float(np.linalg.norm(everything.std(axis=0)))
    per = state_moments(h)
    assert per.scale.shape == (5,)
    np.testing.assert_allclose(per.scale, [np.linalg.norm(x.std(axis=0)) for x in h], rtol=1e-5)
    assert abs(per.pooled().scale - want) < 1e-5 * want
    parts = [state_moments(h[:2]).pooled(), state_moments(h[2:]).pooled()]
    assert abs(pool(parts).scale - want) < 1e-5 * want
    assert abs(scale(everything) - want) < 1e-9 * want
