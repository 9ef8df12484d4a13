"""Plots of results frames: log-log lines per method over a grid of facets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluation.results.colors import color_map

__all__ = ["plot_throughput"]


def _plain_number(value: float, _position: Any = None) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.3g}"


def plot_throughput(frame: Any, path: str | Path, *, x: str, y: str, hue: str, facet_rows: str | None = None,
                    facet_cols: str | None = None, xlabel: str = "", ylabel: str = "", title: str = "",
                    facet_format: dict[str, str] | None = None) -> Path:
    """Log-log line plot of ``y`` against ``x``, one line per ``hue`` value, in a grid of facets.

    A ``hue`` value that names a renderer takes that renderer's colour
    (:mod:`evaluation.results.colors`).

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
    colors = color_map(hues)
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
