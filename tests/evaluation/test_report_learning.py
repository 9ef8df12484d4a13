"""What training learnt: the mean-face start beside each run's end (``summary.csv``)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from mofa_bench.methods import MeanFace, method_builder
from evaluation.report.learning import LEARNING_METRICS, learning_records, learning_summary
from mofa_bench.scoring.validation import evaluate_batch
from helpers import tiny_train_config
from mofa_bench import Camera, MoFADecoder
from mofa_bench.data.batch import FaceBatch
from mofa_bench.errors import ConfigError
from mofa_bench.sampling import CodePrior, sample_codes
from mofa_bench.training import Trainer
from renderers import get_renderer


def _row(method: str, renderer: str = "per_vertex", status: str = "ok", test_seed: int = 7, scale: float = 1.0,
         **extra):
    values = {"geometric_mm": 10.0 * scale, "geometric_model_mm": 4.0 * scale, "photometric": 0.2 * scale,
              "landmark_px": 6.0 * scale}
    return {"run_id": f"{method}-{renderer}", "method": method, "renderer": renderer, "encoder": "resnet18",
            "landmark_loss": 1.0, "seed": 0, "protocol": "synthetic-64px-L1", "status": status, "test_size": 48,
            "test_seed": test_seed, "device": "cpu", "train_wall_s": 100.0, "samples_per_s": 32.0,
            **values, **extra}


class TestLearningSummary:
    def test_start_end_and_ratio_per_run(self):
        results = pd.DataFrame([_row("mean_face"), _row("mofa", scale=0.5), _row("mofa", "pytorch3d", scale=0.8),
                                _row("conv_autoencoder", scale=0.9)])
        summary = learning_summary(results)
        assert summary["renderer"].tolist() == ["per_vertex", "pytorch3d"]  # no start row, no conv autoencoder
        first = summary.iloc[0]
        assert first["geometric_mm_start"] == 10.0 and first["geometric_mm"] == 5.0
        assert first["geometric_mm_ratio"] == pytest.approx(0.5)
        assert summary.iloc[1]["photometric_ratio"] == pytest.approx(0.8)
        assert first["samples"] == 3200 and first["wall_s"] == 100.0
        for metric in LEARNING_METRICS:
            assert {f"{metric}_start", metric, f"{metric}_ratio"} <= set(summary.columns)

    def test_start_must_share_the_test_set(self):
        results = pd.DataFrame([_row("mean_face", test_seed=8), _row("mofa", scale=0.5)])
        row = learning_summary(results).iloc[0]
        assert math.isnan(row["geometric_mm_start"]) and math.isnan(row["geometric_mm_ratio"])
        assert row["geometric_mm"] == 5.0

    def test_failed_runs_are_left_out(self):
        results = pd.DataFrame([_row("mean_face"), _row("mofa", status="error")])
        assert learning_summary(results).empty

    def test_records_read_start_to_end(self):
        summary = learning_summary(pd.DataFrame([_row("mean_face"), _row("mofa", scale=0.5)]))
        records, columns = learning_records(summary)
        assert records[0]["geometric_mm"] == "10 → 5 (×0.50)" and records[0]["landmarks"] == "on"
        assert records[0]["run"] == "MoFA · per_vertex"
        assert [c.key for c in columns][:4] == ["run", "landmarks", "seed", "samples"]


class TestMeanFace:
    def test_predicts_the_zero_code_whatever_the_image(self, tiny_model):
        decoder = MoFADecoder(tiny_model.to(dtype=torch.float32), Camera(32), renderer=get_renderer("per_vertex",
                                                                                                     "cpu"))
        codes = sample_codes(2, CodePrior(), torch.Generator().manual_seed(0))
        with torch.no_grad():
            images, _ = decoder.render(codes)
            rec = MeanFace(decoder).reconstruct(images)
            zero_image, _ = decoder.render(torch.zeros(2, 257))
            metrics = evaluate_batch(MeanFace(decoder), FaceBatch(images=images, indices=torch.arange(2), codes=codes))
        assert torch.equal(rec.code, torch.zeros(2, 257)) and torch.equal(rec.image, zero_image)
        assert float(metrics["geometric_model_mm"].min()) > 0 and torch.equal(metrics["alpha_rms"], metrics["alpha_rms_zero"])

    def test_nothing_to_train(self, tmp_path, tiny_model_path):
        cfg = tiny_train_config(tmp_path, tiny_model_path, "method=mean_face")
        with pytest.raises(ConfigError, match="nothing to train"):
            Trainer(cfg, method_builder=method_builder("mean_face"))


def test_methods_without_a_landmark_term_name_no_landmark_weight():
    # The mean face and the supervised bound ignore loss.landmark, although their suite cell records it.
    results = pd.DataFrame([_row("mean_face"), _row("code_regression", scale=0.6), _row("mofa", scale=0.5),
                            _row("mofa", scale=0.9, landmark_loss=0.0, run_id="mofa-land0")])
    records, _ = learning_records(learning_summary(results))
    assert sorted((record["run"], record["landmarks"]) for record in records) == [
        ("MoFA · per_vertex", "off"), ("MoFA · per_vertex", "on"), ("code regression (supervised) · per_vertex", "–")]
