"""``evaluation.bench.reports``: every benchmark's report by name; committed reports re-made from their CSVs."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.bench.reports import BENCH_REPORTS
from mofa_bench.cli import main

REPORTS = Path(__file__).resolve().parents[2] / "reports" / "bench"


def test_every_benchmark_has_a_report_under_its_bench_name():
    assert sorted(BENCH_REPORTS) == ["pytorch3d-bins", "renderers", "train"]
    assert all(name == spec.name for name, spec in BENCH_REPORTS.items())
    assert BENCH_REPORTS["pytorch3d-bins"].plot is None
    assert BENCH_REPORTS["renderers"].plot is not None and BENCH_REPORTS["train"].plot is not None


@pytest.mark.parametrize("stem", ["pytorch3d_bins_cuda", "renderers_cpu", "renderers_cuda", "train_cpu", "train_cuda"])
def test_committed_reports_are_remade_unchanged_from_their_csvs(stem, tmp_path, capsys):
    assert main(["bench", "report", str(REPORTS / f"{stem}.csv"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / f"{stem}.md").read_text() == (REPORTS / f"{stem}.md").read_text()
    assert (tmp_path / f"{stem}.png").exists() == (not stem.startswith("pytorch3d_bins"))
