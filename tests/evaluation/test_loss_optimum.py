"""scripts/loss_optimum.py: per-image fits of the face codes with the true pose and light."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import torch

from mofa_bench.scoring.protocol import evaluate_codes
from helpers import load_script, synthetic_test_setting

loss_optimum = load_script("loss_optimum")


@pytest.fixture(scope="module")
def setting(tmp_path_factory, tiny_model_path):
    return synthetic_test_setting(tmp_path_factory.mktemp("runs"), tiny_model_path, 4)


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
