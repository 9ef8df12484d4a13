"""Image formation: code vector → posed, projected, shaded mesh (MoFA Sec. 4).

Everything here is the same for every renderer: geometry and reflectance from the face
model, head pose into camera space, perspective projection, camera-space normals,
spherical-harmonic shading and front-facing flags. A renderer then decides where colours
are compared. Differentiable in every input, on any device and dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mofa_bench.camera import Camera
from mofa_bench.code_vector import AMBIENT_OFFSET, split_code
from mofa_bench.face_model.model import FaceModel
from mofa_bench.shading import sh_shading
from renderers.base import ScreenMesh


@dataclass(frozen=True)
class FormedFace(ScreenMesh):
    """A :class:`~renderers.base.ScreenMesh` plus the face-specific intermediates.

    Attributes (beyond ScreenMesh's verts_cam, uv, colors, visible, triangles,
    intrinsics, image_size):
        vertices: ``(B, N, 3)`` model-space geometry V, mm.
        normals_cam: ``(B, N, 3)`` unit camera-space vertex normals.
        reflectance: ``(B, N, 3)`` albedo R.
        landmarks_uv: ``(B, 68, 2)`` pixel positions of the iBUG-68 landmark vertices.
    """

    vertices: torch.Tensor
    normals_cam: torch.Tensor
    reflectance: torch.Tensor
    landmarks_uv: torch.Tensor


def front_facing(verts_cam: torch.Tensor, normals_cam: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` bool: the normal points towards the camera (⟨n, −v⟩ > 0)."""
    return (normals_cam * verts_cam).sum(-1) < 0


def form_face(model: FaceModel, camera: Camera, code: torch.Tensor,
              ambient_offset: float = AMBIENT_OFFSET) -> FormedFace:
    """Run image formation for a batch of codes.

    Args:
        model: face model, on the code's device and dtype.
        camera: the camera (conventions in :mod:`mofa_bench.camera`).
        code: ``(B, 257)`` code vectors (layout in :mod:`mofa_bench.code_vector`).
        ambient_offset: added to the constant SH band.

    Returns:
        :class:`FormedFace` with every per-vertex quantity.

    Raises:
        InputError: wrong code shape or dtype, NaN/Inf in the code, or the model on
            another device/dtype.
    """
    parts = split_code(code)
    if model.dtype != code.dtype or model.device != code.device:
        from mofa_bench.errors import InputError

        raise InputError(
            f"code: dtype/device {code.dtype}/{code.device} differs from the face model's "
            f"{model.dtype}/{model.device}; move one with model.to(...) or code.to(...)"
        )
    vertices = model.vertices(parts.alpha, parts.delta)
    reflectance = model.reflectance(parts.beta)
    return form_geometry(model, camera, vertices, reflectance, code, ambient_offset)


def form_geometry(model: FaceModel, camera: Camera, vertices: torch.Tensor, reflectance: torch.Tensor,
                  code: torch.Tensor, ambient_offset: float = AMBIENT_OFFSET) -> FormedFace:
    """Image formation of given model-space geometry and albedo under a code's pose and light.

    :func:`form_face` with ``V`` and ``R`` supplied instead of the 3DMM's: for faces that
    leave the model's span (a multi-level model's corrected mesh, an out-of-span
    generator's faces). The code's α, δ, β are not read.

    Args:
        model: the face model (triangles, landmark vertices), on the inputs' device and dtype.
        camera: the camera.
        vertices: ``(B, N, 3)`` model-space geometry, mm.
        reflectance: ``(B, N, 3)`` albedo, RGB.
        code: ``(B, 257)`` codes whose rotation, translation and γ pose and light the face.
        ambient_offset: added to the constant SH band.

    Returns:
        :class:`FormedFace`.
    """
    parts = split_code(code)
    normals = model.normals(vertices)
    rot = camera.rotation_to_camera(parts.rotation)
    verts_cam = camera.apply_pose(vertices, rot, parts.translation)
    normals_cam = normals @ rot.transpose(1, 2)
    uv = camera.project(verts_cam)
    colors = sh_shading(normals_cam, reflectance, parts.gamma, ambient_offset)
    return FormedFace(
        verts_cam=verts_cam,
        uv=uv,
        colors=colors,
        visible=front_facing(verts_cam, normals_cam),
        triangles=model.triangles,
        intrinsics=camera.intrinsics(dtype=code.dtype, device=code.device),
        image_size=camera.size,
        vertices=vertices,
        normals_cam=normals_cam,
        reflectance=reflectance,
        landmarks_uv=uv.index_select(1, model.landmark_indices),
    )
