"""The report's real-photo block: each configuration's errors on the suite's ``real_test``.

The errors are those of :mod:`evaluation.suite.real` (against the landmarks ``mofa-bench
prepare`` detected, and the photometric error over the reconstruction's region), shown
as mean ± standard deviation over the seeds that finished, beside the synthetic
test-set numbers of the same runs so the two can be read together.
"""

from __future__ import annotations

import math
from typing import Any

from evaluation.report.document import Block, Bullets, Heading, Table
from evaluation.report.tables import decimals_for, landmark_weight_text, seed_summary
from evaluation.results.report import Column

__all__ = ["REAL_COLUMNS", "real_blocks", "real_records"]

#: ``(results column, title)`` of the real-photo table, real metrics first, then their synthetic counterparts.
REAL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("real_landmark_px", "real landmark (px)"),
    ("real_landmark_nme", "real landmark NME"),
    ("real_photometric", "real photometric"),
    ("landmark_px", "synthetic landmark (px)"),
    ("photometric", "synthetic photometric"),
)
_REAL = tuple(column for column, _ in REAL_COLUMNS if column.startswith("real_"))


def _size(results: Any) -> str:
    if "real_test_size" not in results.columns:
        return "the real test faces"
    sizes = sorted({int(v) for v in results["real_test_size"].dropna()})
    return f"{' / '.join(str(s) for s in sizes)} real test faces" if sizes else "the real test faces"


def real_records(results: Any) -> tuple[list[dict[str, str]], tuple[Column, ...]]:
    """Rows of the real-photo table: one per configuration with a finite real metric.

    Args:
        results: the suite's results (with the report's ``series`` column).

    Returns:
        ``(records, columns)``: text cells ``mean ± std`` over finished seeds (``–``
        where a run has no such value, e.g. landmarks of a method without a face code).
    """
    present = [column for column, _ in REAL_COLUMNS if column in results.columns]
    summary = seed_summary(results, present)
    decimals = {m: decimals_for(list(summary[f"{m}_mean"]), list(summary[f"{m}_std"])) for m in present}
    records = []
    for row in summary.to_dict("records"):
        if not any(math.isfinite(row.get(f"{m}_mean", math.nan)) for m in present if m in _REAL):
            continue
        record = {"series": row["series"], "encoder": row["encoder"] or "–",
                  "landmark_loss": landmark_weight_text(row), "seeds": f"{row['ok']}/{row['runs']}"}
        for m in present:
            mean, std, d = row[f"{m}_mean"], row[f"{m}_std"], decimals[m]
            record[m] = "–" if not math.isfinite(mean) else (
                f"{mean:.{d}f}" + (f" ± {std:.{d}f}" if math.isfinite(std) else ""))
        records.append(record)
    titles = dict(REAL_COLUMNS)
    columns = (Column("series", "method · renderer"), Column("encoder", "encoder"),
               Column("landmark_loss", "landmark loss"), Column("seeds", "seeds ok", "s"),
               *(Column(m, titles[m], "s") for m in present))
    return records, columns


def real_blocks(suite: Any) -> list[Block]:
    """The "Real photos" section, or nothing when no run was scored on real photos."""
    results = suite.results
    if not any(column in results.columns and results[column].notna().any() for column in _REAL):
        return []
    records, columns = real_records(results)
    return [
        Heading("Real photos"),
        Bullets((
            f"Each run was also scored on {_size(results)} of the suite's `real_test` folder (crops written by "
            "`mofa-bench prepare`, resized to the run's image size); per run the files are in `real_metrics.csv`.",
            "Real landmark error: mean 2D distance (px) of the 46 training landmarks to the landmarks the detector "
            "measured on the photo, each weighted by its confidence; NME divides it by the detected outer-eye-corner "
            "distance. These are errors against a detector, not against human annotations.",
            "Real photometric error: mean RGB distance over the region the reconstruction covers, as on the "
            "synthetic test set. The synthetic columns repeat the test-error table for comparison.",
        )),
        Table(tuple(records), columns),
    ]
