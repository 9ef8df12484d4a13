"""Benchmarks: renderer loss-path timings and training throughput, as CSV, Markdown and plots.

- :mod:`mofa_bench.bench.measure` — timing (warm-up, CUDA sync, median), peak memory,
  per-cell time budgets;
- :mod:`mofa_bench.bench.results` — rows → CSV → Markdown table and plot;
- :mod:`mofa_bench.bench.renderers` — ``mofa-bench bench renderers``;
- :mod:`mofa_bench.bench.train` — ``mofa-bench bench train``;
- :mod:`mofa_bench.bench.cli` — the ``bench`` subcommand.
"""

from mofa_bench.bench.measure import BenchSpecError, PeakMemory, Timing, measure_cell, time_callable
from mofa_bench.bench.renderers import BACKEND_VARIANTS, ReferenceSpec, RendererBenchSpec, run_renderer_bench
from mofa_bench.bench.results import markdown_table, plot_throughput, read_csv, write_csv, write_report
from mofa_bench.bench.train import TrainBenchSpec, run_train_bench

__all__ = [
    "BACKEND_VARIANTS",
    "BenchSpecError",
    "PeakMemory",
    "ReferenceSpec",
    "RendererBenchSpec",
    "Timing",
    "TrainBenchSpec",
    "markdown_table",
    "measure_cell",
    "plot_throughput",
    "read_csv",
    "run_renderer_bench",
    "run_train_bench",
    "time_callable",
    "write_csv",
    "write_report",
]
