"""A suite directory → ``report.md`` and a self-contained ``report.html`` (figures in ``report_figures/``).

:func:`build_report` lays the report out as blocks (:mod:`evaluation.report.document`):
the suite's runs and test set, runs that did not finish, the renderer comparison when
MoFA was trained through several renderers (:mod:`~evaluation.report.renderer_comparison`),
test errors over seeds, what
training learnt (each run against the mean face, also written as ``summary.csv``), each
renderer's paired difference to per_vertex, costs, then the figures — error curves over
steps and over wall-clock time, bars, the qualitative grid, vertex-error heat maps and
renderer throughput from benchmark CSVs. :func:`write_suite_report` writes both files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from evaluation.report.figures import BAR_METRICS, plot_bars, plot_curves, plot_throughput_csv
from evaluation.report.images import plot_qualitative, plot_vertex_errors
from evaluation.report.document import Block, Bullets, Figure, Heading, Paragraph, Table, figures_of, to_markdown
from evaluation.report.html import write_html
from evaluation.report.learning import START_METHOD, learning_records, learning_summary
from evaluation.report.load import REFERENCE_RENDERER, ReportError, Suite, load_suite_results
from evaluation.report.portable import export_suite_data
from evaluation.report.real import real_blocks
from evaluation.report.renderer_comparison import renderer_comparison_blocks
from evaluation.report.tables import (
    COST_COLUMNS,
    cost_records,
    difference_records,
    paired_differences,
    seed_summary,
    summary_records,
)
from evaluation.results.report import Column
from mofa_bench.scoring.validation import SCORING_RENDERER

__all__ = ["FIGURE_DIR", "ReportFiles", "build_report", "default_bench_csvs", "write_suite_report"]

#: Folder of the figures, inside the output folder.
FIGURE_DIR = "report_figures"
#: Metrics of the second error table, where the suite has them.
OTHER_METRICS: tuple[str, ...] = ("geometric_model_mm", "geometric_procrustes_mm", "landmark_px_68", "landmark_nme",
                                  "landmark_nme_68")


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_suite_report` wrote: ``report.md``, ``report.html`` and every figure PNG."""

    markdown: Path
    html: Path
    figures: tuple[Path, ...]


def default_bench_csvs(root: str | Path = ".") -> list[Path]:
    """``<root>/reports/bench/renderers_*.csv`` (the committed renderer benchmarks), sorted."""
    return sorted(Path(root).glob("reports/bench/renderers_*.csv"))


def _values(results: Any, column: str) -> list[str]:
    if column not in results.columns:
        return []
    out = []
    for value in results[column].dropna():
        text = f"{int(value)}" if isinstance(value, float) and value.is_integer() else str(value)
        if text and text not in out:
            out.append(text)
    return out


def _test_set(results: Any) -> str:
    sizes, seeds = _values(results, "test_size"), _values(results, "test_seed")
    size = " / ".join(sizes) or "an unrecorded number of"
    seed = f" (data seed {' / '.join(seeds)})" if seeds else ""
    return f"{size} test images{seed}"


def _overview(suite: Suite) -> list[Block]:
    results = suite.results
    counts = results["status"].value_counts().to_dict() if len(results) else {}
    status = ", ".join(f"{n} {s}" for s, n in counts.items()) or "none"
    runs = f"{len(results)} run" + ("s" if len(results) != 1 else "")
    lines = [f"Suite `{suite.name}`: {runs} ({status}).",
             f"Test set: {_test_set(results)}, the same images for every run."]
    protocols = _values(results, "protocol")
    if protocols:
        lines.append(f"Protocol: {', '.join(protocols)}.")
    env = [f"{label} {' / '.join(vals)}" for column, label in (("device", "device"), ("commit", "commit"),
                                                                 ("version_torch", "torch"))
           if (vals := _values(results, column))]
    if env:
        lines.append("Environment: " + " · ".join(env) + ".")
    return [Heading(f"Study report: {suite.name}", 1), Paragraph(" ".join(lines))]


def _unfinished(suite: Suite) -> list[Block]:
    bad = suite.results[suite.results["status"] != "ok"]
    if bad.empty:
        return []
    records = tuple({"run_id": r["run_id"], "series": r["series"], "seed": "" if r["seed"] is None else str(r["seed"]),
                     "status": r["status"], "error": r["error"] or "–"} for r in bad.to_dict("records"))
    columns = (Column("run_id", "run"), Column("series", "method · renderer"), Column("seed", "seed", "s"),
               Column("status", "status"), Column("error", "error"))
    return [Heading("Runs without results"),
            Paragraph("These runs are listed with their status and left out of every table and figure below."),
            Table(records, columns)]


def _errors(suite: Suite) -> list[Block]:
    summary = seed_summary(suite.results)
    records, columns = summary_records(summary)
    blocks: list[Block] = [
        Heading("Test errors"),
        Bullets((
            f"Each run's number is its mean over the {_test_set(suite.results)}; a cell gives mean ± standard "
            "deviation over the seeds that finished (no ± with one seed). Lower is better.",
            "Photometric error: mean RGB distance over the region the reconstruction covers (its mask), so a "
            "method covering less of the image is compared on less of it. Codes are drawn for it by one renderer "
            f"({SCORING_RENDERER}'s z-buffer) whatever the run trained through; the conv autoencoder's own "
            "images cover the whole image.",
            "Geometric error: mean posed vertex distance to the ground-truth face, mm; landmark error: mean 2D "
            "distance of the landmarks, px.",
            "The conv autoencoder has no geometry (it predicts pixels, not a face): its geometric and landmark "
            "errors are shown as –.",
        )),
        Table(tuple(records), columns),
    ]
    other = [m for m in OTHER_METRICS if m in suite.results.columns and suite.results[m].notna().any()]
    if other:
        records, columns = summary_records(seed_summary(suite.results, other), other)
        blocks += [Paragraph("Further metrics (same convention):"), Table(tuple(records), columns)]
    return blocks


def _learning(suite: Suite) -> list[Block]:
    """Each run's start (the mean face on the same test faces) beside its end: the paper's Fig. 10."""
    summary = learning_summary(suite.results)
    if summary.empty or not (suite.results["method"] == START_METHOD).any():
        return []
    records, columns = learning_records(summary)
    return [Heading("What training learnt"),
            Paragraph(f"Each run's test error at the start (the mean face, i.e. the zero code every encoder starts "
                      f"from, scored by the `{START_METHOD}` run on the same test faces) → at the end, and the "
                      f"ratio end / start (below 1: learnt). The same numbers are in `summary.csv`."),
            Table(tuple(records), columns)]


def _differences(suite: Suite, resamples: int, seed: int) -> list[Block]:
    diff = paired_differences(suite, resamples=resamples, seed=seed)
    blocks: list[Block] = [
        Heading(f"Renderers against {REFERENCE_RENDERER}"),
        Paragraph(f"Δ = error of the renderer − error of {REFERENCE_RENDERER}, paired on the same method, encoder, "
                  f"landmark loss, seed and test image (matched on the test `index`); per image, Δ is averaged over "
                  f"the paired seeds. The 95 % CI is a percentile bootstrap of the mean Δ over test images "
                  f"({resamples} resamples, bootstrap seed {seed}); it does not include seed-to-seed variation, "
                  f"shown separately. A CI entirely below 0 backs \"the renderer's error is lower\", entirely above "
                  f"0 the opposite; otherwise the data do not separate them."),
    ]
    if diff.empty:
        return blocks + [Paragraph(f"No run could be paired with a {REFERENCE_RENDERER} run of the same method, "
                                   f"encoder, landmark loss and seed (both ok, with test_metrics.csv).")]
    records, columns = difference_records(diff)
    return blocks + [Table(tuple(records), columns)]


def _costs(suite: Suite) -> list[Block]:
    present = [c for c, _, _ in COST_COLUMNS if c in suite.results.columns]
    if not present:
        return []
    records, columns = cost_records(suite.results)
    return [Heading("Cost"), Paragraph("Means over the finished seeds of each configuration."),
            Table(tuple(records), columns), *_decoder_fidelity(suite)]


def _decoder_fidelity(suite: Suite) -> list[Block]:
    """The learned decoders' drawing of the test codes against the analytic decoder's (Fig. 13 a)."""
    if "decoder_fidelity" not in suite.results.columns:
        return []
    rows = suite.results.dropna(subset=["decoder_fidelity"])
    if rows.empty:
        return []
    parts = [f"{row.run_id}: {row.decoder_fidelity:.3f} over the face{_untrained(row)}, "
             f"{row.decoder_fidelity_image:.3f} over the whole image" for row in rows.itertuples()]
    return [Paragraph("Learned decoder fidelity — mean RGB distance between the learned decoder's and the analytic "
                      "decoder's drawing of the test codes: " + "; ".join(parts) + ".")]


def _untrained(row: Any) -> str:
    """`` (untrained network: 0.506)`` where the row has the untrained network's fidelity."""
    start = getattr(row, "decoder_fidelity_start", math.nan)
    return "" if start is None or not math.isfinite(start) else f" (an untrained network: {start:.3f})"


def _figure_or_note(path: Path | None, caption: str, missing: str, kept: Path | None = None) -> list[Block]:
    """The figure; else ``kept``, the figure a report folder already holds (one its data cannot redraw); else a note."""
    if path is None and kept is not None and kept.is_file():
        path = kept
    return [Figure(path, caption)] if path is not None else [Paragraph(f"({missing})")]


def _figures(suite: Suite, fig_dir: Path, bench_csvs: Sequence[Path]) -> list[Block]:
    blocks: list[Block] = [Heading("Figures")]
    summary = seed_summary(suite.results, BAR_METRICS)
    no_curves = "no finished run wrote validation.csv"
    blocks += [Heading("Error over training", 3)]
    blocks += _figure_or_note(plot_curves(suite, fig_dir / "curves_step.png", x="step"),
                              "Validation error over training steps per configuration (mean ± std over seeds), as in "
                              "the paper's Fig. 9/10.", no_curves)
    blocks += _figure_or_note(plot_curves(suite, fig_dir / "curves_time.png", x="train_time_s"),
                              "Validation error against cumulative training wall-clock time (time to accuracy), one "
                              "line per seed.", "no validation.csv has train_time_s")
    blocks += [Heading("Test error", 3)]
    blocks += _figure_or_note(plot_bars(summary, fig_dir / "bars.png", suite.results),
                              "Test error per configuration: bar = mean over seeds, whisker = ± std, dots = seeds; "
                              "the dotted line is the mean face.",
                              "no finished run has test errors")
    blocks += [Heading("Qualitative results", 3)]
    blocks += _figure_or_note(plot_qualitative(suite, fig_dir / "qualitative.png"),
                              "First test images: input, then each configuration's reconstruction (first finished "
                              "seed) composited over the input with its mask.",
                              "no inputs.pt or no test_reconstructions.pt", kept=fig_dir / "qualitative.png")
    blocks += [Heading("Geometric error on the face", 3)]
    heat_map, notes = plot_vertex_errors(suite, fig_dir / "vertex_error.png")
    blocks += _figure_or_note(heat_map, "Mean posed per-vertex error over the test set (mean over seeds), coloured on "
                              "the mean face of the run's face model (lightly shaded so the shape shows); one colour "
                              "scale for all panels.",
                              "no finished run wrote vertex_error_mm.npy")
    if notes:
        blocks.append(Bullets(tuple(notes)))
    blocks += [Heading("Renderer throughput", 3)]
    drawn = 0
    for csv in bench_csvs:
        path = plot_throughput_csv(csv, fig_dir / f"throughput_{Path(csv).stem}.png")
        if path is not None:
            drawn += 1
            blocks.append(Figure(path, f"Renderer loss path (forward + backward) images/s against batch, by "
                                       f"resolution and vertex count, from `{Path(csv).name}`."))
    if not drawn:
        blocks.append(Paragraph("(no renderer benchmark CSV given; pass "
                                "`--bench reports/bench/renderers_<device>.csv`)"))
    return blocks


def build_report(suite: Suite, fig_dir: str | Path, bench_csvs: Sequence[str | Path] = (), resamples: int = 1000,
                 bootstrap_seed: int = 0) -> list[Block]:
    """Every block of the report, drawing its figures into ``fig_dir``.

    Args:
        suite: the loaded suite.
        fig_dir: folder for the figure PNGs.
        bench_csvs: renderer benchmark CSVs (``renderers_<device>.csv``) for throughput figures.
        resamples: bootstrap resamples of the paired differences.
        bootstrap_seed: their seed.
    """
    fig_dir = Path(fig_dir)
    if resamples < 1:
        raise ReportError(f"--resamples: expected ≥ 1, got {resamples}")
    return (_overview(suite) + _unfinished(suite) + renderer_comparison_blocks(suite, fig_dir, resamples, bootstrap_seed)
            + _errors(suite) + _learning(suite) + real_blocks(suite)
            + _differences(suite, resamples, bootstrap_seed)
            + _costs(suite) + _figures(suite, fig_dir, [Path(c) for c in bench_csvs]))


def write_suite_report(suite_dir: str | Path, out_dir: str | Path | None = None,
                 bench_csvs: Sequence[str | Path] | None = None, resamples: int = 1000,
                 bootstrap_seed: int = 0) -> ReportFiles:
    """Write ``report.md``, ``report.html`` and ``report_figures/*.png`` for a suite directory.

    Written elsewhere than the suite folder, the data the report was made from go beside it
    (:mod:`~evaluation.report.portable`: ``results.csv``, ``per_image.parquet``,
    ``curves.parquet``, ...), so the output folder is itself a folder this function
    rebuilds the report from; a report written into the suite folder leaves its files alone.

    Args:
        suite_dir: the suite's output folder.
        out_dir: where to write (default: ``suite_dir``).
        bench_csvs: renderer benchmark CSVs; ``None``: :func:`default_bench_csvs` of the
            current folder.
        resamples: bootstrap resamples; ``bootstrap_seed``: their seed.

    Raises:
        ReportError: ``suite_dir`` is not a suite output directory.
    """
    suite = load_suite_results(suite_dir)
    out = Path(out_dir) if out_dir is not None else Path(suite_dir)
    out.mkdir(parents=True, exist_ok=True)
    csvs = default_bench_csvs() if bench_csvs is None else list(bench_csvs)
    blocks = build_report(suite, out / FIGURE_DIR, csvs, resamples, bootstrap_seed)
    markdown = out / "report.md"
    markdown.write_text(to_markdown(blocks, out), encoding="utf-8")
    summary = learning_summary(suite.results)
    if not summary.empty and (suite.results["method"] == START_METHOD).any():
        summary.to_csv(out / "summary.csv", index=False)
    page = write_html(blocks, out / "report.html", f"Study report: {suite.name}")
    if out.resolve() != Path(suite_dir).resolve() or not (Path(suite_dir) / "runs").is_dir():
        export_suite_data(suite, out)  # not into a suite folder: its own results.csv stays the suite's
    return ReportFiles(markdown, page, tuple(figures_of(blocks)))
