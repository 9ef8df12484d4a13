import math

import numpy as np
import pytest
import torch

from mofa_bench.camera import Camera, euler_to_rotation_matrix
from mofa_bench.errors import InputError
from helpers import assert_close


def _numpy_rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = math.cos(pitch), math.sin(pitch), math.cos(yaw), math.sin(yaw), math.cos(roll), math.sin(roll)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


class TestCamera:
    def test_convention_principal_point_is_image_centre(self):
        cam = Camera(image_size=(120, 160))
        assert cam.size == (120, 160)
        assert cam.center == (80.0, 60.0)
        k = cam.intrinsics(torch.float64)
        assert k[0, 0] == 2.5 * 160 and k[0, 2] == 80.0 and k[1, 2] == 60.0

    def test_convention_optical_axis_hits_centre_and_y_points_down(self):
        cam = Camera(image_size=100)
        pts = torch.tensor([[[0.0, 0.0, 500.0], [0.0, 10.0, 500.0], [10.0, 0.0, 500.0]]], dtype=torch.float64)
        uv = cam.project(pts)[0]
        assert_close(uv[0], torch.tensor([50.0, 50.0], dtype=torch.float64))
        assert uv[1, 1] > 50.0  # +y camera → down in the image
        assert uv[2, 0] > 50.0  # +x camera → right

    def test_projection_matches_numpy(self):
        cam = Camera(image_size=(200, 240), focal_length=700.0, principal_point=(118.0, 103.0))
        pts = torch.randn(2, 50, 3, dtype=torch.float64) * 40 + torch.tensor([0.0, 0.0, 600.0], dtype=torch.float64)
        k = np.array([[700.0, 0, 118.0], [0, 700.0, 103.0], [0, 0, 1]])
        hom = pts.numpy() @ k.T
        expected = hom[..., :2] / hom[..., 2:]
        assert_close(cam.project(pts), torch.from_numpy(expected))

    def test_euler_matches_numpy(self):
        angles = torch.tensor([[0.3, -0.5, 0.2], [1.0, 0.1, -0.7]], dtype=torch.float64)
        r = euler_to_rotation_matrix(angles)
        for i in range(2):
            assert_close(r[i], torch.from_numpy(_numpy_rotation(*angles[i].tolist())))

    def test_euler_matches_numpy_over_the_whole_range(self):
        angles = (torch.rand(64, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) - 0.5) * 2 * math.pi
        angles[:2] = 0.0  # identity
        r = euler_to_rotation_matrix(angles)
        for i in range(64):
            assert_close(r[i], torch.from_numpy(_numpy_rotation(*angles[i].tolist())), rtol=0, atol=1e-12)
        assert_close(r @ r.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(64, 3, 3), rtol=0, atol=1e-12)

    @pytest.mark.parametrize("scale", [0.0, 1e-4, 1.0])
    def test_euler_gradcheck(self, scale):
        angles = (scale * torch.randn(3, 3, dtype=torch.float64)).requires_grad_(True)
        assert torch.autograd.gradcheck(euler_to_rotation_matrix, (angles,))

    def test_zero_pose_puts_model_origin_on_axis_at_head_distance(self):
        cam = Camera(head_distance=450.0)
        v = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 10.0, 5.0]]], dtype=torch.float64)
        out = cam.head_to_camera(v, torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64))
        assert_close(out[0, 0], torch.tensor([0.0, 0.0, 450.0], dtype=torch.float64))
        # model y up → camera y down; model z towards viewer → closer to the camera
        assert_close(out[0, 1], torch.tensor([0.0, -10.0, 445.0], dtype=torch.float64))

    @pytest.mark.parametrize("kwargs", [{"image_size": 0}, {"focal_length": -1.0}, {"head_distance": 0.0}])
    def test_bad_camera_raises(self, kwargs):
        with pytest.raises(InputError):
            Camera(**kwargs)


class TestCameraChecks:
    @pytest.mark.parametrize("kwargs, message", [
        ({"image_size": 1.5}, "image_size"), ({"image_size": None}, "image_size"),
        ({"image_size": (64, 64, 3)}, "image_size"), ({"image_size": "64"}, "image_size"),
        ({"image_size": True}, "image_size"), ({"image_size": 0}, "image_size"),
        ({"focal_length": float("nan")}, "focal_length"), ({"focal_length": -3.0}, "focal_length"),
        ({"head_distance": float("inf")}, "head_distance"), ({"principal_point": (1.0,)}, "principal_point"),
        ({"principal_point": (float("nan"), 2.0)}, "principal_point"),
    ])
    def test_bad_argument_is_named(self, kwargs, message):
        with pytest.raises(InputError, match=f"Camera.{message}"):
            Camera(**kwargs)

    def test_pairs_are_accepted(self):
        assert Camera(image_size=(48, 64)).size == (48, 64)
        assert Camera(image_size=[48, 64], principal_point=(20, 30.5)).center == (20.0, 30.5)
