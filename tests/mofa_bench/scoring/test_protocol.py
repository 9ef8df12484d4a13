"""Tests for mofa_bench.scoring.protocol.evaluate_codes and mofa_bench.scoring.validation on constructed cases."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_close

from mofa_bench.scoring.metrics import aligned_distances, geometric_error
from mofa_bench.scoring.protocol import evaluate_codes, eye_distance, synthetic_test_batch, vertex_errors
from mofa_bench.scoring.validation import summarize, validate
from mofa_bench import CODE_DIM, Camera, MoFADecoder, join_code
from mofa_bench.data.batch import FaceBatch
from mofa_bench.methods.base import Method, Reconstruction


@pytest.fixture
def decoder(tiny_model):
    return MoFADecoder(tiny_model, Camera(64))


def _random_codes(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return join_code(alpha=torch.randn(n, 80, generator=g, dtype=torch.float64),
                     delta=0.5 * torch.randn(n, 64, generator=g, dtype=torch.float64),
                     beta=torch.randn(n, 80, generator=g, dtype=torch.float64),
                     rotation=0.1 * torch.randn(n, 3, generator=g, dtype=torch.float64),
                     translation=5.0 * torch.randn(n, 3, generator=g, dtype=torch.float64))


def _batch(decoder: MoFADecoder, codes: torch.Tensor) -> FaceBatch:
    """A synthetic batch: images rendered from ``codes``, with codes, vertices and landmarks."""
    with torch.no_grad():
        formed = decoder.form(codes)
        images, _ = decoder.render(codes)
    return FaceBatch(images=images, indices=torch.arange(codes.shape[0]), codes=codes,
                     vertices=formed.vertices, landmarks=formed.landmarks_uv)


class TestEvaluateCodes:
    def test_identical_codes_score_zero(self, decoder):
        codes = _random_codes(3)
        out = evaluate_codes(decoder, codes, _batch(decoder, codes))
        for name in ("geometric_mm", "geometric_model_mm", "geometric_procrustes_mm", "landmark_px",
                     "landmark_px_68", "landmark_nme", "landmark_nme_68"):
            assert_close(out[name], torch.zeros(3, dtype=torch.float64), atol=1e-6, msg=name)
        assert_close(out["photometric"], torch.zeros(3, dtype=torch.float64), atol=1e-6)
        assert_close(out["alpha_cos"], torch.ones(3, dtype=torch.float64))
        assert all(v.shape == (3,) for v in out.values())

    def test_yaw_error_counts_in_posed_geometry_only(self, decoder):
        truth = _random_codes(2)
        pred = truth.clone()
        pred[:, 224 + 1] += math.radians(10.0)   # yaw
        out = evaluate_codes(decoder, pred, _batch(decoder, truth))
        assert bool((out["geometric_mm"] > 5.0).all()), out["geometric_mm"]
        assert_close(out["geometric_model_mm"], torch.zeros(2, dtype=torch.float64), atol=1e-9)
        assert_close(out["geometric_procrustes_mm"], torch.zeros(2, dtype=torch.float64), atol=1e-6)
        assert bool((out["landmark_px"] > 0.5).all())

    def test_translation_alone_is_compensated(self, decoder):
        truth = _random_codes(2)
        pred = truth.clone()
        pred[:, 227:230] += torch.tensor([10.0, -5.0, 20.0], dtype=torch.float64)
        out = evaluate_codes(decoder, pred, _batch(decoder, truth))
        assert_close(out["geometric_mm"], torch.zeros(2, dtype=torch.float64), atol=1e-6)
        assert_close(out["translation_rms"], torch.full((2,), math.sqrt((100 + 25 + 400) / 3), dtype=torch.float64))
        assert bool((out["landmark_px"] > 0.5).all())  # the face moved on screen

    def test_identity_error_counts_in_both_geometric_errors(self, decoder):
        truth = _random_codes(2)
        pred = truth.clone()
        pred[:, :80] = 0.0
        out = evaluate_codes(decoder, pred, _batch(decoder, truth))
        assert bool((out["geometric_model_mm"] > 0.1).all())
        assert_close(out["geometric_mm"], out["geometric_model_mm"], rtol=0.2)
        assert_close(out["alpha_rms"], out["alpha_rms_zero"])

    def test_landmark_nme_divides_by_the_outer_eye_distance(self, decoder):
        truth = _random_codes(2)
        pred = truth.clone()
        pred[:, 227] += 3.0
        batch = _batch(decoder, truth)
        out = evaluate_codes(decoder, pred, batch)
        assert_close(out["landmark_nme"], out["landmark_px"] / eye_distance(batch.landmarks))

    def test_without_codes_uses_vertices_and_omits_what_it_lacks(self, decoder):
        codes = _random_codes(2)
        batch = _batch(decoder, codes)
        out = evaluate_codes(decoder, codes, FaceBatch(images=batch.images, indices=batch.indices,
                                                       vertices=batch.vertices))
        assert set(out) == {"photometric", "geometric_model_mm"}

    def test_vertex_errors_average_to_the_posed_error(self, decoder):
        truth = _random_codes(2)
        pred = truth + 0.3 * _random_codes(2, seed=1)
        errors = vertex_errors(decoder, pred, truth)
        assert errors.shape == (2, decoder.model.num_vertices)
        out = evaluate_codes(decoder, pred, _batch(decoder, truth))
        assert_close(errors.mean(1), out["geometric_mm"])


class TestAlignedDistances:
    def test_rotation_is_compensated_only_when_asked(self):
        g = torch.Generator().manual_seed(0)
        points = torch.randn(2, 50, 3, generator=g, dtype=torch.float64)
        angle = torch.tensor(0.4, dtype=torch.float64)
        rz = torch.tensor([[torch.cos(angle), -torch.sin(angle), 0], [torch.sin(angle), torch.cos(angle), 0],
                           [0, 0, 1]], dtype=torch.float64)
        moved = 1.7 * points @ rz.T + 3.0
        assert bool((geometric_error(moved, points) > 0.1).all())
        assert_close(geometric_error(moved, points, compensate_rotation=True), torch.zeros(2, dtype=torch.float64),
                     atol=1e-9)

    def test_a_reflection_is_not_a_rotation(self):
        g = torch.Generator().manual_seed(1)
        points = torch.randn(1, 40, 3, generator=g, dtype=torch.float64)
        mirrored = points * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
        assert float(aligned_distances(mirrored, points, compensate_rotation=True).mean()) > 0.1

    def test_gradcheck(self):
        g = torch.Generator().manual_seed(2)
        pred = torch.randn(1, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
        target = torch.randn(1, 6, 3, generator=g, dtype=torch.float64)
        assert torch.autograd.gradcheck(lambda p: aligned_distances(p, target, compensate_rotation=True), (pred,))


class _Oracle(Method):
    """A method that 'predicts' given codes: validation must score it perfectly."""

    def __init__(self, decoder: MoFADecoder, codes: torch.Tensor) -> None:
        super().__init__()
        self.decoder = decoder
        self.codes = codes

    def parameter_groups(self, lr, z_translation_lr):
        return []

    def loss_terms(self, batch):
        return {"total": torch.zeros(())}

    def reconstruct(self, images):
        codes = self.codes[: images.shape[0]]
        image, mask = self.decoder.render(codes)
        return Reconstruction(image=image, mask=mask, code=codes)


class _ImageOnly(Method):
    def parameter_groups(self, lr, z_translation_lr):
        return []

    def loss_terms(self, batch):
        return {"total": torch.zeros(())}

    def reconstruct(self, images):
        return Reconstruction(image=images * 0.5, mask=torch.ones_like(images[:, :1]))


class _Dataset:
    def __init__(self, batch: FaceBatch) -> None:
        self._batch = batch

    def __len__(self) -> int:
        return self._batch.batch_size

    def batch(self, idx: torch.Tensor) -> FaceBatch:
        b = self._batch
        return FaceBatch(images=b.images[idx], indices=idx, codes=b.codes[idx], vertices=b.vertices[idx],
                         landmarks=b.landmarks[idx])


class TestValidate:
    def test_oracle_scores_zero_and_reports_code_parts(self, decoder):
        codes = _random_codes(3)
        out = validate(_Oracle(decoder, codes), _Dataset(_batch(decoder, codes)), torch.device("cpu"), batch_size=8)
        assert out["geometric_mm"] == pytest.approx(0.0, abs=1e-6)
        assert out["alpha_cos"] == pytest.approx(1.0) and out["alpha_rms_ratio"] == pytest.approx(0.0, abs=1e-9)
        assert "alpha_rms_zero" in out and "gamma_cos" in out

    def test_method_without_codes_gets_the_photometric_error_only(self, decoder):
        codes = _random_codes(2)
        batch = _batch(decoder, codes)
        out = validate(_ImageOnly(), _Dataset(batch), torch.device("cpu"))
        assert set(out) == {"photometric"}
        expected = (0.5 * batch.images).norm(dim=1).mean(dim=(1, 2)).mean()
        assert out["photometric"] == pytest.approx(float(expected))

    def test_summarize_ignores_nan_errors(self):
        out = summarize({"photometric": torch.tensor([0.2, math.nan, 0.4])})
        assert out["photometric"] == pytest.approx(0.3)


def test_codes_of_the_wrong_shape_are_a_clear_error(decoder):
    codes = _random_codes(2)
    from mofa_checks import InputError

    with pytest.raises(InputError, match="codes"):
        evaluate_codes(decoder, torch.zeros(3, CODE_DIM, dtype=torch.float64), _batch(decoder, codes))


def test_every_renderer_is_scored_through_the_same_drawing(tiny_model):
    # The photometric error of a code must not depend on the renderer a method trained through.
    from helpers import renderer_or_skip

    codes = _random_codes(2)
    batch = _batch(MoFADecoder(tiny_model, Camera(64)), codes)
    soft = renderer_or_skip("pytorch3d", "cpu", {"blur_radius": 2.0, "faces_per_pixel": 4, "sigma": 0.5})
    scores = {}
    for name, renderer in (("per_vertex", "per_vertex"), ("pytorch3d", soft)):
        decoder = MoFADecoder(tiny_model, Camera(64), renderer=renderer)
        scores[name] = validate(_Oracle(decoder, codes), _Dataset(batch), torch.device("cpu"))
    assert scores["pytorch3d"]["photometric"] == pytest.approx(scores["per_vertex"]["photometric"], abs=1e-9)
    assert scores["per_vertex"]["photometric"] == pytest.approx(0.0, abs=1e-6)


def test_synthetic_test_batch_applies_config_overrides():
    """The analysis scripts' ``--set``: the same test split drawn at another size and mesh level."""
    config, decoder, batch = synthetic_test_batch(None, 2, ["camera.image_size=64", "model.subdivisions=0"])
    assert config.camera.image_size == 64 and decoder.camera.image_size == 64
    assert batch.images.shape == (2, 3, 64, 64)
    assert decoder.model.num_vertices == 468  # MediaPipe's canonical mesh, not subdivided
    _, _, larger = synthetic_test_batch(None, 2, ["camera.image_size=96", "model.subdivisions=0"])
    assert torch.equal(larger.codes, batch.codes)  # the same faces, drawn at another size
