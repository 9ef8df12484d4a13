"""evaluation.diagnostics.generalization_gap: a run scored on its own training faces and on unseen ones."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from helpers import tiny_train_config
from mofa_bench.data.splits import synthetic_split
from mofa_bench.errors import ConfigError
from mofa_bench.reconstruct import load_trained_model
from mofa_bench.training import Trainer
from evaluation.diagnostics import generalization_gap


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_path):
    trainer = Trainer(tiny_train_config(tmp_path_factory.mktemp("runs"), tiny_model_path, "optim.iterations=2"))
    trainer.fit()
    return trainer, load_trained_model(trainer.run_dir, "cpu")


def test_the_train_split_is_the_one_the_run_trained_on(trained):
    trainer, model = trained
    data = synthetic_split(model.decoder.with_renderer(model.config.data.synthetic_renderer), model.config.data,
                           "train")
    indices = torch.arange(3)
    assert torch.allclose(data.batch(indices).images, trainer.train_data.batch(indices).images)


def test_scores_each_split_beside_the_mean_face_on_the_same_faces(trained):
    _, model = trained
    train = generalization_gap.split_scores(model, "train", 6, batch_size=4)
    val = generalization_gap.split_scores(model, "val", 6, batch_size=4)
    for scores in (train, val):
        assert set(scores) == {"run", "mean face"}
        assert all(set(part) == set(generalization_gap.METRICS) for part in scores.values())
        assert all(v == v and v > 0 for part in scores.values() for v in part.values())
    assert train["mean face"]["geometric_model_mm"] != val["mean face"]["geometric_model_mm"]  # other faces


def test_rows_give_the_change_against_the_mean_face(trained, monkeypatch):
    _, model = trained
    fake = {"train": {"run": {m: 2.0 for m in generalization_gap.METRICS},
                      "mean face": {m: 4.0 for m in generalization_gap.METRICS}},
            "val": {"run": {m: 3.0 for m in generalization_gap.METRICS},
                    "mean face": {m: 4.0 for m in generalization_gap.METRICS}}}
    monkeypatch.setattr(generalization_gap, "split_scores", lambda model, split, size: fake[split])
    rows = {(r["split"], r["coder"]): r for r in generalization_gap.gap_rows(model, 4)}
    assert rows[("train", "run")]["geometric_model_mm_change_pct"] == pytest.approx(-50.0)
    assert rows[("val", "run")]["landmark_px_change_pct"] == pytest.approx(-25.0)
    assert rows[("val", "mean face")]["photometric_change_pct"] == pytest.approx(0.0)


def test_photo_runs_are_refused(trained):
    _, model = trained
    photos = dataclasses.replace(model, config=dataclasses.replace(
        model.config, data=dataclasses.replace(model.config.data, kind="photos")))
    with pytest.raises(ConfigError, match="synthetic"):
        generalization_gap.split_scores(photos, "train", 4)
