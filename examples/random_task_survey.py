"""Random regular tasks (App. D.5): how often is the extracted automaton exactly the task's?

Trains one network per task with the paper's random-task settings (100 ReLU units, gain 0.025, SGD lr 0.05,
all words up to length 10), two at a time, then extracts the automaton of the final checkpoint with the
default strategy and compares it with the task (empty word ignored). Prints one line per task: minimal
states of the task and of the extraction, closed, equivalent, fidelity on random long words, and the test
loss at length 1000 (a huge loss with accuracy 1.0 means the states grow without bound along long words).

    python examples/random_task_survey.py OUT_DIR --tasks random:0 random:8 random:15 random:26 random:34
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from joblib import Parallel, delayed


def survey_one(task: str, seed: int, epochs: int, out_dir: Path) -> dict[str, Any]:
    """Train (unless already trained) and extract one task; a row of the survey."""
    import torch

    torch.set_num_threads(1)
    import dfalens
    from dfalens.automata import equivalent, get_task_machine, minimize
    from dfalens.probes import from_checkpoint
    from dfalens.trainers import load_run, make_config, train

    run_dir = out_dir / f"{task.replace(':', '')}_seed{seed}"
    if (run_dir / "run.json").is_file():
        run = load_run(run_dir)
    else:
        config = make_config(
            "random",
            task=task,
            seed=seed,
            epochs=epochs,
            checkpoints="every:100",
            test_lengths=(100, 1000),
        )
        run = train(config, run_dir)
    machine = get_task_machine(task)
    ex = dfalens.extract(from_checkpoint(run.last_checkpoint()))
    last = run.metrics[-1]
    return {
        "task": task,
        "seed": seed,
        "task_states": minimize(machine, keep_sink=False).n_states,
        "extracted_states": ex.n_minimal_trimmed,
        "closed": ex.closed,
        "equivalent": bool(equivalent(ex.minimal, machine, include_empty=False)),
        "fidelity": ex.fidelity,
        "accuracy_1000": last["val_accuracy"]["1000"],
        "loss_1000": last["val_loss"]["1000"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="directory for the training runs")
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=["random:0", "random:8", "random:15", "random:26", "random:34"],
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--epochs", type=int, default=1500)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    rows = Parallel(n_jobs=args.jobs)(
        delayed(survey_one)(task, args.seed, args.epochs, args.out_dir) for task in args.tasks
    )
    for r in rows:
        fidelity = "-" if r["fidelity"] is None else min(r["fidelity"].values())
        print(
            f"{r['task']:>10}  task {r['task_states']} states, extracted {r['extracted_states']}, "
            f"closed {r['closed']}, equivalent {r['equivalent']}, fidelity {fidelity}, "
            f"accuracy@1000 {r['accuracy_1000']:.2f}, loss@1000 {r['loss_1000']:.3g}"
        )


if __name__ == "__main__":
    main()
