"""The report's first section when a suite trains MoFA through several renderers: does the renderer matter?

:func:`renderer_comparison_blocks` answers on one screen, for every renderer × landmark
setting of the suite's MoFA runs (e.g. the ``renderers_cpu`` suite):

- a table (:func:`comparison_table`, also written as ``renderer_comparison.csv``): the
  final test errors, posed and model-space geometric (mm), photometric and landmark (px),
  each a mean with a 95 % interval over seeds *and* test images
  (:func:`bootstrap_seeds_images`); the training images/s, the training time, and the time
  each run took to reach a stated validation error (:func:`time_to_reach`);
- the validation error against training wall-clock time on a log axis
  (:func:`plot_error_against_time`), the mean face as a reference line;
- the table's errors as bars with their intervals (:func:`plot_comparison_bars`);
- the learning-signal heat map and the per-image fit curves of ``mofa-bench diagnose
  signal`` / ``fit-curves``, where the report folder holds them (``signal.png``,
  ``fit_curves.png``).

Renderers keep one colour in every figure (:mod:`evaluation.results.colors`); runs
without the landmark loss are dashed or hatched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.report.document import Block, Figure, Heading, Paragraph, Table
from evaluation.report.learning import START_METHOD
from evaluation.report.load import RENDERER_ORDER, Suite, SuiteRun
from evaluation.report.tables import METRIC_TITLES, decimals_for
from evaluation.results.colors import renderer_color
from evaluation.results.report import Column

__all__ = ["COMPARISON_METRICS", "ComparisonTarget", "bootstrap_seeds_images", "comparison_runs", "comparison_table",
           "plot_comparison_bars", "plot_error_against_time", "renderer_comparison_blocks", "time_to_reach"]

#: Test errors of the comparison, in column order.
COMPARISON_METRICS: tuple[str, ...] = ("geometric_mm", "geometric_model_mm", "photometric", "landmark_px")
#: Validation errors drawn against time.
CURVE_METRICS: tuple[str, ...] = ("geometric_mm", "geometric_model_mm", "landmark_px")
#: The method whose renderers are compared.
COMPARED_METHOD = "mofa"
#: Figures of ``mofa-bench diagnose`` shown when the report folder holds them: ``(file, caption)``.
DIAGNOSTIC_FIGURES: tuple[tuple[str, str], ...] = (
    ("signal.png", "Learning signal at the mean face (`mofa-bench diagnose signal`): per renderer × landmark "
                   "setting (rows) and code direction (columns), the correlation over test faces between the "
                   "loss gradient and the direction to the truth (1: a supervised regression's signal, 0: none)."),
    ("fit_curves.png", "Per-image optimisation from the mean face (`mofa-bench diagnose fit-curves`): test error "
                       "against Adam steps and against seconds per image, mean with 95 % intervals over faces; "
                       "solid with landmarks, dashed without."),
)


@dataclass(frozen=True)
class ComparisonTarget:
    """The stated error of the time-to-accuracy column.

    Attributes:
        metric: validation metric.
        fraction: the target is this fraction of the mean face's validation error (the
            error at step 0, where every encoder predicts the zero code).
    """

    metric: str = "geometric_mm"
    fraction: float = 0.75


def _landmarks_on(run: SuiteRun) -> bool:
    return str(run.row.get("landmark_loss", "")) not in ("0", "")


def comparison_runs(suite: Suite) -> dict[tuple[str, bool], list[SuiteRun]]:
    """``{(renderer, landmarks on): finished MoFA runs}``, renderers in report order, landmarks first.

    Empty unless the suite's finished MoFA runs use two or more renderers.
    """
    groups: dict[tuple[str, bool], list[SuiteRun]] = {}
    for run in suite.ok_runs():
        if run.row.get("method") == COMPARED_METHOD and run.row.get("renderer"):
            groups.setdefault((str(run.row["renderer"]), _landmarks_on(run)), []).append(run)
    if len({renderer for renderer, _ in groups}) < 2:
        return {}

    def order(key: tuple[str, bool]) -> tuple[int, str, bool]:
        renderer, landmarks = key
        known = list(RENDERER_ORDER)
        return (known.index(renderer) if renderer in known else len(known), renderer, not landmarks)

    return {key: groups[key] for key in sorted(groups, key=order)}


def bootstrap_seeds_images(table: np.ndarray, resamples: int = 1000, seed: int = 0,
                           level: float = 0.95) -> tuple[float, float, float]:
    """Mean of a seeds × images table and a percentile interval from resampling both.

    Each resample draws the seeds with replacement, and the test images with replacement
    (the same images for every seed drawn: the test set is shared), and averages the
    drawn cells; the interval thus covers seed-to-seed and image-to-image variation.

    Args:
        table: ``(S, I)`` per-image errors of ``S`` seeds on the same ``I`` test images
            (NaN where a seed has no value for an image).
        resamples: bootstrap resamples; ``seed``: their ``numpy.random.default_rng`` seed.
        level: coverage of the interval.

    Returns:
        ``(mean, low, high)``; NaN for an empty table.
    """
    table = np.asarray(table, dtype=np.float64)
    if table.ndim != 2 or table.size == 0 or not np.isfinite(table).any():
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    seeds, images = table.shape
    seed_draw = rng.integers(0, seeds, size=(resamples, seeds))
    image_draw = rng.integers(0, images, size=(resamples, images))
    drawn = table[seed_draw[:, :, None], image_draw[:, None, :]]  # (resamples, S, I)
    means = np.nanmean(drawn.reshape(resamples, -1), axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(means, [tail, 100 - tail])
    return float(np.nanmean(table)), float(low), float(high)


def _per_image_table(runs: Sequence[SuiteRun], metric: str) -> np.ndarray:
    """``(S, I)`` per-image ``metric`` of ``runs`` on their common test images (matched on ``index``)."""
    import pandas as pd

    columns = []
    for run in runs:
        frame = run.test_metrics()
        if frame is not None and metric in frame.columns:
            columns.append(pd.Series(pd.to_numeric(frame[metric], errors="coerce").to_numpy(),
                                     index=frame["index"].to_numpy()))
    if not columns:
        return np.empty((0, 0))
    return pd.concat(columns, axis=1, join="inner").to_numpy(dtype=np.float64).T


def _start_validation(groups: dict[tuple[str, bool], list[SuiteRun]], metric: str) -> float:
    """The mean face's validation error: the step-0 row of the compared runs (all score the zero code)."""
    values = []
    for runs in groups.values():
        for run in runs:
            frame = run.validation()
            if frame is not None and metric in frame.columns:
                start = frame.loc[frame["step"] == 0, metric].dropna()
                values.extend(float(v) for v in start)
    return float(np.mean(values)) if values else math.nan


def _test_errors(runs: Sequence[SuiteRun], resamples: int, seed: int) -> dict[str, Any]:
    """``images`` and, per metric of :data:`COMPARISON_METRICS`, ``<M>``, ``<M>_low``, ``<M>_high`` of ``runs``."""
    row: dict[str, Any] = {"images": 0}
    for metric in COMPARISON_METRICS:
        table = _per_image_table(runs, metric)
        row["images"] = max(row["images"], table.shape[1] if table.ndim == 2 else 0)
        row[metric], row[f"{metric}_low"], row[f"{metric}_high"] = bootstrap_seeds_images(table, resamples, seed)
    return row


def time_to_reach(validation: Any, metric: str, target: float) -> float:
    """Training seconds at which ``metric`` first falls to ``target``, linear between validations.

    Args:
        validation: a run's ``validation.csv`` frame (``train_time_s``, metrics).
        metric: the validation column.
        target: the error to reach.

    Returns:
        seconds, ``0.0`` if the first row is already at the target, NaN if never reached.
    """
    if validation is None or metric not in validation.columns or "train_time_s" not in validation.columns:
        return math.nan
    frame = validation.dropna(subset=["train_time_s", metric]).sort_values("train_time_s")
    times, errors = frame["train_time_s"].to_numpy(float), frame[metric].to_numpy(float)
    below = np.flatnonzero(errors <= target)
    if below.size == 0:
        return math.nan
    i = int(below[0])
    if i == 0:
        return float(times[0])
    t0, t1, e0, e1 = times[i - 1], times[i], errors[i - 1], errors[i]
    return float(t0 + (t1 - t0) * (e0 - target) / (e0 - e1))


def _run_number(run: SuiteRun, column: str) -> float:
    try:
        return float(run.row.get(column))
    except (TypeError, ValueError):
        return math.nan


def comparison_table(suite: Suite, target: ComparisonTarget = ComparisonTarget(), resamples: int = 1000,
                     seed: int = 0) -> Any:
    """One row per renderer × landmark setting of the suite's MoFA runs, then the mean face.

    Returns:
        a DataFrame: ``renderer``, ``landmarks`` (bool; ``None`` for the mean face),
        ``seeds``, ``images``; per metric of :data:`COMPARISON_METRICS` ``<M>``,
        ``<M>_low``, ``<M>_high`` (:func:`bootstrap_seeds_images`); ``samples_per_s`` and
        ``train_min`` (means over seeds); ``target_metric``, ``target`` (the stated
        error), ``reach_s`` (mean over the seeds that reached it, s), ``reached`` (how
        many did), ``best_validation`` (the lowest validation ``target_metric`` of any
        seed). Empty when the suite compares fewer than two renderers.
    """
    import pandas as pd

    groups = comparison_runs(suite)
    if not groups:
        return pd.DataFrame()
    goal = target.fraction * _start_validation(groups, target.metric)
    rows = []
    for (renderer, landmarks), runs in groups.items():
        row: dict[str, Any] = {"renderer": renderer, "landmarks": landmarks, "seeds": len(runs),
                               **_test_errors(runs, resamples, seed)}
        row["samples_per_s"] = float(np.nanmean([_run_number(r, "samples_per_s") for r in runs]))
        row["train_min"] = float(np.nanmean([_run_number(r, "train_wall_s") for r in runs])) / 60
        curves = [r.validation() for r in runs]
        reach = [time_to_reach(f, target.metric, goal) for f in curves]
        reached = [t for t in reach if math.isfinite(t)]
        best = [float(f[target.metric].min()) for f in curves if f is not None and target.metric in f.columns]
        row.update(target_metric=target.metric, target=goal, reach_s=float(np.mean(reached)) if reached else math.nan,
                   reached=len(reached), best_validation=min(best) if best else math.nan)
        rows.append(row)
    start = [run for run in suite.ok_runs() if run.row.get("method") == START_METHOD]
    if start:
        rows.append({"renderer": "mean face", "landmarks": None, "seeds": len(start),
                     **_test_errors(start[:1], resamples, seed)})
    return pd.DataFrame(rows)


def _setting(landmarks: Any) -> str:
    return "" if landmarks is None or landmarks != landmarks else ("on" if landmarks else "off")


def _records(table: Any) -> tuple[list[dict[str, str]], tuple[Column, ...]]:
    records = []
    decimals = {m: decimals_for(list(table[m].dropna())) for m in COMPARISON_METRICS}
    for row in table.to_dict("records"):
        record = {"renderer": row["renderer"], "landmarks": _setting(row["landmarks"]),
                  "seeds": f"{row['seeds']} × {row['images']}"}
        for metric in COMPARISON_METRICS:
            d = decimals[metric]
            record[metric] = (f"{row[metric]:.{d}f} [{row[f'{metric}_low']:.{d}f}, {row[f'{metric}_high']:.{d}f}]"
                              if math.isfinite(row[metric]) else "–")
        mean_face = row["landmarks"] is None or row["landmarks"] != row["landmarks"]
        record["samples_per_s"] = "–" if mean_face else f"{row['samples_per_s']:,.0f}"
        record["train_min"] = "–" if mean_face else f"{row['train_min']:.1f}"
        if mean_face:
            record["reach"] = "–"
        elif row["reached"]:
            record["reach"] = f"{row['reach_s'] / 60:.1f} min ({int(row['reached'])}/{int(row['seeds'])})"
        else:
            record["reach"] = f"not reached (best {row['best_validation']:.2f})"
        records.append(record)
    first = table.dropna(subset=["target"]).iloc[0]
    target = f"time to {METRIC_TITLES.get(first['target_metric'], first['target_metric'])} ≤ {first['target']:.2f}"
    columns = (Column("renderer", "renderer"), Column("landmarks", "landmarks"), Column("seeds", "seeds × images", "s"),
               *(Column(m, METRIC_TITLES.get(m, m) + " [95 %]", "s") for m in COMPARISON_METRICS),
               Column("samples_per_s", "train images/s", "s"), Column("train_min", "train min", "s"),
               Column("reach", target, "s"))
    return records, columns


def _style(renderer: str, landmarks: bool) -> dict[str, Any]:
    return {"color": renderer_color(renderer) or "tab:gray", "linestyle": "-" if landmarks else "--"}


def _label(renderer: str, landmarks: bool) -> str:
    return f"{renderer}, {'landmarks' if landmarks else 'no landmarks'}"


def plot_error_against_time(suite: Suite, path: str | Path, target: ComparisonTarget = ComparisonTarget(),
                            metrics: Sequence[str] = CURVE_METRICS) -> Path | None:
    """Validation error of every compared run against its training wall-clock time (log axis).

    One line per run (seed), its renderer's colour, dashed without landmarks; the mean
    face's error (step 0) a dotted black line; on the target metric's panel the stated
    error a grey dash-dot line. Returns the PNG, or ``None`` when no run has validation rows.
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter

    from evaluation.report.figures import legend_right, pyplot, save_figure

    groups = comparison_runs(suite)
    frames = {key: [f for r in runs if (f := r.validation()) is not None and "train_time_s" in f.columns]
              for key, runs in groups.items()}
    drawn = [m for m in metrics if any(m in f.columns and f[m].notna().any() for fs in frames.values() for f in fs)]
    if not drawn:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(drawn), figsize=(4.3 * len(drawn), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], drawn):
        for (renderer, landmarks), runs in frames.items():
            for i, frame in enumerate(f for f in runs if metric in f.columns):
                shown = frame[frame["train_time_s"] > 0].dropna(subset=[metric]).sort_values("train_time_s")
                ax.plot(shown["train_time_s"] / 60, shown[metric], marker="o", markersize=2.5, alpha=0.85,
                        label=_label(renderer, landmarks) if i == 0 else None, **_style(renderer, landmarks))
        start = _start_validation(groups, metric)
        if math.isfinite(start):
            ax.axhline(start, color="black", linestyle=":", linewidth=1, label="mean face")
        if metric == target.metric and math.isfinite(start):
            ax.axhline(target.fraction * start, color="grey", linestyle="-.", linewidth=1,
                       label=f"stated error ({target.fraction:g} × mean face)")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training wall-clock (min, log)")
        ax.set_ylabel(METRIC_TITLES.get(metric, metric))
        ax.grid(True, which="both", alpha=0.3)
    legend_right(fig, axes[0])
    fig.suptitle("MoFA through each renderer: validation error against training time (one line per seed)")
    fig.tight_layout()
    return save_figure(fig, Path(path))


def plot_comparison_bars(table: Any, path: str | Path) -> Path | None:
    """The comparison table's test errors as bars with their 95 % intervals, the mean face as a dotted line.

    Returns the PNG, or ``None`` for an empty table.
    """
    from evaluation.report.figures import pyplot, save_figure

    if table.empty:
        return None
    trained = table[table["renderer"] != "mean face"]
    start = table[table["renderer"] == "mean face"]
    metrics = [m for m in COMPARISON_METRICS if trained[m].notna().any()]
    if not metrics:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.3 * len(metrics), 3.8), squeeze=False)
    positions = np.arange(len(trained))
    names = [_label(r, bool(lm)) for r, lm in zip(trained["renderer"], trained["landmarks"])]
    for panel, (ax, metric) in enumerate(zip(axes[0], metrics)):
        means = trained[metric].to_numpy(float)
        errors = np.vstack([means - trained[f"{metric}_low"].to_numpy(float),
                            trained[f"{metric}_high"].to_numpy(float) - means])
        bars = ax.bar(positions, np.nan_to_num(means), yerr=np.nan_to_num(errors), capsize=4, edgecolor="black",
                      linewidth=0.5, alpha=0.85,
                      color=[_style(r, True)["color"] for r in trained["renderer"]])
        for bar, landmarks in zip(bars, trained["landmarks"]):
            bar.set_hatch(None if landmarks else "//")
        if len(start) and math.isfinite(float(start[metric].iloc[0])):
            ax.axhline(float(start[metric].iloc[0]), color="black", linestyle=":", linewidth=1, label="mean face")
            if panel == 0:
                ax.legend(fontsize=7, loc="lower right")
        ax.set_xticks(positions)
        ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
        ax.set_title(METRIC_TITLES.get(metric, metric), fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("Test error after equal training budgets (bar: mean, whisker: 95 % interval over seeds and images; "
                 "hatched: no landmarks)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, Path(path))


def _renderer_options(groups: dict[tuple[str, bool], list[SuiteRun]]) -> str:
    parts = []
    for renderer in dict.fromkeys(r for r, _ in groups):
        config = next((c for (r, _), runs in groups.items() if r == renderer for run in runs
                       if (c := run.config()) is not None), None)
        section = (config or {}).get("renderer") or {}
        options = section.get("options") or {}
        name = section.get("name", renderer)
        text = ", ".join(f"{k} {v}" for k, v in options.items())
        parts.append(f"`{renderer}` = {name}" + (f" ({text})" if text else ""))
    return "; ".join(parts)


def renderer_comparison_blocks(suite: Suite, fig_dir: str | Path, resamples: int = 1000, seed: int = 0,
                               target: ComparisonTarget = ComparisonTarget()) -> list[Block]:
    """The "Renderer comparison" section (empty when the suite compares fewer than two renderers).

    Draws its figures into ``fig_dir``, writes ``renderer_comparison.csv`` beside that
    folder (the report folder) and shows ``signal.png`` / ``fit_curves.png`` from the
    report folder when they are there.
    """
    fig_dir = Path(fig_dir)
    table = comparison_table(suite, target, resamples, seed)
    if table.empty:
        return []
    out = fig_dir.parent
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "renderer_comparison.csv", index=False)
    records, columns = _records(table)
    groups = comparison_runs(suite)
    blocks: list[Block] = [
        Heading("Renderer comparison"),
        Paragraph("MoFA trained through each renderer, with and without the landmark loss, on the same training "
                  "faces and scored on the same test faces. Renderers: " + _renderer_options(groups) + ". "
                  "Errors are means over seeds and test images with a 95 % percentile-bootstrap interval that "
                  f"resamples both ({resamples} resamples, seed {seed}); lower is better. Training images/s and "
                  "minutes are the runs' own (training steps only, drawing the training faces included). The "
                  f"last column is when the validation {METRIC_TITLES.get(target.metric, target.metric)} first "
                  f"reached {target.fraction:g} × the mean face's (linear between validations; mean over the seeds "
                  "that reached it). The same numbers are in `renderer_comparison.csv`; paired per-image "
                  "differences to per_vertex follow below."),
        Table(tuple(records), columns),
    ]
    curve = plot_error_against_time(suite, fig_dir / "renderers_error_time.png", target)
    if curve is not None:
        blocks.append(Figure(curve, "Validation error against training wall-clock time (log axis), one line per "
                                    "seed; the dotted line is the mean face, the dash-dot line the stated error."))
    bars = plot_comparison_bars(table, fig_dir / "renderers_bars.png")
    if bars is not None:
        blocks.append(Figure(bars, "The table's test errors: bar = mean, whisker = 95 % interval over seeds and "
                                   "test images; dotted line = mean face."))
    for name, caption in DIAGNOSTIC_FIGURES:
        if (out / name).is_file():
            blocks.append(Figure(out / name, caption))
    return blocks
