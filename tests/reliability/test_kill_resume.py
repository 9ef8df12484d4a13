"""A run killed with SIGKILL at several points (one during a checkpoint write) and resumed each
time ends exactly where an uninterrupted run does, with CSV logs free of duplicate rows."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CHILD = Path(__file__).with_name("train_child.py")
REPO = Path(__file__).parents[2]
#: Columns that measure time, which no two runs share.
TIMING = {"samples_per_s", "time_s", "train_time_s"}


def _train(root: Path, model: Path, name: str, resume: bool, kill: str = "none") -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(CHILD), str(root), str(model), name, "1" if resume else "0", kill],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"training process failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.returncode


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_sigkill_at_several_points_then_resume_is_exact(tmp_path, tiny_model_path):
    assert _train(tmp_path, tiny_model_path, "reference", resume=False) == 0
    kills = ["row:3",      # after the step-2 metrics row, before the first checkpoint
             "save:2",     # half-way through writing a checkpoint
             "replace:2",  # a finished checkpoint not yet renamed (its hash file lists both digests)
             "row:3"]      # after rows logged past the last checkpoint
    assert _train(tmp_path, tiny_model_path, "killed", resume=False, kill=kills[0]) == -signal.SIGKILL
    for kill in kills[1:]:
        assert _train(tmp_path, tiny_model_path, "killed", resume=True, kill=kill) == -signal.SIGKILL
    assert _train(tmp_path, tiny_model_path, "killed", resume=True) == 0

    ref, run = tmp_path / "reference", tmp_path / "killed"
    a = torch.load(ref / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 6
    assert a["method"].keys() == b["method"].keys()
    for key in a["method"]:
        assert torch.equal(a["method"][key], b["method"][key]), key
    assert torch.equal(a["rng_cpu"], b["rng_cpu"])
    best_a = torch.load(ref / "checkpoints" / "best.pt", weights_only=True)
    best_b = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    assert best_a["step"] == best_b["step"] and best_a["best"] == best_b["best"]
    for key in best_a["method"]:
        assert torch.equal(best_a["method"][key], best_b["method"][key]), key
    for name in ("metrics.csv", "validation.csv"):
        rows = _rows(run / name)
        steps = [int(r["step"]) for r in rows]
        assert len(steps) == len(set(steps)), f"{name}: duplicate steps {steps}"
        assert rows == _rows(ref / name), name
    assert [int(r["step"]) for r in _rows(run / "metrics.csv")] == [1, 2, 3, 4, 5, 6]
    assert not list(run.rglob("*.tmp")) and not (run / ".lock").exists()
