"""The study report: a suite output directory → ``report.md`` and a self-contained ``report.html``.

- :mod:`evaluation.report.load` — the suite's results table and each run's files;
- :mod:`evaluation.report.tables` — errors over seeds, paired bootstrap differences to per_vertex, costs;
- :mod:`evaluation.report.figures` — error curves (steps, wall-clock time), bars, renderer throughput;
- :mod:`evaluation.report.images` — the qualitative grid and per-vertex error heat maps on the mean face;
- :mod:`evaluation.report.document` / :mod:`evaluation.report.html` — report blocks → Markdown / HTML;
- :mod:`evaluation.report.build` — the report's layout, :func:`write_suite_report`;
- :mod:`evaluation.report.command` — ``mofa-bench report``.
"""

from evaluation.report.build import ReportFiles, build_report, default_bench_csvs, write_suite_report
from evaluation.report.load import ReportError, Suite, SuiteRun, load_suite_results
from evaluation.report.tables import bootstrap_mean_ci, paired_differences, seed_summary

__all__ = [
    "ReportError",
    "ReportFiles",
    "Suite",
    "SuiteRun",
    "bootstrap_mean_ci",
    "build_report",
    "default_bench_csvs",
    "load_suite_results",
    "paired_differences",
    "seed_summary",
    "write_suite_report",
]
