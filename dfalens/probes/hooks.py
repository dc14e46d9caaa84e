"""States read from inside models with no recurrent step: TransformerLens hook points and nnsight modules.

A causal model's state after a prefix is its activation at the prefix's last position, so one forward pass
over a word gives the state after every prefix of it. :class:`PrefixProbe` wraps such a forward pass;
:func:`dfalens.probes.collect`, :func:`~dfalens.probes.collect_words`, :func:`~dfalens.probes.predict`
and :func:`dfalens.extract` accept it wherever they accept a :class:`~dfalens.probes.Probe`.

Both libraries are optional (``pip install dfalens[interp]``); nothing here imports them: the adapters
call the model objects they are given.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dfalens.errors import ConfigError, DataError
from dfalens.probes.probe import as_alphabet

__all__ = ["PrefixProbe", "from_nnsight", "from_transformer_lens"]

ForwardFn = Callable[[Tensor], tuple[Tensor, Tensor]]
Readout = Callable[[Tensor], Tensor] | Sequence[int] | None


@dataclass(frozen=True, eq=False)
class PrefixProbe:
    """A model whose states come from causal forward passes over whole words.

    Parameters
    ----------
    forward_fn : callable
        ``forward_fn(words) -> (states, scores)`` for ``words`` a LongTensor ``(batch, T)`` of symbol
        indices: ``states`` ``(batch, T + 1, state_dim)`` and ``scores`` ``(batch, T + 1, n_classes)``,
        position ``t`` being the state and output after the first ``t`` symbols (position 0: the empty
        word).
    alphabet : tuple of str
    state_dim, n_classes : int
    device : torch.device
    description : str
        One line saying what is read and where.
    context : int or None
        Longest word the model can read (its context less a start token); None: no limit.
    bos : int or None
        The start token put before every word, when there is one (then the output on the empty
        word is trained and counts by default in :func:`dfalens.probes.extract`).
    """

    forward_fn: ForwardFn
    alphabet: tuple[str, ...]
    state_dim: int
    n_classes: int
    device: torch.device
    description: str
    context: int | None = None
    bos: int | None = None

    @property
    def n_symbols(self) -> int:
        """Size of the alphabet."""
        return len(self.alphabet)

    def run(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """States and output scores after every prefix of equally long words.

        Parameters
        ----------
        words : int array, shape (batch, T)

        Returns
        -------
        states : ndarray, shape (batch, T + 1, state_dim)
        scores : ndarray of float32, shape (batch, T + 1, n_classes)
        """
        batch, width = words.shape
        if self.context is not None and width > self.context:
            raise ConfigError(
                f"words of length {width} do not fit the model's context of {self.context} symbols; "
                f"use shorter words (for extract: fidelity_lengths=({self.context},) or less)"
            )
        tokens = torch.from_numpy(np.ascontiguousarray(words, dtype=np.int64)).to(self.device)
        with torch.no_grad():
            states, scores = self.forward_fn(tokens)
        if states.shape != (batch, width + 1, self.state_dim):
            raise DataError(
                f"the forward pass gave states of shape {tuple(states.shape)} for {batch} words of "
                f"length {width}; expected ({batch}, {width + 1}, {self.state_dim})"
            )
        if scores.shape[:2] != (batch, width + 1):
            raise DataError(
                f"the forward pass gave outputs of shape {tuple(scores.shape)} for {batch} words of "
                f"length {width}"
            )
        if not (torch.isfinite(states).all() and torch.isfinite(scores).all()):
            raise DataError("activations became NaN or inf; check the model and the hook")
        return states.detach().cpu().numpy(), scores.detach().float().cpu().numpy()


def _readout_fn(readout: Readout) -> Callable[[Tensor], Tensor]:
    if readout is None:
        return lambda logits: logits
    if callable(readout):
        return readout
    ids = [int(i) for i in readout]
    if not ids:
        raise ConfigError("readout= lists no output token; give the token ids of the classes")
    return lambda logits: logits[..., ids]


def _token_ids(tokens: Sequence[int] | None, k: int, vocab: int, what: str) -> Tensor:
    ids = list(range(k)) if tokens is None else [int(t) for t in tokens]
    if len(ids) != k:
        raise ConfigError(
            f"tokens= has {len(ids)} ids for an alphabet of {k} symbols; give one per symbol"
        )
    bad = [t for t in ids if not 0 <= t < vocab]
    if bad:
        raise ConfigError(f"token id {bad[0]} is outside the {what}'s vocabulary of {vocab}")
    return torch.tensor(ids, dtype=torch.long)


def _with_empty_word(
    run: ForwardFn, start: bool, sizes: Callable[[], tuple[int, int]]
) -> ForwardFn:
    """The probe's forward pass from ``run(words) -> (states, scores)`` at every position the model reads.

    With a start token the model reads it first, so position 0 is the empty word. Without one the empty
    word is never read: it gets a zero state and zero scores (``sizes()`` gives their widths), and a
    batch of empty words needs no pass at all.
    """

    def forward(words: Tensor) -> tuple[Tensor, Tensor]:
        if start:
            return run(words)
        width, n_out = sizes()
        root = (
            torch.zeros(words.shape[0], 1, width, device=words.device),
            torch.zeros(words.shape[0], 1, n_out, device=words.device),
        )
        if words.shape[1] == 0:
            return root
        states, scores = run(words)
        return (
            torch.cat([root[0].to(states.dtype), states], dim=1),
            torch.cat([root[1].to(scores.dtype), scores], dim=1),
        )

    return forward


def from_transformer_lens(
    model: Any,
    hook: str,
    alphabet: str | Sequence[str],
    *,
    tokens: Sequence[int] | None = None,
    bos: int | None = None,
    readout: Readout = None,
) -> PrefixProbe:
    """States of a TransformerLens ``HookedTransformer`` at a hook point.

    The state after a prefix is the activation at ``hook`` (e.g. ``"blocks.1.hook_resid_post"``) at the
    prefix's last position; all prefixes of a word come from one ``run_with_cache`` pass. Any model with
    ``run_with_cache(tokens, names_filter=...)`` and ``hook_dict`` works the same way.

    Parameters
    ----------
    model : HookedTransformer
    hook : str
        A name in ``model.hook_dict`` whose activation has one vector per position.
    alphabet : str or sequence of str
        Symbol names.
    tokens : sequence of int, optional
        Token id of each symbol (default ``0, 1, ...``).
    bos : int, optional
        A start token put before every word; its position is the empty word. Without one the empty
        word gets a zero state and zero outputs (compare with the task ignoring it).
    readout : callable or sequence of int, optional
        Class scores from the logits at each position: a function, or the token ids of the classes
        (default: every logit).

    Returns
    -------
    PrefixProbe
    """
    names = list(getattr(model, "hook_dict", {}))
    if hook not in names:
        close = difflib.get_close_matches(hook, names, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see model.hook_dict for the names"
        raise ConfigError(f"the model has no hook {hook!r}; {hint}")
    symbols = as_alphabet(alphabet)
    vocab = int(model.cfg.d_vocab)
    ids = _token_ids(tokens, len(symbols), vocab, "model")
    if bos is not None and not 0 <= int(bos) < vocab:
        raise ConfigError(f"bos token {bos} is outside the model's vocabulary of {vocab}")
    head = _readout_fn(readout)
    device = next(model.parameters()).device

    def run(words: Tensor) -> tuple[Tensor, Tensor]:
        toks = ids.to(words.device)[words]
        if bos is not None:
            toks = torch.cat([toks.new_full((toks.shape[0], 1), int(bos)), toks], dim=1)
        logits, cache = model.run_with_cache(toks, names_filter=lambda name: name == hook)
        return cache[hook], head(logits)

    forward = _with_empty_word(run, bos is not None, lambda: (width, n_out))

    with torch.no_grad():
        logits, cache = model.run_with_cache(
            ids[:1].to(device)[None], names_filter=lambda name: name == hook
        )
    if cache[hook].ndim != 3:
        raise ConfigError(
            f"hook {hook!r} gives activations of shape {tuple(cache[hook].shape)}, not one vector per "
            "position; use a residual-stream hook such as blocks.0.hook_resid_post"
        )
    width, n_out = int(cache[hook].shape[-1]), int(head(logits).shape[-1])
    return PrefixProbe(
        forward,
        symbols,
        width,
        n_out,
        device,
        f"TransformerLens {type(model).__name__} at {hook} ({width} units, "
        f"{'bos ' + str(bos) if bos is not None else 'no start token'})",
        int(model.cfg.n_ctx) - (bos is not None),
        None if bos is None else int(bos),
    )


def _module(model: Any, path: str) -> Any:
    envoy = model
    for part in path.split("."):
        try:
            envoy = envoy[int(part)] if part.isdigit() else getattr(envoy, part)
        except (AttributeError, IndexError, KeyError, TypeError):
            raise ConfigError(
                f"the model has no module {path!r} (stopped at {part!r}); give a dotted path from "
                "named_modules()"
            ) from None
    return envoy


def from_nnsight(
    model: Any,
    module: str,
    alphabet: str | Sequence[str],
    *,
    encode: Callable[[Tensor], Any] | None = None,
    bos: int | None = None,
    readout: Callable[[Tensor], Tensor] | None = None,
) -> PrefixProbe:
    """States of a causal model wrapped by nnsight (``nnsight.NNsight(module)``), read at a module path.

    The state after a prefix is the output of ``module`` (its first element when it returns a tuple, as
    ``nn.RNN`` does) at the prefix's last position, for batch-first outputs ``(batch, T, d)``.

    Parameters
    ----------
    model : nnsight.NNsight
    module : str
        Dotted path of the submodule, e.g. ``"rnn"`` or ``"layers.1"``.
    alphabet : str or sequence of str
    encode : callable, optional
        ``encode(words) -> model input`` for a LongTensor of symbol indices ``(batch, T)`` (default: the
        indices themselves, with ``bos`` in front when given).
    bos : int, optional
        Index of a start symbol put before every word by the default ``encode``; its position is the
        empty word. Without one the empty word gets a zero state and zero outputs.
    readout : callable, optional
        Class scores from the model's output (default: the output itself, ``(batch, T, n)``).

    Returns
    -------
    PrefixProbe
    """
    symbols = as_alphabet(alphabet)
    _module(model, module)
    head = readout if readout is not None else (lambda y: y)

    def inputs(words: Tensor) -> Any:
        if encode is not None:
            return encode(words)
        if bos is None:
            return words
        return torch.cat([words.new_full((words.shape[0], 1), int(bos)), words], dim=1)

    def trace(words: Tensor) -> tuple[Tensor, Tensor]:
        with model.trace(inputs(words)):
            hidden = _module(model, module).output.save()
            out = model.output.save()
        states = hidden[0] if isinstance(hidden, tuple) else hidden
        return states, head(out[0] if isinstance(out, tuple) else out)

    forward = _with_empty_word(trace, bos is not None, lambda: (width, n_out))

    first = torch.zeros(1, 1, dtype=torch.long)
    states, scores = trace(first)
    if states.ndim != 3:
        raise ConfigError(
            f"module {module!r} gives outputs of shape {tuple(states.shape)}, not (batch, T, units); "
            "pick a module with batch-first sequence outputs"
        )
    width, n_out = int(states.shape[-1]), int(scores.shape[-1])
    device = states.device
    return PrefixProbe(
        forward,
        symbols,
        width,
        n_out,
        device,
        f"nnsight module {module} ({width} units, "
        f"{'bos ' + str(bos) if bos is not None else 'no start symbol'})",
        bos=None if bos is None else int(bos),
    )
