"""The GPU study's suites (gpu_study, gpu_fig10), their script's cut-and-resume logic, and old run records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.suite.expand import expand_suite
from evaluation.suite.folder import suite_test_set
from evaluation.suite.orchestrate import plan_suite, run_dir_of
from evaluation.suite.spec import load_suite_spec, suite_from_dict
from mofa_bench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_study.sh"


def test_gpu_study_trains_three_renderers_with_and_without_landmarks_on_counter_drawn_faces():
    cells = expand_suite(load_suite_spec("gpu_study"))
    trained = [c for c in cells if c.values["method"] == "mofa"]
    assert {c.values["renderer"] for c in trained} == {"per_vertex", "nvdiffrast", "pytorch3d_soft"}
    seeds: dict[tuple[str, bool], set[int]] = {}
    for c in trained:
        seeds.setdefault((c.values["renderer"], c.values["landmark_loss"] > 0), set()).add(c.values["seed"])
    assert len(seeds) == 6 and all(len(s) == 2 for s in seeds.values())
    assert [c.run_id for c in cells if c.values["method"] == "mean_face"] == ["mean_face-per_vertex-resnet18-land1-s0"]
    for c in cells:
        assert c.config["data"]["generator"] == "counter" and c.config["data"]["preload"] is False
        assert c.config["optim"]["iterations"] == 6000  # the converge protocol at full length
        assert c.config["checkpoint_every"] <= 250
    soft = next(c for c in trained if c.values["renderer"] == "pytorch3d_soft")
    assert soft.config["renderer"] == {"name": "pytorch3d", "options": {"blur_radius": 0.5, "faces_per_pixel": 16}}


def test_the_gpu_suites_score_on_the_cpu_suites_test_faces():
    """Only training faces come from the counter generator: the test set is the CPU suites'."""
    assert suite_test_set(expand_suite(load_suite_spec("gpu_study"))) == \
        suite_test_set(expand_suite(load_suite_spec("renderers_cpu")))
    fig10 = expand_suite(load_suite_spec("gpu_fig10"))
    assert suite_test_set(fig10) == suite_test_set(expand_suite(load_suite_spec("paper")))
    assert {(c.values["renderer"], c.values["landmark_loss"] > 0) for c in fig10} == {
        (r, land) for r in ("per_vertex", "nvdiffrast", "pytorch3d_soft") for land in (False, True)}
    assert all(c.config["data"]["generator"] == "counter" for c in fig10)


def test_the_gpu_suites_expand_where_nvdiffrast_cannot_be_imported(monkeypatch):
    """nvdiffrast is named, never imported, until a run trains with it."""
    for name in ("nvdiffrast", "nvdiffrast.torch"):
        monkeypatch.setitem(sys.modules, name, None)  # any import of it raises ImportError
    for suite in ("gpu_study", "gpu_fig10"):
        assert any(c.config["renderer"]["name"] == "nvdiffrast" for c in expand_suite(load_suite_spec(suite)))


# ---------------------------------------------------------------------------- run records
def _suite(model_path) -> dict:
    return {"name": "records", "set": {"model.source": str(model_path), "camera.image_size": 64, "device": "cpu",
                                       "data.test_size": 4},
            "grid": {"method": ["mofa"], "renderer": ["per_vertex"], "seed": [0]}}


def _write_run(out: Path, cell, record: dict) -> None:
    run = run_dir_of(out, cell)
    run.mkdir(parents=True)
    (run / "cell.json").write_text(json.dumps(record))
    (run / "status.json").write_text(json.dumps({"status": "ok", "error": None}))


def test_a_run_recorded_before_data_generator_existed_is_the_same_cell(tmp_path, tiny_model_path):
    spec = suite_from_dict(_suite(tiny_model_path))
    (cell,) = expand_suite(spec)
    record = json.loads(json.dumps(cell.record()))
    del record["config"]["data"]["generator"]
    _write_run(tmp_path / "old", cell, record)
    assert [state for _, state in plan_suite(spec, tmp_path / "old")] == ["ok"]
    record["config"]["data"]["generator"] = "counter"  # a record that says otherwise is another cell
    _write_run(tmp_path / "other", cell, record)
    with pytest.raises(ConfigError, match="different cell"):
        plan_suite(spec, tmp_path / "other")


# ---------------------------------------------------------------------------- the script
FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for python -m mofa_bench.cli: logs its arguments, then acts as FAKE_SUITE says.
echo "$*" >> "$FAKE_LOG"
case "$3" in
  suite)
    case "$FAKE_SUITE" in
      sleep) sleep 30 & trap 'kill $!; echo interrupted >> "$FAKE_LOG"; exit 130' INT; wait ;;
      fail) exit 1 ;;
      *) exit 0 ;;
    esac ;;
  report) mkdir -p "$6" && echo report > "$6/report.md" ;;
esac
"""


def _call(tmp_path: Path, behaviour: str, limit_s: int, suites: str = "first second") -> subprocess.CompletedProcess:
    fake = tmp_path / "fake_python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    env = {**os.environ, "PYTHON": str(fake), "FAKE_LOG": str(tmp_path / "calls.log"), "FAKE_SUITE": behaviour,
           "DEVICE": "cpu", "SUITES": suites, "LIMIT_S": str(limit_s), "REPORT_S": "1", "MIN_SUITE_S": "2"}
    return subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], env=env, capture_output=True, text=True,
                          timeout=120)


def _calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [" ".join(line.split()[2:4]) if line != "interrupted" else line for line in lines]


def test_the_script_stops_in_time_resumes_and_reports_each_suite_once(tmp_path):
    # A suite still training when the time is up is interrupted; the call says so and exits 0.
    cut = _call(tmp_path, "sleep", limit_s=4)
    assert cut.returncode == 0, cut.stdout + cut.stderr
    assert "cut off" in cut.stdout and "run the same command again" in cut.stdout
    assert _calls(tmp_path) == ["suite first", "interrupted"]
    assert not (tmp_path / "out" / "first_report").exists()
    # A suite with a failed run: no report, exit 1.
    failed = _call(tmp_path, "fail", limit_s=120)
    assert failed.returncode == 1 and _calls(tmp_path) == ["suite first"]
    # Complete suites get their reports, in order, and are skipped afterwards.
    done = _call(tmp_path, "ok", limit_s=120)
    assert done.returncode == 0 and "every suite is complete" in done.stdout, done.stdout + done.stderr
    out = tmp_path / "out"
    assert _calls(tmp_path) == ["suite first", f"report {out / 'first'}", "suite second", f"report {out / 'second'}"]
    assert (tmp_path / "out" / "first_report" / "report.md").exists()
    assert (tmp_path / "out" / "first.done").exists() and (tmp_path / "out" / "second.done").exists()
    again = _call(tmp_path, "fail", limit_s=120)
    assert again.returncode == 0 and _calls(tmp_path) == []


def test_the_script_starts_no_suite_without_time_for_it(tmp_path):
    short = _call(tmp_path, "ok", limit_s=2)
    assert short.returncode == 0 and "not started" in short.stdout
    assert _calls(tmp_path) == []
