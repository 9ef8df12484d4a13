"""Tests for evaluation.report: a small suite directory built here → tables, figures, report.md/.html.

The suite: MoFA with per_vertex and pytorch3d over seeds 0 and 1 (pytorch3d's photometric
error clearly lower on every test image, its geometric error the same up to symmetric
noise), one conv-autoencoder run and one errored nvdiffrast run. Per-run files follow the
suite layout: status.json, cell.json, config.yaml, validation.csv, test_metrics.csv,
test_reconstructions.pt, vertex_error_mm.npy; inputs.pt and results.csv at the top.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from evaluation.report import (ReportError, bootstrap_mean_ci, load_suite_results, paired_differences, seed_summary,
                               write_suite_report)
from evaluation.report.document import Figure, Heading, Paragraph, Table, to_markdown
from evaluation.report.html import inline, to_html
from evaluation.report.load import series_labels
from evaluation.report.tables import decimals_for, landmark_weight_text
from evaluation.results import Column, write_csv

TEST_IMAGES = 20
IMAGE_SIZE = 32
TEST_START = 2_000_000_000
METRICS = ("photometric", "geometric_mm", "landmark_px")
CHROMIUM = Path("/usr/bin/chromium")


def _per_image(renderer: str, method: str, seed: int) -> dict[str, np.ndarray]:
    """Per-image errors: pytorch3d 0.03 below per_vertex photometrically; geometry equal up to ±0.2 mm."""
    rng = np.random.default_rng(100 + seed)
    base = 0.10 + 0.01 * rng.standard_normal(TEST_IMAGES)
    geometry = 2.0 + 0.3 * rng.standard_normal(TEST_IMAGES)
    landmarks = 3.0 + 0.5 * rng.standard_normal(TEST_IMAGES)
    swing = np.where(np.arange(TEST_IMAGES) % 2 == 0, 0.2, -0.2)
    if method == "conv_autoencoder":
        return {"photometric": base + 0.05}
    if renderer == "pytorch3d":
        return {"photometric": base - 0.03 + 0.001 * swing, "geometric_mm": geometry + swing,
                "landmark_px": landmarks + swing}
    return {"photometric": base, "geometric_mm": geometry, "landmark_px": landmarks}


RUNS = [  # (method, renderer, seed, status)
    ("mofa", "per_vertex", 0, "ok"), ("mofa", "per_vertex", 1, "ok"),
    ("mofa", "pytorch3d", 0, "ok"), ("mofa", "pytorch3d", 1, "ok"),
    ("mofa", "nvdiffrast", 0, "error"),
    ("conv_autoencoder", "per_vertex", 0, "ok"),
]
ERROR_TEXT = "RendererUnavailableError: nvdiffrast runs on CUDA devices only"


def make_suite(root: Path, model_path: Path, num_vertices: int) -> Path:
    """Write the small suite described in the module docstring under ``root``; returns ``root``."""
    from mofa_bench.config import config_from_dict, config_to_dict

    rows = []
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE, generator=g)
    root.mkdir(parents=True, exist_ok=True)
    torch.save({"images": images, "indices": torch.arange(TEST_START, TEST_START + 2)}, root / "inputs.pt")
    for method, renderer, seed, status in RUNS:
        run_id = f"{method}-{renderer}-resnet18-land1-s{seed}"
        run = root / "runs" / run_id
        run.mkdir(parents=True)
        cell = {"method": method, "renderer": renderer, "encoder": "resnet18", "landmark_loss": 1.0, "seed": seed}
        (run / "cell.json").write_text(json.dumps({"run_id": run_id, "values": cell, "overrides": {},
                                                   "protocol": "synthetic-32px-L1", "test_size": TEST_IMAGES,
                                                   "test_seed": 1234}))
        error = ERROR_TEXT if status == "error" else None
        (run / "status.json").write_text(json.dumps({"status": status, "error": error,
                                                     "started": "2026-01-01T00:00:00Z", "finished": None}))
        row = {"run_id": run_id, **cell, "protocol": "synthetic-32px-L1", "status": status,
               "error": ERROR_TEXT if status == "error" else "", "test_size": TEST_IMAGES, "test_seed": 1234,
               "device": "cpu", "commit": "abc1234"}
        if status == "ok":
            config = config_from_dict({"method": method, "renderer": {"name": "per_vertex"},
                                       "model": {"source": str(model_path)}, "camera": {"image_size": 64}})
            (run / "config.yaml").write_text(yaml.safe_dump(config_to_dict(config)))
            errors = _per_image(renderer, method, seed)
            write_csv([{"index": TEST_START + i, **{m: float(v[i]) for m, v in errors.items()}}
                       for i in range(TEST_IMAGES)], run / "test_metrics.csv")
            write_csv([{"step": step, "train_time_s": step * (0.5 if renderer == "per_vertex" else 0.8) + seed,
                        **{m: float(v.mean()) * (1 + 1.0 / (1 + step)) for m, v in errors.items()}}
                       for step in (0, 10, 20, 30)], run / "validation.csv")
            mask = torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE)
            mask[..., 8:24, 10:22] = 1
            torch.save({"image": torch.full((2, 3, IMAGE_SIZE, IMAGE_SIZE), 0.8) * mask, "mask": mask},
                       run / "test_reconstructions.pt")
            if method != "conv_autoencoder":
                ramp = np.linspace(0.5, 4.0 + seed, num_vertices, dtype=np.float32)
                np.save(run / "vertex_error_mm.npy", ramp)
            for m, v in errors.items():
                row.update({m: float(v.mean()), f"{m}_ci_low": float(v.mean()) - 0.01,
                            f"{m}_ci_high": float(v.mean()) + 0.01})
            row.update(train_steps=30, train_wall_s=15.0 + seed, samples_per_s=40.0, inference_ms_per_image=2.5,
                       peak_mem_mb=300.0)
        rows.append(row)
    write_csv(rows, root / "results.csv")
    return root


def make_bench_csv(path: Path) -> Path:
    """A tiny renderers benchmark CSV (two backends, two batches, one cell size, one reference row)."""
    rows = [{"bench": "renderers", "backend": "reference:alexnet", "device": "cpu", "batch": 64, "resolution": 240,
             "fwdbwd_ms": 2000.0, "images_per_s": 30.0, "status": "ok", "note": ""}]
    for backend, speed in (("per_vertex", 400.0), ("pytorch3d", 90.0)):
        for batch in (1, 8):
            rows.append({"bench": "renderers", "backend": backend, "device": "cpu", "batch": batch, "resolution": 128,
                         "level": 1, "vertices": 1833, "fwd_ms": 1.0, "fwdbwd_ms": 2.0,
                         "images_per_s": speed * batch ** 0.5, "status": "ok", "note": ""})
    return write_csv(rows, path)


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Path:
    from mofa_bench.face_model.model import FaceModel

    n = FaceModel.load(tiny_model_path).num_vertices
    return make_suite(tmp_path_factory.mktemp("suite") / "quick", tiny_model_path, n)


@pytest.fixture(scope="module")
def report(suite_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    bench = make_bench_csv(tmp_path_factory.mktemp("bench") / "renderers_cpu.csv")
    return write_suite_report(suite_dir, bench_csvs=[bench])


def bootstrap_reference(values: np.ndarray, resamples: int, seed: int) -> tuple[float, float, float]:
    """One resample at a time: the obviously right version of bootstrap_mean_ci."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(resamples, len(values)))
    means = [float(np.mean([values[j] for j in row])) for row in draws]
    return float(np.mean(values)), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


class TestLoadSuite:
    def test_every_run_is_listed_with_its_status(self, suite_dir):
        suite = load_suite_results(suite_dir)
        assert len(suite.runs) == len(RUNS)
        errored = [run for run in suite.runs.values() if run.status == "error"]
        assert [run.row["renderer"] for run in errored] == ["nvdiffrast"]
        assert ERROR_TEXT in errored[0].row["error"]
        assert errored[0].test_metrics() is None

    def test_series_name_the_configuration_without_the_seed(self, suite_dir):
        suite = load_suite_results(suite_dir)
        assert suite.series_order() == ["MoFA · per_vertex", "MoFA · pytorch3d", "MoFA · nvdiffrast",
                                        "conv autoencoder"]
        assert list(suite.results["landmark_loss"].unique()) == ["1"]

    def test_run_missing_from_results_csv_is_read_from_its_directory(self, tmp_path, suite_dir):
        copy = tmp_path / "suite"
        shutil.copytree(suite_dir, copy)
        frame = pd.read_csv(copy / "results.csv")
        frame[frame["renderer"] != "nvdiffrast"].to_csv(copy / "results.csv", index=False)
        run = load_suite_results(copy).runs["mofa-nvdiffrast-resnet18-land1-s0"]
        assert (run.status, run.row["renderer"], run.row["seed"]) == ("error", "nvdiffrast", 0)
        assert ERROR_TEXT in run.row["error"]

    def test_exception_not_a_suite_directory(self, tmp_path):
        with pytest.raises(ReportError, match="not a suite output directory"):
            load_suite_results(tmp_path)

    def test_exception_suite_without_runs(self, tmp_path):
        (tmp_path / "runs").mkdir()
        with pytest.raises(ReportError, match="has no runs yet"):
            load_suite_results(tmp_path)


class TestTables:
    def test_seed_summary_is_mean_and_std_over_ok_seeds(self, suite_dir):
        summary = seed_summary(load_suite_results(suite_dir).results).set_index("series")
        means = [_per_image("per_vertex", "mofa", s)["photometric"].mean() for s in (0, 1)]
        row = summary.loc["MoFA · per_vertex"]
        assert row["photometric_mean"] == pytest.approx(np.mean(means))
        assert row["photometric_std"] == pytest.approx(np.std(means, ddof=1))
        assert (row["ok"], row["runs"]) == (2, 2)
        assert summary.loc["MoFA · nvdiffrast", "ok"] == 0
        assert math.isnan(summary.loc["MoFA · nvdiffrast", "photometric_mean"])
        assert math.isnan(summary.loc["conv autoencoder", "geometric_mm_mean"])

    def test_bootstrap_matches_reference(self):
        values = np.random.default_rng(3).standard_normal(15)
        np.testing.assert_allclose(bootstrap_mean_ci(values, resamples=200, seed=7),
                                   bootstrap_reference(values, 200, 7))

    def test_bootstrap_of_no_values_is_nan(self):
        assert all(math.isnan(v) for v in bootstrap_mean_ci(np.empty(0)))

    def test_clearly_better_renderer_has_ci_below_zero(self, suite_dir):
        diff = paired_differences(load_suite_results(suite_dir)).set_index(["renderer", "metric"])
        photo = diff.loc[("pytorch3d", "photometric")]
        assert (photo["seeds"], photo["images"]) == (2, TEST_IMAGES)
        assert photo["mean"] == pytest.approx(-0.03, abs=1e-9)
        assert photo["ci_high"] < 0
        geometry = diff.loc[("pytorch3d", "geometric_mm")]
        assert geometry["mean"] == pytest.approx(0.0, abs=1e-9)
        assert geometry["ci_low"] < 0 < geometry["ci_high"]

    def test_only_renderers_with_a_reference_run_are_paired(self, suite_dir):
        diff = paired_differences(load_suite_results(suite_dir))
        assert set(diff["renderer"]) == {"pytorch3d"}
        assert set(diff["method"]) == {"mofa"}

    def test_decimals_give_three_significant_digits_and_two_of_the_spread(self):
        assert decimals_for([0.0512, 0.04]) == 4
        assert decimals_for([2.35]) == 2
        assert decimals_for([123.4]) == 0
        assert decimals_for([math.nan]) == 3
        assert decimals_for([0.15, 0.1], [0.0019, 0.02]) == 4
        assert decimals_for([2.0], [0.5]) == 2
        assert decimals_for([0.256], [0.00005]) == 4
        assert decimals_for([], [0.02]) == 3


def test_summary_prints_a_spread_below_its_decimals_as_an_upper_bound():
    from evaluation.report.tables import summary_records

    summary = pd.DataFrame([{"method": "mofa", "series": "MoFA · per_vertex", "encoder": "resnet18",
                             "landmark_loss": "1", "runs": 2, "ok": 2, "photometric_mean": 0.2556,
                             "photometric_std": 0.00001, "photometric_n": 2}])
    records, _ = summary_records(summary, ("photometric",))
    assert records[0]["photometric"] == "0.2556 ± <0.0001"


class TestDocument:
    def test_markdown_links_figures_relative_to_the_report(self, tmp_path):
        blocks = [Heading("T", 1), Paragraph("a `b`"), Figure(tmp_path / "f" / "x.png", "cap"),
                  Table(({"a": "1"},), (Column("a", "A", "s"), Column("b", "B")))]
        text = to_markdown(blocks, tmp_path)
        assert "# T\n" in text and "![cap](f/x.png)" in text
        assert "| A | B |\n|---:|:---|\n| 1 | – |" in text

    def test_html_escapes_text_and_marks_code(self):
        assert inline("a < b `x` **y**") == "a &lt; b <code>x</code> <strong>y</strong>"

    def test_html_right_aligns_formatted_columns(self):
        page = to_html([Table(({"a": "1.0", "b": "x"},), (Column("a", "A", "s"), Column("b", "B")))], "t")
        assert '<td class="num">1.0</td><td>x</td>' in page


class TestHeatMaps:
    def test_constant_error_colours_every_covered_pixel_alike_over_white(self, suite_dir):
        import matplotlib

        from evaluation.report.images import mean_face_heat_map

        run = load_suite_results(suite_dir).runs["mofa-per_vertex-resnet18-land1-s0"]
        errors = np.full(run.vertex_error_mm().shape, 3.0)
        cmap, norm = matplotlib.colormaps["viridis"], matplotlib.colors.Normalize(0.0, 3.0)
        picture = mean_face_heat_map(run.config(), errors, cmap, norm, min_size=64, shade=0.0)
        assert picture.shape == (64, 64, 3)
        white = np.all(picture == 1.0, axis=-1)
        face = ~white
        assert 0.1 < face.mean() < 0.9
        assert white[0, 0] and face[32, 32]
        np.testing.assert_allclose(picture[32, 32], cmap(1.0)[:3], atol=1e-6)

    def test_shading_darkens_at_most_by_its_share(self, suite_dir):
        import matplotlib

        from evaluation.report.images import mean_face_heat_map

        run = load_suite_results(suite_dir).runs["mofa-per_vertex-resnet18-land1-s0"]
        errors = np.full(run.vertex_error_mm().shape, 3.0)
        cmap, norm = matplotlib.colormaps["viridis"], matplotlib.colors.Normalize(0.0, 3.0)
        flat = mean_face_heat_map(run.config(), errors, cmap, norm, min_size=64, shade=0.0)
        shaded = mean_face_heat_map(run.config(), errors, cmap, norm, min_size=64, shade=0.4)
        face = ~np.all(flat == 1.0, axis=-1)
        ratio = shaded[face] / flat[face]
        assert ratio.min() >= 0.6 - 1e-6 and ratio.max() <= 1 + 1e-6
        assert ratio.max() > 0.95 and ratio.min() < 0.9

    def test_exception_vertex_count_differs_from_the_model(self, suite_dir):
        import matplotlib

        from evaluation.report.images import mean_face_heat_map

        run = load_suite_results(suite_dir).runs["mofa-per_vertex-resnet18-land1-s0"]
        with pytest.raises(ReportError, match="3 values"):
            mean_face_heat_map(run.config(), np.ones(3), matplotlib.colormaps["viridis"],
                               matplotlib.colors.Normalize(0.0, 1.0))

    def test_series_without_config_borrows_another_runs_model(self, suite_dir, tmp_path):
        from evaluation.report.images import plot_vertex_errors

        copy = tmp_path / "suite"
        shutil.copytree(suite_dir, copy)
        for seed in (0, 1):
            (copy / "runs" / f"mofa-per_vertex-resnet18-land1-s{seed}" / "config.yaml").unlink()
        path, notes = plot_vertex_errors(load_suite_results(copy), tmp_path / "heat.png", min_size=64)
        assert path is not None and notes == []
        assert _decoded_png(path.read_bytes()).width > 100

    def test_no_config_anywhere_is_noted(self, suite_dir, tmp_path):
        from evaluation.report.images import plot_vertex_errors

        copy = tmp_path / "suite"
        shutil.copytree(suite_dir, copy)
        for config in copy.glob("runs/*/config.yaml"):
            config.unlink()
        path, notes = plot_vertex_errors(load_suite_results(copy), tmp_path / "heat.png")
        assert path is None
        assert notes == [f"{s}: no heat map (no run of the suite has a config.yaml)"
                         for s in ("MoFA · per_vertex", "MoFA · pytorch3d")]


def _decoded_png(data: bytes):
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image


class TestWriteReport:
    FIGURES = ("renderers_error_time.png", "renderers_bars.png", "curves_step.png", "curves_time.png", "bars.png",
               "qualitative.png", "vertex_error.png", "throughput_renderers_cpu.png")

    def test_every_figure_exists_and_decodes(self, report):
        names = [path.name for path in report.figures]
        assert names == list(self.FIGURES)
        for path in report.figures:
            image = _decoded_png(path.read_bytes())
            assert image.width > 100 and image.height > 100

    def test_html_embeds_every_figure_and_loads_nothing_else(self, report):
        page = report.html.read_text()
        sources = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
        assert [base64.b64decode(s) for s in sources] == [p.read_bytes() for p in report.figures]
        assert not re.search(r'(src|href)="(?!data:)', page)
        assert "<link" not in page and "<script" not in page

    def test_tables_hold_the_numbers(self, report, suite_dir):
        text = report.markdown.read_text()
        summary = seed_summary(load_suite_results(suite_dir).results).set_index("series")
        row = summary.loc["MoFA · pytorch3d"]
        assert f"{row['photometric_mean']:.4f} ± {row['photometric_std']:.4f}" in text
        assert re.search(r"\| conv autoencoder \| resnet18 \| – \| 1/1 \| [0-9.]+ \| – \| – \|", text)
        assert re.search(r"\| MoFA · pytorch3d \| MoFA · per_vertex \| photometric \(RGB distance\) \| 2 × 20 \| "
                         r"-0\.0300\d? \| \[-0\.\d+, -0\.\d+\] \|.*\| pytorch3d lower \|", text)
        assert re.search(r"\| MoFA · pytorch3d \| MoFA · per_vertex \| geometric \(mm\) \|.*no clear difference",
                         text)

    def test_report_states_test_set_region_and_missing_geometry(self, report):
        text = report.markdown.read_text()
        assert f"{TEST_IMAGES} test images (data seed 1234)" in text
        assert "over the region the reconstruction covers" in text
        assert "conv autoencoder has no geometry" in text
        assert "1000 resamples, bootstrap seed 0" in text

    def test_errored_run_is_shown_with_its_error(self, report):
        text = report.markdown.read_text()
        assert "## Runs without results" in text
        assert re.search(r"\| mofa-nvdiffrast-resnet18-land1-s0 \| MoFA · nvdiffrast \| 0 \| error \| "
                         + re.escape(ERROR_TEXT), text)

    def test_markdown_links_every_figure(self, report):
        text = report.markdown.read_text()
        for name in self.FIGURES:
            assert f"(report_figures/{name})" in text


def test_suite_with_only_a_running_run_still_reports(tmp_path):
    run = tmp_path / "runs" / "mofa-per_vertex-resnet18-land1-s0"
    run.mkdir(parents=True)
    values = {"method": "mofa", "renderer": "per_vertex", "encoder": "resnet18", "landmark_loss": 1.0, "seed": 0}
    (run / "cell.json").write_text(json.dumps({"run_id": run.name, "values": values}))
    (run / "status.json").write_text(json.dumps({"status": "running", "error": None}))
    files = write_suite_report(tmp_path, bench_csvs=[])
    text = files.markdown.read_text()
    assert "1 run (1 running)" in text
    assert "| mofa-per_vertex-resnet18-land1-s0 | MoFA · per_vertex | 0 | running | – |" in text
    assert files.figures == ()
    assert "<img" not in files.html.read_text()


class TestCommand:
    def test_cli_writes_the_report_into_out(self, suite_dir, tmp_path, capsys):
        from mofa_bench.cli import main

        bench = make_bench_csv(tmp_path / "renderers_cpu.csv")
        assert main(["report", str(suite_dir), "--out", str(tmp_path / "out"), "--bench", str(bench),
                     "--resamples", "200"]) == 0
        assert (tmp_path / "out" / "report.html").is_file()
        assert "200 resamples" in (tmp_path / "out" / "report.md").read_text()
        assert "8 figures embedded" in capsys.readouterr().out

    def test_cli_reports_a_directory_that_is_not_a_suite(self, tmp_path, capsys):
        from mofa_bench.cli import main

        assert main(["report", str(tmp_path)]) == 1
        assert "not a suite output directory" in capsys.readouterr().err


def _browser_or_skip():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")


def test_report_html_figures_decode_in_chromium(report):
    sync_api = _browser_or_skip()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(report.html.resolve().as_uri())
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            page.screenshot(path="/tmp/report_shot.png", full_page=True)
        finally:
            browser.close()
    assert len(widths) == len(report.figures)
    assert all(w > 0 for w in widths), widths


def test_learned_decoder_fidelity_is_reported_when_present():
    from types import SimpleNamespace

    import pandas as pd

    from evaluation.report.build import _decoder_fidelity
    from evaluation.report.document import to_markdown

    results = pd.DataFrame({"run_id": ["learned_decoder-a", "mofa-b"], "decoder_fidelity": [0.0421, float("nan")],
                            "decoder_fidelity_image": [0.0153, float("nan")]})
    text = to_markdown(_decoder_fidelity(SimpleNamespace(results=results)), ".")
    assert "learned_decoder-a: 0.042 over the face, 0.015 over the whole image" in text and "mofa-b" not in text
    assert _decoder_fidelity(SimpleNamespace(results=results.drop(columns=["decoder_fidelity"]))) == []
    results["decoder_fidelity_start"] = [0.5061, float("nan")]
    text = to_markdown(_decoder_fidelity(SimpleNamespace(results=results)), ".")
    assert "learned_decoder-a: 0.042 over the face (an untrained network: 0.506), 0.015 over the whole image" in text


class TestLandmarkWeightLabels:
    """Only a method whose loss has the landmark term is named with its weight."""

    @staticmethod
    def _results(*rows: tuple[str, str]) -> pd.DataFrame:
        return pd.DataFrame([{"method": method, "renderer": "per_vertex", "encoder": "resnet18", "landmark_loss": weight,
                              "seed": "0"} for method, weight in rows])

    def test_baselines_that_ignore_the_weight_are_not_labelled_with_it(self):
        results = self._results(("mean_face", "0.002"), ("code_regression", "0.002"), ("mofa", "0.002"), ("mofa", "0"))
        assert series_labels(results) == ["mean face", "code regression (supervised)",
                                          "MoFA · per_vertex · landmark loss 0.002", "MoFA · per_vertex · landmark loss 0"]

    def test_a_baseline_run_with_several_weights_keeps_them_apart(self):
        results = self._results(("code_regression", "0.002"), ("code_regression", "0"))
        assert series_labels(results) == ["code regression (supervised) · landmark loss 0.002",
                                          "code regression (supervised) · landmark loss 0"]

    def test_table_cell_is_a_dash_without_a_landmark_term(self):
        assert landmark_weight_text({"method": "mofa", "landmark_loss": "0"}) == "0"
        assert landmark_weight_text({"method": "mofa", "landmark_loss": 0.0}) == "0.0"
        assert landmark_weight_text({"method": "fit", "landmark_loss": "0.001"}) == "0.001"
        assert landmark_weight_text({"method": "code_regression", "landmark_loss": "0.002"}) == "–"
        assert landmark_weight_text({"method": "mofa", "landmark_loss": ""}) == "–"
