import pytest
import torch

from mofa_bench import CODE_DIM, join_code
from mofa_bench.errors import InputError
from mofa_bench.code_vector import CODE_SLICES
from mofa_bench.losses import (LossWeights, landmark_loss, mofa_loss, photometric_loss, pose_loss,
                               regularization_loss)
from renderers import PhotometricSamples
from helpers import assert_close


def _samples(b=2, m=5, dtype=torch.float64, requires_grad=False):
    pred = torch.rand(b, m, 3, dtype=dtype, requires_grad=requires_grad)
    obs = torch.rand(b, m, 3, dtype=dtype)
    w = (torch.rand(b, m, dtype=dtype) > 0.3).to(dtype)
    return PhotometricSamples(pred, obs, w)


class TestPhotometricLoss:
    def test_known_value_paper_normalisation(self):
        pred = torch.zeros(1, 4, 3, dtype=torch.float64)
        obs = torch.zeros(1, 4, 3, dtype=torch.float64)
        obs[0, 0] = torch.tensor([0.3, 0.4, 0.0], dtype=torch.float64)  # distance 0.5
        obs[0, 1] = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)  # distance 1, but weight 0
        w = torch.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
        s = PhotometricSamples(pred, obs, w)
        assert float(photometric_loss(s)) == pytest.approx(0.5 / 4, abs=1e-5)
        assert float(photometric_loss(s, "weights")) == pytest.approx(0.5 / 3, abs=1e-5)

    def test_is_l21_not_squared(self):
        pred = torch.zeros(1, 1, 3, dtype=torch.float64)
        s1 = PhotometricSamples(pred, torch.full((1, 1, 3), 0.1, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64))
        s2 = PhotometricSamples(pred, torch.full((1, 1, 3), 0.2, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64))
        assert float(photometric_loss(s2)) == pytest.approx(2 * float(photometric_loss(s1)), rel=1e-6)

    def test_gradcheck(self):
        s = _samples(requires_grad=True)
        assert torch.autograd.gradcheck(lambda p: photometric_loss(PhotometricSamples(p, s.observed, s.weights)), (s.predicted,))

    def test_bad_shapes_raise(self):
        s = _samples()
        with pytest.raises(InputError, match="weights"):
            photometric_loss(PhotometricSamples(s.predicted, s.observed, s.weights[:, :3]))
        with pytest.raises(InputError, match="normalization"):
            photometric_loss(s, "median")


class TestLandmarkLoss:
    def test_known_value_with_confidence(self):
        pred = torch.zeros(1, 3, 2, dtype=torch.float64)
        target = torch.tensor([[[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]]], dtype=torch.float64)
        conf = torch.tensor([[1.0, 0.5, 0.0]], dtype=torch.float64)
        assert float(landmark_loss(pred, target, conf)) == pytest.approx(25.0 + 0.5)

    def test_gradcheck(self):
        pred = torch.randn(2, 46, 2, dtype=torch.float64, requires_grad=True)
        target, conf = torch.randn(2, 46, 2, dtype=torch.float64), torch.rand(2, 46, dtype=torch.float64)
        assert torch.autograd.gradcheck(lambda p: landmark_loss(p, target, conf), (pred,))


class TestRegularization:
    def test_paper_weights(self):
        code = join_code(alpha=torch.full((1, 80), 1.0, dtype=torch.float64),
                         beta=torch.full((1, 80), 1.0, dtype=torch.float64),
                         delta=torch.full((1, 64), 1.0, dtype=torch.float64),
                         gamma=torch.full((1, 27), 5.0, dtype=torch.float64),
                         rotation=torch.full((1, 3), 1.0, dtype=torch.float64))
        assert float(regularization_loss(code)) == pytest.approx(80 + 1.7e-3 * 80 + 0.8 * 64)

    def test_gradcheck(self):
        code = torch.randn(2, CODE_DIM, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(regularization_loss, (code,))


class TestPoseLoss:
    def test_known_value_on_constructed_codes(self):
        code = torch.zeros(2, CODE_DIM, dtype=torch.float64)
        code[0, CODE_SLICES["rotation"]] = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
        code[1, CODE_SLICES["translation"]] = torch.tensor([10.0, 0.0, -20.0], dtype=torch.float64)
        code[:, CODE_SLICES["alpha"]] = 5.0  # face codes are not part of the pose prior
        value = pose_loss(code, 2.0, 1e-3)
        assert float(value) == pytest.approx((2.0 * 0.14 + 1e-3 * 500.0) / 2)
        assert float(pose_loss(code, 0.0, 0.0)) == 0.0

    def test_gradcheck(self):
        code = torch.randn(2, CODE_DIM, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda c: pose_loss(c, 0.3, 0.01), (code,))

    def test_enters_the_total_with_its_own_weights(self):
        code = torch.randn(2, CODE_DIM, dtype=torch.float64)
        out = mofa_loss(code, _samples(), LossWeights(reg_rotation=0.2, reg_translation=3e-4))
        assert_close(out["pose"], pose_loss(code, 0.2, 3e-4))
        assert_close(out["total"], 1.92 * out["photo"] + 2.9e-5 * out["reg"] + out["pose"])
        assert float(mofa_loss(code, _samples())["pose"]) == 0.0


class TestMoFALoss:
    def test_total_uses_paper_weights_by_default(self):
        code = torch.randn(2, CODE_DIM, dtype=torch.float64)
        s = _samples()
        out = mofa_loss(code, s)
        assert_close(out["total"], 1.92 * out["photo"] + 2.9e-5 * out["reg"])
        assert float(out["landmark"]) == 0.0

    def test_landmark_term_included_when_weighted(self):
        code = torch.randn(2, CODE_DIM, dtype=torch.float64)
        pred, target = torch.zeros(2, 46, 2, dtype=torch.float64), torch.ones(2, 46, 2, dtype=torch.float64)
        out = mofa_loss(code, _samples(), LossWeights(landmark=1.0), pred, target)
        assert float(out["landmark"]) == pytest.approx(92.0)
        assert_close(out["total"], 1.92 * out["photo"] + 2.9e-5 * out["reg"] + out["landmark"])

    def test_landmark_weight_without_landmarks_raises(self):
        with pytest.raises(InputError, match="landmark"):
            mofa_loss(torch.zeros(1, CODE_DIM), _samples(1, dtype=torch.float32), LossWeights(landmark=1.0))

    def test_negative_weight_raises(self):
        with pytest.raises(InputError, match="photo"):
            LossWeights(photo=-1.0)

    @pytest.mark.parametrize("value", [float("nan"), float("inf"), True, "1"])
    def test_non_finite_or_non_number_weight_raises(self, value):
        with pytest.raises(InputError, match="LossWeights.reg: expected a finite number"):
            LossWeights(reg=value)
