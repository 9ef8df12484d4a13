"""Benchmarks: renderer loss-path timings, training throughput and PyTorch3D's bins, as CSV, Markdown and plots.

Each benchmark is a grid on :mod:`evaluation.results` (rows, budgets, CSV → report):

- :mod:`evaluation.bench.measure` — timing (warm-up, CUDA sync, median) and peak memory;
- :mod:`evaluation.bench.renderers` — ``mofa-bench bench renderers``;
- :mod:`evaluation.bench.training_throughput` — ``mofa-bench bench train``;
- :mod:`evaluation.bench.bins` — ``mofa-bench bench pytorch3d-bins``;
- :mod:`evaluation.bench.profile` — ``mofa-bench bench profile``;
- :mod:`evaluation.bench.reports` — the :class:`~evaluation.results.report.ReportSpec` of
  each benchmark by name, for ``mofa-bench bench report``;
- :mod:`evaluation.bench.command` — the ``bench`` subcommand (``register_cli``).
"""

from evaluation.bench.measure import BenchSpecError, PeakMemory, Timing, measure_cell, time_callable
from evaluation.bench.renderers import BACKEND_VARIANTS, ReferenceSpec, RendererBenchSpec, run_renderer_bench
from evaluation.bench.reports import BENCH_REPORTS, write_bench_report
from evaluation.bench.training_throughput import TrainBenchSpec, run_train_bench

__all__ = [
    "BACKEND_VARIANTS",
    "BENCH_REPORTS",
    "BenchSpecError",
    "PeakMemory",
    "ReferenceSpec",
    "RendererBenchSpec",
    "Timing",
    "TrainBenchSpec",
    "measure_cell",
    "run_renderer_bench",
    "run_train_bench",
    "time_callable",
    "write_bench_report",
]
