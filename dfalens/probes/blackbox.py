"""Black-box extraction: any word classifier to a Moore machine, by active learning with batched queries.

For networks with no left-to-right state (bidirectional RNNs, transformers used as classifiers) and anything
else a user can only call::

    import dfalens as dl
    clf = dl.probes.from_classifier(lambda words: my_model_labels(words), alphabet="abc")
    result = dl.probes.learn(clf, words=validation_words)
    result.machine, result.agreement, result.budget_hit

:func:`learn` is L* (Angluin 1987) for Moore machines with Rivest-Schapire counterexample analysis: the
labels can be any small non-negative integers, not only accept/reject. Every step that needs labels asks for
all of them in one batched call; labels are cached by word. The equivalence oracle is sampling: the user's
words first, then fresh random words shaped like them, each checked against the hypothesis run vectorised.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from dfalens.automata import Machine, minimize, run
from dfalens.errors import ClassifierError, ConfigError, DataError
from dfalens.probes._lstar import (
    OutOfQueries,
    Word,
    add_suffixes,
    close,
    distinguishing_suffixes,
    hypothesis,
    new_table,
)
from dfalens.probes._oracles import (
    CHECK_BATCH_GROWTH,
    FIRST_CHECK_BATCH,
    Queries,
    Sampler,
    disagreements,
    fresh,
)
from dfalens.probes.probe import as_alphabet
from dfalens.probes.wordlists import padded

__all__ = ["Classifier", "Learned", "from_classifier", "learn"]


def _one_line(text: str, limit: int = 160) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _is_int(x: object) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool | np.bool_)


@dataclass(frozen=True, eq=False)
class Classifier:
    """A function that labels words, seen as a batched, validated oracle over an alphabet.

    Build one with :func:`from_classifier`. Calling it with a list of words returns their labels.

    Parameters
    ----------
    classify : callable
        ``classify(words) -> labels``: ``words`` is a list of tuples of symbol indices into ``alphabet``
        (at most ``batch_size`` of them, the empty tuple included), ``labels`` one non-negative integer per
        word (a list, numpy array or CPU tensor; integral floats and booleans are accepted).
    alphabet : tuple of str
        Symbol names; symbol ``i`` is ``alphabet[i]``.
    batch_size : int, default 4096
        The most words passed to ``classify`` in one call.
    """

    classify: Callable[[list[Word]], Any]
    alphabet: tuple[str, ...]
    batch_size: int = 4096

    def __post_init__(self) -> None:
        if not callable(self.classify):
            raise ConfigError(
                "classify must be a function from a list of words to labels, got "
                f"{type(self.classify).__name__}"
            )
        object.__setattr__(self, "alphabet", as_alphabet(self.alphabet))
        size = self.batch_size
        if not _is_int(size) or size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {size!r}")
        object.__setattr__(self, "batch_size", int(size))

    @property
    def n_symbols(self) -> int:
        """Number of symbols in the alphabet."""
        return len(self.alphabet)

    def encode(self, words: Any) -> list[Word]:
        """Validate words and return them as tuples of symbol indices.

        Parameters
        ----------
        words : sequence of words
            Each word a sequence of symbol indices, or a string of symbol names when every name is one
            character.

        Raises
        ------
        DataError
            For a word that is not a sequence of symbol indices of this alphabet.
        """
        if isinstance(words, str) or isinstance(words, np.ndarray) and words.ndim != 2:
            raise DataError("words must be a sequence of words, not one word; wrap it as [word]")
        if isinstance(words, np.ndarray):  # one word per row, padded with -1 after it ends
            words = [row[: row.index(-1)] if -1 in row else row for row in words.tolist()]
        try:
            seq = list(words)
        except TypeError:
            raise DataError(
                f"words must be a sequence of words, got {type(words).__name__}"
            ) from None
        names = {a: i for i, a in enumerate(self.alphabet)}
        single = all(len(a) == 1 for a in self.alphabet)
        out: list[Word] = []
        k = self.n_symbols
        for w in seq:
            if isinstance(w, str):
                if not single:
                    raise DataError(
                        f"word {w!r} is a string but the alphabet {self.alphabet} has multi-character "
                        "symbols; give words as tuples of symbol indices"
                    )
                bad = next((c for c in w if c not in names), None)
                if bad is not None:
                    raise DataError(
                        f"word {w!r} has symbol {bad!r}, which is not in the alphabet {self.alphabet}"
                    )
                out.append(tuple(names[c] for c in w))
                continue
            try:
                t = tuple(w)
            except TypeError:
                raise DataError(
                    f"word {w!r} is not a sequence of symbol indices; give tuples of ints in 0..{k - 1}"
                ) from None
            if not all(_is_int(x) and 0 <= x < k for x in t):
                raise DataError(
                    f"word {t!r} is not made of symbol indices 0..{k - 1} of the alphabet "
                    f"{self.alphabet}; encode each symbol as its index"
                )
            out.append(tuple(int(x) for x in t))
        return out

    def __call__(self, words: Any) -> np.ndarray:
        """Labels of the words, one int64 per word, in batches of at most :attr:`batch_size`.

        Raises
        ------
        DataError
            For malformed words (see :meth:`encode`).
        ClassifierError
            When ``classify`` raises, or returns the wrong number of labels or labels that are not
            non-negative integers.
        """
        return _labels(self, self.encode(words))

    def __repr__(self) -> str:
        name = getattr(self.classify, "__name__", type(self.classify).__name__)
        return f"Classifier({name}, alphabet={self.alphabet}, batch_size={self.batch_size})"


def _check_labels(out: Any, words: list[Word]) -> np.ndarray:
    n = len(words)
    if hasattr(out, "detach") and hasattr(out, "cpu"):  # a torch tensor, without importing torch
        out = out.detach().cpu().numpy()
    try:
        arr = np.asarray(out)
    except (TypeError, ValueError):
        arr = np.asarray(None, dtype=object)
    if arr.ndim != 1 or arr.shape[0] != n:
        got = f"{arr.shape[0]} labels" if arr.ndim == 1 else f"an object of shape {arr.shape}"
        raise ClassifierError(
            f"classify returned {got} for {n} words; return one integer label per word (1-D, length {n})"
        )
    if n == 0:
        return arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.bool_):
        arr = arr.astype(np.int64)
    elif np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.argmax(bad))
            raise ClassifierError(
                f"classify returned the non-integer label {arr[i].item()!r} for word {words[i]!r}; "
                "return class "
                "indices (e.g. scores.argmax(-1)), not scores or probabilities"
            )
    elif not np.issubdtype(arr.dtype, np.integer):
        raise ClassifierError(
            f"classify returned labels of type {arr.dtype} (first {arr[0].item()!r}); "
            "return integer class indices"
        )
    arr = arr.astype(np.int64)
    if arr.min() < 0:
        i = int(np.argmin(arr))
        raise ClassifierError(
            f"classify returned the negative label {int(arr[i])} for word {words[i]!r}; labels must be "
            "non-negative integers (0, 1, 2, ...)"
        )
    return arr


def _labels(classifier: Classifier, words: list[Word]) -> np.ndarray:
    """Labels of already validated words, in batches (one ``classify`` call per batch)."""
    parts = []
    for i in range(0, len(words), classifier.batch_size):
        chunk = words[i : i + classifier.batch_size]
        try:
            out = classifier.classify(chunk)
        except Exception as exc:  # any failure in user code becomes one line
            raise ClassifierError(
                f"classify raised {type(exc).__name__}: {_one_line(exc)} (on {len(chunk)} words, first "
                f"{chunk[0]!r}); it must accept a list of tuples of symbol indices"
            ) from exc
        parts.append(_check_labels(out, chunk))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def from_classifier(
    classify: Callable[[list[Word]], Any], alphabet: str | Sequence[Any], *, batch_size: int = 4096
) -> Classifier:
    """Wrap a word classifier for black-box extraction with :func:`learn`.

    Parameters
    ----------
    classify : callable
        ``classify(words) -> labels``: ``words`` is a list of tuples of symbol indices into ``alphabet``
        (the empty word included), ``labels`` one non-negative integer label per word: a list, a numpy
        array or a CPU tensor (integral floats and booleans are accepted). It must be deterministic.
    alphabet : str or sequence
        Symbol names (``"abc"`` is split into characters); see :func:`dfalens.probes.as_alphabet`.
    batch_size : int, default 4096
        The most words passed to ``classify`` at once.

    Returns
    -------
    Classifier
        Callable with a list of words; returns an int64 array of labels.

    Raises
    ------
    ConfigError
        If ``classify`` is not callable or ``batch_size`` is not a positive integer.
    DataError
        If the alphabet is empty or repeats a symbol.

    Examples
    --------
    >>> clf = from_classifier(lambda words: [w.count(1) % 2 for w in words], "01")
    >>> clf([(), (1,), (1, 1), "01"]).tolist()
    [0, 1, 0, 1]
    """
    return Classifier(classify, as_alphabet(alphabet), batch_size)


@dataclass(frozen=True, eq=False)
class Learned:
    """A machine learned from a classifier's answers, with what it cost and how well it was checked.

    Attributes
    ----------
    machine : Machine
        The hypothesis, complete and minimal (canonically numbered), with the classifier's alphabet.
    queries : int
        Membership queries: distinct words the observation table and the counterexample analysis
        needed (each labelled once; some were already labelled as check words).
    check_words : int
        Distinct words the equivalence oracle labelled, over all rounds (the user's words included).
    labelled : int
        Distinct words sent to ``classify`` in all (queries and check words, each once).
    calls : int
        Calls of the user's ``classify`` function, all purposes together.
    rounds : int
        Hypotheses built and checked.
    counterexamples : int
        Counterexamples analysed.
    agreement : float
        Fraction of all distinct check words (the user's and the random ones, over all rounds) on which
        ``machine`` gives the classifier's label; NaN when there were none.
    n_checked : int
        Number of those check words (equals :attr:`check_words`).
    agreement_words : float or None
        Agreement on the user's distinct ``words`` alone; None when no words were given.
    disagreement : tuple of int or None
        The shortest check word on which ``machine`` and the classifier differ, or None.
    budget_hit : bool
        True when ``max_states`` or ``max_queries`` stopped learning before the check words agreed.
    stopped : str
        ``"agreed"`` (no check word separates machine and classifier), ``"max_states"`` or
        ``"max_queries"``.
    checked : tuple of (ndarray, ndarray)
        Every check word, as batches of ``(words padded with -1, the classifier's labels)``: the
        user's distinct words first when given. The evidence of
        :func:`dfalens.probes.extract` on a classifier.
    """

    machine: Machine
    queries: int
    check_words: int
    labelled: int
    calls: int
    rounds: int
    counterexamples: int
    agreement: float
    n_checked: int
    agreement_words: float | None
    disagreement: tuple[int, ...] | None
    budget_hit: bool
    stopped: str
    checked: tuple[tuple[np.ndarray, np.ndarray], ...] = field(default=(), repr=False)

    @property
    def n_states(self) -> int:
        """States of :attr:`machine`."""
        return self.machine.n_states


def _check_int(name: str, value: object, low: int) -> int:
    if not _is_int(value) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def learn(
    classifier: Classifier,
    *,
    words: Any = None,
    max_states: int = 1000,
    max_queries: int = 1_000_000,
    max_len: int = 20,
    n_check: int = 10_000,
    seed: int = 0,
) -> Learned:
    """Learn the Moore machine a classifier computes, by L* with batched queries.

    Each round closes the observation table (one batched call per closing pass), builds the hypothesis
    and checks it: first on every check word labelled so far (free), then on ``n_check`` fresh random
    words, drawn in batches of 256, 1024, 4096, ... (one batched call each) and only until one holds a
    disagreement. Up to four of the shortest disagreeing words are analysed together (Rivest-Schapire,
    batched k-ary search), each adding one distinguishing suffix; learning stops when a round finds no
    disagreement or a budget is reached.

    Parameters
    ----------
    classifier : Classifier
        From :func:`from_classifier`.
    words : sequence of words, optional
        The user's validation words (tuples of symbol indices, or strings of single-character symbols).
        They are checked first, and random check words copy their length distribution and symbol
        frequencies (mixed with 10% uniform so every symbol occurs).
    max_states : int, default 1000
        Stop with ``budget_hit`` rather than build a hypothesis with more states.
    max_queries : int, default 1_000_000
        Stop with ``budget_hit`` rather than ask more membership queries (check words are not counted;
        they are bounded by ``n_check`` per round, and rounds by ``max_states``).
    max_len : int, default 20
        Without ``words``: random check words have uniform lengths ``0..max_len``.
    n_check : int, default 10_000
        Random check words a hypothesis must pass before learning stops (duplicates and words checked
        before are drawn but not labelled again).
    seed : int, default 0
        Seeds the random check words.

    Returns
    -------
    Learned
        The minimal complete machine and the evidence. A sampling oracle cannot prove equivalence:
        ``agreement == 1.0`` means no check word separated machine and classifier.

    Raises
    ------
    ConfigError
        For settings out of range.
    DataError
        For malformed ``words``.
    ClassifierError
        When the classifier misbehaves (see :class:`Classifier`).

    Notes
    -----
    The learned machine's output on the empty word is the classifier's label for ``()``; a model that
    cannot label the empty word should map it to a fixed label in ``classify``.
    """
    if not isinstance(classifier, Classifier):
        raise ConfigError(
            "learn takes a Classifier from from_classifier(classify, alphabet), got "
            f"{type(classifier).__name__}"
        )
    max_states = _check_int("max_states", max_states, 1)
    max_queries = _check_int("max_queries", max_queries, classifier.n_symbols + 1)
    max_len = _check_int("max_len", max_len, 0)
    n_check = _check_int("n_check", n_check, 0)
    given = [] if words is None else classifier.encode(words)
    if not given and n_check == 0:
        raise ConfigError(
            "with n_check=0 learn needs words to check against; give words or n_check >= 1"
        )
    rng = np.random.default_rng(seed)
    sampler = Sampler(given, classifier.n_symbols, max_len, rng)
    oracle = Queries(partial(_labels, classifier), classifier.batch_size, max_queries)

    pool: list[tuple[np.ndarray, np.ndarray]] = []  # (padded words, labels) of every check batch
    if given:
        given = list(dict.fromkeys(given))
        pool.append((padded(given)[0], oracle.check(given)))
    table = new_table(classifier.n_symbols, oracle.ask)  # |Σ|+1 queries, within the budget
    stopped = "agreed"
    rounds = counterexamples = 0
    delta = output = None
    try:
        while True:
            if close(table, oracle.ask, max_states):
                stopped = "max_states"
                break
            delta, output = hypothesis(table)
            rounds += 1
            hyp = Machine(delta, output, 0, classifier.alphabet)
            cexs = disagreements(hyp, pool)  # the words checked so far, free
            # then fresh words, in growing batches, until a disagreement or n_check words
            drawn, size = 0, FIRST_CHECK_BATCH
            while not cexs and drawn < n_check:
                size = min(size, n_check - drawn)
                pool.append(fresh(sampler, oracle, size))
                drawn += size
                cexs = disagreements(hyp, pool[-1:])
                size *= CHECK_BATCH_GROWTH
            if not cexs:
                break
            counterexamples += len(cexs)
            suffixes = distinguishing_suffixes(table, delta, cexs, oracle.ask)
            add_suffixes(table, suffixes, oracle.ask)
    except OutOfQueries:
        stopped = "max_queries"
    if stopped != "agreed":
        delta, output = hypothesis(table)
    machine = minimize(Machine(delta, output, 0, classifier.alphabet))
    if not pool and n_check:
        pool.append(fresh(sampler, oracle, n_check))
    agree = [run(machine, arr) == labels for arr, labels in pool]
    n_checked = sum(a.size for a in agree)
    wrong = disagreements(machine, pool, limit=1)
    return Learned(
        machine=machine,
        queries=len(oracle.asked),
        check_words=len(oracle.checked),
        labelled=len(oracle.cache),
        calls=oracle.calls,
        rounds=rounds,
        counterexamples=counterexamples,
        agreement=float(sum(int(a.sum()) for a in agree) / n_checked) if n_checked else math.nan,
        n_checked=n_checked,
        agreement_words=float(agree[0].mean()) if given else None,
        disagreement=wrong[0][0] if wrong else None,
        budget_hit=stopped != "agreed",
        stopped=stopped,
        checked=tuple(pool),
    )
