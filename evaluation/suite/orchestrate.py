"""A whole suite: expand the grid, skip finished runs, execute the rest, collect the table.

:func:`run_suite` writes under ``out``:

- ``suite.json``: which suite(s) and which test set the folder holds
  (:mod:`evaluation.suite.folder`): another suite into the same folder is refused unless
  added (``mode="add"``, same test set) or replacing it (``mode="replace"``: the old folder
  moves to ``<out>.replaced-<time>``);
- ``suite.yaml``: the resolved suite file (``base`` absolute; re-runnable from anywhere);
- ``inputs.pt``: ``{"images": (K, 3, H, W), "indices": (K,)}``, the first K test images of
  the suite config (base + ``set``), drawn on the CPU; rewritten only when missing,
  unreadable or different;
- ``runs/<run_id>/``: one directory per run (:mod:`evaluation.suite.run`);
- ``results.csv`` and ``results.parquet``: one row per run of the folder
  (:mod:`evaluation.suite.collect`), rebuilt from the run directories after every run, so
  an interrupted suite keeps what finished and a lost or corrupt table comes back.

Every file is replaced atomically (the temp files of a killed writer are deleted on the next
run). Running a suite again skips the runs whose status is
``ok`` and continues the others (their training resumes from ``checkpoints/last.pt``); a
run whose ``status.json`` or ``cell.json`` is unreadable runs again (logged with the
reason). A run directory made from a different cell (the suite file changed under it) is
an error naming the runs (a config key its ``cell.json`` lacks counts at its default: the
record was written before the key existed); so is a suite whose ``exclude`` leaves no run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

import torch

from evaluation.suite.collect import collect_results, write_results
from evaluation.suite.evaluate import draw_test_inputs
from evaluation.suite.executor import execute
from evaluation.suite.expand import Cell, expand_suite, select_cells, suite_config
from evaluation.suite.folder import (MODES, claim_folder, read_json, record_with_defaults, remove_stale_temps,
                                     set_aside, suite_test_set, write_atomic)
from evaluation.suite.run import RunTask, read_status
from evaluation.suite.spec import SuiteSpec, write_suite
from mofa_bench.config import config_from_dict
from mofa_bench.errors import ConfigError
from mofa_bench.methods import MethodBuilder

__all__ = ["plan_suite", "run_dir_of", "run_suite", "suite_cells", "write_inputs"]

logger = logging.getLogger(__name__)


def run_dir_of(out: str | Path, cell: Cell) -> Path:
    """``<out>/runs/<run_id>``."""
    return Path(out) / "runs" / cell.run_id


def suite_cells(spec: SuiteSpec) -> list[Cell]:
    """The suite's cells (:func:`~evaluation.suite.expand.expand_suite`).

    Raises:
        ConfigError: a bad suite, or one with no run (``exclude`` leaves out every grid point).
    """
    cells = expand_suite(spec)
    if not cells:
        raise ConfigError(f"suite {spec.name}: exclude leaves out every point of the grid, so the suite has no "
                          f"runs; remove an exclude entry or add grid values")
    return cells


def plan_suite(spec: SuiteSpec, out: str | Path, only: str | None = None,
               mode: str = "check") -> list[tuple[Cell, str]]:
    """The suite's cells (those matching the glob ``only``) with their state under ``out``.

    Returns:
        ``[(cell, state)]`` in grid order; state is ``"new"``, the run's ``status.json``
        status (``"ok"``, ``"error"``, ``"running"``) or ``"redo"`` (its ``status.json`` or
        ``cell.json`` is unreadable). With ``mode="replace"`` every run is ``"new"``.

    Raises:
        ConfigError: a bad suite, one with no run, an ``only`` matching nothing, run
            directories made from other cells, or a folder of another suite or test set
            (see :func:`~evaluation.suite.folder.claim_folder`).
    """
    cells = suite_cells(spec)
    if mode == "replace":
        suite_test_set(cells)
        return [(cell, "new") for cell in select_cells(cells, only)]
    claim_folder(out, spec, cells, mode, write=False)
    return _plan(cells, out, only)


def _state(run_dir: Path, cell: Cell) -> tuple[str, bool]:
    """``(state, stale)`` of one run directory (see :func:`plan_suite`)."""
    recorded, reason = read_json(run_dir / "cell.json")
    if recorded is None and reason != "missing":
        logger.warning("%s: cell.json is %s; the run is trained again", run_dir, reason)
        return "redo", False
    stale = recorded is not None and record_with_defaults(recorded) != json.loads(json.dumps(cell.record()))
    try:
        status = read_status(run_dir)
    except ValueError as err:
        logger.warning("%s: %s; the run is trained again (its training resumes from its last checkpoint)",
                       run_dir, err)
        return "redo", stale
    return (status["status"] if status else "new"), stale


def _plan(cells: list[Cell], out: str | Path, only: str | None) -> list[tuple[Cell, str]]:
    plan = []
    stale = []
    for cell in select_cells(cells, only):
        run_dir = run_dir_of(out, cell)
        state, changed = _state(run_dir, cell)
        if changed:
            stale.append(str(run_dir))
        plan.append((cell, state))
    if stale:
        raise ConfigError(f"{len(stale)} run directories were made from a different cell than the suite now gives "
                          f"(the suite file changed): {', '.join(stale)}; delete them or choose another --out")
    return plan


def _same_inputs(path: Path, inputs: Mapping[str, torch.Tensor]) -> bool:
    try:
        old = torch.load(path, map_location="cpu", weights_only=True)
        return all(torch.equal(old[k], v) for k, v in inputs.items())
    except Exception:  # noqa: BLE001 - missing, truncated or foreign: drawn again
        return False


def write_inputs(out: Path, inputs: Mapping[str, torch.Tensor]) -> bool:
    """Write ``<out>/inputs.pt`` atomically unless it already holds ``inputs``; whether it was written."""
    path = out / "inputs.pt"
    if _same_inputs(path, inputs):
        return False
    if path.exists():
        logger.warning("%s is unreadable or holds other images; written again", path)

    def save(tmp: Path) -> None:
        with tmp.open("wb") as handle:  # a handle, not a name: the archive is named alike every time
            torch.save(dict(inputs), handle)

    write_atomic(path, save)
    return True


def _run_ids(out: Path, cells: list[Cell]) -> list[str]:
    """The suite's run ids in grid order, then every other run directory of the folder (added suites)."""
    ids = [cell.run_id for cell in cells]
    others = sorted(d.name for d in (out / "runs").glob("*") if d.is_dir() and d.name not in set(ids))
    return ids + others


def run_suite(spec: SuiteSpec, out: str | Path, only: str | None = None, device: str | None = None,
              verbose: bool = False, progress: bool = True,
              builders: Mapping[str, MethodBuilder] | None = None, mode: str = "check") -> Any:
    """Run a suite into ``out`` (see the module docstring) and return its results table.

    Args:
        spec: the suite.
        out: output folder.
        only: glob over run ids: run only these (the table still lists every run of the
            folder that has a directory).
        device: device for every run (``None``: each config's).
        verbose: show each run's training progress bar.
        progress: show the progress bar over runs.
        builders: ``{method: builder}`` used before the built-in ones (``local`` executor).
        mode: ``check`` (the folder's own suite), ``add`` (join a folder of another suite on
            the same test set) or ``replace`` (move the old folder aside and start over).

    Returns:
        The results table (pandas DataFrame), as written to ``results.csv``.
    """
    if mode not in MODES:
        raise ConfigError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    out = Path(out)
    cells = suite_cells(spec)
    base_data = suite_config(spec)
    if device is not None:
        try:
            config_from_dict({**base_data, "device": device})
        except ConfigError as err:
            raise ConfigError(f"--device: {err}") from err
    if mode != "replace":
        claim_folder(out, spec, cells, mode, write=False)  # refused before anything is written
    else:
        suite_test_set(cells)
        moved = set_aside(out)
        if moved is not None:
            logger.warning("--replace: the previous suite folder %s moved to %s", out, moved)
    plan = _plan(cells, out, only)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)
    claim_folder(out, spec, cells, "check" if mode == "replace" else mode)
    write_atomic(out / "suite.yaml", lambda tmp: write_suite(spec, tmp))
    base = config_from_dict(base_data)
    write_inputs(out, draw_test_inputs(base, base.data.seed, spec.samples))
    every_id = _run_ids(out, cells)
    tasks = [RunTask(cell, str(run_dir_of(out, cell)), samples=spec.samples, device=device, progress=verbose,
                     real_test=spec.real_test) for cell, state in plan if state != "ok"]

    def on_result(task: RunTask, row: dict[str, Any]) -> None:
        write_results(collect_results(out, every_id), out)

    execute(tasks, spec.executor, out / "submitit", spec.slurm, on_result, progress=progress, builders=builders)
    frame = collect_results(out, every_id)
    write_results(frame, out)
    return frame
