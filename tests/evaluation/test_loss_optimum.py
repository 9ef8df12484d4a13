"""scripts/loss_optimum.py: per-image fits of the face codes with the true pose and light."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
from pathlib import Path

import pytest
import torch

from evaluation.protocol import evaluate_codes
from helpers import tiny_train_config
from mofa_bench.data.splits import synthetic_split
from mofa_bench.decoder import MoFADecoder

_SPEC = importlib.util.spec_from_file_location(
    "loss_optimum", Path(__file__).resolve().parents[2] / "scripts" / "loss_optimum.py")
loss_optimum = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(loss_optimum)


@pytest.fixture(scope="module")
def setting(tmp_path_factory, tiny_model_path):
    config = tiny_train_config(tmp_path_factory.mktemp("runs"), tiny_model_path, "camera.image_size=64",
                               "model.source=default", "model.subdivisions=0")
    decoder = MoFADecoder(config.model.load().to(dtype=torch.float32), config.camera.build(), renderer="per_vertex")
    batch = synthetic_split(decoder, config.data, "test", 4).batch(torch.arange(4))
    return config, decoder, batch


def test_fit_recovers_the_face_and_keeps_pose_and_light(setting):
    config, decoder, batch = setting
    weights = dataclasses.replace(config.loss, reg=1e-4, reg_beta=1.0, landmark=1e-3)
    code, loss = loss_optimum.fit_face_codes(decoder, batch, weights, steps=60)
    assert torch.equal(code[:, loss_optimum.FACE_ENTRIES:], batch.codes[:, loss_optimum.FACE_ENTRIES:])
    start = batch.codes.clone()
    start[:, :loss_optimum.FACE_ENTRIES] = 0
    with torch.no_grad():
        before, after = evaluate_codes(decoder, start, batch), evaluate_codes(decoder, code, batch)
    assert float(after["photometric"].mean()) < 0.8 * float(before["photometric"].mean())
    assert float(after["geometric_model_mm"].mean()) < float(before["geometric_model_mm"].mean())
    _, loss_at_zero = loss_optimum.fit_face_codes(decoder, batch, weights, steps=1)  # the first step's loss
    assert loss < 0.8 * loss_at_zero


def test_a_strong_prior_holds_the_face_at_the_mean(setting):
    config, decoder, batch = setting
    weak, _ = loss_optimum.fit_face_codes(decoder, batch, dataclasses.replace(config.loss, reg=1e-4), steps=30)
    strong, _ = loss_optimum.fit_face_codes(decoder, batch, dataclasses.replace(config.loss, reg=10.0), steps=30)
    face = slice(0, loss_optimum.FACE_ENTRIES)
    assert strong[:, face].norm() < 0.2 * weak[:, face].norm()


def test_weights_are_parsed_as_pairs():
    assert loss_optimum.parse_weights("2.9e-2:0.1") == (0.029, 0.1)
    with pytest.raises(argparse.ArgumentTypeError, match="reg:reg_beta"):
        loss_optimum.parse_weights("0.1")
