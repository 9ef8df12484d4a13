"""A report folder that rebuilds without the suite folder: the per-run files a report reads, as tables.

``mofa-bench report SUITE --out REPORT`` writes, beside ``report.md``, everything the report
was made from that lives in the suite's run folders, so the report folder alone (committed
to the repository) rebuilds with ``mofa-bench report REPORT``:

- ``results.csv``: the suite's table, one row per run;
- ``per_image.parquet``: every run's ``test_metrics.csv`` (one row per test image) with a
  ``run_id`` column: every interval over test images is recomputed from it;
- ``curves.parquet``: every run's ``validation.csv`` with ``run_id``;
- ``vertex_error.parquet``: ``run_id``, ``vertex``, ``error_mm`` (the per-vertex heat maps);
- ``run_configs.json``: ``{run_id: resolved config}``;
- ``report_source.json``: ``{"suite": name}``, the suite the report was made from.

The qualitative grid needs the test images and reconstructions themselves; a rebuild keeps
the figure already in the folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evaluation.report.load import Suite

__all__ = ["PORTABLE_FILES", "export_suite_data", "read_portable"]

#: Kind → file name in a report folder.
PORTABLE_FILES: dict[str, str] = {
    "test_metrics": "per_image.parquet",
    "validation": "curves.parquet",
    "vertex_error_mm": "vertex_error.parquet",
    "config": "run_configs.json",
}


def _stacked(frames: dict[str, Any]) -> Any:
    import pandas as pd

    parts = [frame.assign(run_id=run_id) for run_id, frame in frames.items() if frame is not None and len(frame)]
    return pd.concat(parts, ignore_index=True) if parts else None


def export_suite_data(suite: Suite, out: str | Path) -> list[Path]:
    """Write the report folder's data files (see the module docstring); returns their paths."""
    import pandas as pd

    out = Path(out)
    written = [out / "report_source.json"]
    (out / "report_source.json").write_text(json.dumps({"suite": suite.name}) + "\n")
    table = suite.results.drop(columns=["series"], errors="ignore")
    table.to_csv(out / "results.csv", index=False)
    written.append(out / "results.csv")
    runs = suite.ok_runs()
    for kind in ("test_metrics", "validation"):
        frame = _stacked({run.run_id: getattr(run, kind)() for run in runs})
        if frame is not None:
            frame.to_parquet(out / PORTABLE_FILES[kind], index=False)
            written.append(out / PORTABLE_FILES[kind])
    errors = {run.run_id: run.vertex_error_mm() for run in runs}
    parts = [pd.DataFrame({"run_id": run_id, "vertex": range(len(values)), "error_mm": values})
             for run_id, values in errors.items() if values is not None]
    if parts:
        pd.concat(parts, ignore_index=True).to_parquet(out / PORTABLE_FILES["vertex_error_mm"], index=False)
        written.append(out / PORTABLE_FILES["vertex_error_mm"])
    configs = {run.run_id: config for run in runs if (config := run.config()) is not None}
    if configs:
        path = out / PORTABLE_FILES["config"]
        path.write_text(json.dumps(configs, indent=1, sort_keys=True, default=str) + "\n")
        written.append(path)
    return written


def read_portable(root: str | Path) -> dict[str, dict[str, Any]]:
    """``{run_id: {kind: data}}`` from a report folder's data files (empty where there are none)."""
    import numpy as np
    import pandas as pd

    root = Path(root)
    out: dict[str, dict[str, Any]] = {}
    for kind in ("test_metrics", "validation"):
        path = root / PORTABLE_FILES[kind]
        if path.is_file():
            frame = pd.read_parquet(path)
            for run_id, part in frame.groupby("run_id", sort=False):
                out.setdefault(str(run_id), {})[kind] = part.drop(columns=["run_id"]).reset_index(drop=True)
    path = root / PORTABLE_FILES["vertex_error_mm"]
    if path.is_file():
        frame = pd.read_parquet(path)
        for run_id, part in frame.groupby("run_id", sort=False):
            values = part.sort_values("vertex")["error_mm"].to_numpy(dtype=np.float32)
            out.setdefault(str(run_id), {})["vertex_error_mm"] = values
    path = root / PORTABLE_FILES["config"]
    if path.is_file():
        for run_id, config in json.loads(path.read_text()).items():
            out.setdefault(str(run_id), {})["config"] = config
    return out
