"""``extract-dfa CHECKPOINT`` (also ``dfalens extract``): a checkpoint to its minimal automaton."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import click

from dfalens.automata import equivalent, get_task_machine, render, to_dict, to_json
from dfalens.errors import ConfigError, TaskError
from dfalens.plots.report import write_extraction_report
from dfalens.probes import extract as run_extract
from dfalens.probes import from_checkpoint

OUTPUT_SUFFIXES = (".svg", ".png", ".pdf", ".dot", ".gv", ".json", ".html")
METHOD_NAMES = ("leader", "threshold", "agglomerative", "kmeans", "hdbscan", "dbscan")


def _check_output(path: Path) -> None:
    """Fail before any work when ``path`` cannot be written (so nothing is half-written)."""
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError(
            f"cannot write {path.name!r}: -o takes a .svg, .png, .pdf, .dot, .json or .html file name"
        )
    if path.is_dir():
        raise ConfigError(f"-o {path} is a directory; give a file name such as {path / 'out.svg'}")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cannot write {path}: {parent} is not a writable directory; choose another -o path"
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"cannot write {path}: the file is read-only; choose another -o path")


def _limit_threads(n: int) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(n)  # stays in effect for this process


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _check_alphabets(
    probe_alphabet: tuple[str, ...], task_alphabet: tuple[str, ...], task: str
) -> None:
    if len(probe_alphabet) != len(task_alphabet):
        raise TaskError(
            f"task {task!r} has {len(task_alphabet)} symbols {list(task_alphabet)} but the "
            f"checkpoint reads {len(probe_alphabet)} {list(probe_alphabet)}; choose a task over "
            "the same alphabet"
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
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            try:
                tmp.write_text(to_json(machine, indent=2) + "\n", encoding="utf-8")
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            return path, None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            written = render(machine, path)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: {exc.strerror or exc}; choose another -o path"
        ) from None
    hint = next((str(w.message) for w in caught), None) if written != path else None
    return written, hint


def _summary(ex: Any, description: str, verdict: Any, task: str | None) -> list[str]:
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
    if s["method"] == "kmeans":
        how = f"kmeans k={s.get('n_clusters')}"
    else:
        eps = s.get("eps")
        scale = "" if not s.get("relative", True) else f" x scale {s['scale']:.3g}"
        how = f"{s['method']} eps={eps:.3g}{scale} (= {s['eps_abs']:.3g})"
    strategy = s.get("strategy", "fixed")
    if strategy != "fixed":
        tried = len(s.get("trace", []))
        how += f"; {strategy} strategy, {tried} candidate{'' if tried == 1 else 's'} tried"
    if not s.get("consistent", True):
        how += "; no candidate reproduced the network exactly, best shown"
    lines.append(f"method: {how}")
    if ex.fidelity is None:
        lines.append("fidelity: n/a (the extraction is not closed)")
    else:
        parts = ", ".join(f"length {k}: {v:.3f}" for k, v in ex.fidelity.items())
        lines.append(f"fidelity to the network: {parts}")
    if verdict is not None:
        if verdict.equal:
            lines.append(f"task {task}: equivalent")
        else:
            word = verdict.word_str
            shown = repr(word) if word else "the empty word"
            lines.append(
                f"task {task}: NOT equivalent; on {shown} the extraction outputs "
                f"{verdict.output_a}, the task {verdict.output_b}"
            )
    return lines


@click.command("extract")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option(
    "--task",
    help="Compare with this ground truth: parity, modK, tomitaN, random:SEED or a machine JSON "
    "file (exit 3 when not equivalent).",
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
@click.option("--absolute-eps", is_flag=True, help="Read --eps as an absolute distance.")
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
    "--include-empty",
    is_flag=True,
    help="Count the network's output on the empty word (ignored by default: it is untrained).",
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
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to run the network.",
)
def extract(
    checkpoint: Path,
    task: str | None,
    max_len: int,
    max_states: int | None,
    method: str | None,
    eps: float | None,
    absolute_eps: bool,
    output: Path | None,
    as_json: bool,
    include_empty: bool,
    alphabet: str | None,
    readout: str | None,
    nonlinearity: str | None,
    module: str | None,
    seed: int,
    threads: int,
    device: str,
) -> int:
    """Extract the minimal automaton of the recurrent network in CHECKPOINT.

    CHECKPOINT is a dfalens .safetensors checkpoint or a foreign PyTorch state_dict (.pt/.pth/.ckpt,
    opened with weights_only=True; pickles that need code are refused). Exit codes: 0 done (and
    equivalent to --task), 3 not equivalent to --task, 2 bad input.
    """

    _limit_threads(threads)
    if absolute_eps and eps is None:
        raise ConfigError("--absolute-eps needs --eps (the distance to use)")
    if output is not None:
        _check_output(output)
    truth = get_task_machine(task) if task is not None else None
    names: Any = alphabet
    if alphabet is not None and "," in alphabet:
        names = [a.strip() for a in alphabet.split(",")]
    probe = from_checkpoint(
        checkpoint,
        alphabet=names,
        readout=readout,
        nonlinearity=nonlinearity,
        module=module,
        device=_device(device),
    )
    if truth is not None:
        _check_alphabets(probe.alphabet, truth.alphabet, str(task))
    ex = run_extract(
        probe,
        max_len=max_len,
        method=method,
        eps=eps,
        relative=not absolute_eps,
        seed=seed,
        include_empty=include_empty,
        max_states=max_states,
    )
    verdict = (
        equivalent(ex.minimal, truth, ignore_empty=not include_empty) if truth is not None else None
    )
    written: Path | None = None
    hint = None
    if output is not None and output.suffix.lower() == ".html":
        written = write_extraction_report(
            ex, output, probe=probe, task=truth, task_name=task, source=str(checkpoint)
        )
    elif output is not None:
        written, hint = _write(ex.minimal, output)
    if as_json:
        record = ex.to_dict()
        record = {
            "checkpoint": str(checkpoint),
            "network": probe.description,
            "task": task,
            "equivalent": None if verdict is None else verdict.equal,
            "counterexample": None if verdict is None or verdict.equal else verdict.word_str,
            **record,
        }
        record["machine"] = to_dict(ex.minimal)
        if written is not None:
            record["output"] = str(written)
        click.echo(json.dumps(record))
        if hint:
            click.echo(f"note: {hint}", err=True)
    else:
        for line in _summary(ex, probe.description, verdict, task):
            click.echo(line)
        if written is not None:
            click.echo(f"wrote {written}")
        if hint:
            click.echo(f"note: {hint}", err=True)
    return 3 if verdict is not None and not verdict.equal else 0
