"""The one camera convention of mofa-bench (every renderer converts from it).

Camera space (OpenCV): x right, y down, z forward (into the scene), millimetres; the
camera sits at the origin. Screen space: pixels, origin at the **top-left corner** of the
top-left pixel, u to the right, v down; pixel (i, j) covers [j, j+1) × [i, i+1) and its
centre is at (j + 0.5, i + 0.5).

Pinhole projection ``u = f_x · x / z + c_x``, ``v = f_y · y / z + c_y`` with intrinsics
``K = [[f_x, 0, c_x], [0, f_y, c_y], [0, 0, 1]]``. By default the principal point is the
image centre (W/2, H/2) and f = 2.5 · W px (a ≈23° horizontal field of view).

Head pose (the paper's Φ(v) = T⁻¹(v − t), written as the pose of the head in camera
space): ``v_cam = P · R(rotation) · v + translation + (0, 0, head_distance)`` where
``P = diag(1, -1, -1)`` turns the model frame (y up, z towards the viewer) into the
camera frame, and R applies Euler angles (rad) as ``Rz(roll) · Ry(yaw) · Rx(pitch)``.
The zero pose therefore shows the face frontally, centred, ``head_distance`` mm away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mofa_bench.errors import InputError
from mofa_checks import check_tensor

#: Model-frame → camera-frame axis flip (y up → y down, z to viewer → z forward).
MODEL_TO_CAMERA_AXES = (1.0, -1.0, -1.0)


def euler_to_rotation_matrix(angles: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from Euler angles.

    Args:
        angles: ``(B, 3)`` (pitch about x, yaw about y, roll about z), radians.

    Returns:
        ``(B, 3, 3)`` ``R = Rz(roll) · Ry(yaw) · Rx(pitch)`` (intrinsic x-then-y-then-z
        applied to column vectors from the right).

    Built through a unit quaternion (kornia's ``quaternion_from_euler``, whose
    ``R = Rz(yaw) · Ry(pitch) · Rx(roll)`` is this composition with its roll about x,
    pitch about y and yaw about z): about sixty elementwise operations for the whole
    batch, which matters on a GPU, where each is a kernel launch per training step.
    """
    import kornia.geometry.conversions as kc

    check_tensor("angles", angles, "B 3", floating=True)
    about_x, about_y, about_z = angles.unbind(-1)
    quaternion = torch.stack(kc.quaternion_from_euler(about_x, about_y, about_z), dim=-1)  # (B, 4) wxyz
    return kc.quaternion_to_rotation_matrix(quaternion)


@dataclass(frozen=True)
class Camera:
    """Pinhole camera with the project's conventions (see module docstring).

    Attributes:
        image_size: output size in pixels, an int (square) or ``(H, W)``.
        focal_length: focal length in pixels (square pixels); default ``2.5 · W``.
        principal_point: ``(c_x, c_y)`` in pixels; default the image centre.
        head_distance: camera-space z of the head origin at zero translation, mm.
    """

    image_size: int | tuple[int, int] = 240
    focal_length: float | None = None
    principal_point: tuple[float, float] | None = None
    head_distance: float = 600.0

    def __post_init__(self) -> None:
        def positive_int(value: object) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value > 0

        def positive_number(value: object) -> bool:
            return (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value) and value > 0)

        size = self.image_size
        pair = isinstance(size, (tuple, list)) and len(size) == 2 and all(positive_int(v) for v in size)
        if not (positive_int(size) or pair):
            raise InputError(f"Camera.image_size: expected a positive int or an (H, W) pair of them, got {size!r}")
        if self.focal_length is not None and not positive_number(self.focal_length):
            raise InputError(f"Camera.focal_length: expected a finite number > 0 px, got {self.focal_length!r}")
        if not positive_number(self.head_distance):
            raise InputError(f"Camera.head_distance: expected a finite number > 0 mm, got {self.head_distance!r}")
        point = self.principal_point
        if point is not None and not (isinstance(point, (tuple, list)) and len(point) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in point)):
            raise InputError(f"Camera.principal_point: expected a finite (c_x, c_y) pair in px, got {point!r}")

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        if isinstance(self.image_size, int):
            return (self.image_size, self.image_size)
        h, w = self.image_size
        return (int(h), int(w))

    @property
    def focal(self) -> float:
        """Focal length in pixels."""
        return float(self.focal_length) if self.focal_length is not None else 2.5 * self.size[1]

    @property
    def center(self) -> tuple[float, float]:
        """Principal point ``(c_x, c_y)`` in pixels."""
        if self.principal_point is not None:
            return (float(self.principal_point[0]), float(self.principal_point[1]))
        h, w = self.size
        return (w / 2.0, h / 2.0)

    def intrinsics(self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
        """``(3, 3)`` intrinsic matrix K."""
        cx, cy = self.center
        f = self.focal
        return torch.tensor([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]], dtype=dtype, device=device)

    def head_to_camera(self, vertices: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
        """Pose model-space points in camera space.

        Args:
            vertices: ``(B, N, 3)`` model-space points, mm.
            rotation: ``(B, 3)`` Euler angles (pitch, yaw, roll), rad.
            translation: ``(B, 3)`` camera-space offset, mm.

        Returns:
            ``(B, N, 3)`` camera-space points, mm.
        """
        return self.apply_pose(vertices, self.rotation_to_camera(rotation), translation)

    def apply_pose(self, vertices: torch.Tensor, rotation_to_camera: torch.Tensor,
                   translation: torch.Tensor) -> torch.Tensor:
        """:meth:`head_to_camera` with the rotation already built (by :meth:`rotation_to_camera`).

        Args:
            vertices: ``(B, N, 3)`` model-space points, mm.
            rotation_to_camera: ``(B, 3, 3)`` model-to-camera rotation ``P · R``.
            translation: ``(B, 3)`` camera-space offset, mm.

        Returns:
            ``(B, N, 3)`` camera-space points, mm.
        """
        offset = translation + translation.new_tensor([0.0, 0.0, self.head_distance])
        return vertices @ rotation_to_camera.transpose(1, 2) + offset.unsqueeze(1)

    def rotation_to_camera(self, rotation: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 3)`` model-to-camera rotation ``P · R(rotation)`` (also rotates normals)."""
        flip = rotation.new_tensor(MODEL_TO_CAMERA_AXES)
        return flip.view(1, 3, 1) * euler_to_rotation_matrix(rotation)

    def project(self, points: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        """Perspective projection Π of camera-space points to pixel coordinates.

        Args:
            points: ``(B, N, 3)`` camera-space points, mm, z > 0 in front of the camera.
            eps: lower clamp on z to keep the division finite behind the camera.

        Returns:
            ``(B, N, 2)`` ``(u, v)`` in pixels (top-left corner origin, centres at +0.5).
        """
        check_tensor("points", points, "B N 3", floating=True)
        cx, cy = self.center
        z = points[..., 2:3].clamp(min=eps)
        xy = points[..., :2] / z
        return xy * self.focal + xy.new_tensor([cx, cy])
