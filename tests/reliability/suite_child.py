"""A suite process for the suite kill test, which can SIGKILL itself at a chosen point.

Usage: ``python suite_child.py OUT MODEL KILL`` where ``KILL`` is ``none`` or ``<point>:<n>``,
the n-th time (1-based) the point is reached:

- ``row``: right after the trainer appends a row to a CSV log (inside a run's training);
- ``results``: just before a finished ``results.csv`` temp file is renamed over the old one.

The suite: MoFA on the tiny model, seeds 0 and 1, two training steps each at 64 px.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(1, str(Path(__file__).parents[1]))  # tests/

from kill_points import Countdown, kill_after_rows, kill_before_replace  # noqa: E402 - beside this file


def suite(model: str) -> dict:
    return {
        "name": "killed",
        "set": {
            "model.source": model, "camera.image_size": 64, "encoder.name": "resnet18", "device": "cpu",
            "optim.optimizer": "adamw", "optim.lr": 1.0e-3, "optim.batch_size": 2, "optim.iterations": 2,
            "data.train_size": 4, "data.val_size": 2, "data.test_size": 4, "data.backgrounds": {"photo": 0.0},
            "log_every": 1, "val_every": 2, "sample_every": 2, "checkpoint_every": 1, "num_val_images": 2,
            "progress": False,
        },
        "grid": {"method": ["mofa"], "seed": [0, 1]},
        "samples": 2,
    }


def _killer(point: str, n: int) -> None:
    countdown = Countdown(n)
    if point == "row":
        kill_after_rows(countdown)
    elif point == "results":
        kill_before_replace(countdown, lambda dst: Path(dst).name == "results.csv")
    else:
        raise SystemExit(f"unknown kill point {point!r}")


def main(out: str, model: str, kill: str) -> None:
    from evaluation.suite.orchestrate import run_suite
    from evaluation.suite.spec import suite_from_dict

    if kill != "none":
        point, n = kill.split(":")
        _killer(point, int(n))
    run_suite(suite_from_dict(suite(model)), out, progress=False)


if __name__ == "__main__":
    main(*sys.argv[1:])
