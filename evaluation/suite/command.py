"""``mofa-bench suite SUITE --out DIR``: run a grid of trainings into one results table.

:func:`register_cli` adds the subcommand to ``mofa-bench``'s parser. The exit status is 0
when every run of the suite is ``ok``, 1 when any failed (its error is in the table and
in ``runs/<run_id>/status.json``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register_cli"]

_DESCRIPTION = """\
Expand a suite file's grid (method × renderer × encoder × landmark loss on/off × seed, with
per-cell overrides) into runs; train, test and time each; collect one tidy table
<out>/results.csv and .parquet (run id, method, renderer, encoder, landmark loss, seed,
protocol, status, every test metric with its 95% bootstrap interval, training time,
samples/s, inference ms/image, peak memory, device, versions, commit).

Finished runs are skipped on a re-run; a run that fails is recorded with its error and the
others go on. A suite folder belongs to one suite and one test set (<out>/suite.json): another
suite into the same --out is refused, naming both, unless --add (its runs join the table; the
test set must be the same) or --replace (the old folder moves to <out>.replaced-<time>). The
suite's `executor` says where runs execute: local (default), slurm (submitit) or
local_submitit. The package's suites go by name (`mofa-bench suite quick`); see
mofa_bench/configs/suites/smoke.yaml for an example."""


def _cmd_suite(args: argparse.Namespace) -> int:
    from evaluation.suite.orchestrate import plan_suite, run_suite
    from evaluation.suite.spec import load_suite_spec

    spec = load_suite_spec(args.suite)
    out = Path(args.out) if args.out else Path("runs") / spec.name
    mode = "add" if args.add else "replace" if args.replace else "check"
    if args.dry_run:
        plan = plan_suite(spec, out, args.only, mode)
        moved = " (the folder there moves aside first: --replace)" if mode == "replace" and out.exists() else ""
        print(f"suite {spec.name}: {len(plan)} runs into {out}{moved} (executor: {spec.executor})")
        width = max((len(cell.run_id) for cell, _ in plan), default=0)
        for cell, state in plan:
            stages = f"  stages: {', '.join(s.name for s in cell.stages)}" if cell.stages else ""
            changes = ", ".join(f"{k}={v}" for k, v in cell.overrides.items())
            print(f"  {cell.run_id:<{width}}  {state:<7}  {changes}{stages}")
        return 0
    from mofa_bench.output_paths import output_folder

    output_folder(out, "--out")
    frame = run_suite(spec, out, only=args.only, device=args.device, verbose=args.verbose,
                      progress=not args.no_progress, mode=mode)
    failed = frame[frame["status"] != "ok"] if len(frame) else frame
    print(f"suite {spec.name}: {len(frame) - len(failed)} of {len(frame)} runs ok; "
          f"results: {out / 'results.csv'} and {out / 'results.parquet'}")
    for _, row in failed.iterrows():
        print(f"  {row['run_id']}: {row['status']}: {row['error']}")
    return 1 if len(failed) else 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``suite`` to ``mofa-bench``'s subcommands."""
    from mofa_bench.configs import config_names

    p = sub.add_parser("suite", help="run a grid of trainings (renderer × encoder × ... × seed) into one table",
                       description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suite", help="suite file (YAML), or the name of a packaged suite (%s)"
                   % ", ".join(config_names("suite")))
    p.add_argument("--out", default=None, help="output folder (default: runs/<suite name>)")
    p.add_argument("--dry-run", action="store_true", help="print the expanded grid and each run's state; run nothing")
    p.add_argument("--only", default=None, metavar="RUN_ID_GLOB",
                   help="run only the runs whose id matches this glob, e.g. 'mofa-pytorch3d-*'")
    p.add_argument("--device", default=None, help="device of every run: auto, cpu or cuda[:i] (default: each config's)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--add", action="store_true",
                       help="add this suite's runs to a folder made by another suite (the same test set only)")
    which.add_argument("--replace", action="store_true",
                       help="start the folder over: the folder there moves to <out>.replaced-<time>")
    p.add_argument("--verbose", action="store_true", help="show each run's training progress bar")
    p.add_argument("--no-progress", action="store_true", help="no progress bar over the runs")
    p.set_defaults(func=_cmd_suite)
