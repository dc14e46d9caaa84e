"""The result of :func:`dfalens.probes.extract`: :class:`Extraction` (private; re-exported by
:mod:`dfalens.probes.extraction`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dfalens._files import jsonable
from dfalens.automata import Machine, to_dict
from dfalens.probes.evidence import Evidence
from dfalens.probes.page.one import extraction_html

__all__ = ["Extraction"]


@dataclass(frozen=True, eq=False)
class Extraction:
    """The automaton extracted from a network, with the evidence for it.

    ``settings["path"]`` says how: ``"white-box"`` (clustering of the collected hidden states),
    ``"white-box+refined"`` (a clustering split further by the network's answers, see
    :func:`dfalens.probes.refine`) or ``"black-box"`` (a :class:`~dfalens.probes.Classifier`
    learned with L*). A black-box extraction has no hidden states: ``labels`` is empty, ``machine``
    and ``minimal`` are the learned machine, ``closed`` is True, ``conflicts`` is ``{}``,
    ``undefined`` is 0, ``n_raw == n_minimal``, ``agreement`` is over the learner's check words,
    ``fidelity`` over long random words labelled by the classifier, and ``evidence`` holds those
    words (no tree).

    Attributes
    ----------
    labels : ndarray of int, shape (n_nodes,)
        State of the quotient machine that every collected word (node) belongs to.
    machine : Machine
        The quotient: one state per cluster, majority-vote transitions and outputs, ``-1`` where no
        member had a child (partial unless ``closed``). States are named by their first member
        words.
    minimal : Machine
        ``minimize(machine)``: complete (undefined transitions go to a sink of output 0) and
        canonical.
    closed : bool
        Every state reachable in ``machine`` has every transition: a finite automaton that runs on
        words of any length. An open quotient's ``minimal`` is only a guess beyond ``max_len``.
    conflicts : dict
        ``transitions``: tree edges that disagree with their state's majority transition;
        ``outputs``: voting words whose network class disagrees with their state's output; ``edges``
        and ``voters``: how many voted.
    undefined : int
        Undefined transitions among reachable quotient states.
    agreement : float
        Fraction of the collected words (the empty word excluded unless ``include_empty``) on which
        ``minimal`` gives the network's class.
    fidelity : dict of int to float, or None
        For each length (100 and 1000 by default), the fraction of random words of that length on
        which ``minimal`` gives the network's class; None when the quotient is not closed or no
        network was given (a bare StateSet). With ``words`` given, the random words' symbols follow
        the words' symbol frequencies.
    settings : dict
        What produced this result: ``method``, ``eps`` (relative, or None), ``eps_abs``,
        ``relative``, ``scale``, ``max_len``, ``strategy`` ("fixed", "k-sweep" or "auto"),
        ``path`` (see above), ``refinement`` (when one ran: rounds, suffixes, why it stopped),
        ``consistent`` (as :attr:`consistent`), ``heldout`` (agreement on the held-out words, or
        None), ``words`` (how many words were given, or None), ``collection`` (which states were
        collected: all words up to ``max_len``, the prefixes of the given words and their
        one-symbol extensions, or given states), ``collected`` (how many) and ``trace`` (one entry
        per candidate tried), plus method options.
    n_raw : int
        States of the quotient (clusters); the column ``states_raw`` of every table (the
        :meth:`summary`, timeline rows, sweep ``results.csv``).
    n_minimal : int
        States of ``minimal`` (complete; a dead state counted); the column ``states_minimal``.
    n_minimal_trimmed : int
        States of the minimal machine without its dead state; the column ``states_minimal_trimmed``.
    consistent : bool
        ``minimal`` reproduces the network on every word it was checked on: the collected words,
        the held-out words and the given words (within ``tolerance``; the empty word only with
        ``include_empty``), and on the fidelity words. A machine that gives one class on every
        non-empty word is consistent only when the network also gives one class on all of them.
        An open quotient answers only the words its defined transitions cover: a checked word
        that leaves them counts as a disagreement (the sink of ``minimal`` is a guess), so an open
        quotient is consistent only when every checked word stays inside it. When False the
        machine is *not* the network's automaton: read it as the best guess, never as the answer.
    words_agreement : float or None
        Fraction of the given words (``words=``) on which the machine gives the network's class
        (``minimal`` when closed, else the quotient, undefined counting as wrong); None when no
        words were given.
    evidence : Evidence or None
        Every word checked (collected, held-out, given, fidelity) with the network's class on it,
        for :func:`dfalens.probes.verdict`. Not serialised.
    """

    labels: np.ndarray
    machine: Machine
    minimal: Machine
    closed: bool
    conflicts: dict[str, int]
    undefined: int
    agreement: float
    fidelity: dict[int, float] | None
    settings: dict[str, Any]
    n_raw: int
    n_minimal: int
    n_minimal_trimmed: int = field(default=0)
    consistent: bool = field(default=False)
    words_agreement: float | None = field(default=None)
    evidence: Evidence | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        fid = (
            "n/a"
            if self.fidelity is None
            else ", ".join(f"{k}: {v:.3f}" for k, v in self.fidelity.items())
        )
        words = "" if self.words_agreement is None else f", words={self.words_agreement:.4f}"
        return (
            f"Extraction({self.n_raw} -> {self.n_minimal} states, closed={self.closed}, "
            f"consistent={self.consistent}, agreement={self.agreement:.4f}{words}, "
            f"fidelity={{{fid}}}, method={self.settings.get('method')})"
        )

    def _repr_html_(self) -> str:
        """The report page of this extraction, inline in Jupyter (it holds no states: no projection)."""
        return extraction_html(self, fragment=True)

    def to_dict(self, *, labels: bool = False, quotient: bool = False) -> dict[str, Any]:
        """JSON-ready summary.

        Parameters
        ----------
        labels : bool, default False
            Include the per-word state labels (one int per collected word).
        quotient : bool, default False
            Include the quotient machine (in the automata JSON schema) besides the minimal one.

        Returns
        -------
        dict
            Keys ``states_raw``, ``states_minimal``, ``states_minimal_trimmed``, ``closed``,
            ``consistent``, ``agreement``, ``words_agreement``, ``fidelity`` (length as a string
            key, or None), ``conflicts``, ``undefined``, ``settings`` and ``machine`` (the minimal
            machine as :func:`dfalens.automata.to_dict`).
        """
        out: dict[str, Any] = {
            "states_raw": self.n_raw,
            "states_minimal": self.n_minimal,
            "states_minimal_trimmed": self.n_minimal_trimmed,
            "closed": self.closed,
            "consistent": self.consistent,
            "agreement": self.agreement,
            "words_agreement": self.words_agreement,
            "fidelity": None
            if self.fidelity is None
            else {str(k): v for k, v in self.fidelity.items()},
            "conflicts": dict(self.conflicts),
            "undefined": self.undefined,
            "settings": jsonable(self.settings),
            "machine": to_dict(self.minimal),
        }
        if quotient:
            out["quotient"] = to_dict(self.machine)
        if labels:
            out["labels"] = self.labels.tolist()
        return out
