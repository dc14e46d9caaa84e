"""Where a timeline's states come from: checkpoint files, or probes given one per epoch.

:func:`open_block` turns a block of a timeline's items into an object with the interface the two
passes of :mod:`dfalens.timeline._workers` use (``metas``, ``states``, ``hidden``, ``predict``): a
:class:`~dfalens.timeline.history.Block` for checkpoint paths, a :class:`ProbeBlock` for
:class:`EpochProbe` items. Probes hold closures (and often a model on a device), so timelines over
probes run in this process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfalens.errors import ConfigError, DataError
from dfalens.probes.collection import AnyProbe, collect, predict
from dfalens.probes.hooks import PrefixProbe
from dfalens.probes.probe import Probe
from dfalens.timeline.history import Block, read_block

__all__ = [
    "EpochProbe",
    "ProbeBlock",
    "is_probe_source",
    "open_block",
    "probe_items",
    "probe_meta",
]


@dataclass(frozen=True, eq=False)
class EpochProbe:
    """One item of a probe timeline: the network at ``epoch`` as a probe."""

    epoch: int
    probe: AnyProbe


def is_probe_source(source: Any) -> bool:
    """Whether ``source`` is a sequence of ``(epoch, probe)`` pairs (rather than paths)."""
    if isinstance(source, str | bytes | os.PathLike) or not isinstance(source, Sequence):
        return False
    return any(
        isinstance(item, Probe | PrefixProbe)
        or (
            isinstance(item, tuple | list)
            and len(item) == 2
            and isinstance(item[1], Probe | PrefixProbe)
        )
        for item in source
    )


def probe_items(source: Sequence[Any]) -> list[EpochProbe]:
    """Check ``(epoch, probe)`` pairs and sort them by epoch.

    Raises
    ------
    ConfigError
        An item that is not an ``(epoch, probe)`` pair, two items with one epoch, a probe without a
        readout, or probes whose alphabets, state sizes or output counts differ.
    """
    items: list[EpochProbe] = []
    for i, item in enumerate(source):
        ok = isinstance(item, tuple | list) and len(item) == 2
        epoch, probe = item if ok else (None, None)
        if (
            not ok
            or isinstance(epoch, bool)
            or not isinstance(epoch, int | np.integer)
            or not isinstance(probe, Probe | PrefixProbe)
        ):
            raise ConfigError(
                f"source item {i} is {item!r:.60}; a probe timeline takes (epoch, probe) pairs "
                "with an integer epoch and a Probe or PrefixProbe"
            )
        items.append(EpochProbe(int(epoch), probe))
    items.sort(key=lambda it: it.epoch)
    epochs = [it.epoch for it in items]
    if len(set(epochs)) != len(epochs):
        twice = next(e for e in epochs if epochs.count(e) > 1)
        raise ConfigError(f"two probes are given for epoch {twice}; give one probe per epoch")
    first = items[0]
    for it in items:
        if not it.probe.n_classes:
            raise ConfigError(
                f"the probe of epoch {it.epoch} has no readout, so a timeline cannot compare it "
                "with the task; build it with a readout"
            )
        for what in ("alphabet", "state_dim", "n_classes"):
            a, b = getattr(it.probe, what), getattr(first.probe, what)
            if a != b:
                raise ConfigError(
                    f"the probe of epoch {it.epoch} has {what} {a!r} but that of epoch "
                    f"{first.epoch} has {b!r}: a timeline follows one network; give probes of one "
                    "model"
                )
    return items


def probe_meta(item: EpochProbe) -> dict[str, Any]:
    """A checkpoint's metadata as far as a probe can say it."""
    probe = item.probe
    config: dict[str, Any] = {"hidden": int(probe.state_dim)}
    if probe.n_classes is not None and probe.n_classes >= 2:
        config["n_classes"] = int(probe.n_classes)  # one score is read as two classes
    return {"epoch": item.epoch, "alphabet": list(probe.alphabet), "model_config": config}


@dataclass(frozen=True, eq=False)
class ProbeBlock:
    """A block of probes with the interface of :class:`~dfalens.timeline.history.Block`.

    Attributes
    ----------
    items : list of EpochProbe
    metas : list of dict
        Synthesised metadata: ``epoch``, ``alphabet`` and ``model_config`` (``hidden``, and
        ``n_classes`` when the readout has two or more outputs).
    """

    items: list[EpochProbe]
    metas: list[dict[str, Any]]

    def states(self, max_len: int) -> tuple[np.ndarray, np.ndarray]:
        """States and outputs on every word up to ``max_len``: ``(c, n, d)`` and ``(c, n, k)``
        float32, through :func:`dfalens.probes.collect`."""
        hs, os_ = [], []
        for item in self.items:
            try:
                s = collect(item.probe, max_len)
            except DataError as err:
                raise DataError(f"epoch {item.epoch}: {err}") from None
            hs.append(np.asarray(s.hidden, dtype=np.float32))
            os_.append(np.asarray(s.output, dtype=np.float32))
        return np.stack(hs), np.stack(os_)

    def hidden(self, max_len: int) -> np.ndarray:
        """States on every word up to ``max_len``, ``(c, n, d)`` float32."""
        return self.states(max_len)[0]

    def predict(self, which: Sequence[int], words: np.ndarray) -> np.ndarray:
        """The predicted class of probes ``which`` after each word: ``(len(which), n_words)``."""
        which = list(which)
        if not which:
            return np.zeros((0, words.shape[0]), dtype=np.int64)
        return np.stack([predict(self.items[i].probe, words) for i in which])


def open_block(items: Sequence[Path | EpochProbe]) -> Block | ProbeBlock:
    """The block of a timeline's items: checkpoint files read, or probes wrapped."""
    if items and all(isinstance(it, EpochProbe) for it in items):
        probes = [it for it in items if isinstance(it, EpochProbe)]
        return ProbeBlock(probes, [probe_meta(it) for it in probes])
    return read_block(items)  # type: ignore[arg-type]
