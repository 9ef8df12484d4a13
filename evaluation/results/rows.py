"""Result rows and their CSV: the source of truth every table and plot is re-made from.

Every row is a flat dict: the cell's coordinates and measurements, a ``status`` (see
:data:`STATUSES`), a ``note`` saying why a cell was not measured, the name of the grid it
came from (``bench``), a ``timestamp`` and the environment columns of
:func:`environment_columns` (device name, commit, threads, library versions). A run
rewrites its CSV after every group of cells (:func:`partial_writer`), so an interrupted
run keeps what it measured, and ``--append`` runs start from the earlier rows
(:func:`earlier_rows`).
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from evaluation.results.grid import SpecError
from mofa_bench.environment import device_description, git_commit, package_versions

__all__ = [
    "CELL_ERRORS",
    "STATUSES",
    "earlier_rows",
    "environment_columns",
    "error_note",
    "is_missing",
    "make_row",
    "partial_writer",
    "read_csv",
    "timestamp",
    "write_csv",
]

#: Statuses every grid uses: measured, skipped (budget or time limit), cannot run here
#: (the reason and fix in the note), failed (the error in the note). A grid may add its
#: own (e.g. ``mismatch`` for a setting whose output differs from a reference).
STATUSES = ("ok", "skipped", "unavailable", "error")

#: Failures of one cell that become an ``error`` row instead of stopping the run
#: (CUDA out of memory, input errors, a compiled extension that fails to build or load;
#: torch raises RuntimeError subclasses).
CELL_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, ValueError, ImportError, OSError)

#: Columns read back as strings, never NaN (:func:`read_csv`).
TEXT_COLUMNS = ("status", "note", "bench")


def timestamp() -> str:
    """Current UTC time, ISO 8601 to the second (``2025-01-31T12:00:00Z``)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def environment_columns(device: torch.device) -> dict[str, Any]:
    """Columns tagging every row: device name, commit, torch threads, CUDA and package versions.

    Versions come from :func:`mofa_bench.environment.package_versions` as
    ``version_<package>`` (``"-"`` when missing): PyTorch3D is ``version_easypytorch3d``,
    nvdiffrast ``version_diffrp-nvdiffrast``.
    """
    columns: dict[str, Any] = {
        "device_name": device_description(device),
        "commit": git_commit(),
        "threads": torch.get_num_threads(),
        "version_cuda": torch.version.cuda or "-",
    }
    columns.update({f"version_{name}": version for name, version in package_versions().items()})
    return columns


def make_row(columns: Sequence[str], env: dict[str, Any], **values: Any) -> dict[str, Any]:
    """One result row: every column of ``columns`` (NaN unless given), an empty note, a timestamp,
    the values, then ``env``."""
    row: dict[str, Any] = {column: math.nan for column in columns}
    row.update(note="", timestamp=timestamp())
    row.update(values)
    row.update(env)
    return row


def error_note(err: BaseException) -> str:
    """``"<Type>: <first line of the message>"``, at most 300 characters (for a row's note)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:300]


def is_missing(value: Any) -> bool:
    """Whether a cell value is absent (``None`` or NaN)."""
    return value is None or (isinstance(value, numbers.Real) and math.isnan(value))


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path, columns: Sequence[str] = ()) -> Path:
    """Write rows as CSV (overwriting ``path``); ``columns`` come first, then any others in row order.

    Columns whose given values are all integers stay integers (empty where missing).
    """
    import pandas as pd

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        given = [row[column] for row in rows if column in row and not is_missing(row[column])]
        if given and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in given):
            frame[column] = frame[column].astype("Int64")
    ordered = [c for c in columns if c in frame.columns] + [c for c in frame.columns if c not in columns]
    frame[ordered].to_csv(path, index=False)
    return path


def read_csv(path: str | Path) -> Any:
    """A results CSV as a pandas DataFrame (notes, statuses and grid names as strings, never NaN).

    Raises:
        SpecError: ``path`` is not a file.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise SpecError(f"results CSV {path} does not exist")
    frame = pd.read_csv(path)
    for column in TEXT_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), "").astype(str)
    return frame


def earlier_rows(path: str | Path, append: bool) -> list[dict[str, Any]]:
    """The rows of ``path`` when ``append`` is set and the file exists, else none."""
    path = Path(path)
    if not append or not path.is_file():
        return []
    return read_csv(path).to_dict("records")


def partial_writer(path: str | Path, columns: Sequence[str] = (),
                   earlier: Sequence[dict[str, Any]] = ()) -> Callable[[list[dict[str, Any]]], None]:
    """An ``on_rows`` callback: rewrite ``path`` with ``earlier`` plus the rows so far.

    Called after every group of cells, it keeps an interrupted run's measurements on disk.
    """
    earlier = list(earlier)

    def write(rows: list[dict[str, Any]]) -> None:
        write_csv(earlier + list(rows), path, columns)

    return write
