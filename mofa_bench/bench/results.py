"""Benchmark rows → CSV (the source of truth) → Markdown table and plot.

Every row is a flat dict: the cell's coordinates and measurements, a ``status``
(``ok``, ``skipped``, ``unavailable``, ``error``), a ``note``, the ``bench`` it came from,
and the environment columns of :func:`environment_columns` (device name, commit,
threads, library versions, timestamp). :func:`write_report` re-makes the Markdown and
the PNG from a CSV alone, so reports are reproducible from files.
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from mofa_bench.bench.measure import BenchSpecError
from mofa_bench.environment import device_description, git_commit, package_versions

__all__ = [
    "Column",
    "ReportSpec",
    "environment_columns",
    "make_row",
    "markdown_table",
    "plot_throughput",
    "read_csv",
    "register_report",
    "report_spec",
    "timestamp",
    "write_csv",
    "write_markdown",
    "write_report",
]

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
    """One result row: every column of ``columns`` (NaN unless given), the values, a timestamp, ``env``."""
    row: dict[str, Any] = {column: math.nan for column in columns}
    row.update(note="", peak_mem_kind="", timestamp=timestamp())
    row.update(values)
    row.update(env)
    return row


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
        given = [row[column] for row in rows if column in row and not _missing(row[column])]
        if given and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in given):
            frame[column] = frame[column].astype("Int64")
    ordered = [c for c in columns if c in frame.columns] + [c for c in frame.columns if c not in columns]
    frame[ordered].to_csv(path, index=False)
    return path


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, numbers.Real) and math.isnan(value))


def read_csv(path: str | Path) -> Any:
    """A benchmark CSV as a pandas DataFrame (notes and statuses as strings, never NaN)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise BenchSpecError(f"benchmark CSV {path} does not exist")
    frame = pd.read_csv(path)
    for column in ("status", "note", "bench"):
        if column in frame.columns:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), "").astype(str)
    return frame


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
    if _missing(value):
        return "–"
    if fmt and isinstance(value, numbers.Real):
        return format(float(value) if fmt.endswith(("f", "e", "g", "%")) else value, fmt)
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


# ---------------------------------------------------------------------------- plots
def _plain_number(value: float, _position: Any = None) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.3g}"


def plot_throughput(frame: Any, path: str | Path, *, x: str, y: str, hue: str, facet_rows: str | None = None,
                    facet_cols: str | None = None, xlabel: str = "", ylabel: str = "", title: str = "",
                    facet_format: dict[str, str] | None = None) -> Path:
    """Log-log line plot of ``y`` against ``x``, one line per ``hue`` value, in a grid of facets.

    Only rows with status ``ok`` (and values in every plotted column) are drawn; a facet
    with no such row says so. ``facet_format`` maps a facet column to a format string for
    its titles (``{"resolution": "{:.0f} px"}``; default ``"<column> <value>"``). Writes
    ``path`` (PNG) and returns it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    formats = facet_format or {}
    ok = frame[frame["status"] == "ok"] if "status" in frame.columns else frame
    for key in (x, y, hue, facet_rows, facet_cols):
        if key:
            ok = ok[ok[key].notna()]
    row_values = sorted(ok[facet_rows].dropna().unique()) if facet_rows else [None]
    col_values = sorted(ok[facet_cols].dropna().unique()) if facet_cols else [None]
    row_values, col_values = row_values or [None], col_values or [None]
    hues = sorted(ok[hue].dropna().astype(str).unique())
    colors = {h: plt.get_cmap("tab10")(i % 10) for i, h in enumerate(hues)}
    legend_in = 2.0  # inches at the right for the legend
    width = 3.4 * len(col_values) + 0.8 + legend_in
    fig, axes = plt.subplots(len(row_values), len(col_values), squeeze=False, sharex=True, sharey=True,
                             figsize=(width, 2.8 * len(row_values) + 0.9))
    for i, rv in enumerate(row_values):
        for j, cv in enumerate(col_values):
            ax = axes[i][j]
            part = ok
            if facet_rows:
                part = part[part[facet_rows] == rv]
            if facet_cols:
                part = part[part[facet_cols] == cv]
            for h in hues:
                line = part[part[hue].astype(str) == h].sort_values(x)
                if len(line):
                    ax.plot(line[x], line[y], marker="o", color=colors[h], label=h)
            if part.empty:
                ax.text(0.5, 0.5, "no measured cells", ha="center", va="center", transform=ax.transAxes,
                        color="grey")
            facet = [formats.get(k, k + " {}").format(v) for k, v in ((facet_rows, rv), (facet_cols, cv))
                     if k and v is not None]
            ax.set_title(" · ".join(facet), fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
            if len(ok):
                ax.set_xscale("log", base=2)
                ax.set_yscale("log")
                ax.xaxis.set_major_locator(FixedLocator(sorted(ok[x].unique())))
                ax.xaxis.set_major_formatter(FuncFormatter(_plain_number))
                ax.xaxis.set_minor_formatter(NullFormatter())
                ax.yaxis.set_major_formatter(FuncFormatter(_plain_number))
                ax.yaxis.set_minor_formatter(NullFormatter())
            if i == len(row_values) - 1:
                ax.set_xlabel(xlabel or x)
            if j == 0:
                ax.set_ylabel(ylabel or y)
    handles = [plt.Line2D([], [], color=colors[h], marker="o", label=h) for h in hues]
    if handles:
        fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - legend_in / width, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class ReportSpec:
    """How one benchmark's CSV becomes a Markdown table and a plot.

    Attributes:
        bench: value of the ``bench`` column (``"renderers"``, ``"train"``).
        columns: CSV columns in preferred order (the CSV writer puts them first).
        table: columns of the Markdown table.
        plot: keyword arguments of :func:`plot_throughput` (``x``, ``y``, ``hue``, facets, labels).
        title: plot title and Markdown heading; ``{device}`` is replaced.
        summary: optional ``frame -> Markdown lines`` added under the table (e.g. a target check).
        defaults: values of columns that CSVs written before the column existed lack
            (``{"mode": "fp32"}``: every earlier training benchmark ran in float32).
    """

    bench: str
    columns: tuple[str, ...]
    table: tuple[Column, ...]
    plot: dict[str, Any]
    title: str
    summary: Callable[[Any], list[str]] | None = None
    defaults: dict[str, Any] = field(default_factory=dict)


_REPORTS: dict[str, ReportSpec] = {}


def register_report(spec: ReportSpec) -> ReportSpec:
    """Make ``spec`` the report of CSVs whose ``bench`` column is ``spec.bench``."""
    _REPORTS[spec.bench] = spec
    return spec


def report_spec(bench: str) -> ReportSpec:
    """The registered :class:`ReportSpec` of a benchmark name."""
    import mofa_bench.bench.renderers  # noqa: F401  (registers "renderers")
    import mofa_bench.bench.train  # noqa: F401  (registers "train")

    if bench not in _REPORTS:
        raise BenchSpecError(f"unknown benchmark {bench!r} in the CSV's bench column; "
                             f"known: {', '.join(sorted(_REPORTS))}")
    return _REPORTS[bench]


def _device_label(frame: Any) -> str:
    for column in ("device_name", "device"):
        if column in frame.columns and frame[column].notna().any():
            return str(frame[column].dropna().iloc[0])
    return "unknown device"


def write_markdown(frame: Any, spec: ReportSpec, path: str | Path) -> Path:
    """Heading, environment line, the table (every row, any status) and the spec's summary."""
    path = Path(path)
    device = _device_label(frame)
    first = frame.iloc[0] if len(frame) else {}
    env = [f"device: {device}"]
    for key, label in (("commit", "commit"), ("version_torch", "torch"), ("threads", "threads"),
                       ("timestamp", "run")):
        if key in frame.columns and len(frame):
            env.append(f"{label} {first[key]}")
    records = frame.to_dict("records")
    text = [f"### {spec.title.format(device=device)}", "", " · ".join(env), "", markdown_table(records, spec.table)]
    if spec.summary is not None:
        text.extend(spec.summary(frame))
    path.write_text("\n".join(text).rstrip("\n") + "\n")
    return path


def write_report(csv_path: str | Path, out_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Re-make ``<stem>.md`` and ``<stem>.png`` from a benchmark CSV (next to it by default).

    Returns:
        ``(markdown path, plot path)``.
    """
    csv_path = Path(csv_path)
    frame = read_csv(csv_path)
    if "bench" not in frame.columns or frame.empty:
        raise BenchSpecError(f"{csv_path} is not a benchmark CSV (no rows or no 'bench' column)")
    spec = report_spec(str(frame["bench"].iloc[0]))
    for column, value in spec.defaults.items():
        if column not in frame.columns:
            frame[column] = value
    out = Path(out_dir) if out_dir else csv_path.parent
    out.mkdir(parents=True, exist_ok=True)
    md = write_markdown(frame, spec, out / f"{csv_path.stem}.md")
    png = plot_throughput(frame[frame["bench"] == spec.bench], out / f"{csv_path.stem}.png",
                          title=spec.title.format(device=_device_label(frame)), **spec.plot)
    return md, png
