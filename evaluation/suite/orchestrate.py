"""A whole suite: expand the grid, skip finished runs, execute the rest, collect the table.

:func:`run_suite` writes under ``out``:

- ``suite.yaml``: the resolved suite file (``base`` absolute; re-runnable from anywhere);
- ``inputs.pt``: ``{"images": (K, 3, H, W), "indices": (K,)}``, the first K test images of
  the suite config (base + ``set``), drawn on the CPU;
- ``runs/<run_id>/``: one directory per run (:mod:`evaluation.suite.run`);
- ``results.csv`` and ``results.parquet``: one row per run (:mod:`evaluation.suite.collect`),
  rewritten after every run, so an interrupted suite keeps what finished.

Running a suite again skips the runs whose status is ``ok`` and continues the others
(their training resumes from ``checkpoints/last.pt``). A run directory made from a
different cell (the suite file changed under it) is an error naming the runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch

from evaluation.suite.collect import collect_results, write_results
from evaluation.suite.evaluate import draw_test_inputs
from evaluation.suite.executor import execute
from evaluation.suite.expand import Cell, expand_suite, select_cells, suite_config
from evaluation.suite.run import RunTask, read_status
from evaluation.suite.spec import SuiteSpec, write_suite
from mofa_bench.config import config_from_dict
from mofa_bench.errors import ConfigError
from mofa_bench.methods import MethodBuilder

__all__ = ["plan_suite", "run_dir_of", "run_suite"]


def run_dir_of(out: str | Path, cell: Cell) -> Path:
    """``<out>/runs/<run_id>``."""
    return Path(out) / "runs" / cell.run_id


def plan_suite(spec: SuiteSpec, out: str | Path, only: str | None = None) -> list[tuple[Cell, str]]:
    """The suite's cells (those matching the glob ``only``) with their state under ``out``.

    Returns:
        ``[(cell, state)]`` in grid order; state is ``"new"`` or the run's ``status.json``
        status (``"ok"``, ``"error"``, ``"running"``).

    Raises:
        ConfigError: a bad suite (see :func:`~evaluation.suite.expand.expand_suite`), an
            ``only`` matching nothing, or run directories made from other cells.
    """
    return _plan(expand_suite(spec), out, only)


def _plan(cells: list[Cell], out: str | Path, only: str | None) -> list[tuple[Cell, str]]:
    plan = []
    stale = []
    for cell in select_cells(cells, only):
        run_dir = run_dir_of(out, cell)
        recorded = run_dir / "cell.json"
        if recorded.is_file() and json.loads(recorded.read_text()) != json.loads(json.dumps(cell.record())):
            stale.append(str(run_dir))
        status = read_status(run_dir)
        plan.append((cell, status["status"] if status else "new"))
    if stale:
        raise ConfigError(f"{len(stale)} run directories were made from a different cell than the suite now gives "
                          f"(the suite file changed): {', '.join(stale)}; delete them or choose another --out")
    return plan


def run_suite(spec: SuiteSpec, out: str | Path, only: str | None = None, device: str | None = None,
              verbose: bool = False, progress: bool = True,
              builders: Mapping[str, MethodBuilder] | None = None) -> Any:
    """Run a suite into ``out`` (see the module docstring) and return its results table.

    Args:
        spec: the suite.
        out: output folder.
        only: glob over run ids: run only these (the table still lists every run of the
            suite that has a directory).
        device: device for every run (``None``: each config's).
        verbose: show each run's training progress bar.
        progress: show the progress bar over runs.
        builders: ``{method: builder}`` used before the built-in ones (``local`` executor).

    Returns:
        The results table (pandas DataFrame), as written to ``results.csv``.
    """
    out = Path(out)
    cells = expand_suite(spec)
    plan = _plan(cells, out, only)
    base_data = suite_config(spec)
    if device is not None:
        try:
            config_from_dict({**base_data, "device": device})
        except ConfigError as err:
            raise ConfigError(f"--device: {err}") from err
    out.mkdir(parents=True, exist_ok=True)
    write_suite(spec, out / "suite.yaml")
    base = config_from_dict(base_data)
    torch.save(draw_test_inputs(base, base.data.seed, spec.samples), out / "inputs.pt")
    every_id = [cell.run_id for cell in cells]
    tasks = [RunTask(cell, str(run_dir_of(out, cell)), samples=spec.samples, device=device, progress=verbose,
                     real_test=spec.real_test) for cell, state in plan if state != "ok"]

    def on_result(task: RunTask, row: dict[str, Any]) -> None:
        write_results(collect_results(out, every_id), out)

    execute(tasks, spec.executor, out / "submitit", spec.slurm, on_result, progress=progress, builders=builders)
    frame = collect_results(out, every_id)
    write_results(frame, out)
    return frame
