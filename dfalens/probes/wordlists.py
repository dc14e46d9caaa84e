"""Word lists: reading a file of words, and random words that follow a sample of words.

A word file holds one word per line. When every symbol name is one character long, each character of a
line is a symbol (``0110``; spaces inside a line are ignored); otherwise the symbols are separated by
whitespace (``open close close``).
Leading and trailing whitespace is ignored, blank lines are skipped, and a line holding only ``ε`` is the
empty word (unless ``ε`` is itself a symbol).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from dfalens.errors import DataError
from dfalens.probes.evidence import WordSample

__all__ = ["EMPTY_WORD", "parse_words", "read_words", "sample_like", "padded"]

EMPTY_WORD = "ε"
"""How a word file writes the empty word (a blank line is skipped)."""


def parse_words(
    lines: Iterable[str], alphabet: Sequence[str], source: str = "words"
) -> list[tuple[int, ...]]:
    """Words written one per line, as tuples of symbol indices.

    Parameters
    ----------
    lines : iterable of str
        The lines (a trailing newline is ignored).
    alphabet : sequence of str
        Symbol names; a line is split into characters when every name is one character long, else at
        whitespace.
    source : str, default "words"
        Named in error messages (the file name).

    Returns
    -------
    list of tuple of int
        One word per non-blank line, in file order.

    Raises
    ------
    DataError
        For a symbol that is not in the alphabet (naming the line), or when no line holds a word.
    """
    names = tuple(alphabet)
    index = {name: i for i, name in enumerate(names)}
    chars = all(len(a) == 1 for a in names)
    empty_is_symbol = EMPTY_WORD in index
    words: list[tuple[int, ...]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line == EMPTY_WORD and not empty_is_symbol:
            words.append(())
            continue
        tokens = [c for c in line if not c.isspace()] if chars else line.split()
        try:
            words.append(tuple(index[t] for t in tokens))
        except KeyError as exc:
            raise DataError(
                f"{source} line {number}: symbol {exc.args[0]!r} is not in the alphabet "
                f"{' '.join(names)}; write one word per line"
                + ("" if chars else ", symbols separated by spaces")
            ) from None
    if not words:
        raise DataError(f"{source} holds no words; write one word per line")
    return words


def read_words(path: str | Path, alphabet: Sequence[str]) -> list[tuple[int, ...]]:
    """Read a word file (see the module docstring for its format).

    Parameters
    ----------
    path : str or Path
        A UTF-8 text file, one word per line.
    alphabet : sequence of str
        The network's symbol names.

    Returns
    -------
    list of tuple of int

    Raises
    ------
    DataError
        When the file cannot be read, is not UTF-8 text, holds no words, or a line has a symbol outside
        the alphabet (the message names the line).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(
            f"word file {p} does not exist; give a text file, one word per line"
        ) from None
    except IsADirectoryError:
        raise DataError(
            f"word file {p} is a directory; give a text file, one word per line"
        ) from None
    except UnicodeDecodeError:
        raise DataError(f"word file {p} is not UTF-8 text; write one word per line") from None
    except OSError as exc:
        raise DataError(f"cannot read word file {p}: {exc.strerror or exc}") from None
    return parse_words(text.splitlines(), alphabet, source=str(p))


def padded(words: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Words of symbol indices as a left-aligned matrix padded with -1, and their lengths."""
    lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
    width = int(lengths.max()) if len(words) else 0
    mat = np.full((len(words), width), -1, dtype=np.int64)
    if len(words):
        mask = np.arange(width)[None, :] < lengths[:, None]
        mat[mask] = np.fromiter(
            (s for w in words for s in w), dtype=np.int64, count=int(lengths.sum())
        )
    return mat, lengths


def sample_like(
    words: np.ndarray,
    lengths: np.ndarray,
    n_symbols: int,
    n: int,
    rng: np.random.Generator,
    length: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Random words that follow a sample: lengths drawn from the sample's lengths (or all ``length``),
    symbols drawn independently with the sample's symbol frequencies.

    Parameters
    ----------
    words : ndarray of int, shape (m, T)
        The sample, padded with -1.
    lengths : ndarray of int, shape (m,)
    n_symbols : int
    n : int
        How many words to draw.
    rng : numpy.random.Generator
    length : int, optional
        Give every word this length instead of drawing it.

    Returns
    -------
    words : ndarray of int64, shape (n, max length), padded with -1
    lengths : ndarray of int64, shape (n,)
    """
    counts = np.bincount(words[words >= 0].ravel(), minlength=n_symbols).astype(np.float64)
    p = counts / counts.sum() if counts.sum() > 0 else np.full(n_symbols, 1.0 / n_symbols)
    if length is None:
        drawn = rng.choice(lengths, size=n) if lengths.size else np.zeros(n, dtype=np.int64)
    else:
        drawn = np.full(n, int(length), dtype=np.int64)
    drawn = drawn.astype(np.int64)
    width = int(drawn.max()) if n else 0
    out = rng.choice(n_symbols, size=(n, width), p=p).astype(np.int64)
    out[np.arange(width)[None, :] >= drawn[:, None]] = -1
    return out, drawn


def fidelity_samples(
    label: Callable[[np.ndarray], np.ndarray],
    n_symbols: int,
    lengths: Sequence[int],
    n_words: int,
    seed: int,
    given: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[WordSample]:
    """Random words of each fidelity length, and the network's class on each (``label(words)``).

    Symbols are uniform, or follow the given words' symbol frequencies (``given = (words padded with
    -1, lengths)``); the white-box and black-box paths draw them alike.
    """
    rng = np.random.default_rng(seed + 2)
    out: list[WordSample] = []
    for length in lengths:
        if given is None:
            words = rng.integers(0, n_symbols, size=(n_words, int(length)))
            lens = np.full(n_words, int(length), dtype=np.int64)
        else:
            words, lens = sample_like(given[0], given[1], n_symbols, n_words, rng, int(length))
        words = words.astype(np.int64)
        out.append(WordSample(f"fidelity {int(length)}", words, lens, label(words)))
    return out
