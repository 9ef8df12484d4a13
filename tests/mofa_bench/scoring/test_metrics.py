"""Tests for mofa_bench.scoring.metrics: geometric, photometric and landmark errors."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_close

from mofa_bench.scoring import geometric_error, landmark_error, photometric_error
from scoring_references import geometric_error_reference
from mofa_bench.face_model.model import LANDMARKS_46
from mofa_checks import InputError


def photometric_error_loop(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Naive per-pixel loop version of photometric_error."""
    out = []
    b, _, h, w = pred.shape
    for k in range(b):
        num = pred.new_tensor(0.0)
        den = pred.new_tensor(0.0)
        for i in range(h):
            for j in range(w):
                m = float(mask[k, 0, i, j])
                if m > 0:
                    num = num + m * torch.sqrt(((pred[k, :, i, j] - target[k, :, i, j]) ** 2).sum())
                    den = den + m
        out.append(num / den if den > 0 else pred.new_tensor(float("nan")))
    return torch.stack(out)


def landmark_error_loop(pred, target, subset=None, confidence=None):
    """Naive loop version of landmark_error."""
    indices = range(pred.shape[1]) if subset is None else subset
    out = []
    for k in range(pred.shape[0]):
        num, den = 0.0, 0.0
        for j in indices:
            c = 1.0 if confidence is None else float(confidence[k, j])
            num += c * math.dist(pred[k, j].tolist(), target[k, j].tolist())
            den += c
        out.append(num / den)
    return torch.tensor(out, dtype=pred.dtype)


def rotation_y(angle: float, dtype=torch.float64) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=dtype)


def face_points(b: int, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Random face-sized point clouds, mm (made on CPU, then moved)."""
    return (torch.randn(b, n, 3, dtype=torch.float64) * torch.tensor([75.0, 95.0, 80.0], dtype=torch.float64)).to(
        device=device, dtype=dtype)


class TestGeometricError:
    def test_smoke_shape(self, device, dtype):
        pred = face_points(4, 100, dtype, device)
        err = geometric_error(pred, face_points(4, 100, dtype, device))
        assert err.shape == (4,) and err.dtype == dtype and err.device.type == device.type

    def test_translated_and_scaled_copy_has_zero_error(self, device, dtype):
        target = face_points(3, 200, dtype, device)
        shift = torch.tensor([[[12.0, -30.0, 500.0]]], dtype=dtype, device=device)
        pred = target * 0.8 + shift
        assert_close(geometric_error(pred, target), torch.zeros(3, dtype=dtype, device=device),
                     atol=1e-3 if dtype == torch.float32 else 1e-9, rtol=0.0)

    def test_convention_scale_is_applied_to_the_prediction(self):
        target = face_points(1, 50, torch.float64, torch.device("cpu"))
        target = target + torch.randn_like(target)
        pred = 0.5 * target + torch.randn_like(target) * 3.0
        # The prediction is rescaled onto the target: its own size does not matter, while
        # the target's size (the mm scale of the ground truth) scales the error.
        assert_close(geometric_error(2.0 * pred, target), geometric_error(pred, target))
        assert_close(geometric_error(pred, 2.0 * target), 2.0 * geometric_error(pred, target))

    def test_known_offset_of_one_vertex_translation_only(self):
        n = 50
        pred = face_points(1, n, torch.float64, torch.device("cpu"))
        target = pred.clone()
        target[0, 7] += torch.tensor([3.0, 0.0, 4.0], dtype=torch.float64)  # |d| = 5 mm
        # Centring moves the centroid by d/N: N-1 residuals of |d|/N and one of |d|(N-1)/N.
        expected = 2 * 5.0 * (n - 1) / n**2
        assert_close(geometric_error(pred, target, compensate_scale=False), torch.tensor([expected]))

    def test_known_offset_with_scale_compensation(self):
        n = 40
        pred = face_points(1, n, torch.float64, torch.device("cpu"))
        p = pred[0] - pred[0].mean(dim=0)
        # Opposite offsets on two vertices, orthogonal to both (centred) positions, leave the
        # centroid and the least-squares scale unchanged: the error is 2 |d| / N.
        d = torch.linalg.cross(p[3], p[11])
        d = 2.5 * d / d.norm()
        target = pred.clone()
        target[0, 3] += d
        target[0, 11] -= d
        assert_close(geometric_error(pred, target), torch.tensor([2 * 2.5 / n], dtype=torch.float64))

    def test_rotation_is_not_compensated(self):
        target = face_points(1, 300, torch.float64, torch.device("cpu"))
        pred = (target - target.mean(dim=1, keepdim=True)) @ rotation_y(0.2).T
        err = geometric_error(pred, target)
        assert err.item() > 5.0
        assert_close(err, geometric_error_reference(pred, target))

    def test_scale_is_kept_when_not_compensated(self):
        target = face_points(2, 100, torch.float64, torch.device("cpu"))
        centred = target - target.mean(dim=1, keepdim=True)
        err = geometric_error(2.0 * target, target, compensate_scale=False)
        assert_close(err, centred.norm(dim=-1).mean(dim=1))
        assert_close(geometric_error(2.0 * target, target), torch.zeros(2, dtype=torch.float64), atol=1e-9, rtol=0)

    @pytest.mark.parametrize("compensate_scale", [True, False])
    def test_matches_reference(self, device, dtype, compensate_scale):
        pred = face_points(3, 60, dtype, device)
        target = 1.3 * pred + torch.randn_like(pred) * 4.0
        assert_close(geometric_error(pred, target, compensate_scale),
                     geometric_error_reference(pred, target, compensate_scale), rtol=1e-4)

    def test_collapsed_prediction_is_finite(self):
        target = face_points(1, 30, torch.float64, torch.device("cpu"))
        pred = torch.ones_like(target) * 5.0
        centred = target - target.mean(dim=1, keepdim=True)
        assert_close(geometric_error(pred, target), centred.norm(dim=-1).mean(dim=1))
        assert_close(geometric_error_reference(pred, target), centred.norm(dim=-1).mean(dim=1))

    def test_gradcheck(self):
        pred = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
        target = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(geometric_error, (pred, target), fast_mode=True)

    @pytest.mark.parametrize("pred,target", [
        (torch.zeros(1, 10, 2), torch.zeros(1, 10, 2)),
        (torch.zeros(1, 10, 3), torch.zeros(1, 11, 3)),
        (torch.zeros(2, 10, 3), torch.zeros(1, 10, 3)),
        (torch.zeros(10, 3), torch.zeros(10, 3)),
        (torch.zeros(1, 10, 3, dtype=torch.long), torch.zeros(1, 10, 3, dtype=torch.long)),
        (torch.zeros(1, 0, 3), torch.zeros(1, 0, 3)),
    ])
    def test_bad_shapes_raise(self, pred, target):
        with pytest.raises(InputError, match="pred|target"):
            geometric_error(pred, target)


class TestPhotometricError:
    def test_constant_offset_gives_its_length(self, device, dtype):
        pred = torch.rand(2, 3, 16, 20, dtype=dtype).to(device)
        offset = torch.tensor([0.1, 0.2, -0.2], dtype=dtype, device=device).view(1, 3, 1, 1)
        target = pred + offset
        mask = torch.ones(2, 1, 16, 20, dtype=dtype, device=device)
        assert_close(photometric_error(pred, target, mask), torch.full((2,), 0.3, dtype=dtype, device=device))

    def test_mask_is_respected(self):
        pred = torch.rand(1, 3, 10, 10)
        target = pred + torch.tensor([0.0, 0.3, 0.4]).view(1, 3, 1, 1)
        mask = torch.zeros(1, 1, 10, 10, dtype=torch.bool)
        mask[..., 2:6, 3:8] = True
        target[..., ~mask[0, 0]] = 1.0 - pred[..., ~mask[0, 0]] + 5.0  # large errors outside the mask
        assert_close(photometric_error(pred, target, mask), torch.tensor([0.5]))

    def test_soft_mask_weights_pixels(self):
        pred = torch.zeros(1, 3, 2, 2)
        target = torch.zeros(1, 3, 2, 2)
        target[0, 0, 0, :] = 0.2      # distance 0.2 on the top row
        target[0, 0, 1, :] = 0.8      # distance 0.8 on the bottom row
        mask = torch.tensor([[[[1.0, 1.0], [0.5, 0.5]]]])
        expected = (2 * 0.2 + 2 * 0.5 * 0.8) / 3.0
        assert_close(photometric_error(pred, target, mask), torch.tensor([expected]))

    def test_empty_mask_gives_nan_for_that_sample_only(self):
        pred, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
        mask = torch.ones(2, 1, 8, 8)
        mask[1] = 0.0
        err = photometric_error(pred, target, mask)
        assert torch.isfinite(err[0]) and torch.isnan(err[1])

    def test_matches_loop(self):
        pred = torch.rand(2, 3, 6, 7, dtype=torch.float64)
        target = torch.rand(2, 3, 6, 7, dtype=torch.float64)
        coverage = torch.rand(2, 1, 6, 7, dtype=torch.float64)
        mask = (torch.rand(2, 1, 6, 7, dtype=torch.float64) > 0.4).double() * coverage
        assert_close(photometric_error(pred, target, mask), photometric_error_loop(pred, target, mask))

    def test_gradcheck(self):
        pred = torch.rand(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
        target = torch.rand(2, 3, 4, 4, dtype=torch.float64)
        mask = torch.rand(2, 1, 4, 4, dtype=torch.float64)
        assert torch.autograd.gradcheck(lambda p: photometric_error(p, target, mask), (pred,), fast_mode=True)

    @pytest.mark.parametrize("pred,target,mask,name", [
        (torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), torch.ones(1, 3, 4, 4), "mask"),
        (torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5), torch.ones(1, 1, 4, 4), "target"),
        (torch.rand(1, 4, 4, 4), torch.rand(1, 4, 4, 4), torch.ones(1, 1, 4, 4), "pred_images"),
        (torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4), torch.ones(1, 1, 4, 4), "mask"),
        (torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), -torch.ones(1, 1, 4, 4), "mask"),
    ])
    def test_bad_inputs_raise(self, pred, target, mask, name):
        with pytest.raises(InputError, match=name):
            photometric_error(pred, target, mask)


class TestLandmarkError:
    def test_known_offset(self, device, dtype):
        pred = (torch.rand(3, 68, 2, dtype=dtype) * 240).to(device)
        target = pred + torch.tensor([3.0, 4.0], dtype=dtype, device=device)
        assert_close(landmark_error(pred, target), torch.full((3,), 5.0, dtype=dtype, device=device))

    def test_subset_46(self):
        pred = torch.rand(2, 68, 2) * 240
        target = pred.clone()
        target[:, list(LANDMARKS_46)] += torch.tensor([6.0, 8.0])
        assert_close(landmark_error(pred, target, subset=LANDMARKS_46), torch.full((2,), 10.0))
        assert_close(landmark_error(pred, target), torch.full((2,), 10.0 * 46 / 68))
        assert_close(landmark_error(pred, target, subset=torch.tensor(LANDMARKS_46)), torch.full((2,), 10.0))

    def test_confidence_weights(self):
        pred = torch.zeros(1, 3, 2)
        target = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]]])
        confidence = torch.tensor([[1.0, 0.5, 0.0]])
        expected = (1.0 * 1.0 + 0.5 * 2.0) / 1.5
        assert_close(landmark_error(pred, target, confidence=confidence), torch.tensor([expected]))
        assert_close(landmark_error(pred, target, subset=[1, 2], confidence=confidence), torch.tensor([2.0]))

    def test_zero_confidence_gives_nan(self):
        pred, target = torch.zeros(2, 5, 2), torch.ones(2, 5, 2)
        confidence = torch.ones(2, 5)
        confidence[0] = 0.0
        err = landmark_error(pred, target, confidence=confidence)
        assert torch.isnan(err[0]) and torch.isclose(err[1], torch.tensor(math.sqrt(2.0)))

    def test_matches_loop(self):
        pred, target = torch.rand(3, 68, 2, dtype=torch.float64) * 100, torch.rand(3, 68, 2, dtype=torch.float64) * 100
        confidence = torch.rand(3, 68, dtype=torch.float64)
        assert_close(landmark_error(pred, target, LANDMARKS_46, confidence),
                     landmark_error_loop(pred, target, LANDMARKS_46, confidence))
        assert_close(landmark_error(pred, target), landmark_error_loop(pred, target))

    def test_gradcheck(self):
        pred = torch.rand(2, 7, 2, dtype=torch.float64, requires_grad=True)
        target = torch.rand(2, 7, 2, dtype=torch.float64)
        conf = torch.rand(2, 7, dtype=torch.float64)
        assert torch.autograd.gradcheck(lambda p: landmark_error(p, target, [0, 2, 5], conf), (pred,), fast_mode=True)

    @pytest.mark.parametrize("kwargs,name", [
        ({"pred": torch.zeros(1, 68, 3), "target": torch.zeros(1, 68, 3)}, "pred"),
        ({"target": torch.zeros(1, 66, 2)}, "target"),
        ({"confidence": torch.ones(1, 66)}, "confidence"),
        ({"confidence": -torch.ones(1, 68)}, "confidence"),
        ({"subset": [0, 68]}, "subset"),
        ({"subset": [-1]}, "subset"),
        ({"subset": []}, "subset"),
    ])
    def test_bad_inputs_raise(self, kwargs, name):
        args = {"pred": torch.zeros(1, 68, 2), "target": torch.zeros(1, 68, 2), **kwargs}
        with pytest.raises(InputError, match=name):
            landmark_error(**args)
