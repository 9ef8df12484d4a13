"""The report of every benchmark, by the name in its CSV's ``bench`` column.

``mofa-bench bench report CSV`` looks the CSV's benchmark up here and re-makes its
Markdown (and plot, where the benchmark has one) from the CSV alone. A new benchmark
adds its :class:`~evaluation.results.report.ReportSpec` to :data:`BENCH_REPORTS`.
"""

from __future__ import annotations

from pathlib import Path

from evaluation.bench.bins import BINS_REPORT
from evaluation.bench.renderers import RENDERERS_REPORT
from evaluation.bench.training_throughput import TRAIN_REPORT
from evaluation.results.report import ReportSpec, write_results_report

__all__ = ["BENCH_REPORTS", "write_bench_report"]

#: ``{bench name: report}``: ``renderers``, ``train``, ``pytorch3d-bins``.
BENCH_REPORTS: dict[str, ReportSpec] = {spec.name: spec for spec in (RENDERERS_REPORT, TRAIN_REPORT, BINS_REPORT)}


def write_bench_report(csv_path: str | Path, out_dir: str | Path | None = None) -> tuple[Path, Path | None]:
    """Re-make ``<stem>.md`` (and ``<stem>.png`` where there is a plot) from a benchmark CSV.

    Args:
        csv_path: a ``renderers_<device>.csv``, ``train_<device>.csv`` or ``pytorch3d_bins_<device>.csv``.
        out_dir: output folder (default: next to the CSV).

    Returns:
        ``(markdown path, plot path or None)``.

    Raises:
        BenchSpecError: no such CSV, no rows, or an unknown benchmark.
    """
    return write_results_report(csv_path, BENCH_REPORTS, out_dir)
