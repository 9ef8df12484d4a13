"""A suite killed with SIGKILL during a run's training, then while rewriting its table, is reported after
each kill and resumed to the end: nothing lost, no half-written table, the report re-made every time (#30)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd

from evaluation.report.build import write_suite_report
from evaluation.report.load import load_suite_results

CHILD = Path(__file__).with_name("suite_child.py")
REPO = Path(__file__).parents[2]
RUNS = ["mofa-per_vertex-resnet18-land0-s0", "mofa-per_vertex-resnet18-land0-s1"]


def _suite(out: Path, model: Path, kill: str = "none") -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(CHILD), str(out), str(model), kill], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"suite process failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.returncode


def _statuses(out: Path) -> dict[str, str]:
    return {run_id: run.status for run_id, run in load_suite_results(out).runs.items()}


def test_a_killed_suite_is_reported_and_resumed_to_the_end(tmp_path, tiny_model_path):
    out = tmp_path / "suite"
    # 1. killed inside the second run's training (after its first metrics row; the first run logged 4 rows)
    assert _suite(out, tiny_model_path, "row:6") == -signal.SIGKILL
    assert pd.read_csv(out / "results.csv")["run_id"].tolist() == RUNS[:1]
    assert _statuses(out) == {RUNS[0]: "ok", RUNS[1]: "running"}
    text = write_suite_report(out, bench_csvs=[]).markdown.read_text()
    assert "2 runs (1 ok, 1 running)" in text
    # 2. resumed, then killed as the table is renamed into place after the second run finished
    before = (out / "results.csv").read_bytes()
    assert _suite(out, tiny_model_path, "results:1") == -signal.SIGKILL
    assert (out / "results.csv").read_bytes() == before  # the old table, whole
    assert len(list(out.glob(".results.csv.*.tmp"))) == 1  # the new one, never renamed
    assert _statuses(out) == {RUNS[0]: "ok", RUNS[1]: "ok"}  # the run's own result.json
    assert "2 runs (2 ok)" in write_suite_report(out, bench_csvs=[]).markdown.read_text()
    # 3. run again: nothing to train, the table rebuilt from the runs
    assert _suite(out, tiny_model_path) == 0
    table = pd.read_csv(out / "results.csv")
    assert table["run_id"].tolist() == RUNS and set(table["status"]) == {"ok"}
    assert table["photometric"].notna().all()
    assert "2 runs (2 ok)" in write_suite_report(out, bench_csvs=[]).markdown.read_text()
    assert not list(out.glob(".*.tmp")) and not list(out.glob("runs/*/.*.tmp"))  # the killed writer's removed
