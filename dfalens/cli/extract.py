"""``extract-dfa CHECKPOINT`` (also ``dfalens extract``): a checkpoint to its minimal automaton.

Exit codes (:data:`EXIT_CODES`): 0 extracted, and the machine reproduces the network on every word
checked (with ``--task``: and the network is equivalent to the task on all of them); 2 bad input,
nothing written; 3 with ``--task``: the network disagrees with the task (the shortest such word is
printed); 4 extracted, but the machine does not reproduce the network; 1 internal error.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import click

from dfalens._files import atomic_write, check_output_file
from dfalens.automata import get_task_machine, render, to_dict, to_json
from dfalens.errors import ConfigError, TaskError
from dfalens.plots.report import write_extraction_report
from dfalens.probes import AssumptionWarning, from_checkpoint, read_words, verdict
from dfalens.probes import extract as run_extract
from dfalens.probes._conventions import START_END_NAMES
from dfalens.probes.verdicts import exit_code
from dfalens.trainers.config import DEVICES
from dfalens.trainers.loop import resolve_device

OUTPUT_SUFFIXES = (".svg", ".png", ".pdf", ".dot", ".gv", ".json", ".html")
EXIT_CODES = """\b
Exit codes:
  0  extracted, and the machine reproduces the network on every word checked
     (with --task: the machine is equivalent to the task and the network agrees
     with the task on every collected, held-out, given and fidelity word)
  2  bad input (one-line error, nothing written)
  3  --task: the network disagrees with the task; the shortest such word is shown
  4  extracted, but the machine does not reproduce the network (consistent: no)
  1  internal error (a bug; rerun with --debug)
"""
METHOD_NAMES = ("leader", "threshold", "agglomerative", "kmeans", "hdbscan", "dbscan")


def _limit_threads(n: int) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(n)  # stays in effect for this process


def _h0_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | float | None:
    if value is None or value in ("zeros", "ones"):
        return value
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: use zeros, ones or a number") from None


def _load_probe(checkpoint: Path, **options: Any) -> Any:
    """``from_checkpoint`` with its assumption warnings shown as one ``warning:`` line each on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AssumptionWarning)
        probe = from_checkpoint(checkpoint, **options)
    seen: set[str] = set()
    for w in caught:
        msg = str(w.message)
        if issubclass(w.category, AssumptionWarning) and msg not in seen:
            seen.add(msg)
            click.echo(f"warning: {msg}", err=True)
        elif not issubclass(w.category, AssumptionWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return probe


def _fit_task(probe: Any, truth: Any, task: str, alphabet_given: bool) -> Any:
    """Check the network against the task's outputs; take the task's symbol names when only defaulted."""
    n_task = max(2, int(truth.output.max()) + 1)
    n_net = 2 if probe.n_classes == 1 else int(probe.n_classes or 0)
    if n_net and n_net != n_task:
        raise TaskError(
            f"task {task!r} has {n_task} output classes but the network has {probe.n_classes} outputs; "
            "choose a task with as many outputs, or the readout that computes it (--readout)"
        )
    a = probe.assumptions
    defaulted = a is not None and a.alphabet is not None and a.alphabet.source == "default"
    if (
        not alphabet_given
        and defaulted
        and len(probe.alphabet) == len(truth.alphabet)
        and set(probe.alphabet) != set(truth.alphabet)
    ):
        probe = probe.renamed(truth.alphabet, f"task {task}")
    _check_alphabets(probe.alphabet, truth.alphabet, task)
    return probe


def _check_alphabets(
    probe_alphabet: tuple[str, ...], task_alphabet: tuple[str, ...], task: str
) -> None:
    if len(probe_alphabet) != len(task_alphabet):
        special = [s for s in probe_alphabet if s.lower() in START_END_NAMES]
        hint = (
            f"; if {', '.join(special)} mark the start or end of a word, pass --bos/--eos"
            if special
            else ""
        )
        raise TaskError(
            f"task {task!r} has {len(task_alphabet)} symbols {list(task_alphabet)} but the "
            f"checkpoint reads {len(probe_alphabet)} {list(probe_alphabet)}; choose a task over "
            f"the same alphabet{hint}"
        )
    if set(probe_alphabet) != set(task_alphabet):
        raise TaskError(
            f"task {task!r} uses the symbols {list(task_alphabet)} but the checkpoint's are "
            f"{list(probe_alphabet)}; pass --alphabet {''.join(task_alphabet)} if they correspond "
            "in this order"
        )


def _write(machine: Any, path: Path) -> tuple[Path, str | None]:
    """Write the machine; returns the path written and a hint when the image fell back to DOT."""
    try:
        if path.suffix.lower() == ".json":
            return atomic_write(path, to_json(machine, indent=2) + "\n"), None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            written = render(machine, path)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: {exc.strerror or exc}; choose another -o path"
        ) from None
    hint = next((str(w.message) for w in caught), None) if written != path else None
    return written, hint


def _consistency_line(ex: Any) -> str:
    s = ex.settings
    parts = [f"collected {ex.agreement:.2%}"]
    if s.get("heldout") is not None:
        parts.append(f"held-out {s['heldout']:.2%}")
    if ex.words_agreement is not None:
        parts.append(f"given words {ex.words_agreement:.2%}")
    if ex.fidelity is not None:
        parts += [f"length {k} {v:.2%}" for k, v in ex.fidelity.items()]
    checked = ", ".join(parts)
    if ex.consistent and not ex.closed:
        return (
            f"consistent: yes on every word checked ({checked}), but the machine is open: "
            "beyond the collected words it is a guess"
        )
    if ex.consistent:
        return f"consistent: yes, reproduces the network on every word checked ({checked})"
    return (
        f"consistent: NO, the machine does not reproduce the network ({checked}); it is a best "
        "guess, not the network's automaton"
    )


def _verdict_lines(tv: Any, task: str) -> list[str]:
    if tv.equal:
        return [
            f"task {task}: equivalent (machine equivalent to the task; the network agrees with "
            f"the task on all {tv.words_checked} words checked)"
        ]
    lines = []
    if tv.network_word is not None:
        w = tv.network_word_str
        shown = repr(w) if w else "the empty word"
        lines.append(
            f"task {task}: NOT equivalent; on {shown} the network outputs {tv.network_output}, "
            f"the task {tv.task_output}"
        )
    if not tv.machine.equal:
        w = tv.machine.word_str
        shown = repr(w) if w else "the empty word"
        head = f"task {task}: NOT equivalent; " if not lines else "  and "
        lines.append(
            f"{head}on {shown} the extraction outputs {tv.machine.output_a}, the task "
            f"{tv.machine.output_b}"
        )
    if tv.result == "not reproduced":
        lines.append(
            f"task {task}: undecided; the network agreed with the task on all {tv.words_checked} "
            "words checked, but the extracted machine does not reproduce the network"
        )
    return lines


def _summary(ex: Any, description: str, tv: Any, task: str | None) -> list[str]:
    s = ex.settings
    lines = [f"network: {description}"]
    n_words = int(ex.labels.size)
    lines.append(
        f"states: {n_words} words up to length {s['max_len']} -> {ex.n_raw} clusters -> "
        f"{ex.n_minimal} minimal ({ex.n_minimal_trimmed} without a dead state)"
    )
    closed = "yes" if ex.closed else f"no ({ex.undefined} transitions undefined)"
    lines.append(
        f"closed: {closed}; agrees with the network on {ex.agreement:.2%} of the collected words"
    )
    if ex.words_agreement is not None:
        lines.append(
            f"given words: {s.get('words')}; the machine agrees with the network on "
            f"{ex.words_agreement:.2%} of them"
        )
    lines.append(_consistency_line(ex))
    if s["method"] == "kmeans":
        how = f"kmeans k={s.get('n_clusters')}"
    else:
        eps = s.get("eps")
        if eps is None or not s.get("relative", True):
            how = f"{s['method']} eps_abs={s['eps_abs']:.3g}"
        else:
            how = f"{s['method']} eps={eps:.3g} x scale {s['scale']:.3g} (= {s['eps_abs']:.3g})"
    strategy = s.get("strategy", "fixed")
    if strategy != "fixed":
        tried = len(s.get("trace", []))
        how += f"; {strategy} strategy, {tried} candidate{'' if tried == 1 else 's'} tried"
    lines.append(f"method: {how}")
    refinement = s.get("refinement")
    if refinement is not None:
        used = "used" if s.get("path") == "white-box+refined" else "not used"
        lines.append(
            f"refinement ({used}): {refinement['start_clusters']} -> {refinement['clusters']} "
            f"clusters in {refinement['rounds']} rounds by the network's answers on "
            f"{len(refinement['suffixes'])} suffixes; stopped: {refinement['stopped']}"
        )
    if ex.fidelity is None:
        lines.append("fidelity: n/a (the extraction is not closed)")
    else:
        parts = ", ".join(f"length {k}: {v:.3f}" for k, v in ex.fidelity.items())
        lines.append(f"fidelity to the network: {parts}")
    if tv is not None:
        lines.extend(_verdict_lines(tv, str(task)))
    return lines


@click.command(
    "extract", epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option(
    "--task",
    help="Compare the network with this ground truth: parity, modK, tomitaN, random:SEED or a "
    "machine JSON file (exit 3 when the network disagrees with it).",
)
@click.option(
    "--words",
    "words_file",
    type=click.Path(path_type=Path),
    help="The network's own words (e.g. its validation set), one per line; symbols separated by "
    "spaces when a symbol name is longer than one character; blank lines skipped, a line 'ε' is "
    "the empty word. Checked like the collected words; random words follow them.",
)
@click.option(
    "--max-len",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Collect the network's states on every word up to this length.",
)
@click.option(
    "--max-states",
    type=click.IntRange(min=1),
    default=None,
    help="Refuse to collect more states than this (default 5,000,000).",
)
@click.option(
    "--method",
    type=click.Choice(METHOD_NAMES),
    help="Clustering method; default: an eps ladder until the automaton is closed and consistent.",
)
@click.option(
    "--eps",
    type=float,
    help="Merge distance, relative to the states' scale (0.01 = the paper's cutoff).",
)
@click.option(
    "--eps-abs",
    type=float,
    help="Merge distance as an absolute Euclidean distance (instead of --eps).",
)
@click.option(
    "--absolute-eps",
    is_flag=True,
    help="Deprecated: --absolute-eps --eps X is --eps-abs X.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Write the minimal machine: .svg/.png/.pdf (drawing), .dot, .json (machine JSON), or .html "
    "(the interactive report: automaton, states, verdict, candidates).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object instead of the summary."
)
@click.option(
    "--include-empty/--exclude-empty",
    default=None,
    help="Count the network's output on the empty word, or not. Default: counted when the "
    "network reads a start symbol first (--bos, or one found in the checkpoint), where the empty "
    "word is a trained word; ignored otherwise (an output before any input is untrained).",
)
@click.option("--alphabet", help="Symbol names, e.g. 01 or 'a,b' (default: from the checkpoint).")
@click.option("--readout", help="Key of the output layer's weight when it cannot be found alone.")
@click.option(
    "--nonlinearity",
    type=click.Choice(["tanh", "relu"]),
    help="For plain RNNs (weights cannot tell; default tanh).",
)
@click.option("--module", help="Key prefix of the recurrent module when there are several.")
@click.option(
    "--h0",
    "h0",
    callback=_h0_option,
    metavar="zeros|ones|VALUE",
    help="Initial state of a foreign network (default: a learned h0 in the weights, else zeros).",
)
@click.option(
    "--bos", metavar="SYMBOL", help="Start symbol: the initial state is the state after it."
)
@click.option("--eos", metavar="SYMBOL", help="End symbol: fed before every readout.")
@click.option(
    "--threshold",
    type=float,
    help="Decision threshold of a one-output head (default: logit > 0, or probability > 0.5 after "
    "a sigmoid).",
)
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Run a pickled checkpoint's own code (only for files you trust); by default a pickled "
    "model is read as data, nothing run.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of k-means and random words."
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="CPU threads for torch and BLAS (one is fastest for small networks on a shared machine).",
)
@click.option(
    "--device",
    type=click.Choice(list(DEVICES)),
    default="auto",
    show_default=True,
    help="Where to run the network.",
)
def extract(
    checkpoint: Path,
    task: str | None,
    words_file: Path | None,
    max_len: int,
    max_states: int | None,
    method: str | None,
    eps: float | None,
    eps_abs: float | None,
    absolute_eps: bool,
    output: Path | None,
    as_json: bool,
    include_empty: bool | None,
    alphabet: str | None,
    readout: str | None,
    nonlinearity: str | None,
    module: str | None,
    h0: str | float | None,
    bos: str | None,
    eos: str | None,
    threshold: float | None,
    trust_pickle: bool,
    seed: int,
    threads: int,
    device: str,
) -> int:
    """Extract the minimal automaton of the recurrent network in CHECKPOINT.

    CHECKPOINT is a dfalens .safetensors checkpoint, a foreign PyTorch state_dict or whole pickled
    model (.pt/.pth/.ckpt; a pickled model is read as data by a restricted unpickler, nothing run,
    unless --trust-pickle), a .safetensors file or an MLflow model folder.

    Exit codes: 0 extracted and the machine reproduces the network on every word checked (with
    --task: and the network is equivalent to the task on all of them); 2 bad input, nothing
    written; 3 with --task: the network disagrees with the task (its shortest disagreement is
    printed); 4 extracted, but the machine does not reproduce the network; 1 internal error.
    """
    _limit_threads(threads)
    if eps is not None and eps_abs is not None:
        raise ConfigError(
            "give --eps (relative to the state scale) or --eps-abs (absolute), not both"
        )
    if absolute_eps:  # the old spelling of --eps-abs
        if eps is None and eps_abs is None:
            raise ConfigError("--absolute-eps needs --eps (the distance to use); or use --eps-abs")
        eps, eps_abs = None, eps if eps_abs is None else eps_abs
    if output is not None:
        check_output_file(output, "-o", OUTPUT_SUFFIXES)
    truth = get_task_machine(task) if task is not None else None
    names: Any = alphabet
    if alphabet is not None and "," in alphabet:
        names = [a.strip() for a in alphabet.split(",")]
    probe = _load_probe(
        checkpoint,
        alphabet=names,
        readout=readout,
        nonlinearity=nonlinearity,
        module=module,
        device=resolve_device(device),
        h0=h0,
        bos=bos,
        eos=eos,
        threshold=threshold,
        trust_pickle=trust_pickle,
    )
    if truth is not None:
        probe = _fit_task(probe, truth, str(task), alphabet is not None)
    words = read_words(words_file, probe.alphabet) if words_file is not None else None
    ex = run_extract(
        probe,
        max_len=max_len,
        method=method,
        eps=eps,
        eps_abs=eps_abs,
        seed=seed,
        include_empty=include_empty,
        max_states=max_states,
        words=words,
    )
    tv = verdict(ex, truth, probe) if truth is not None else None
    code = exit_code(ex, tv)
    written: Path | None = None
    hint = None
    if output is not None and output.suffix.lower() == ".html":
        written = write_extraction_report(
            ex, output, probe=probe, task_verdict=tv, task_name=task, source=str(checkpoint)
        )
    elif output is not None:
        written, hint = _write(ex.minimal, output)
    if as_json:
        record = ex.to_dict()
        record = {
            "checkpoint": str(checkpoint),
            "network": probe.description,
            "assumptions": None if probe.assumptions is None else probe.assumptions.to_dict(),
            "task": task,
            "equivalent": None if tv is None else tv.equal,
            "verdict": None if tv is None else tv.result,
            "network_counterexample": None if tv is None else tv.network_word_str,
            "network_output": None if tv is None else tv.network_output,
            "task_output": None if tv is None else tv.task_output,
            "words_checked": None if tv is None else tv.words_checked,
            "counterexample": None if tv is None or tv.machine.equal else tv.machine.word_str,
            "exit_code": code,
            **record,
        }
        record["machine"] = to_dict(ex.minimal)
        if written is not None:
            record["output"] = str(written)
        click.echo(json.dumps(record))
        if hint:
            click.echo(f"note: {hint}", err=True)
    else:
        for line in _summary(ex, probe.description, tv, task):
            click.echo(line)
        if written is not None:
            click.echo(f"wrote {written}")
        if hint:
            click.echo(f"note: {hint}", err=True)
    return code
