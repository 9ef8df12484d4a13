"""A report folder rebuilds from its own files; committed reports name a clean commit and no absolute path."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from evaluation.report import write_suite_report
from evaluation.report.load import load_suite_results
from test_report import make_suite

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def suite(tmp_path: Path, tiny_model_path: Path) -> Path:
    from mofa_bench.face_model.model import FaceModel

    return make_suite(tmp_path / "quick", tiny_model_path, FaceModel.load(tiny_model_path).num_vertices)


def test_a_report_folder_rebuilds_the_same_report_without_the_suite(suite: Path, tmp_path: Path):
    first = write_suite_report(suite, tmp_path / "report", bench_csvs=[])
    out = first.markdown.parent
    for name in ("results.csv", "per_image.parquet", "curves.parquet", "vertex_error.parquet", "run_configs.json"):
        assert (out / name).is_file(), name
    shutil.rmtree(suite)  # the report folder alone
    text = first.markdown.read_text()
    again = write_suite_report(out, bench_csvs=[])
    assert again.markdown.read_text() == text  # every table and interval recomputed from the folder's files
    rebuilt = load_suite_results(out)
    per_image = pd.read_parquet(out / "per_image.parquet")
    run = rebuilt.ok_runs()[0]
    assert len(run.test_metrics()) == (per_image["run_id"] == run.run_id).sum() > 0
    assert (out / "report_figures" / "qualitative.png").is_file()  # kept: its inputs are not in the folder


def test_the_report_names_the_suite_not_its_path(suite: Path, tmp_path: Path):
    text = write_suite_report(suite, tmp_path / "report", bench_csvs=[]).markdown.read_text()
    assert str(suite) not in text and str(tmp_path) not in text


_ABSOLUTE = re.compile(r"(?<![\w.])/(?:home|root|tmp|work|Users|var|private)/")


#: Committed reports that ship the data they were made from (``per_image.parquet``).
PORTABLE_REPORTS = sorted(p.parent for p in (ROOT / "reports").glob("*/per_image.parquet"))


@pytest.mark.parametrize("report", PORTABLE_REPORTS, ids=lambda p: p.name)
def test_committed_reports_name_a_clean_commit_and_no_absolute_path(report: Path):
    for name in ("report.md", "results.csv", "summary.csv"):
        path = report / name
        if not path.is_file():
            continue
        text = path.read_text()
        assert not _ABSOLUTE.search(text), f"{path.relative_to(ROOT)} holds an absolute path"
        assert "+dirty" not in text and "-dirty" not in text, f"{path.relative_to(ROOT)} names a modified tree"


@pytest.mark.parametrize("report", PORTABLE_REPORTS, ids=lambda p: p.name)
def test_committed_reports_rebuild_from_the_repository(report: Path, tmp_path: Path, monkeypatch):
    from evaluation.report.build import default_bench_csvs

    copy = tmp_path / report.name
    shutil.copytree(report, copy)
    monkeypatch.chdir(ROOT)  # the throughput figures come from reports/bench, as when the report was made
    rebuilt = write_suite_report(copy, bench_csvs=default_bench_csvs())
    assert rebuilt.markdown.read_text() == (report / "report.md").read_text()
    if (report / "summary.csv").is_file():
        pd.testing.assert_frame_equal(pd.read_csv(copy / "summary.csv"), pd.read_csv(report / "summary.csv"))


def test_a_report_written_into_its_suite_folder_leaves_the_suite_table_alone(suite: Path):
    before = (suite / "results.csv").read_bytes()
    write_suite_report(suite, bench_csvs=[])
    assert (suite / "results.csv").read_bytes() == before
    assert not (suite / "per_image.parquet").exists()
