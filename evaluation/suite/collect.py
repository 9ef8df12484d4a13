"""Run directories → one tidy results table → ``results.csv`` and ``results.parquet``.

Each finished or failed run leaves ``result.json`` (its row, written by
:mod:`evaluation.suite.run`); a run without one is rebuilt from ``cell.json`` and
``status.json``: status ``running`` while it runs (or when it was killed before its end
could be recorded: running the suite again runs it again).

Columns, in order: :data:`ID_COLUMNS`; for every metric ``M`` in first-seen order ``M``,
``M_ci_low``, ``M_ci_high``; :data:`RUN_COLUMNS`; then the environment columns of
:func:`evaluation.results.rows.environment_columns` and ``timestamp``. A metric a run
does not have (e.g. geometry for a method without codes) is empty.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Iterable, Mapping

from evaluation.results.rows import is_missing
from evaluation.suite.folder import read_json, write_atomic

__all__ = [
    "ID_COLUMNS",
    "RUN_COLUMNS",
    "base_row",
    "collect_results",
    "read_run_row",
    "results_frame",
    "write_results",
]

#: The run's coordinates, status and error (``""`` when none).
ID_COLUMNS = ("run_id", "method", "renderer", "encoder", "landmark_loss", "seed", "protocol", "status", "error")
#: Test set and measurements of the run.
RUN_COLUMNS = ("test_size", "test_seed", "train_steps", "train_wall_s", "samples_per_s", "inference_ms_per_image",
               "peak_mem_mb", "peak_mem_kind", "device")
_CI_SUFFIXES = ("_ci_low", "_ci_high")


def base_row(record: Mapping[str, Any], status: str, error: str = "") -> dict[str, Any]:
    """The identity columns of a run from its ``cell.json`` record, with ``status`` and ``error``."""
    values = record["values"]
    return {"run_id": record["run_id"], "method": values["method"], "renderer": values["renderer"],
            "encoder": values["encoder"], "landmark_loss": values["landmark_loss"], "seed": values["seed"],
            "protocol": record["protocol"], "status": status, "error": error,
            "test_size": record["test_size"], "test_seed": record["test_seed"]}


def read_run_row(run_dir: str | Path) -> dict[str, Any] | None:
    """The results row of one run directory, or ``None`` when the run never started.

    An unreadable ``result.json`` falls back to ``cell.json`` and ``status.json``; an
    unreadable ``status.json`` gives status ``error`` saying so (the next ``mofa-bench
    suite`` trains the run again); without a readable ``cell.json`` the row is ``None``.
    """
    run_dir = Path(run_dir)
    result, _ = read_json(run_dir / "result.json")
    if result is not None and "run_id" in result:
        return result
    cell, _ = read_json(run_dir / "cell.json")
    state, reason = read_json(run_dir / "status.json")
    if cell is None or (state is None and reason == "missing"):
        return None
    if state is None:
        return base_row(cell, "error", f"status.json is {reason}; the next `mofa-bench suite` runs it again")
    if state.get("status") == "running":
        return base_row(cell, "running")
    error = state.get("error") or "the run stopped without recording its end (killed, out of memory or timed out)"
    return base_row(cell, "error", str(error).splitlines()[0][:300])


def _ordered_columns(rows: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for row in rows:
        seen.extend(c for c in row if c not in seen)
    metrics = [c for c in seen if f"{c}_ci_low" in seen]
    taken = set(ID_COLUMNS) | set(RUN_COLUMNS) | {m + s for m in metrics for s in _CI_SUFFIXES} | set(metrics)
    return ([c for c in ID_COLUMNS if c in seen] + [m + s for m in metrics for s in ("", *_CI_SUFFIXES)]
            + [c for c in RUN_COLUMNS if c in seen] + [c for c in seen if c not in taken])


def results_frame(rows: Iterable[dict[str, Any]]) -> Any:
    """Rows → a pandas DataFrame in column order (integer columns nullable ``Int64``)."""
    import pandas as pd

    rows = list(rows)
    columns = _ordered_columns(rows)
    frame = pd.DataFrame(rows, columns=columns)
    for column in columns:
        given = [row[column] for row in rows if column in row and not is_missing(row[column])]
        if given and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in given):
            frame[column] = frame[column].astype("Int64")
        elif given and all(isinstance(v, str) for v in given):
            frame[column] = frame[column].where(frame[column].notna(), "").astype(str)
    return frame


def collect_results(out: str | Path, run_ids: Iterable[str]) -> Any:
    """The results table of the runs ``run_ids`` under ``<out>/runs`` (runs never started left out)."""
    rows = [row for run_id in run_ids if (row := read_run_row(Path(out) / "runs" / run_id)) is not None]
    return results_frame(rows)


def write_results(frame: Any, out: str | Path) -> tuple[Path, Path]:
    """Write ``<out>/results.csv`` and ``<out>/results.parquet`` (each atomically); returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = write_atomic(out / "results.csv", lambda tmp: frame.to_csv(tmp, index=False))
    parquet_path = write_atomic(out / "results.parquet", lambda tmp: frame.to_parquet(tmp, index=False))
    return csv_path, parquet_path
