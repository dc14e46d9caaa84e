"""Helpers shared by the figure scripts: arguments, the shared training runs, saving figures.

Every script takes the output directory as its first argument and ``--run RUN_DIR`` for the training run
it reads. A run that does not exist yet is trained first with the settings the script names (the paper's
by default, which takes a while on a CPU), so several scripts can share one run::

    python examples/fig04_automata_over_training.py figs --run runs/paper
    python examples/fig06_loss_by_length.py figs --run runs/paper
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

torch.set_num_threads(1)

RUNS: dict[str, dict[str, Any]] = {
    # the paper's App. C.1 setting: 100 ReLU units, all 2,046 words up to length 10, SGD lr 0.02,
    # 1000 epochs, a checkpoint every epoch, tests up to length 10,000
    "paper": {"preset": "paper", "task": "parity"},
    # App. D.6 uses tanh with lr 0.05; its gain of 0.01 left our run at loss 0.25 for 4000 epochs, so
    # this uses 0.2, the gain of the official notebook's tanh run (a checkpoint every 5 epochs, tests
    # up to length 1000)
    "tanh": {
        "preset": "tanh",
        "task": "parity",
        "gain": 0.2,
        "checkpoints": "every:5",
        "test_lengths": (25, 100, 1000),
    },
    # App. D.5: a random regular task, gain 0.025, lr 0.05; random:0 is a 7-state machine (the most the
    # generator draws). Of five random tasks trained this way (examples/random_task_survey.py) four were
    # extracted as exactly their task; 1500 epochs leave time for the states to settle after the
    # network is right on every word
    "random": {
        "preset": "random",
        "task": "random:0",
        "epochs": 1500,
        "checkpoints": "every:5",
        "test_lengths": (25, 100, 1000),
    },
}


def parse(
    description: str,
    run: str = "paper",
    argv: list[str] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> argparse.Namespace:
    """``OUT_DIR [--run RUN_DIR] [--seed N]`` plus a script's own ``options`` (flag -> argparse keyword
    arguments); the run defaults to ``runs/<run>``."""
    parser = argparse.ArgumentParser(description=description)
    for flag, spec in (options or {}).items():
        parser.add_argument(flag, **spec)
    parser.add_argument("out_dir", type=Path, help="directory for the PNG files")
    parser.add_argument(
        "--run",
        type=Path,
        default=Path("runs") / run,
        help=f"training run to read (trained with the '{run}' settings when missing)",
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed when the run is trained")
    args = parser.parse_args(argv)
    args.kind = run
    args.out_dir.mkdir(parents=True, exist_ok=True)
    ensure_run(args.run, run, args.seed)
    return args


def ensure_run(run_dir: Path, kind: str = "paper", seed: int = 0) -> Path:
    """Train ``run_dir`` with the settings :data:`RUNS[kind]` unless it already holds a finished run."""
    from dfalens.trainers import load_run, make_config, train

    settings = dict(RUNS[kind])
    preset = settings.pop("preset")
    config = make_config(preset, seed=seed, **settings)
    if (run_dir / "run.json").is_file():
        run = load_run(run_dir)
        epochs = max(
            run.config.epochs,
            config.epochs if run.config.differences(config, ("epochs",)) == {} else 0,
        )
        if run.epochs_done >= epochs:
            return run_dir
        print(f"continuing the run in {run_dir} to epoch {epochs}", file=sys.stderr)
        train(run.config.replace(epochs=epochs), run_dir, resume=True, progress=True)
        return run_dir
    print(f"training {run_dir} with the '{kind}' settings (this takes a while)", file=sys.stderr)
    train(config, run_dir, progress=True)
    return run_dir


def save(fig: Any, out_dir: Path, name: str, dpi: int = 90) -> Path:
    """Save a figure as ``out_dir/name`` (a 256-colour PNG, small enough to commit) and say where."""
    import io

    from PIL import Image

    path = out_dir / name
    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png")
    buf.seek(0)
    Image.open(buf).convert("RGB").quantize(colors=256).save(path, optimize=True)
    print(path)
    return path


def get_timeline(run_dir: Path, machines: bool = False, **options: Any) -> Any:
    """The run's timeline: read from ``run_dir/timeline.json`` when it is up to date and neither machines
    nor other ``options`` of :func:`dfalens.timeline` are asked for, else computed (and written there)."""
    from dfalens.timeline import Timeline, timeline

    cached = run_dir / "timeline.json"
    newest = max(p.stat().st_mtime for p in (run_dir / "checkpoints").glob("epoch_*.safetensors"))
    if not machines and not options and cached.is_file() and cached.stat().st_mtime > newest:
        return Timeline.from_json(cached)
    tl = timeline(run_dir, progress=True, **options)
    tl.write(run_dir)
    return tl
