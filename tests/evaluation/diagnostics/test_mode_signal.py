"""evaluation.diagnostics.mode_signal: what a run learnt per face mode, and where its loss points."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from helpers import synthetic_test_setting
from mofa_bench.code_vector import CODE_SLICES
from evaluation.diagnostics import mode_signal
from evaluation.diagnostics.stats import correlation

JAW = CODE_SLICES["delta"].start


@pytest.fixture(scope="module")
def setting(tmp_path_factory, tiny_model_path):
    config, decoder, batch = synthetic_test_setting(tmp_path_factory.mktemp("runs"), tiny_model_path, 16)
    return dataclasses.replace(config, loss=dataclasses.replace(config.loss, landmark=1e-3)), decoder, batch


def test_the_landmark_gradient_points_a_wrong_jaw_back_to_the_truth(setting):
    config, decoder, batch = setting
    offset = torch.linspace(-1.5, 1.5, batch.codes.shape[0])
    code = batch.codes.clone()
    code[:, JAW] += offset  # only the jaw is wrong, by a different amount on each face
    grads = mode_signal.term_gradients(decoder, code, batch, config.loss)
    assert set(grads) == set(mode_signal.TERMS)
    assert grads["landmark"].shape == code.shape
    signal = correlation(-grads["landmark"], batch.codes - code)
    assert float(signal[JAW]) > 0.9


def test_each_image_gets_the_gradient_of_its_own_term(setting):
    config, decoder, batch = setting
    code = batch.codes.clone()
    code[0, JAW] += 1.0  # the first face alone is wrong
    grads = mode_signal.term_gradients(decoder, code, batch, config.loss)["landmark"]
    assert float(grads[0, JAW].abs()) > 0
    assert float(grads[1:, JAW].abs().max()) < 1e-3 * float(grads[0, JAW].abs())
    at_truth = mode_signal.term_gradients(decoder, batch.codes, batch, config.loss)["landmark"]
    assert float(at_truth.abs().max()) < 1e-3 * float(grads[0, JAW].abs())


def test_a_term_left_out_of_the_loss_has_no_gradient_and_no_signal(setting):
    """A run trained without landmarks (``loss.landmark: 0``): zero landmark gradients, NaN signal."""
    config, decoder, batch = setting
    code = batch.codes.clone()
    code[:, JAW] += torch.linspace(-1.5, 1.5, batch.codes.shape[0])
    with torch.no_grad():  # the gradients are taken all the same
        grads = mode_signal.term_gradients(decoder, code, batch, dataclasses.replace(config.loss, landmark=0.0))
    assert int((grads["landmark"] != 0).sum()) == 0 and float(grads["photo"].abs().max()) > 0
    rows = mode_signal.mode_rows(code, batch.codes, grads, modes=1)
    assert all(math.isnan(row["landmark_signal"]) for row in rows)


def test_rows_name_each_mode_and_its_learnt_correlation():
    generator = torch.Generator().manual_seed(1)
    true = torch.randn(64, 257, generator=generator)
    code = torch.zeros_like(true)
    code[:, JAW] = 0.5 * true[:, JAW]  # the jaw learnt up to scale, nothing else
    grads = {name: torch.randn(64, 257, generator=generator) for name in mode_signal.TERMS}
    rows = mode_signal.mode_rows(code, true, grads, modes=3, reference=true)
    assert [(r["part"], r["mode"]) for r in rows] == [("alpha", 0), ("alpha", 1), ("alpha", 2),
                                                      ("delta", 0), ("delta", 1), ("delta", 2)]
    assert rows[3]["learnt"] == pytest.approx(1.0)
    assert all(r["reference_learnt"] == pytest.approx(1.0) for r in rows)
    assert rows[3]["landmark_grad"] == pytest.approx(float(grads["landmark"][:, JAW].abs().mean()))


def test_swapping_in_the_true_part_removes_its_error(setting):
    _, decoder, batch = setting
    code = batch.codes.clone()
    code[:, JAW] = 0.0  # the run misses the jaw; the reference is the truth
    rows = {(r["codes"], r["part"]): r for r in mode_signal.swap_rows(decoder, code, batch.codes, batch)}
    assert rows[("reference", "")]["geometric_model_mm"] == pytest.approx(0.0, abs=1e-4)
    assert rows[("run", "")]["geometric_model_mm"] > 0.1
    assert rows[("run, part from the reference", "jaw_open")]["geometric_model_mm"] == pytest.approx(0.0, abs=1e-4)
    assert rows[("run, part from the reference", "alpha")]["geometric_model_mm"] == pytest.approx(
        rows[("run", "")]["geometric_model_mm"])
    assert rows[("run, part at zero", "jaw_open")]["geometric_model_mm"] == pytest.approx(
        rows[("run", "")]["geometric_model_mm"])
    assert rows[("run, part at zero", "alpha")]["geometric_model_mm"] > rows[("run", "")]["geometric_model_mm"]
