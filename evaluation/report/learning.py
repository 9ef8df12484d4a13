"""What training learnt: each run's test errors beside the mean face's (the paper's Fig. 10).

A MoFA encoder with a zero-initialised last layer starts at the mean face (the zero code);
the suite's ``mean_face`` method scores exactly that start on the same test faces. For
every finished run of a method with a face code, :func:`learning_summary` puts the start
(the ``mean_face`` row of the same protocol and test set) beside the run's end, and the
ratio end / start. Written as ``summary.csv`` beside the report.

Columns: :data:`ID_COLUMNS`, then for each metric ``M`` of :data:`LEARNING_METRICS`
``M_start``, ``M``, ``M_ratio`` (end / start; below 1 = learnt).
"""

from __future__ import annotations

import math
from typing import Any

from evaluation.report.load import LANDMARK_LOSS_METHODS, METHOD_TITLES
from evaluation.report.tables import METRIC_TITLES, NO_GEOMETRY_METHODS
from evaluation.results.report import Column

__all__ = ["ID_COLUMNS", "LEARNING_METRICS", "START_METHOD", "learning_records", "learning_summary"]

#: The method whose test row is every run's start.
START_METHOD = "mean_face"
#: The errors of the paper's Fig. 10 (and the model-space geometric error).
LEARNING_METRICS: tuple[str, ...] = ("geometric_mm", "geometric_model_mm", "photometric", "landmark_px")
#: Leading columns: what ran, on what, for how long.
ID_COLUMNS: tuple[str, ...] = ("method", "renderer", "encoder", "landmark_loss", "seed", "protocol", "device",
                               "samples", "wall_s")
#: Test set columns a start must share with the run.
_SAME_TEST = ("protocol", "test_size", "test_seed")


def _number(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def _start_rows(results: Any) -> dict[tuple, dict[str, Any]]:
    starts = results[(results["method"] == START_METHOD) & (results["status"] == "ok")]
    keys = [c for c in _SAME_TEST if c in results.columns]
    return {tuple(str(row.get(k)) for k in keys): row for row in starts.to_dict("records")}


def learning_summary(results: Any) -> Any:
    """Start (mean face) and end of every finished run with a face code, one row each.

    Args:
        results: a suite's results table (``results.csv`` as a DataFrame).

    Returns:
        A DataFrame (module docstring's columns), empty when no run qualifies. A run whose
        test set has no ``mean_face`` row gets NaN starts and ratios.
    """
    import pandas as pd

    starts = _start_rows(results)
    keys = [c for c in _SAME_TEST if c in results.columns]
    rows = []
    learnt = results[(results["status"] == "ok") & (results["method"] != START_METHOD)
                     & ~results["method"].isin(NO_GEOMETRY_METHODS)]
    for run in learnt.to_dict("records"):
        start = starts.get(tuple(str(run.get(k)) for k in keys), {})
        wall = _number(run.get("train_wall_s"))
        rate = _number(run.get("samples_per_s"))
        row: dict[str, Any] = {
            "method": run["method"], "renderer": run["renderer"], "encoder": run.get("encoder", ""),
            "landmark_loss": run.get("landmark_loss"), "seed": run.get("seed"), "protocol": run.get("protocol", ""),
            "device": run.get("device", ""),
            "samples": round(wall * rate) if math.isfinite(wall * rate) else math.nan, "wall_s": wall,
        }
        for metric in LEARNING_METRICS:
            begin, end = _number(start.get(metric)), _number(run.get(metric))
            row[f"{metric}_start"] = begin
            row[metric] = end
            row[f"{metric}_ratio"] = end / begin if begin and math.isfinite(begin) else math.nan
        rows.append(row)
    columns = list(ID_COLUMNS) + [f"{m}{s}" for m in LEARNING_METRICS for s in ("_start", "", "_ratio")]
    return pd.DataFrame(rows, columns=columns)


def learning_records(summary: Any) -> tuple[list[dict[str, str]], tuple[Column, ...]]:
    """The summary as text cells for the report: ``start → end (×ratio)`` per metric."""
    columns = [Column("run", "method · renderer"), Column("landmarks", "landmarks", "s"), Column("seed", "seed", "s"),
               Column("samples", "train images", "s")]
    columns += [Column(m, METRIC_TITLES.get(m, m), "s") for m in LEARNING_METRICS]
    records = []
    for row in summary.to_dict("records"):
        seed = _number(row["seed"])
        record = {"run": f"{METHOD_TITLES.get(row['method'], row['method'])} · {row['renderer']}", "seed": f"{seed:.0f}" if math.isfinite(seed) else "",
                  "landmarks": ("–" if row["method"] not in LANDMARK_LOSS_METHODS
                                else "on" if _number(row["landmark_loss"]) > 0 else "off"),
                  "samples": f"{row['samples']:,.0f}" if math.isfinite(_number(row["samples"])) else "–"}
        for metric in LEARNING_METRICS:
            start, end, ratio = row[f"{metric}_start"], row[metric], row[f"{metric}_ratio"]
            if not math.isfinite(end):
                record[metric] = "–"
            elif math.isfinite(start):
                record[metric] = f"{start:.3g} → {end:.3g} (×{ratio:.2f})"
            else:
                record[metric] = f"{end:.3g}"
        records.append(record)
    return records, tuple(columns)
