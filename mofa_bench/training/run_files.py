"""The files of a run directory: CSV logs appended row by row and cut back on resume."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one row to a CSV file.

    The header is written when the file is new. A row with columns the header lacks
    (e.g. loss terms first known after a run of skipped batches) rewrites the file with
    the new columns appended, earlier rows left empty there.
    """
    header: list[str] = []
    if path.exists():
        with path.open(newline="") as handle:
            header = next(csv.reader(handle), [])
    missing = [key for key in row if key not in header]
    if header and missing:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        header += missing
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header or list(row))
        if not header:
            writer.writeheader()
        writer.writerow(row)


def truncate_rows(path: Path, max_step: int, inclusive: bool = True) -> None:
    """Drop the rows of a CSV whose ``step`` is after ``max_step`` (a resumed run's future).

    Args:
        path: the CSV (nothing happens when it is missing).
        max_step: last step kept.
        inclusive: keep rows at ``max_step`` itself (``False`` drops them too: rows
            logged *during* step ``max_step``, which the resumed run repeats).
    """
    if not path.exists():
        return
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    keep = [r for r in rows if (int(r["step"]) <= max_step if inclusive else int(r["step"]) < max_step)]
    if len(keep) == len(rows):
        return
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(keep)
    tmp.replace(path)


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 0.1}}`` → ``{"optim.lr": 0.1}`` (nested mappings only)."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
