"""The supervised upper bound: the encoder regressing true codes (``method: code_regression``)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mofa_bench.methods import CodeRegression, build_code_regression, method_builder, prior_scale
from mofa_bench.methods.code_regression import effect_weights
from mofa_bench.scoring.validation import evaluate_batch
from helpers import tiny_train_config
from mofa_bench import CODE_DIM, Camera, MoFADecoder
from mofa_bench.code_vector import CODE_SLICES
from mofa_bench.data.batch import FaceBatch
from mofa_bench.errors import ConfigError
from mofa_bench.sampling import CodePrior, sample_codes
from mofa_bench.training import Trainer
from renderers import get_renderer


class FixedCodes(nn.Module):
    """An "encoder" whose output is one learnable code for every image."""

    def __init__(self, code: torch.Tensor) -> None:
        super().__init__()
        self.code = nn.Parameter(code.clone())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.code.expand(images.shape[0], -1)


@pytest.fixture(scope="module")
def decoder(tiny_model):
    return MoFADecoder(tiny_model.to(dtype=torch.float32), Camera(32), renderer=get_renderer("per_vertex", "cpu"))


def _batch(n: int = 3, seed: int = 0) -> FaceBatch:
    codes = sample_codes(n, CodePrior(), torch.Generator().manual_seed(seed))
    return FaceBatch(images=torch.rand(n, 3, 32, 32), indices=torch.arange(n), codes=codes)


class TestPriorScale:
    def test_each_part_in_its_prior_unit(self):
        prior = CodePrior(identity_std=2.0, expression_std=0.5, reflectance_std=0.25, yaw_deg=30.0,
                          translation_std_mm=4.0, depth_std_mm=20.0, light_std=0.3, ambient_std=0.1,
                          colored_light_std=0.0)
        scale = prior_scale(prior)
        assert scale.shape == (CODE_DIM,)
        assert torch.all(scale[CODE_SLICES["alpha"]] == 2.0) and torch.all(scale[CODE_SLICES["delta"]] == 0.5)
        assert torch.all(scale[CODE_SLICES["beta"]] == 0.25)
        yaw = scale[CODE_SLICES["rotation"]][1]
        assert math.isclose(float(yaw), math.radians(30.0) / math.sqrt(3.0), rel_tol=1e-6)
        assert scale[CODE_SLICES["translation"]].tolist() == [4.0, 4.0, 20.0]
        gamma = scale[CODE_SLICES["gamma"]].reshape(9, 3)
        assert torch.allclose(gamma[0], torch.tensor(0.1)) and torch.allclose(gamma[1:], torch.tensor(0.3))

    def test_the_uniform_range_matches_the_sampled_spread(self):
        codes = sample_codes(20000, CodePrior(), torch.Generator().manual_seed(3))
        measured = codes.std(0)
        scale = prior_scale(CodePrior())
        for part in ("alpha", "delta", "beta", "rotation", "translation"):
            torch.testing.assert_close(measured[CODE_SLICES[part]], scale[CODE_SLICES[part]], rtol=0.05, atol=0.0)

    def test_a_fixed_part_stays_finite(self):
        scale = prior_scale(CodePrior(roll_deg=0.0, colored_light_std=0.0, light_std=0.0))
        assert bool(torch.isfinite(scale).all()) and float(scale.min()) > 0


class TestLoss:
    def test_zero_at_the_truth_and_scaled_by_the_prior(self, decoder):
        batch = _batch(1)
        scale = prior_scale(CodePrior())
        shifted = batch.codes[0].clone()
        shifted[CODE_SLICES["delta"]] += 3.0 * scale[CODE_SLICES["delta"]]
        at_truth = CodeRegression(FixedCodes(batch.codes[0]), decoder, scale).loss_terms(batch)
        assert float(at_truth["total"].detach()) == pytest.approx(0.0, abs=1e-10)
        terms = CodeRegression(FixedCodes(shifted), decoder, scale).loss_terms(batch)
        assert float(terms["delta"]) == pytest.approx(9.0, rel=1e-5)
        assert float(terms["alpha"]) == pytest.approx(0.0, abs=1e-10)
        assert float(terms["total"]) == pytest.approx(9.0 / len(CODE_SLICES), rel=1e-5)
        assert set(terms) == set(CODE_SLICES) | {"total"}

    def test_gradient_points_from_the_truth(self, decoder):
        batch = _batch(1, seed=5)
        scale = prior_scale(CodePrior())
        method = CodeRegression(FixedCodes(torch.zeros(CODE_DIM)), decoder, scale)
        method.loss_terms(batch)["total"].backward()
        sizes = torch.empty(CODE_DIM)
        for part in CODE_SLICES.values():
            sizes[part] = part.stop - part.start
        expected = 2.0 * (0.0 - batch.codes[0]) / scale ** 2 / sizes / len(CODE_SLICES)
        torch.testing.assert_close(method.encoder.code.grad, expected)

    def test_a_batch_without_codes_is_refused(self, decoder):
        method = CodeRegression(FixedCodes(torch.zeros(CODE_DIM)), decoder, prior_scale(CodePrior()))
        photos = FaceBatch(images=torch.rand(2, 3, 32, 32), indices=torch.arange(2))
        with pytest.raises(ConfigError, match="no true codes"):
            method.loss_terms(photos)

    def test_scored_like_mofa(self, decoder):
        batch = _batch(2)
        method = CodeRegression(FixedCodes(batch.codes[0]), decoder, prior_scale(CodePrior()))
        with torch.no_grad():
            metrics = evaluate_batch(method, batch)
        assert {"photometric", "geometric_mm", "geometric_model_mm", "alpha_cos"} <= set(metrics)
        assert float(metrics["geometric_model_mm"][0]) == pytest.approx(0.0, abs=1e-3)


class TestEffectWeights:
    def test_face_modes_weigh_by_their_basis_norm_and_sum_to_one_per_part(self, tiny_model):
        weights = effect_weights(tiny_model, "effect").double()
        for name, part in CODE_SLICES.items():
            assert float(weights[part].sum()) == pytest.approx(1.0, rel=1e-6), name
        norms = tiny_model.shape_basis.double().pow(2).sum(dim=(0, 1))
        torch.testing.assert_close(weights[CODE_SLICES["alpha"]], norms / norms.sum(), rtol=1e-5, atol=1e-7)
        rotation = weights[CODE_SLICES["rotation"]]
        torch.testing.assert_close(rotation, torch.full_like(rotation, 1 / 3))
        uniform = effect_weights(tiny_model, "uniform")
        torch.testing.assert_close(uniform[CODE_SLICES["alpha"]], torch.full((80,), 1 / 80))

    def test_a_large_mode_costs_more_than_a_small_one(self, decoder):
        weights = effect_weights(decoder.model, "effect")
        alpha = CODE_SLICES["alpha"]
        big, small = alpha.start + int(weights[alpha].argmax()), alpha.start + int(weights[alpha].argmin())
        scale = prior_scale(CodePrior())
        batch = _batch(1)
        terms = {}
        for entry in (big, small):
            wrong = batch.codes[0].clone()
            wrong[entry] += 1.0
            terms[entry] = CodeRegression(FixedCodes(wrong), decoder, scale, weights).loss_terms(batch)["alpha"]
        assert float(terms[big]) > 2 * float(terms[small])
        assert float(terms[big]) == pytest.approx(float(weights[big]), rel=1e-5)  # one σ of error × its weight

    def test_unknown_weighting_is_refused(self, tmp_path, tiny_model_path, decoder):
        cfg = tiny_train_config(tmp_path, tiny_model_path, "method=code_regression",
                                "method_options={weighting: pixels}")
        with pytest.raises(ConfigError, match="method_options.weighting"):
            build_code_regression(cfg, decoder)


class TestInTheTrainer:
    def test_one_step_trains_the_encoder(self, tmp_path, tiny_model_path):
        cfg = tiny_train_config(tmp_path, tiny_model_path, "method=code_regression", "optim.iterations=1")
        trainer = Trainer(cfg, method_builder=method_builder("code_regression"))
        assert isinstance(trainer.method, CodeRegression)
        before = [p.detach().clone() for p in trainer.method.trainable_parameters()]
        terms = trainer.train_step(trainer.train_data.batch(torch.arange(cfg.optim.batch_size)))
        assert terms is not None and set(terms) == set(CODE_SLICES) | {"total"}
        assert terms["total"] > 0 and all(math.isfinite(v) for v in terms.values())
        after = trainer.method.trainable_parameters()
        assert any(not torch.equal(a, b) for a, b in zip(before, after))

    def test_unknown_options_and_photos_are_refused(self, tmp_path, tiny_model_path, decoder):
        cfg = tiny_train_config(tmp_path, tiny_model_path, "method=code_regression", "method_options={depth: 2}")
        with pytest.raises(ConfigError, match="method_options.depth: unknown option.*weighting"):
            build_code_regression(cfg, decoder)
        for kind in ("images", "prepared"):
            photos = tiny_train_config(tmp_path, tiny_model_path, "method=code_regression", f"data.kind={kind}",
                                       f"data.path={tmp_path}")
            with pytest.raises(ConfigError, match=f"data.kind.*true codes.*got '{kind}'"):
                build_code_regression(photos, decoder)
