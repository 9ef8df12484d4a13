"""Results CSV → Markdown table (and plot): reports re-made from a CSV alone.

A :class:`ReportSpec` says how the rows of one grid become a Markdown file (heading,
environment line, table, summary) and, optionally, a plot. :func:`write_results_report` picks the
spec by the CSV's ``bench`` column from a mapping the caller passes (a registry of the
caller's grids); nothing here knows any grid.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from evaluation.results.grid import SpecError
from evaluation.results.plot import plot_throughput
from evaluation.results.rows import is_missing, read_csv

__all__ = ["Column", "ReportSpec", "markdown_table", "report_spec", "write_markdown", "write_results_report"]


# ---------------------------------------------------------------------------- markdown
@dataclass(frozen=True)
class Column:
    """One column of a Markdown table.

    Attributes:
        key: DataFrame column.
        title: header text.
        fmt: format spec for numbers (``",.0f"``, ``".1f"``); ``""`` prints the value as is.
    """

    key: str
    title: str
    fmt: str = ""


def _cell(value: Any, fmt: str) -> str:
    if is_missing(value):
        return "–"
    if fmt and isinstance(value, numbers.Real):
        if fmt.endswith(("f", "e", "g", "%")):
            return format(float(value), fmt)
        if fmt.endswith("d") and float(value).is_integer():  # integers read back as floats beside NaN
            return format(int(value), fmt)
        return format(value, fmt)
    text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(records: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """A GitHub-flavoured Markdown table: header, alignment row, one line per record.

    Numeric columns (those with a ``fmt``) are right-aligned; missing values print as ``–``.
    """
    header = "| " + " | ".join(c.title for c in columns) + " |"
    align = "|" + "|".join("---:" if c.fmt else ":---" for c in columns) + "|"
    lines = [header, align]
    for record in records:
        lines.append("| " + " | ".join(_cell(record.get(c.key), c.fmt) for c in columns) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class ReportSpec:
    """How one grid's CSV becomes a Markdown table and, optionally, a plot.

    Attributes:
        name: value of the CSV's key column (``bench``) that selects this spec.
        columns: CSV columns in preferred order (the CSV writer puts them first).
        table: columns of the Markdown table.
        title: plot title and Markdown heading; ``{device}`` is replaced.
        plot: keyword arguments of :func:`~evaluation.results.plot.plot_throughput`
            (``x``, ``y``, ``hue``, facets, labels), or ``None`` for no plot.
        heading: optional ``frame -> Markdown lines`` that replace the default heading
            and environment line (e.g. one sentence describing a single-cell sweep).
        summary: optional ``frame -> Markdown lines`` added under the table (e.g. a target check).
        defaults: values of columns that CSVs written before the column existed lack
            (``{"mode": "fp32"}``).
    """

    name: str
    columns: tuple[str, ...]
    table: tuple[Column, ...]
    title: str
    plot: dict[str, Any] | None = None
    heading: Callable[[Any], list[str]] | None = None
    summary: Callable[[Any], list[str]] | None = None
    defaults: dict[str, Any] = field(default_factory=dict)


def report_spec(reports: Mapping[str, ReportSpec], name: str) -> ReportSpec:
    """The spec of ``name`` in ``reports``.

    Raises:
        SpecError: ``name`` has no spec.
    """
    if name not in reports:
        raise SpecError(f"unknown results {name!r} in the CSV's key column; known: {', '.join(sorted(reports))}")
    return reports[name]


def _device_label(frame: Any) -> str:
    for column in ("device_name", "device"):
        if column in frame.columns and frame[column].notna().any():
            return str(frame[column].dropna().iloc[0])
    return "unknown device"


def write_markdown(frame: Any, spec: ReportSpec, path: str | Path) -> Path:
    """Heading, environment line, the table (every row, any status) and the spec's summary."""
    path = Path(path)
    device = _device_label(frame)
    if spec.heading is not None:
        text = list(spec.heading(frame))
    else:
        first = frame.iloc[0] if len(frame) else {}
        env = [f"device: {device}"]
        for key, label in (("commit", "commit"), ("version_torch", "torch"), ("threads", "threads"),
                           ("timestamp", "run")):
            if key in frame.columns and len(frame):
                env.append(f"{label} {first[key]}")
        text = [f"### {spec.title.format(device=device)}", "", " · ".join(env), ""]
    text.append(markdown_table(frame.to_dict("records"), spec.table))
    if spec.summary is not None:
        text.extend(spec.summary(frame))
    path.write_text("\n".join(text).rstrip("\n") + "\n")
    return path


def write_results_report(csv_path: str | Path, reports: Mapping[str, ReportSpec], out_dir: str | Path | None = None,
                 key: str = "bench") -> tuple[Path, Path | None]:
    """Re-make ``<stem>.md`` (and ``<stem>.png`` where the spec has a plot) from a results CSV.

    Args:
        csv_path: the CSV (the source of truth).
        reports: ``{name: spec}``; the CSV's first ``key`` value picks the spec.
        out_dir: output folder (default: next to the CSV).
        key: the column naming the grid.

    Returns:
        ``(markdown path, plot path or None)``.

    Raises:
        SpecError: no such CSV, no rows, no ``key`` column, or no spec for its value.
    """
    csv_path = Path(csv_path)
    frame = read_csv(csv_path)
    if key not in frame.columns or frame.empty:
        raise SpecError(f"{csv_path} is not a results CSV (no rows or no {key!r} column)")
    spec = report_spec(reports, str(frame[key].iloc[0]))
    for column, value in spec.defaults.items():
        if column not in frame.columns:
            frame[column] = value
    out = Path(out_dir) if out_dir else csv_path.parent
    out.mkdir(parents=True, exist_ok=True)
    md = write_markdown(frame, spec, out / f"{csv_path.stem}.md")
    if spec.plot is None:
        return md, None
    png = plot_throughput(frame[frame[key] == spec.name], out / f"{csv_path.stem}.png",
                          title=spec.title.format(device=_device_label(frame)), **spec.plot)
    return md, png
