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


def truncate_rows(path: Path, max_step: int) -> None:
    """Drop the rows of a CSV whose ``step`` is after ``max_step`` (a resumed run's future)."""
    if not path.exists():
        return
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if int(r["step"]) <= max_step)
