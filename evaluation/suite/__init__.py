"""Suites: a YAML grid of training runs → trained, tested and timed runs → one tidy table.

- :mod:`evaluation.suite.spec` — the suite file, checked (:func:`load_suite_spec`);
- :mod:`evaluation.suite.expand` — grid → cells with run ids and checked configs;
- :mod:`evaluation.suite.run` — one cell: train, score on the test split, record;
- :mod:`evaluation.suite.evaluate` — the test split, per-image metrics, bootstrap intervals;
- :mod:`evaluation.suite.collect` — run directories → ``results.csv`` / ``results.parquet``;
- :mod:`evaluation.suite.folder` — the folder's suite and test set (``suite.json``), atomic writes;
- :mod:`evaluation.suite.executor` — local, Slurm (submitit) or submitit's local executor;
- :mod:`evaluation.suite.orchestrate` — the whole suite (:func:`run_suite`);
- :mod:`evaluation.suite.command` — ``mofa-bench suite``.
"""

from evaluation.suite.collect import (
    ID_COLUMNS,
    RUN_COLUMNS,
    collect_results,
    read_run_row,
    results_frame,
    write_results,
)
from evaluation.suite.evaluate import bootstrap_ci, draw_test_inputs, draw_test_split, evaluate_test_set
from evaluation.suite.executor import execute
from evaluation.suite.expand import Cell, expand_suite, select_cells, stage_config, suite_config
from evaluation.suite.orchestrate import plan_suite, run_suite
from evaluation.suite.run import RunTask, method_builder_for, run_task
from evaluation.suite.spec import (
    AXES,
    DEFAULT_STAGES,
    EXECUTORS,
    CellRule,
    Stage,
    SuiteSpec,
    load_suite_spec,
    suite_from_dict,
)

__all__ = [
    "AXES",
    "Cell",
    "CellRule",
    "DEFAULT_STAGES",
    "EXECUTORS",
    "ID_COLUMNS",
    "RUN_COLUMNS",
    "RunTask",
    "Stage",
    "SuiteSpec",
    "bootstrap_ci",
    "collect_results",
    "draw_test_inputs",
    "draw_test_split",
    "evaluate_test_set",
    "execute",
    "expand_suite",
    "load_suite_spec",
    "method_builder_for",
    "plan_suite",
    "read_run_row",
    "results_frame",
    "run_suite",
    "run_task",
    "select_cells",
    "stage_config",
    "suite_config",
    "suite_from_dict",
    "write_results",
]
