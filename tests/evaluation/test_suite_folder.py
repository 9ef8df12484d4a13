"""A suite folder belongs to one suite and one test set: reruns, other suites, corrupt files (#30 item 1)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from test_suite_run import ZeroCode, tiny_suite  # noqa: E402

from evaluation.report import ReportError, load_suite_results  # noqa: E402
from evaluation.suite.folder import RECORD  # noqa: E402
from evaluation.suite.orchestrate import plan_suite, run_suite  # noqa: E402
from evaluation.suite.spec import suite_from_dict  # noqa: E402
from mofa_bench.errors import ConfigError  # noqa: E402

BUILDERS = {"fit": lambda config, decoder: ZeroCode(decoder)}


def _spec(model: Path, name: str = "tiny", seeds=(0,), **set_):
    suite = tiny_suite(model, name=name, grid={"method": ["fit"], "seed": list(seeds)})
    suite["set"].update(set_)
    return suite_from_dict(suite)


def _run(spec, out: Path, **kwargs):
    return run_suite(spec, out, progress=False, builders=BUILDERS, **kwargs)


@pytest.fixture
def first(tiny_model_path, tmp_path):
    """A finished one-run suite ``tiny`` in ``tmp_path/q``."""
    out = tmp_path / "q"
    _run(_spec(tiny_model_path), out)
    return out


def _snapshot(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in ("results.csv", "inputs.pt", RECORD)}


def test_the_folder_records_its_suite_and_test_set(first):
    record = json.loads((first / RECORD).read_text())
    assert [s["name"] for s in record["suites"]] == ["tiny"]
    assert record["test_set_text"].startswith("4 test images at 64 px") and not record["adopted"]
    assert not list(first.glob("**/*.tmp"))


def test_another_suite_is_refused_naming_both_and_nothing_changes(tiny_model_path, first):
    before = _snapshot(first)
    other = _spec(tiny_model_path, name="other", **{"data.test_size": 2})
    with pytest.raises(ConfigError, match=r"--out .*q holds suite tiny \(spec \w+\) on test set \w+ \[4 test images"
                                          r".*this is suite other .*2 test images.*--add.*--replace"):
        _run(other, first)
    with pytest.raises(ConfigError, match="holds suite tiny"):
        plan_suite(other, first)
    assert _snapshot(first) == before


def test_add_joins_a_suite_on_the_same_test_set_and_keeps_every_row(tiny_model_path, first):
    more = _spec(tiny_model_path, name="more", seeds=(1,))
    with pytest.raises(ConfigError, match="holds suite tiny"):
        _run(more, first)
    frame = _run(more, first, mode="add")
    assert frame["run_id"].tolist() == ["fit-per_vertex-resnet18-land0-s1", "fit-per_vertex-resnet18-land0-s0"]
    assert len(pd.read_csv(first / "results.csv")) == 2
    assert [s["name"] for s in json.loads((first / RECORD).read_text())["suites"]] == ["tiny", "more"]
    assert len(_run(_spec(tiny_model_path), first)) == 2  # either suite goes on without --add now


def test_add_refuses_another_test_set(tiny_model_path, first):
    with pytest.raises(ConfigError, match=r"--add: .*holds suite tiny.*another test set"):
        _run(_spec(tiny_model_path, name="other", **{"data.test_size": 2}), first, mode="add")


def test_replace_moves_the_old_folder_aside(tiny_model_path, first):
    before = _snapshot(first)
    frame = _run(_spec(tiny_model_path, name="other", **{"data.test_size": 2}), first, mode="replace")
    assert frame["test_size"].tolist() == [2]
    [moved] = first.parent.glob("q.replaced-*")
    assert _snapshot(moved) == before
    assert json.loads((first / RECORD).read_text())["suites"][0]["name"] == "other"


def test_a_folder_without_a_record_is_adopted(tiny_model_path, first, caplog):
    (first / RECORD).unlink()
    with caplog.at_level(logging.WARNING):
        frame = _run(_spec(tiny_model_path), first)
    assert frame["status"].tolist() == ["ok"]
    assert json.loads((first / RECORD).read_text())["adopted"] is True
    assert "has no suite.json yet" in caplog.text


def test_adopting_refuses_runs_of_another_test_set(tiny_model_path, first):
    (first / RECORD).unlink()
    with pytest.raises(ConfigError, match=r"1 run\(s\) there were scored on another test set.*fit-per_vertex"):
        _run(_spec(tiny_model_path, name="other", **{"data.test_size": 2}), first)


def test_a_corrupt_status_is_retrained_with_a_logged_reason(tiny_model_path, first, caplog):
    run = first / "runs" / "fit-per_vertex-resnet18-land0-s0"
    (run / "status.json").write_text('{"status": "o')
    assert plan_suite(_spec(tiny_model_path), first)[0][1] == "redo"
    with caplog.at_level(logging.WARNING):
        frame = _run(_spec(tiny_model_path), first)
    assert frame["status"].tolist() == ["ok"]
    assert "status.json is unreadable (JSONDecodeError" in caplog.text and "trained again" in caplog.text
    assert json.loads((run / "status.json").read_text())["status"] == "ok"


@pytest.mark.parametrize("name", ["results.csv", "results.parquet", "inputs.pt", RECORD])
def test_missing_or_corrupt_suite_files_are_rebuilt(tiny_model_path, first, name):
    before = _snapshot(first)
    (first / name).write_bytes(bytes(range(256)) * 4)
    _run(_spec(tiny_model_path), first)
    after = _snapshot(first)
    for key in ("results.csv", "inputs.pt"):
        assert after[key] == before[key] or key == "results.csv" and name == "results.csv"
    assert len(pd.read_parquet(first / "results.parquet")) == 1
    assert torch.load(first / "inputs.pt")["images"].shape == (2, 3, 64, 64)
    (first / name).unlink()
    _run(_spec(tiny_model_path), first)
    assert (first / name).is_file()


def test_report_rebuilds_a_corrupt_table_from_the_runs(first, caplog):
    (first / "results.csv").write_bytes(bytes(range(128, 256)) * 8)
    (first / "inputs.pt").write_bytes(b"\x00" * 10)
    with caplog.at_level(logging.WARNING):
        suite = load_suite_results(first)
        assert suite.inputs() is None
    assert list(suite.runs) == ["fit-per_vertex-resnet18-land0-s0"]
    assert suite.results["photometric"].notna().all()
    assert "is unreadable (UnicodeDecodeError); the table is rebuilt" in caplog.text


def test_report_refuses_runs_of_different_test_sets(tiny_model_path, first, tmp_path):
    other = tmp_path / "other"
    _run(_spec(tiny_model_path, name="other", seeds=(1,), **{"data.test_size": 2}), other)
    (other / "runs" / "fit-per_vertex-resnet18-land0-s1").rename(first / "runs" / "fit-per_vertex-resnet18-land0-s1")
    with pytest.raises(ReportError, match=r"runs scored on different test sets cannot share one table: 1 run "
                                          r"\(fit-per_vertex-resnet18-land0-s0\) on 4 test images at 64 px.*; 1 run "
                                          r"\(fit-per_vertex-resnet18-land0-s1\) on 2 test images"):
        load_suite_results(first)


def test_a_suite_with_no_runs_is_an_error(tiny_model_path, tmp_path):
    suite = tiny_suite(tiny_model_path, grid={"method": ["fit"]}, exclude=[{"method": "fit"}])
    with pytest.raises(ConfigError, match="exclude leaves out every point of the grid, so the suite has no runs"):
        plan_suite(suite_from_dict(suite), tmp_path)
    with pytest.raises(ConfigError, match="has no runs"):
        _run(suite_from_dict(suite), tmp_path)
    assert not list(tmp_path.iterdir())
