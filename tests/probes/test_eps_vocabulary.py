"""One vocabulary for merge distances: ``eps`` is relative, ``eps_abs`` absolute; ``relative=`` is deprecated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dfalens.errors import ConfigError
from dfalens.probes import cluster, collect, explore, extract, from_step, scale
from dfalens.probes.clustering import absolute_eps


def _noisy_parity():
    """Two points (even, odd) plus a word-dependent offset of about 0.05 per step."""
    pts = torch.tensor([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])

    def step(h, s):
        odd = (h[:, 0] > 0.5).long() ^ s
        return pts[odd] + 0.05 * torch.sin(7.0 * h + s[:, None].float())

    return from_step(
        pts[0], step, lambda h: h[:, :2] @ torch.tensor([[0.0, 1.0], [0.0, 1.0]]), "01"
    )


@pytest.fixture(scope="module")
def states():
    return collect(_noisy_parity(), 6)


def test_eps_is_relative_and_eps_abs_absolute(states) -> None:
    unit = scale(states.hidden)
    rel = cluster(states, "threshold", 0.05)
    assert np.array_equal(cluster(states, "threshold", eps_abs=0.05 * unit), rel)
    # the same number read as an absolute distance is a different threshold here (unit != 1)
    assert abs(unit - 1.0) > 0.1
    assert absolute_eps(states, 0.05) == pytest.approx(0.05 * unit)
    assert absolute_eps(states, eps_abs=0.3) == 0.3


@pytest.mark.parametrize("method", ["threshold", "leader", "dbscan"])
def test_relative_false_is_a_deprecated_eps_abs(states, method: str) -> None:
    new = cluster(states, method, eps_abs=0.2)
    with pytest.warns(DeprecationWarning, match="eps_abs"):
        old_kw = cluster(states, method, eps=0.2, relative=False)
    with pytest.warns(DeprecationWarning, match="relative"):
        old_pos = cluster(states, method, 0.2, relative=False)  # eps given positionally
    with pytest.warns(DeprecationWarning):
        old_true = cluster(states, method, 0.2, relative=True)
    assert np.array_equal(old_kw, new) and np.array_equal(old_pos, new)
    assert np.array_equal(old_true, cluster(states, method, 0.2))
    with pytest.warns(DeprecationWarning):
        assert absolute_eps(states, 0.2, relative=False) == 0.2


def test_eps_and_eps_abs_together_are_refused(states) -> None:
    with pytest.raises(ConfigError, match="not both"):
        cluster(states, "threshold", 0.1, eps_abs=0.1)
    with pytest.raises(ConfigError, match="not both"):
        cluster(states, "kmeans", 0.1, eps_abs=0.1, n_clusters=2)
    with pytest.raises(ConfigError, match="not both"):
        extract(states, method="threshold", eps=0.1, eps_abs=0.1)
    with pytest.raises(ConfigError, match="not both"), pytest.warns(DeprecationWarning):
        cluster(states, "threshold", 0.1, relative=False, eps_abs=0.1)
    with pytest.raises(ConfigError, match="not both"):
        explore(_noisy_parity(), 0.1, eps_abs=0.1)


def test_extract_records_eps_abs_and_leaves_eps_relative(states) -> None:
    rel = extract(states, method="threshold", eps=0.3)
    unit = rel.settings["scale"]
    ab = extract(states, method="threshold", eps_abs=0.3 * unit)
    assert np.array_equal(ab.labels, rel.labels)
    assert ab.settings["eps"] is None and ab.settings["eps_abs"] == pytest.approx(0.3 * unit)
    assert rel.settings["eps"] == 0.3
    with pytest.warns(DeprecationWarning, match="relative"):
        old = extract(states, method="threshold", eps=0.3 * unit, relative=False)
    assert np.array_equal(old.labels, ab.labels) and old.settings["eps"] is None


def test_explore_takes_eps_or_eps_abs() -> None:
    probe = _noisy_parity()
    new = explore(probe, eps_abs=0.5)
    with pytest.warns(DeprecationWarning):
        old = explore(probe, 0.5, relative=False)
    assert new.n_states == old.n_states and new.closed == old.closed and new.eps_abs == 0.5
    with pytest.warns(DeprecationWarning, match="eps_abs"):
        assert new.eps == 0.5
    rel = explore(probe, 0.5)
    assert rel.eps_abs == pytest.approx(0.5 * scale(collect(probe, 10).hidden), rel=1e-6)
    with pytest.raises(ConfigError, match="eps_abs"):
        explore(probe)
