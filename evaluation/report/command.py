"""``mofa-bench report RUN_DIR``: a suite's ``report.md`` and self-contained ``report.html``.

:func:`register_cli` adds the subcommand to ``mofa-bench``'s parser.
"""

from __future__ import annotations

import argparse

__all__ = ["register_cli"]


def _cmd_report(args: argparse.Namespace) -> int:
    from evaluation.report.build import write_suite_report
    from mofa_bench.output_paths import output_folder

    if args.out is not None:
        output_folder(args.out, "--out")
    files = write_suite_report(args.run_dir, args.out, args.bench, resamples=args.resamples,
                         bootstrap_seed=args.bootstrap_seed)
    print(f"wrote {files.markdown}")
    print(f"wrote {files.html} ({len(files.figures)} figures embedded)")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``report`` (see the module docstring)."""
    p = sub.add_parser(
        "report", help="a suite's results → report.md and a self-contained report.html (tables, figures)",
        description="Make the study report of a suite output directory (written by `mofa-bench suite`) from its "
                    "files alone: test errors as mean ± std over seeds, each renderer's paired bootstrap "
                    "difference to per_vertex over test images, costs, error curves over steps and wall-clock "
                    "time, bars, a qualitative grid, per-vertex error heat maps on the mean face and renderer "
                    "throughput from benchmark CSVs. Figures go to <out>/report_figures/ and are embedded in "
                    "report.html, which needs nothing else to open.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="the suite's output folder (holding results.csv and runs/)")
    p.add_argument("--out", default=None, help="output folder (default: RUN_DIR)")
    p.add_argument("--bench", nargs="+", default=None, metavar="CSV",
                   help="renderer benchmark CSVs for the throughput figures "
                        "(default: reports/bench/renderers_*.csv under the current folder, if any)")
    p.add_argument("--resamples", type=int, default=1000,
                   help="bootstrap resamples of the paired differences (default: %(default)s)")
    p.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap (default: %(default)s)")
    p.set_defaults(func=_cmd_report)
