"""evaluation.diagnostics.loss_optimum: per-image fits of the face codes with the true pose and light."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import torch

from helpers import synthetic_test_setting
from mofa_bench.methods.fit import code_loss
from mofa_bench.scoring.protocol import evaluate_codes
from evaluation.diagnostics import loss_optimum


@pytest.fixture(scope="module")
def setting(tmp_path_factory, tiny_model_path):
    return synthetic_test_setting(tmp_path_factory.mktemp("runs"), tiny_model_path, 4)


def test_fit_recovers_the_face_and_keeps_pose_and_light(setting):
    config, decoder, batch = setting
    weights = dataclasses.replace(config.loss, reg=1e-4, reg_beta=1.0, landmark=1e-3)
    fit = loss_optimum.fit_face_codes(decoder, batch, weights, steps=60)
    assert torch.equal(fit.code[:, loss_optimum.FACE_ENTRIES:], batch.codes[:, loss_optimum.FACE_ENTRIES:])
    start = batch.codes.clone()
    start[:, :loss_optimum.FACE_ENTRIES] = 0
    with torch.no_grad():
        before, after = evaluate_codes(decoder, start, batch), evaluate_codes(decoder, fit.code, batch)
    assert float(after["photometric"].mean()) < 0.8 * float(before["photometric"].mean())
    assert float(after["geometric_model_mm"].mean()) < float(before["geometric_model_mm"].mean())
    assert len(fit.losses) == 61 and fit.losses[-1] < 0.8 * fit.losses[0]  # losses[0]: the face at zero
    with torch.no_grad():
        at_zero = code_loss(decoder, start, batch.images, weights, batch.landmarks, batch.landmark_confidence)
    assert fit.losses[0] == pytest.approx(float(at_zero["total"]), rel=1e-6)


def test_the_fit_is_the_fit_baselines(setting):
    """The same Adam loop as ``fit_codes``: one step from the same start moves the face alone, by its rate."""
    config, decoder, batch = setting
    fit = loss_optimum.fit_face_codes(decoder, batch, config.loss, steps=1, lr=0.01)
    moved = (fit.code - batch.codes)[:, loss_optimum.FACE_ENTRIES:]
    assert int((moved != 0).sum()) == 0
    face = fit.code[:, :loss_optimum.FACE_ENTRIES]
    assert float(face.abs().max()) == pytest.approx(0.01, rel=1e-3)  # Adam's first step: ±lr per entry


def test_a_strong_prior_holds_the_face_at_the_mean(setting):
    config, decoder, batch = setting
    weak = loss_optimum.fit_face_codes(decoder, batch, dataclasses.replace(config.loss, reg=1e-4), steps=30).code
    strong = loss_optimum.fit_face_codes(decoder, batch, dataclasses.replace(config.loss, reg=10.0), steps=30).code
    face = slice(0, loss_optimum.FACE_ENTRIES)
    assert strong[:, face].norm() < 0.2 * weak[:, face].norm()


def test_weights_are_parsed_as_pairs():
    assert loss_optimum.parse_weights("2.9e-2:0.1") == (0.029, 0.1)
    with pytest.raises(argparse.ArgumentTypeError, match="reg:reg_beta"):
        loss_optimum.parse_weights("0.1")
