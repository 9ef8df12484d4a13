"""Screen meshes for the renderer tests, built without the face model.

:func:`ellipsoid_mesh` poses a head-sized ellipsoid (a trimesh icosphere scaled to radii
75 × 95 × 80 mm, counter-clockwise seen from outside) about 600 mm in front of an explicit
pinhole camera and lights its per-vertex albedo with a Lambertian light;
:func:`triangle_mesh` places one triangle whose coverage is known pixel by pixel.

Conventions are the renderers': camera space x right, y down, z forward (mm); pixels
with the origin at the top-left image corner and pixel (i, j) centred at
``(j + 0.5, i + 0.5)``; pinhole ``u = f x / z + c_x``, ``v = f y / z + c_y``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from renderers import ScreenMesh

#: Image size (H, W) of the pixel-exact triangle; non-square on purpose.
TRI_SIZE = (12, 16)
#: A right triangle, not symmetric under any axis flip or transpose; no pixel centre lies
#: on an edge. Pixel (i, j) is covered iff i >= 1, j >= 2 and j + 2 i <= 13.
TRI_UV = ((2.25, 1.25), (12.25, 1.25), (2.25, 6.25))
#: Ellipsoid radii (x, y, z), mm: the size of a head.
HEAD_RADII = (75.0, 95.0, 80.0)
#: Camera-space depth of the ellipsoid's centre at zero translation, mm.
HEAD_DISTANCE = 600.0
#: Fields of :class:`~renderers.base.ScreenMesh`.
SCREEN_FIELDS = ("verts_cam", "uv", "colors", "visible", "triangles", "intrinsics", "image_size")


@dataclass(frozen=True)
class LitMesh(ScreenMesh):
    """A :class:`~renderers.base.ScreenMesh` plus its vertex normals.

    Attributes (beyond ScreenMesh's):
        normals_cam: ``(B, N, 3)`` unit camera-space vertex normals (outward).
    """

    normals_cam: torch.Tensor


def pinhole_intrinsics(image_size: tuple[int, int], dtype: torch.dtype = torch.float32,
                       device: torch.device | str = "cpu") -> torch.Tensor:
    """``(3, 3)`` K: f = 2.5 · W px (square pixels), principal point at the image centre."""
    height, width = image_size
    f = 2.5 * width
    return torch.tensor([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]], dtype=dtype, device=device)


def project(verts_cam: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """``(B, N, 2)`` pixel positions of ``(B, N, 3)`` camera-space points (mm) under K."""
    xy = verts_cam[..., :2] / verts_cam[..., 2:]
    return xy * intrinsics.diagonal()[:2] + intrinsics[:2, 2]


def unproject(uv: torch.Tensor, depth: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """``(B, N, 3)`` camera-space points (mm) at ``(B, N, 2)`` pixels and ``(B, N, 1)`` depths."""
    return torch.cat([(uv - intrinsics[:2, 2]) / intrinsics.diagonal()[:2] * depth, depth], -1)


def triangle_mesh(dtype: torch.dtype = torch.float32, depth: float = 500.0,
                  device: torch.device | str = "cpu") -> ScreenMesh:
    """One red/green/blue triangle at constant ``depth`` mm, placed at :data:`TRI_UV`."""
    k = pinhole_intrinsics(TRI_SIZE, dtype=dtype, device=device)
    uv = torch.tensor([TRI_UV], dtype=dtype, device=device)
    z = torch.full((1, 3, 1), depth, dtype=dtype, device=device)
    return ScreenMesh(
        verts_cam=unproject(uv, z, k), uv=uv, colors=torch.eye(3, dtype=dtype, device=device).unsqueeze(0),
        visible=torch.ones(1, 3, dtype=torch.bool, device=device),
        triangles=torch.tensor([[0, 1, 2]], device=device), intrinsics=k, image_size=TRI_SIZE,
    )


def expected_triangle() -> tuple[torch.Tensor, torch.Tensor]:
    """``(mask (H, W), colours (3, H, W))`` float64 of :func:`triangle_mesh`, from the definition."""
    h, w = TRI_SIZE
    i, j = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    mask = (i >= 1) & (j >= 2) & (j + 2 * i <= 13)
    u, v = j + 0.5, i + 0.5
    (ax, ay), (bx, by), (cx, cy) = TRI_UV
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    b1 = ((u - ax) * (cy - ay) - (v - ay) * (cx - ax)) / area
    b2 = ((bx - ax) * (v - ay) - (by - ay) * (u - ax)) / area
    colours = torch.stack([1 - b1 - b2, b1, b2]) * mask
    return mask.double(), colours


@functools.lru_cache(maxsize=None)
def _icosphere(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere ``(vertices (N, 3), faces (F, 3))``, counter-clockwise from outside."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=subdivisions, radius=1.0)
    return np.asarray(sphere.vertices, dtype=np.float64), np.asarray(sphere.faces, dtype=np.int64)


def rotation_matrices(angles: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 3)`` ``Rz(c) · Ry(b) · Rx(a)`` of ``(B, 3)`` angles ``(a, b, c)``, rad."""
    cos, sin = angles.cos(), angles.sin()
    one, zero = torch.ones_like(angles[:, 0]), torch.zeros_like(angles[:, 0])

    def matrix(*rows: torch.Tensor) -> torch.Tensor:
        return torch.stack(rows, -1).view(-1, 3, 3)

    rx = matrix(one, zero, zero, zero, cos[:, 0], -sin[:, 0], zero, sin[:, 0], cos[:, 0])
    ry = matrix(cos[:, 1], zero, sin[:, 1], zero, one, zero, -sin[:, 1], zero, cos[:, 1])
    rz = matrix(cos[:, 2], -sin[:, 2], zero, sin[:, 2], cos[:, 2], zero, zero, zero, one)
    return rz @ ry @ rx


def ellipsoid_mesh(size: int | tuple[int, int] = 32, batch: int = 1, dtype: torch.dtype = torch.float32,
                   seed: int = 0, subdivisions: int = 2, shift: tuple[float, float, float] = (0.0, 0.0, 0.0),
                   device: torch.device | str = "cpu") -> LitMesh:
    """A posed, lit, head-sized ellipsoid per batch item (162 vertices at ``subdivisions=2``).

    Each item gets a random pose (rotation 0.15 rad, translation 8 mm, standard
    deviations) plus ``shift`` mm, in front of the camera with the face side (model +z)
    towards it, and Gouraud colours ``albedo · (0.6 + 0.5 max(0, ⟨n, l⟩))`` with a
    random albedo around (0.7, 0.5, 0.4) and a light ``l`` near the camera's direction.

    Args:
        size: image side in px, or ``(H, W)``.
        batch: B.
        dtype: float dtype of every float tensor.
        seed: seed of poses, albedo and lights.
        subdivisions: icosphere level (1: 42 vertices, 2: 162).
        shift: ``(x, y, z)`` camera-space offset added to every item, mm.
        device: device of every tensor.
    """
    image_size = (size, size) if isinstance(size, int) else tuple(size)
    unit, faces = _icosphere(subdivisions)
    gen = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    radii = torch.tensor(HEAD_RADII, dtype=f64)
    unit_t = torch.as_tensor(unit, dtype=f64)
    model = unit_t * radii
    normals_model = torch.nn.functional.normalize(unit_t / radii, dim=-1)
    # Model frame y up, z towards the viewer → camera frame y down, z forward.
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=f64))
    rotation = flip @ rotation_matrices(0.15 * torch.randn(batch, 3, generator=gen, dtype=f64))
    translation = 8.0 * torch.randn(batch, 1, 3, generator=gen, dtype=f64)
    translation = translation + torch.tensor([0.0, 0.0, HEAD_DISTANCE], dtype=f64) + torch.tensor(shift, dtype=f64)
    verts_cam = model @ rotation.transpose(1, 2) + translation
    normals_cam = normals_model @ rotation.transpose(1, 2)
    noise = torch.randn(batch, unit.shape[0], 3, generator=gen, dtype=f64)
    albedo = torch.tensor([0.7, 0.5, 0.4], dtype=f64) + 0.05 * noise
    light = torch.nn.functional.normalize(
        torch.tensor([0.0, 0.0, -1.0], dtype=f64) + 0.3 * torch.randn(batch, 1, 3, generator=gen, dtype=f64), dim=-1)
    colors = albedo * (0.6 + 0.5 * (normals_cam * light).sum(-1, keepdim=True).clamp(min=0.0))
    k = pinhole_intrinsics(image_size, dtype=f64)
    mesh = LitMesh(
        verts_cam=verts_cam, uv=project(verts_cam, k), colors=colors,
        visible=(normals_cam * verts_cam).sum(-1) < 0, triangles=torch.as_tensor(faces),
        intrinsics=k, image_size=image_size, normals_cam=normals_cam,
    )
    return LitMesh(**{name: _cast(getattr(mesh, name), dtype, device) for name in (*SCREEN_FIELDS, "normals_cam")})


def _cast(value: object, dtype: torch.dtype, device: torch.device | str) -> object:
    """Float tensors to ``dtype`` and every tensor to ``device``; anything else unchanged."""
    if not isinstance(value, torch.Tensor):
        return value
    return value.to(device=device, dtype=dtype if value.dtype.is_floating_point else value.dtype)


def as_screen_mesh(mesh: ScreenMesh, **changes: object) -> ScreenMesh:
    """A plain :class:`~renderers.base.ScreenMesh` copy of ``mesh`` with fields replaced."""
    fields = {name: getattr(mesh, name) for name in SCREEN_FIELDS}
    fields.update(changes)
    return ScreenMesh(**fields)


def to_device(mesh: ScreenMesh, device: torch.device | str) -> ScreenMesh:
    """A plain :class:`~renderers.base.ScreenMesh` copy of ``mesh`` on ``device``."""
    names = ("verts_cam", "uv", "colors", "visible", "triangles", "intrinsics")
    return ScreenMesh(image_size=mesh.image_size, **{name: getattr(mesh, name).to(device) for name in names})
