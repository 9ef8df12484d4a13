"""The suite's ``real_test``: runs scored on a prepared folder, the results columns and the report block."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from mofa_bench.scoring.metrics import landmark_error
from evaluation.report.build import build_report
from evaluation.report.document import Heading, Table
from evaluation.report.load import load_suite_results
from evaluation.suite.orchestrate import run_suite
from evaluation.suite.spec import RealTest, load_suite_spec, suite_from_dict, suite_to_dict
from mofa_bench import Camera, FaceModel, MoFADecoder
from mofa_bench.errors import ConfigError
from mofa_bench.data.prepared import PreparedFaces
from mofa_bench.methods.base import Method, Reconstruction
from prepared_folders import rendered_prepared_folder
from test_suite_run import TinyAutoencoder, tiny_suite

REAL = ("real_landmark_px", "real_landmark_nme", "real_photometric")


class Oracle(Method):
    """Nothing to train: each image gets the code of the nearest prepared crop (the code it was rendered from)."""

    trains = False

    def __init__(self, decoder, crops: torch.Tensor, codes: torch.Tensor) -> None:
        super().__init__()
        self.decoder, self.crops, self.codes = decoder, crops, codes

    def parameter_groups(self, lr, z_translation_lr):
        return []

    def loss_terms(self, batch):
        raise NotImplementedError("Oracle has nothing to train")

    def reconstruct(self, images):
        nearest = torch.cdist(images.flatten(1).cpu(), self.crops.flatten(1)).argmin(1)
        code = self.codes[nearest].to(images.device)
        image, mask = self.decoder.render(code)
        return Reconstruction(image, mask, code)


class ZeroCode(Oracle):
    def reconstruct(self, images):
        code = torch.zeros(images.shape[0], 257, device=images.device)
        image, mask = self.decoder.render(code)
        return Reconstruction(image, mask, code)


@pytest.fixture(scope="module")
def real_suite(tiny_model_path, tmp_path_factory):
    """fit (the oracle), mean_face (zero code) and conv autoencoder, scored on 3 of 4 rendered 'photos'."""
    from mofa_bench.sampling import CodePrior, sample_codes

    root = tmp_path_factory.mktemp("real")
    prepared = rendered_prepared_folder(root / "prepared", tiny_model_path, count=4, image_size=64, seed=7)
    codes = sample_codes(4, CodePrior(), generator=torch.Generator().manual_seed(7)).to(torch.float32)
    faces = PreparedFaces(prepared, 64)
    crops = faces.batch(torch.arange(4)).images
    builders = {"fit": lambda config, decoder: Oracle(decoder, crops, codes),
                "mean_face": lambda config, decoder: ZeroCode(decoder, crops, codes),
                "conv_autoencoder": lambda config, decoder: TinyAutoencoder().to(decoder.model.device)}
    spec = suite_from_dict(tiny_suite(tiny_model_path, grid={"method": ["fit", "mean_face", "conv_autoencoder"]},
                                      real_test={"path": str(prepared), "limit": 3}))
    out = root / "out"
    frame = run_suite(spec, out, progress=False, builders=builders)
    return SimpleNamespace(frame=frame.set_index("method"), out=out, prepared=prepared, faces=faces, spec=spec)


class TestRealTestSpec:
    def test_path_is_found_beside_the_suite_file_and_round_trips(self, tmp_path, tiny_model_path):
        rendered_prepared_folder(tmp_path / "photos", tiny_model_path, count=2)
        path = tmp_path / "suite.yaml"
        path.write_text("real_test: {path: photos, limit: 5}\n")
        spec = load_suite_spec(path)
        assert spec.real_test == RealTest((tmp_path / "photos").resolve(), 5)
        assert suite_from_dict(suite_to_dict(spec)).real_test == spec.real_test
        assert suite_from_dict({}).real_test is None and "real_test" not in suite_to_dict(suite_from_dict({}))

    @pytest.mark.parametrize("value, message", [
        ({"path": "nowhere"}, r"real_test\.path: no manifest\.parquet in nowhere"),
        ({"limit": 3}, r"real_test\.path: expected the folder"),
        ({"path": ".", "limit": 0}, r"real_test\.limit: expected an integer ≥ 1"),
        ({"path": ".", "size": 3}, r"real_test\.size: unknown key; known keys: path, limit"),
        ("photos", r"real_test: expected a mapping"),
    ])
    def test_bad_values_name_the_key(self, value, message, tmp_path):
        with pytest.raises(ConfigError, match=message):
            suite_from_dict({"real_test": value}, folder=tmp_path)


class TestRealScores:
    def test_every_run_has_the_real_columns_and_files(self, real_suite):
        frame = real_suite.frame
        assert (frame["status"] == "ok").all(), frame["error"].tolist()
        for name in REAL:
            assert {name, f"{name}_ci_low", f"{name}_ci_high"} <= set(frame.columns)
        assert (frame["real_test_size"] == 3).all()
        table = pd.read_csv(real_suite.out / "results.csv").set_index("method")
        assert table.loc["fit", "real_landmark_px"] == pytest.approx(frame.loc["fit", "real_landmark_px"])
        per_face = pd.read_csv(real_suite.out / "runs" / frame.loc["fit", "run_id"] / "real_metrics.csv")
        assert per_face["source"].tolist() == ["face_000.png", "face_001.png", "face_002.png"]
        assert per_face["real_landmark_px"].mean() == pytest.approx(frame.loc["fit", "real_landmark_px"])

    def test_the_true_codes_score_near_zero(self, real_suite):
        fit = real_suite.frame.loc["fit"]
        assert fit["real_landmark_px"] < 1e-3 and fit["real_landmark_nme"] < 1e-4
        assert fit["real_photometric"] < 0.01                     # PNG rounding only

    def test_the_mean_face_scores_its_distance_to_the_detected_landmarks(self, real_suite, tiny_model_path):
        model = FaceModel.load(str(tiny_model_path)).to("cpu", torch.float32)
        decoder = MoFADecoder(model, Camera(image_size=64))
        batch = real_suite.faces.batch(torch.arange(3))
        zero = decoder.form(torch.zeros(3, 257)).landmarks_uv
        expected = landmark_error(zero, batch.landmarks, subset=model.landmark_subset,
                                  confidence=batch.landmark_confidence)
        eyes = (batch.landmarks[:, 36] - batch.landmarks[:, 45]).norm(dim=-1)
        row = real_suite.frame.loc["mean_face"]
        assert row["real_landmark_px"] == pytest.approx(float(expected.mean()), rel=1e-4)
        assert row["real_landmark_nme"] == pytest.approx(float((expected / eyes).mean()), rel=1e-4)
        assert row["real_landmark_px"] > 10 * real_suite.frame.loc["fit", "real_landmark_px"]

    def test_a_method_without_codes_gets_the_photometric_error_only(self, real_suite):
        row = real_suite.frame.loc["conv_autoencoder"]
        assert math.isfinite(row["real_photometric"])
        assert math.isnan(row["real_landmark_px"]) and math.isnan(row["real_landmark_nme"])


class TestRealReport:
    def test_the_report_has_a_real_photo_table(self, real_suite, tmp_path):
        blocks = build_report(load_suite_results(real_suite.out), tmp_path / "figures")
        titles = [b.text for b in blocks if isinstance(b, Heading)]
        assert "Real photos" in titles
        table = blocks[[i for i, b in enumerate(blocks) if isinstance(b, Heading) and b.text == "Real photos"][0] + 2]
        assert isinstance(table, Table)
        keys = [c.key for c in table.columns]
        assert keys[-5:] == ["real_landmark_px", "real_landmark_nme", "real_photometric", "landmark_px",
                             "photometric"]
        assert len(table.records) == 3
        autoencoder = [r for r in table.records if r["series"].startswith("conv autoencoder")][0]
        assert autoencoder["real_landmark_px"] == "–" and autoencoder["real_photometric"] != "–"
        oracle = [r for r in table.records if r["series"].startswith("optimisation")][0]
        assert float(oracle["real_landmark_px"]) < 1e-3

    def test_no_block_without_real_scores(self, tiny_model_path, tmp_path):
        spec = suite_from_dict(tiny_suite(tiny_model_path, grid={"method": ["conv_autoencoder"]}))
        run_suite(spec, tmp_path, progress=False,
                  builders={"conv_autoencoder": lambda config, decoder: TinyAutoencoder()})
        blocks = build_report(load_suite_results(tmp_path), tmp_path / "figures")
        assert "Real photos" not in [b.text for b in blocks if isinstance(b, Heading)]


def test_report_markdown_shows_the_real_table(real_suite, tmp_path):
    from evaluation.report.build import write_suite_report

    files = write_suite_report(real_suite.out, tmp_path, bench_csvs=[])
    text = files.markdown.read_text()
    section = text[text.index("## Real photos"):]
    assert "real landmark (px)" in section and "3 real test faces" in section
