"""The representational scale of a set of hidden states, used to make ε relative."""

from __future__ import annotations

import numpy as np
import torch

from dfalens.errors import DataError

__all__ = ["scale"]

_CHUNK = 1 << 16


def scale(hidden: np.ndarray | torch.Tensor | object) -> float:
    """Euclidean norm of the per-unit standard deviation of hidden states.

    This is the paper's "representational standard deviation": a relative merge threshold ε becomes the
    absolute distance ``ε × scale(hidden)``. Computed in float64 in chunks (two passes), so a few
    million float32 states need no float64 copy.

    Parameters
    ----------
    hidden : array or tensor of shape (n, d), or a StateSet
        The states (for a :class:`~dfalens.probes.StateSet`, its ``hidden``).

    Returns
    -------
    float
        ``‖std(hidden, axis=0)‖₂`` (population std); 0.0 for a single state.

    Raises
    ------
    DataError
        When the array is not 2-D, is empty or holds NaN/inf.
    """
    h = getattr(hidden, "hidden", hidden)
    if isinstance(h, torch.Tensor):
        h = h.detach().cpu().numpy()
    h = np.asarray(h)
    if h.ndim != 2 or h.shape[0] == 0:
        raise DataError(f"scale needs a non-empty (n, d) array of states, got shape {h.shape}")
    n = h.shape[0]
    total = np.zeros(h.shape[1])
    for s in range(0, n, _CHUNK):
        total += h[s : s + _CHUNK].sum(axis=0, dtype=np.float64)
    mean = total / n
    sq = np.zeros(h.shape[1])
    for s in range(0, n, _CHUNK):
        dev = h[s : s + _CHUNK].astype(np.float64) - mean
        sq += np.einsum("ij,ij->j", dev, dev)
    value = float(np.sqrt(sq.sum() / n))
    if not np.isfinite(value):
        raise DataError(
            "states contain NaN or inf, so their scale is undefined; use an earlier checkpoint"
        )
    return value
