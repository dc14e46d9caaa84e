"""The verdict of an extraction against a task: is the *network* the task's automaton?

Comparing only the extracted machine with the task answers a different question: a network that errs on
a collected or longer word can still yield the task's machine (the majority vote smooths the error away).
:func:`verdict` answers for the network: it is equivalent to the task only when the extracted machine
is, and the network itself gives the task's class on every word it was checked on (collected, held-out,
given and fidelity words, and the word that separates the machine from the task).
"""

from __future__ import annotations

from dataclasses import dataclass

from dfalens.automata import Machine, Verdict, equivalent
from dfalens.errors import MachineError
from dfalens.probes.blackbox import Classifier
from dfalens.probes.collection import predict
from dfalens.probes.evidence import word_text
from dfalens.probes.extraction import Extraction
from dfalens.probes.hooks import PrefixProbe
from dfalens.probes.probe import Probe

__all__ = [
    "exit_code",
    "TaskVerdict",
    "verdict",
    "EXIT_EQUIVALENT",
    "EXIT_NOT_EQUIVALENT",
    "EXIT_NOT_REPRODUCED",
]

EXIT_EQUIVALENT = 0
EXIT_NOT_EQUIVALENT = 3
EXIT_NOT_REPRODUCED = 4


@dataclass(frozen=True)
class TaskVerdict:
    """Whether the network behind an extraction implements a task.

    Attributes
    ----------
    result : {"equivalent", "not equivalent", "not reproduced"}
        ``equivalent``: the extracted machine is equivalent to the task and the network gives the
        task's class on every checked word. ``not equivalent``: the network itself disagrees with
        the task on a checked word (:attr:`network_word`), or, with no network to ask, the machine
        does. ``not reproduced``: the network agreed with the task on every checked word but the
        extracted machine does not reproduce the network, so nothing is decided.
    machine : Verdict
        The extracted minimal machine against the task (:func:`dfalens.automata.equivalent`,
        shortest counterexample).
    network_word : tuple of int or None
        The shortest checked word on which the network's class differs from the task's (least in
        symbol-index order among the shortest), or None.
    network_output, task_output : int or None
        The network's and the task's class on :attr:`network_word`.
    words_checked : int
        How many words the network was compared with the task on.
    consistent : bool
        The extraction reproduces the network (:attr:`Extraction.consistent`, and the network gives
        the machine's class on the machine's counterexample when it was asked).
    alphabet : tuple of str
        Symbol names, for the ``*_str`` properties.
    """

    result: str
    machine: Verdict
    network_word: tuple[int, ...] | None
    network_output: int | None
    task_output: int | None
    words_checked: int
    consistent: bool
    alphabet: tuple[str, ...]

    @property
    def equal(self) -> bool:
        """True only for ``result == "equivalent"``."""
        return self.result == "equivalent"

    @property
    def exit_code(self) -> int:
        """``extract-dfa --task``'s exit status: 0 equivalent, 3 not equivalent, 4 not reproduced."""
        return {
            "equivalent": EXIT_EQUIVALENT,
            "not equivalent": EXIT_NOT_EQUIVALENT,
        }.get(self.result, EXIT_NOT_REPRODUCED)

    @property
    def network_word_str(self) -> str | None:
        """:attr:`network_word` written with the symbol names (``""`` for the empty word)."""
        return word_text(self.network_word, self.alphabet)

    def __str__(self) -> str:
        if self.equal:
            return (
                f"equivalent (the network agrees with the task on all {self.words_checked} words)"
            )
        parts = []
        if self.network_word is not None:
            w = self.network_word_str
            shown = repr(w) if w else "the empty word"
            parts.append(
                f"on {shown} the network answers {self.network_output}, the task {self.task_output}"
            )
        if not self.machine.equal:
            w = self.machine.word_str
            shown = repr(w) if w else "the empty word"
            parts.append(
                f"on {shown} the extracted machine answers {self.machine.output_a}, the task "
                f"{self.machine.output_b}"
            )
        if self.result == "not reproduced":
            parts.append("the extracted machine does not reproduce the network")
        return f"{self.result}: " + "; ".join(parts)


def _aligned(task: Machine, alphabet: tuple[str, ...]) -> Machine:
    """``task`` with its symbols in the order of ``alphabet`` (the same names)."""
    if task.alphabet == alphabet:
        return task
    if sorted(task.alphabet) != sorted(alphabet):
        raise MachineError(
            f"the task's symbols {list(task.alphabet)} are not the network's {list(alphabet)}; "
            "choose a task over the same alphabet"
        )
    perm = [task.alphabet.index(a) for a in alphabet]
    return Machine(task.delta[:, perm], task.output, task.start, alphabet, task.state_names)


def verdict(
    ex: Extraction, task: Machine, probe: Probe | PrefixProbe | Classifier | None = None
) -> TaskVerdict:
    """Whether the network behind ``ex`` implements ``task``.

    Parameters
    ----------
    ex : Extraction
        From :func:`dfalens.probes.extract`; its :attr:`Extraction.evidence` holds the network's
        class on every word checked (collected, held-out, given, fidelity).
    task : Machine
        The ground truth, over the network's symbol names (in any order).
    probe : Probe, PrefixProbe or Classifier, optional
        The network (the Classifier of a black-box extraction). When given and the extracted machine differs from the task, the network is
        also asked about the shortest word that separates them.

    Returns
    -------
    TaskVerdict
        ``equivalent`` only when the machine is equivalent to the task and the network gives the
        task's class on every checked word; ``not equivalent`` with the network's shortest
        disagreement when there is one (or the machine's counterexample when no network can be
        asked and the extraction is consistent); else ``not reproduced``. The empty word counts
        only when the extraction was made with ``include_empty``.

    Raises
    ------
    MachineError
        When the task's symbol names are not the network's.
    """
    include_empty = bool(ex.settings.get("include_empty", False))
    alphabet = ex.minimal.alphabet
    truth = _aligned(task, alphabet)
    machine = equivalent(ex.minimal, truth, include_empty=include_empty)
    found = None if ex.evidence is None else ex.evidence.disagreement(truth)
    checked = 0 if ex.evidence is None else ex.evidence.n_words
    consistent = ex.consistent
    if not machine.equal and probe is not None:
        w = machine.counterexample
        assert w is not None
        net = _ask(probe, w) if w or include_empty else None
        checked += net is not None
        task_out = int(machine.output_b) if machine.output_b is not None else -1
        shorter = found is None or (len(w), w) < (len(found[0]), found[0])
        if net is not None and net != task_out and shorter:
            found = (w, net, task_out)
        if net is not None and net != machine.output_a:
            consistent = False
    if found is not None:
        result = "not equivalent"
    elif machine.equal and (ex.evidence is not None or consistent):
        # without evidence (an Extraction built by hand) only its own consistency vouches
        result = "equivalent"
    elif consistent and probe is None:
        result = "not equivalent"
    else:
        result = "not reproduced"
    return TaskVerdict(
        result=result,
        machine=machine,
        network_word=None if found is None else tuple(found[0]),
        network_output=None if found is None else int(found[1]),
        task_output=None if found is None else int(found[2]),
        words_checked=checked,
        consistent=consistent,
        alphabet=alphabet,
    )


def _ask(probe: Probe | PrefixProbe | Classifier, word: tuple[int, ...]) -> int:
    """The network's class on one word."""
    if isinstance(probe, Classifier):
        return int(probe([word])[0])
    return int(predict(probe, [word])[0])


def exit_code(ex: Extraction, task_verdict: TaskVerdict | None = None) -> int:
    """``extract-dfa``'s exit status for an extraction and, with ``--task``, its verdict.

    Returns
    -------
    int
        With a verdict, :attr:`TaskVerdict.exit_code` (0 equivalent, 3 the network disagrees with
        the task, 4 not reproduced); without one, 0 when :attr:`Extraction.consistent`, else 4.
    """
    if task_verdict is not None:
        return task_verdict.exit_code
    return EXIT_EQUIVALENT if ex.consistent else EXIT_NOT_REPRODUCED
