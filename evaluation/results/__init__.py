"""Grids of cells → result rows → CSV → Markdown table and plot, for any grid of runs.

- :mod:`evaluation.results.grid` — spec checks, presets, :func:`expand_grid`;
- :mod:`evaluation.results.budget` — per-cell budgets and a run's time limit;
- :mod:`evaluation.results.rows` — rows with ``status`` and environment columns, CSV
  read/write, partial writes after every group;
- :mod:`evaluation.results.report` — :class:`ReportSpec`, CSV → Markdown (and plot);
- :mod:`evaluation.results.plot` — the log-log plot of a results frame.

The benchmarks (:mod:`evaluation.bench`) are grids built on these; nothing here imports them.
"""

from evaluation.results.budget import BatchPlanner, CellBudget, CostHistory, Deadline, GroupRows
from evaluation.results.grid import SpecError, check_sizes, check_time_limit, check_timing, expand_grid, spec_preset
from evaluation.results.plot import plot_throughput
from evaluation.results.report import Column, ReportSpec, markdown_table, report_spec, write_markdown, write_results_report
from evaluation.results.rows import (
    CELL_ERRORS,
    STATUSES,
    earlier_rows,
    environment_columns,
    error_note,
    is_missing,
    make_row,
    partial_writer,
    read_csv,
    timestamp,
    write_csv,
)

__all__ = [
    "BatchPlanner",
    "CELL_ERRORS",
    "CellBudget",
    "Column",
    "CostHistory",
    "Deadline",
    "GroupRows",
    "ReportSpec",
    "STATUSES",
    "SpecError",
    "check_sizes",
    "check_time_limit",
    "check_timing",
    "earlier_rows",
    "environment_columns",
    "error_note",
    "expand_grid",
    "is_missing",
    "make_row",
    "markdown_table",
    "partial_writer",
    "plot_throughput",
    "read_csv",
    "report_spec",
    "spec_preset",
    "timestamp",
    "write_csv",
    "write_markdown",
    "write_results_report",
]
