"""A suite output directory → its results table and each run's files.

The layout (written by ``mofa-bench suite``)::

    <suite>/results.csv                one row per run: run_id, method, renderer, encoder, landmark_loss,
                                       seed, status, error, test means of every metric, costs, environment
    <suite>/inputs.pt                  {"images": (K, 3, H, W) in [0, 1], "indices": (K,)} first K test images
    <suite>/runs/<run_id>/status.json  {"status": "ok"|"error"|"running", "error": str|null, ...}
    <suite>/runs/<run_id>/test_metrics.csv, validation.csv, config.yaml, cell.json,
                          test_reconstructions.pt, vertex_error_mm.npy

Everything is read lazily and nothing is required beyond ``results.csv``: a run that
failed or is still running keeps its row (with its status and error), and a missing file
of a finished run reads as ``None``. A run's own ``result.json`` (written as it ended) is
preferred to its ``results.csv`` row, which may be older (a suite killed before it rewrote
the table). A ``results.csv`` that is missing, unreadable or lacks runs is rebuilt from
the run directories (each run's ``result.json``, else its ``cell.json`` and
``status.json``), with a logged warning; an unreadable ``inputs.pt``
reads as ``None``. Runs scored on different test sets (their ``cell.json`` settings, else
their ``test_size`` and ``test_seed``) are refused: one table compares one test set.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluation.suite.folder import cell_test_set
from evaluation.report.portable import read_portable
from mofa_bench.errors import MofaBenchError

__all__ = [
    "GROUP_KEYS",
    "LANDMARK_LOSS_METHODS",
    "METHOD_TITLES",
    "REFERENCE_RENDERER",
    "ReportError",
    "Suite",
    "SuiteRun",
    "load_suite_results",
    "series_labels",
]

logger = logging.getLogger(__name__)

#: Columns that name a configuration; runs that differ only in ``seed`` form one series.
GROUP_KEYS: tuple[str, ...] = ("method", "renderer", "encoder", "landmark_loss")
#: Renderer every other renderer is compared with.
REFERENCE_RENDERER = "per_vertex"
#: Display names of the methods, in report order.
METHOD_TITLES: dict[str, str] = {
    "mofa": "MoFA",
    "conv_autoencoder": "conv autoencoder",
    "learned_decoder": "learned decoder",
    "fit": "optimisation",
    "code_regression": "code regression (supervised)",
    "mean_face": "mean face",
}
#: Methods whose training loss has the landmark term; the others ignore ``loss.landmark``
#: (a suite cell still records it), so the report names no landmark weight for them.
LANDMARK_LOSS_METHODS: frozenset[str] = frozenset({"mofa", "fit"})
#: Renderers in report order (others follow by name).
RENDERER_ORDER: tuple[str, ...] = ("per_vertex", "pytorch3d", "pytorch3d_soft", "nvdiffrast")


class ReportError(MofaBenchError):
    """A suite directory cannot be reported (no results table, or an unreadable one)."""


def _label(value: Any) -> str:
    """A grid value as text: ``""`` when missing, ``1.0`` → ``"1"``."""
    if value is None or (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(value)):
        return ""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class SuiteRun:
    """One run of a suite: its results row and its directory.

    Attributes:
        run_id: the run's id (its directory name under ``runs/``).
        directory: ``<suite>/runs/<run_id>`` (it may be missing for a run that failed early).
        row: the run's ``results.csv`` row (grid values as text, metrics as floats).
        data: where the run has no directory (a report folder), what its files held.
    """

    run_id: str
    directory: Path
    row: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    """The run's files as read from a report folder (:mod:`~evaluation.report.portable`), by kind."""

    @property
    def status(self) -> str:
        """``ok``, ``error``, ``running`` (or whatever the suite wrote)."""
        return str(self.row.get("status", ""))

    @property
    def series(self) -> str:
        """The display label of the run's configuration (see :func:`series_labels`)."""
        return str(self.row.get("series", self.run_id))

    def _file(self, name: str) -> Path | None:
        path = self.directory / name
        return path if path.is_file() else None

    def test_metrics(self) -> Any:
        """``test_metrics.csv`` as a DataFrame (``index`` + one column per metric), or ``None``."""
        import pandas as pd

        path = self._file("test_metrics.csv")
        return pd.read_csv(path) if path else self.data.get("test_metrics")

    def validation(self) -> Any:
        """``validation.csv`` (``step``, ``train_time_s`` s, metrics) as a DataFrame, or ``None``."""
        import pandas as pd

        path = self._file("validation.csv")
        if path is None:
            return self.data.get("validation")
        frame = pd.read_csv(path)
        return frame if len(frame) else None

    def config(self) -> dict[str, Any] | None:
        """The run's ``config.yaml`` as a plain dict, or ``None`` (e.g. per-image optimisation)."""
        import yaml

        path = self._file("config.yaml")
        if path is None:
            return self.data.get("config")
        data = yaml.safe_load(path.read_text())
        return data if isinstance(data, dict) else None

    def reconstructions(self) -> dict[str, Any] | None:
        """``{"image": (K, 3, H, W) over black, "mask": (K, 1, H, W) in [0, 1]}``, or ``None``."""
        import torch

        path = self._file("test_reconstructions.pt")
        return torch.load(path, map_location="cpu", weights_only=True) if path else None

    def vertex_error_mm(self) -> Any:
        """``(N,)`` float32 mean posed per-vertex error over the test set, mm, or ``None``."""
        import numpy as np

        path = self._file("vertex_error_mm.npy")
        return np.load(path) if path else self.data.get("vertex_error_mm")


@dataclass(frozen=True)
class Suite:
    """A suite output directory, read.

    Attributes:
        root: the suite directory.
        results: one row per run (``results.csv`` plus runs found only under ``runs/``),
            grid values (:data:`GROUP_KEYS`) as text, ``seed`` as an integer, and a
            ``series`` label per configuration; in report order.
        runs: ``{run_id: SuiteRun}`` in the same order.
    """

    root: Path
    results: Any
    runs: dict[str, SuiteRun]

    @property
    def name(self) -> str:
        """The suite's name: from a report folder's ``report_source.json`` or the suite folder's
        ``suite.json`` (its suites' names), else the folder's name."""
        source = _read_json(self.root / "report_source.json").get("suite")
        if isinstance(source, str) and source:
            return source
        suites = _read_json(self.root / "suite.json").get("suites")
        names = [entry.get("name") for entry in suites if isinstance(entry, dict)] if isinstance(suites, list) else []
        names = [name for name in names if isinstance(name, str) and name]
        return " + ".join(names) if names else self.root.resolve().name

    def ok_runs(self) -> list[SuiteRun]:
        """The runs whose status is ``ok``, in report order."""
        return [run for run in self.runs.values() if run.status == "ok"]

    def series_order(self) -> list[str]:
        """Every series label, in report order."""
        return list(dict.fromkeys(self.results["series"]))

    def inputs(self) -> dict[str, Any] | None:
        """``inputs.pt``: ``{"images": (K, 3, H, W) in [0, 1], "indices": (K,)}``, or ``None``."""
        import torch

        path = self.root / "inputs.pt"
        if not path.is_file():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - cut short or foreign: the report goes on without it
            logger.warning("%s is unreadable (%s); the report shows no input images (`mofa-bench suite` draws "
                           "it again)", path, type(err).__name__)
            return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _row_from_run_dir(directory: Path) -> dict[str, Any]:
    """A results row for a run that ``results.csv`` does not list: its ``result.json``, else
    its ``cell.json`` and ``status.json``."""
    result = _read_json(directory / "result.json")
    if result.get("run_id") == directory.name:
        return result
    cell = _read_json(directory / "cell.json")
    values = cell.get("values", cell) if isinstance(cell.get("values", cell), dict) else {}
    status = _read_json(directory / "status.json")
    row: dict[str, Any] = {key: values.get(key) for key in (*GROUP_KEYS, "seed")}
    row.update({key: cell[key] for key in ("protocol", "test_size", "test_seed") if key in cell})
    row.update(run_id=directory.name, status=status.get("status") or "running", error=status.get("error"))
    return row


def _own_result(runs_dir: Path, row: dict[str, Any]) -> dict[str, Any]:
    """The run's own ``result.json`` (written as it ended) over a table row that may predate it."""
    result = _read_json(runs_dir / str(row.get("run_id")) / "result.json")
    return result if result.get("run_id") == str(row.get("run_id")) else row


def _table_rows(csv: Path, runs_dir: Path) -> list[dict[str, Any]]:
    """``results.csv``'s rows; none (logged) when it is missing or unreadable and ``runs/`` can rebuild it.

    Raises:
        ReportError: the table is unreadable or no suite table, and there is no ``runs/``.
    """
    from evaluation.results.rows import read_csv

    if not csv.is_file():
        return []
    try:
        frame = read_csv(csv)
        problem = "" if "run_id" in frame.columns else "has no run_id column"
    except Exception as err:  # noqa: BLE001 - pandas raises parser, decode and value errors alike
        problem = f"is unreadable ({type(err).__name__})"
    if not problem:
        return [_own_result(runs_dir, row) for row in frame.to_dict("records")]
    if not runs_dir.is_dir():
        raise ReportError(f"{csv} {problem}; is it a suite results table?")
    logger.warning("%s %s; the table is rebuilt from %s", csv, problem, runs_dir)
    return []


def _test_set_of(row: dict[str, Any], runs_dir: Path) -> tuple[str | None, tuple[str, str] | None, str]:
    """``(digest, (test_size, test_seed), text)`` of one run's test set, each ``None`` where unknown."""
    known = cell_test_set(_read_json(runs_dir / str(row["run_id"]) / "cell.json"))
    size, seed = _label(row.get("test_size")), _label(row.get("test_seed"))
    numbers_ = (size, seed) if size and seed else None
    text = known[1] if known else (f"{size} test images (data seed {seed})" if numbers_ else "")
    return (known[0] if known else None), numbers_, text


def _check_one_test_set(root: Path, rows: list[dict[str, Any]], runs_dir: Path) -> None:
    """Refuse runs scored on different test sets (see the module docstring)."""
    sets = {str(row["run_id"]): _test_set_of(row, runs_dir) for row in rows}
    for part in (0, 1):
        groups: dict[Any, list[str]] = {}
        for run_id, found in sets.items():
            if found[part] is not None:
                groups.setdefault(found[part], []).append(run_id)
        if len(groups) > 1:
            text = "; ".join(f"{len(ids)} run{'s' if len(ids) > 1 else ''} ({', '.join(ids[:3])}"
                             f"{', …' if len(ids) > 3 else ''}) on {sets[ids[0]][2]}" for ids in groups.values())
            raise ReportError(f"{root}: runs scored on different test sets cannot share one table: {text}; "
                              f"report each test set from its own suite folder")


def _sort_key(row: dict[str, Any]) -> tuple[Any, ...]:
    methods = list(METHOD_TITLES)
    method, renderer = row["method"], row["renderer"]
    return (methods.index(method) if method in methods else len(methods), method,
            RENDERER_ORDER.index(renderer) if renderer in RENDERER_ORDER else len(RENDERER_ORDER), renderer,
            row["encoder"], row["landmark_loss"], row["seed"] if row["seed"] is not None else -1, row["run_id"])


def series_labels(results: Any) -> list[str]:
    """A short label per row naming its configuration (seed left out).

    ``MoFA · <renderer>`` for MoFA; the method's title for a baseline, with its renderer
    when the baseline was run with several; then the encoder when the suite varies it, and
    ``landmark loss <w>`` when the suite varies the weight, for a method whose loss has the
    landmark term (:data:`LANDMARK_LOSS_METHODS`) or one run with several weights: e.g.
    ``MoFA · pytorch3d``, ``conv autoencoder``, ``mean face``,
    ``MoFA · nvdiffrast · resnet18 · landmark loss 0``.
    """
    encoders = set(results["encoder"]) - {""}
    landmarks = set(results["landmark_loss"]) - {""}
    renderers_of = results.groupby("method")["renderer"].agg(lambda values: set(values) - {""})
    landmarks_of = results.groupby("method")["landmark_loss"].agg(lambda values: set(values) - {""})
    labels = []
    for row in results.to_dict("records"):
        method = row["method"]
        parts = [METHOD_TITLES.get(method, method or "?")]
        if row["renderer"] and (method == "mofa" or len(renderers_of.get(method, ())) > 1):
            parts.append(row["renderer"])
        if len(encoders) > 1 and row["encoder"]:
            parts.append(row["encoder"])
        if row["landmark_loss"] and (len(landmarks_of.get(method, ())) > 1
                                     or (len(landmarks) > 1 and method in LANDMARK_LOSS_METHODS)):
            parts.append(f"landmark loss {row['landmark_loss']}")
        labels.append(" · ".join(parts))
    return labels


def load_suite_results(root: str | Path) -> Suite:
    """Read a suite output directory.

    Args:
        root: the suite's output folder (the one holding ``results.csv``).

    Returns:
        the :class:`Suite`; runs with status ``error`` or ``running`` are kept as such.

    Raises:
        ReportError: ``root`` holds no ``results.csv`` and no ``runs/`` folder, the table
            is unreadable (or has no ``run_id`` column) and there is no ``runs/`` to
            rebuild it from, there is no run at all, or runs were scored on different
            test sets.
    """
    import pandas as pd

    root = Path(root)
    csv = root / "results.csv"
    runs_dir = root / "runs"
    if not csv.is_file() and not runs_dir.is_dir():
        raise ReportError(f"{root} is not a suite output directory: it has neither results.csv nor runs/ "
                          f"(make one with `mofa-bench suite`)")
    rows = _table_rows(csv, runs_dir)
    listed = {str(row["run_id"]) for row in rows}
    if runs_dir.is_dir():
        rows += [_row_from_run_dir(d) for d in sorted(runs_dir.iterdir()) if d.is_dir() and d.name not in listed]
    if not rows:
        raise ReportError(f"{root} has no runs yet: results.csv lists none and runs/ holds no run directory")
    _check_one_test_set(root, rows, runs_dir)
    for row in rows:
        row["run_id"] = str(row["run_id"])
        for key in GROUP_KEYS:
            row[key] = _label(row.get(key))
        seed = row.get("seed")
        row["seed"] = int(seed) if _label(seed).lstrip("-").isdigit() else None
        status = _read_json(runs_dir / row["run_id"] / "status.json")
        row["status"] = _label(row.get("status")) or status.get("status") or "unknown"
        row["error"] = _label(row.get("error")) or (status.get("error") or "")
    rows.sort(key=_sort_key)
    results = pd.DataFrame(rows, columns=list(dict.fromkeys(k for row in rows for k in row)))
    results["seed"] = results["seed"].astype("Int64")
    results["series"] = series_labels(results)
    portable = read_portable(root)
    runs = {row["run_id"]: SuiteRun(row["run_id"], runs_dir / row["run_id"], row, portable.get(row["run_id"], {}))
            for row in results.to_dict("records")}
    return Suite(root=root, results=results, runs=runs)
