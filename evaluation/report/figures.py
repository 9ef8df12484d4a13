"""The report's plots (matplotlib, Agg): error curves over training and wall-clock time, bars, throughput.

Every function writes one PNG from the suite's files alone and returns its path, or
``None`` when the suite has nothing to draw (e.g. no run wrote ``validation.csv``). Each
series (one configuration, seeds pooled) keeps one style in every figure
(:func:`series_styles`): MoFA's series take their renderer's colour, the same in every
report (:mod:`evaluation.results.colors`), and a series trained without the landmark loss
is dashed (hatched in bars) where the suite varies it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from evaluation.report.learning import START_METHOD
from evaluation.report.load import Suite
from evaluation.report.tables import HEADLINE_METRICS, METRIC_TITLES, NO_GEOMETRY_METHODS
from evaluation.results.colors import color_map

__all__ = ["BAR_METRICS", "DPI", "legend_right", "plot_bars", "plot_curves", "plot_throughput_csv", "pyplot", "save_figure",
           "series_styles"]

#: Resolution of every figure, dots per inch.
DPI = 110
#: Panels of the test-error bars: the headline errors and the model-space error.
BAR_METRICS: tuple[str, ...] = ("photometric", "geometric_mm", "geometric_model_mm", "landmark_px")


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def series_styles(results: Any) -> dict[str, dict[str, Any]]:
    """``{series: {"color", "linestyle", "hatch"}}`` for every series of ``results``, in order.

    A series whose label names its renderer (MoFA's, or a baseline run through several)
    takes the renderer's colour; other series take the non-renderer colours in turn. Where
    the suite varies the landmark loss, a series with weight 0 is dashed (``"--"``) and its
    bars hatched (``"//"``).
    """
    renderers_of = results.groupby("method")["renderer"].agg(lambda values: set(values) - {""})
    varies_landmarks = len(set(results["landmark_loss"]) - {""}) > 1
    renderer_of: dict[str, str] = {}
    without: set[str] = set()
    for row in results.to_dict("records"):
        if row["renderer"] and (row["method"] == "mofa" or len(renderers_of.get(row["method"], ())) > 1):
            renderer_of.setdefault(row["series"], row["renderer"])
        if varies_landmarks and row["landmark_loss"] == "0":
            without.add(row["series"])
    return {series: {"color": color, "linestyle": "--" if series in without else "-",
                     "hatch": "//" if series in without else None}
            for series, color in color_map(results["series"], renderer_of).items()}


def save_figure(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    pyplot().close(fig)
    return path


def legend_right(fig: Any, axes: Sequence[Any]) -> None:
    """One legend right of the figure for every labelled line of ``axes`` (each label once)."""
    legend: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
               frameon=False)


def _curve_metrics(curves: dict[str, list[Any]], metrics: Sequence[str]) -> list[str]:
    return [m for m in metrics if any(m in f.columns and f[m].notna().any() for fs in curves.values() for f in fs)]


def plot_curves(suite: Suite, path: str | Path, x: str = "step",
                metrics: Sequence[str] = HEADLINE_METRICS) -> Path | None:
    """Validation error over training, one panel per metric, one colour per series.

    Args:
        suite: the loaded suite.
        path: output PNG.
        x: ``"step"`` (training steps; mean over seeds with a band of ± one standard
            deviation where seeds share steps) or ``"train_time_s"`` (cumulative training
            wall-clock time, s; one line per seed, since seeds' times differ).
        metrics: ``validation.csv`` columns to draw.

    Returns:
        the PNG, or ``None`` when no ok run has validation rows with ``x``.
    """
    import pandas as pd

    curves: dict[str, list[Any]] = {}
    for run in suite.ok_runs():
        frame = run.validation()
        if frame is not None and x in frame.columns and frame[x].notna().any():
            curves.setdefault(run.series, []).append(frame)
    drawn = _curve_metrics(curves, metrics)
    if not drawn:
        return None
    plt = pyplot()
    styles = series_styles(suite.results)
    fig, axes = plt.subplots(1, len(drawn), figsize=(4.2 * len(drawn) + 1.8, 3.4), squeeze=False)
    for ax, metric in zip(axes[0], drawn):
        for series, frames in curves.items():
            frames = [f for f in frames if metric in f.columns and f[metric].notna().any()]
            if not frames:
                continue
            color, linestyle = styles[series]["color"], styles[series]["linestyle"]
            if x == "step":
                stats = pd.concat(frames).groupby("step")[metric].agg(["mean", "std", "count"]).reset_index()
                ax.plot(stats["step"], stats["mean"], color=color, linestyle=linestyle, marker="o", markersize=3,
                        label=series)
                band = stats[stats["count"] > 1]
                ax.fill_between(band["step"], band["mean"] - band["std"], band["mean"] + band["std"],
                                color=color, alpha=0.12, linewidth=0)
            else:
                for i, frame in enumerate(frames):
                    frame = frame.dropna(subset=[x, metric]).sort_values(x)
                    ax.plot(frame[x], frame[metric], color=color, linestyle=linestyle, marker="o", markersize=3,
                            alpha=0.85, label=series if i == 0 else None)
        ax.set_xlabel("training step" if x == "step" else "training wall-clock time (s)")
        ax.set_ylabel(METRIC_TITLES.get(metric, metric))
        ax.grid(True, alpha=0.3)
    legend_right(fig, axes[0])
    fig.suptitle("Validation error over training steps (mean ± std over seeds)" if x == "step"
                 else "Validation error over training wall-clock time (one line per seed)")
    fig.tight_layout()
    return save_figure(fig, Path(path))


def plot_bars(summary: Any, path: str | Path, results: Any,
              metrics: Sequence[str] = BAR_METRICS) -> Path | None:
    """Test error per series with a finished run: bars at the mean over seeds, error bars ± one std, dots per seed.

    Where the suite has a mean-face run, its error is a dotted reference line on each panel
    (what every encoder starts from); bars are coloured and hatched as :func:`series_styles`.

    Args:
        summary: :func:`~evaluation.report.tables.seed_summary` of the same metrics.
        path: output PNG.
        results: :attr:`Suite.results` (the per-seed dots; ok runs only).
        metrics: metrics to draw, one panel each.

    Returns:
        the PNG, or ``None`` when no series has a finite mean.
    """
    import numpy as np
    import pandas as pd

    styles = series_styles(results)
    summary = summary[summary["ok"] > 0]
    drawn = [m for m in metrics if f"{m}_mean" in summary.columns and summary[f"{m}_mean"].notna().any()]
    if not drawn:
        return None
    plt = pyplot()
    names = list(summary["series"])
    ok = results[results["status"] == "ok"]
    fig, axes = plt.subplots(1, len(drawn), figsize=(max(3.2, 0.75 * len(names) + 1.2) * len(drawn), 4.0),
                             squeeze=False)
    positions = np.arange(len(names))
    for ax, metric in zip(axes[0], drawn):
        means = summary[f"{metric}_mean"].to_numpy(dtype=float)
        stds = np.nan_to_num(summary[f"{metric}_std"].to_numpy(dtype=float))
        bars = ax.bar(positions, np.nan_to_num(means), yerr=stds, capsize=4,
                      color=[styles[n]["color"] for n in names], alpha=0.8, edgecolor="black", linewidth=0.5)
        for bar, name in zip(bars, names):
            bar.set_hatch(styles[name]["hatch"])
        start = summary.loc[summary["method"] == START_METHOD, f"{metric}_mean"].dropna()
        if len(start):
            ax.axhline(float(start.iloc[0]), color="black", linestyle=":", linewidth=1, label="mean face")
        for i, row in enumerate(summary.to_dict("records")):
            if not math.isfinite(row[f"{metric}_mean"]):
                note = "no geometry" if row["method"] in NO_GEOMETRY_METHODS else "no value"
                ax.text(i, 0, note, rotation=90, ha="center", va="bottom", fontsize=8, color="grey")
                continue
            if metric in ok.columns:
                seeds = pd.to_numeric(ok.loc[ok["series"] == row["series"], metric], errors="coerce").dropna()
                jitter = np.linspace(-0.15, 0.15, len(seeds)) if len(seeds) > 1 else np.zeros(len(seeds))
                ax.scatter(i + jitter, seeds, color="black", s=10, zorder=3)
        ax.set_xticks(positions)
        ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(METRIC_TITLES.get(metric, metric))
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("Test error (bar: mean over seeds, whisker: ± std, dots: seeds)")
    fig.tight_layout()
    return save_figure(fig, Path(path))


def plot_throughput_csv(csv_path: str | Path, path: str | Path) -> Path | None:
    """Renderer images/s against batch, by resolution and vertex count, from a ``renderers_<device>.csv``.

    Uses the renderer benchmark's own plot settings (the same figure ``mofa-bench bench
    report`` makes). Returns ``None`` when the CSV has no renderer-benchmark rows.
    """
    from evaluation.bench.renderers import RENDERERS_REPORT
    from evaluation.results import plot_throughput, read_csv

    frame = read_csv(csv_path)
    if "bench" not in frame.columns or "backend" not in frame.columns:
        return None
    reference = frame["backend"].astype(str).str.startswith("reference:")
    frame = frame[(frame["bench"] == RENDERERS_REPORT.name) & ~reference]
    if frame.empty:
        return None
    device = next((str(v) for c in ("device_name", "device") if c in frame.columns for v in frame[c].dropna()), "")
    return plot_throughput(frame, path, title=f"Renderer throughput, forward + backward ({device})",
                           **RENDERERS_REPORT.plot)
