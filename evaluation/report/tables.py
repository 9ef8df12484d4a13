"""The report's tables: test errors over seeds, and each renderer's paired difference to per_vertex.

Every error is lower-is-better. A run's test number is its mean over the test images
(``results.csv``); over seeds a configuration gets mean ± standard deviation (ddof 1).
Paired differences use the per-image rows of ``test_metrics.csv`` (matched on the test
``index``): for a renderer R and a seed s, ``d_s,i = E_R,s,i − E_per_vertex,s,i``; the
per-image difference ``d_i`` is its mean over the seeds both runs have, and the 95 %
confidence interval is the percentile bootstrap of ``mean_i d_i`` over test images.
The seed-to-seed spread of ``mean_i d_s,i`` is reported beside it (the interval does not
include it).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from evaluation.report.load import GROUP_KEYS, LANDMARK_LOSS_METHODS, REFERENCE_RENDERER, Suite
from evaluation.results.report import Column

__all__ = [
    "COST_COLUMNS",
    "HEADLINE_METRICS",
    "METRIC_TITLES",
    "NO_GEOMETRY_METHODS",
    "bootstrap_mean_ci",
    "cost_records",
    "decimals_for",
    "difference_records",
    "landmark_weight_text",
    "paired_differences",
    "seed_summary",
    "summary_records",
    "verdict",
]

#: The paper's three errors (Fig. 9/10).
HEADLINE_METRICS: tuple[str, ...] = ("photometric", "geometric_mm", "landmark_px")
#: Table titles of metrics (others print under their column name).
METRIC_TITLES: dict[str, str] = {
    "photometric": "photometric (RGB distance)",
    "geometric_mm": "geometric (mm)",
    "geometric_model_mm": "geometric, model space (mm)",
    "geometric_procrustes_mm": "geometric, Procrustes (mm)",
    "landmark_px": "landmark (px)",
    "landmark_px_68": "landmark, 68 points (px)",
    "landmark_nme": "landmark NME",
    "landmark_nme_68": "landmark NME, 68 points",
}
#: Methods without a face geometry (a code): their geometric and landmark errors print as ``–``.
NO_GEOMETRY_METHODS: frozenset[str] = frozenset({"conv_autoencoder"})
#: ``(results column, title, format)`` of the cost table, means over seeds.
COST_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("train_steps", "train steps", ",.0f"),
    ("train_wall_s", "train wall s", ",.1f"),
    ("samples_per_s", "train images/s", ",.1f"),
    ("inference_ms_per_image", "inference ms/image", ",.2f"),
    ("peak_mem_mb", "peak MiB", ",.0f"),
)
_DASH = "–"


def decimals_for(values: Sequence[float], spreads: Sequence[float] = ()) -> int:
    """Decimals for a column: three significant digits of its largest ``|value|``, or up to one more
    to show two of its smallest non-zero spread (standard deviation); 0 to 6, 3 without finite values."""

    def exponent(xs: Sequence[float], pick: Any) -> int | None:
        finite = [abs(x) for x in xs if x is not None and math.isfinite(x) and x != 0]
        return math.floor(math.log10(pick(finite))) if finite else None

    value_e, spread_e = exponent(values, max), exponent(spreads, min)
    if value_e is None and spread_e is None:
        return 3
    decimals = 2 - value_e if value_e is not None else 1 - spread_e
    if value_e is not None and spread_e is not None:
        decimals = max(decimals, min(1 - spread_e, decimals + 1))
    return int(min(6, max(0, decimals)))


def _signed(value: float, decimals: int) -> str:
    """``value`` with a sign and ``decimals`` decimals; a value that rounds to zero prints ``+0.0…``."""
    rounded = round(value, decimals)
    return f"{rounded if rounded != 0 else 0.0:+.{decimals}f}"


def _spread(std: float, decimals: int) -> str:
    """A standard deviation at ``decimals``; one that rounds to 0 but is not prints ``<0.0…1``."""
    if std > 0 and round(std, decimals) == 0:
        return f"<{10.0 ** -decimals:.{decimals}f}"
    return f"{std:.{decimals}f}"


def _numbers(frame: Any, column: str) -> Any:
    import pandas as pd

    return pd.to_numeric(frame[column], errors="coerce") if column in frame.columns else pd.Series(
        np.nan, index=frame.index)


def seed_summary(results: Any, metrics: Sequence[str] = HEADLINE_METRICS) -> Any:
    """Mean and standard deviation over seeds of each configuration's test means.

    Args:
        results: :attr:`Suite.results` (one row per run).
        metrics: metric columns to summarise.

    Returns:
        one row per series (report order): :data:`GROUP_KEYS`, ``series``, ``runs``
        (all of them), ``ok`` (status ok), and per metric ``<M>_mean``, ``<M>_std``
        (NaN with one seed) and ``<M>_n`` (seeds with a finite value); only ok runs count.
    """
    import pandas as pd

    out = []
    for series, group in results.groupby("series", sort=False):
        ok = group[group["status"] == "ok"]
        row: dict[str, Any] = {key: group[key].iloc[0] for key in GROUP_KEYS}
        row.update(series=series, runs=len(group), ok=len(ok))
        for metric in metrics:
            values = _numbers(ok, metric).dropna()
            row[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            row[f"{metric}_n"] = int(len(values))
        out.append(row)
    return pd.DataFrame(out)


def landmark_weight_text(row: dict[str, Any]) -> str:
    """A summary row's landmark weight as a table cell: ``–`` where it is not recorded or the method's loss has
    no landmark term."""
    weight = row["landmark_loss"]
    if row["method"] not in LANDMARK_LOSS_METHODS or weight is None or weight == "" or weight != weight:
        return _DASH
    return str(weight)


def summary_records(summary: Any, metrics: Sequence[str] = HEADLINE_METRICS) -> tuple[list[dict[str, str]],
                                                                                      tuple[Column, ...]]:
    """Formatted rows and columns of the test-error table (``mean ± std``; ``–`` where absent).

    A method without geometry (:data:`NO_GEOMETRY_METHODS`) prints ``–`` for every
    geometric and landmark metric, and one whose loss has no landmark term (not in
    :data:`~evaluation.report.load.LANDMARK_LOSS_METHODS`) ``–`` for the landmark weight.
    """
    decimals = {m: decimals_for(list(summary[f"{m}_mean"]), list(summary[f"{m}_std"])) for m in metrics}
    records = []
    for row in summary.to_dict("records"):
        record = {"series": row["series"], "encoder": row["encoder"] or _DASH,
                  "landmark_loss": landmark_weight_text(row), "seeds": f"{row['ok']}/{row['runs']}"}
        for m in metrics:
            mean, std, d = row[f"{m}_mean"], row[f"{m}_std"], decimals[m]
            if (row["method"] in NO_GEOMETRY_METHODS and m != "photometric") or not math.isfinite(mean):
                record[m] = _DASH
            else:
                record[m] = f"{mean:.{d}f}" + (f" ± {_spread(std, d)}" if math.isfinite(std) else "")
        records.append(record)
    columns = (Column("series", "method · renderer"), Column("encoder", "encoder"),
               Column("landmark_loss", "landmark loss"), Column("seeds", "seeds ok", "s"),
               *(Column(m, METRIC_TITLES.get(m, m), "s") for m in metrics))
    return records, columns


def cost_records(results: Any) -> tuple[list[dict[str, str]], tuple[Column, ...]]:
    """Formatted rows and columns of the cost table: :data:`COST_COLUMNS`, mean over a series' ok runs."""
    records = []
    for series, group in results.groupby("series", sort=False):
        ok = group[group["status"] == "ok"]
        record = {"series": series}
        for column, _, fmt in COST_COLUMNS:
            values = _numbers(ok, column).dropna()
            record[column] = format(float(values.mean()), fmt) if len(values) else _DASH
        records.append(record)
    columns = (Column("series", "method · renderer"), *(Column(c, title, "s") for c, title, _ in COST_COLUMNS))
    return records, columns


def bootstrap_mean_ci(values: np.ndarray, resamples: int = 1000, seed: int = 0,
                      level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` and its percentile-bootstrap confidence interval.

    Args:
        values: ``(I,)`` finite numbers (e.g. per-image differences).
        resamples: bootstrap resamples.
        seed: seed of ``numpy.random.default_rng``.
        level: coverage of the interval.

    Returns:
        ``(mean, low, high)``; NaN for no values.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(values.mean()), float(low), float(high)


def _per_image_differences(pairs: list[tuple[Any, Any]], metric: str) -> tuple[np.ndarray, list[float]]:
    """``(d_i over images, per-seed mean differences)`` of ``metric`` for ``(run, reference run)`` pairs."""
    import pandas as pd

    columns = []
    for run, ref in pairs:
        a, b = run.test_metrics(), ref.test_metrics()
        if a is None or b is None or metric not in a.columns or metric not in b.columns:
            continue
        merged = a[["index", metric]].merge(b[["index", metric]], on="index", suffixes=("", "_ref"))
        diff = pd.to_numeric(merged[metric], errors="coerce") - pd.to_numeric(merged[f"{metric}_ref"], errors="coerce")
        columns.append(pd.Series(diff.to_numpy(), index=merged["index"].to_numpy(), name=run.run_id))
    if not columns:
        return np.empty(0), []
    table = pd.concat(columns, axis=1)
    per_seed = [float(c.mean()) for c in columns if c.notna().any()]
    per_image = table.mean(axis=1, skipna=True).dropna().to_numpy()
    return per_image, per_seed


def paired_differences(suite: Suite, metrics: Sequence[str] = HEADLINE_METRICS,
                       reference: str = REFERENCE_RENDERER, resamples: int = 1000, seed: int = 0) -> Any:
    """Each renderer's difference to ``reference``, paired by method, encoder, landmark loss, seed and image.

    Args:
        suite: the loaded suite.
        metrics: per-image metric columns of ``test_metrics.csv``.
        reference: the renderer compared against.
        resamples: bootstrap resamples over test images.
        seed: bootstrap seed.

    Returns:
        one row per (method, encoder, landmark loss, renderer, metric) with a reference:
        ``series``, ``reference_series``, ``seeds`` (paired seeds), ``images`` (images with a
        difference), ``mean``, ``ci_low``, ``ci_high`` (95 %), ``seed_std`` (std over seeds
        of the per-seed mean difference; NaN with one seed). Lower is better: a CI
        entirely below 0 means the renderer's error is lower than the reference's.
    """
    import pandas as pd

    ok = [run for run in suite.ok_runs() if run.row["renderer"]]
    out = []
    configs = dict.fromkeys((r.row["method"], r.row["encoder"], r.row["landmark_loss"]) for r in ok)
    for method, encoder, landmark in configs:
        same = [r for r in ok
                if (r.row["method"], r.row["encoder"], r.row["landmark_loss"]) == (method, encoder, landmark)]
        refs = {r.row["seed"]: r for r in same if r.row["renderer"] == reference}
        if not refs:
            continue
        ref_series = next(iter(refs.values())).series
        renderers = dict.fromkeys(r.row["renderer"] for r in same if r.row["renderer"] != reference)
        for renderer in renderers:
            pairs = [(r, refs[r.row["seed"]]) for r in same if r.row["renderer"] == renderer and r.row["seed"] in refs]
            if not pairs:
                continue
            for metric in metrics:
                if method in NO_GEOMETRY_METHODS and metric != "photometric":
                    continue
                per_image, per_seed = _per_image_differences(pairs, metric)
                if per_image.size == 0:
                    continue
                mean, low, high = bootstrap_mean_ci(per_image, resamples, seed)
                out.append({"method": method, "encoder": encoder, "landmark_loss": landmark, "renderer": renderer,
                            "series": pairs[0][0].series, "reference_series": ref_series, "metric": metric,
                            "seeds": len(per_seed), "images": int(per_image.size), "mean": mean, "ci_low": low,
                            "ci_high": high,
                            "seed_std": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else math.nan})
    return pd.DataFrame(out, columns=["method", "encoder", "landmark_loss", "renderer", "series", "reference_series",
                                      "metric", "seeds", "images", "mean", "ci_low", "ci_high", "seed_std"])


def verdict(row: dict[str, Any], reference: str = REFERENCE_RENDERER) -> str:
    """``"<renderer> lower"``, ``"<reference> lower"`` or ``"no clear difference"`` from the 95 % CI."""
    if row["ci_high"] < 0:
        return f"{row['renderer']} lower"
    if row["ci_low"] > 0:
        return f"{reference} lower"
    return "no clear difference (CI includes 0)"


def difference_records(differences: Any, reference: str = REFERENCE_RENDERER) -> tuple[list[dict[str, str]],
                                                                                       tuple[Column, ...]]:
    """Formatted rows and columns of the paired-difference table."""
    records = []
    for row in differences.to_dict("records"):
        same = differences[differences["metric"] == row["metric"]]
        d = decimals_for(list(same["mean"]) + list(same["ci_high"]) + list(same["ci_low"]),
                         list(same["ci_high"] - same["ci_low"]))
        records.append({
            "series": row["series"], "versus": row["reference_series"],
            "metric": METRIC_TITLES.get(row["metric"], row["metric"]), "pairs": f"{row['seeds']} × {row['images']}",
            "mean": _signed(row["mean"], d), "ci": f"[{_signed(row['ci_low'], d)}, {_signed(row['ci_high'], d)}]",
            "seed_std": f"{row['seed_std']:.{d}f}" if math.isfinite(row["seed_std"]) else _DASH,
            "verdict": verdict(row, reference),
        })
    columns = (Column("series", "method · renderer"), Column("versus", "versus"), Column("metric", "metric"),
               Column("pairs", "seeds × images", "s"), Column("mean", "Δ mean", "s"), Column("ci", "95 % CI", "s"),
               Column("seed_std", "Δ std over seeds", "s"), Column("verdict", "verdict"))
    return records, columns

