"""The renderer interface: what every backend consumes and returns.

Image formation (in ``mofa_bench``) computes everything that is the same for every
renderer and hands a :class:`ScreenMesh` over; a renderer only decides *where colours
are compared* (:meth:`Renderer.photometric_samples`) and how pictures are drawn
(:meth:`Renderer.render`). Camera and pixel conventions: camera space x right, y down,
z forward (mm); pixels with the origin at the top-left corner of the top-left pixel and
pixel centres at +0.5 (see ``mofa_bench.camera``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch

from mofa_checks import check_tensor
from mofa_checks import InputError


@dataclass(frozen=True)
class ScreenMesh:
    """A batch of posed, projected, shaded meshes sharing one topology.

    Attributes:
        verts_cam: ``(B, N, 3)`` camera-space vertex positions, mm (z > 0 in front).
        uv: ``(B, N, 2)`` pixel coordinates ``(u, v)`` of the vertices.
        colors: ``(B, N, 3)`` shaded per-vertex colours, linear RGB (Gouraud).
        visible: ``(B, N)`` bool, front-facing vertices (normal towards the camera).
        triangles: ``(F, 3)`` int64 vertex indices, counter-clockwise seen from outside.
        intrinsics: ``(3, 3)`` pinhole K in pixels.
        image_size: ``(H, W)`` in pixels.
    """

    verts_cam: torch.Tensor
    uv: torch.Tensor
    colors: torch.Tensor
    visible: torch.Tensor
    triangles: torch.Tensor
    intrinsics: torch.Tensor
    image_size: tuple[int, int]

    @property
    def batch_size(self) -> int:
        return int(self.verts_cam.shape[0])

    @property
    def num_vertices(self) -> int:
        return int(self.verts_cam.shape[1])

    def validate(self) -> dict[str, int]:
        """Check shapes and dtypes; returns the bound dims ``{"B", "N", "F"}``."""
        dims: dict[str, int] = {}
        check_tensor("verts_cam", self.verts_cam, "B N 3", dims, floating=True)
        check_tensor("uv", self.uv, "B N 2", dims, floating=True)
        check_tensor("colors", self.colors, "B N 3", dims, floating=True)
        check_tensor("visible", self.visible, "B N", dims)
        check_tensor("triangles", self.triangles, "F 3", dims, integer=True)
        check_tensor("intrinsics", self.intrinsics, "3 3", floating=True)
        if self.visible.dtype != torch.bool:
            raise InputError(f"visible: expected a bool tensor, got dtype {self.visible.dtype}")
        return dims


@dataclass(frozen=True)
class PhotometricSamples:
    """Colour pairs compared by the photometric loss.

    Attributes:
        predicted: ``(B, M, 3)`` model colours (differentiable).
        observed: ``(B, M, 3)`` colours of the input image at the same places.
        weights: ``(B, M)`` non-negative sample weights (visibility or coverage).
    """

    predicted: torch.Tensor
    observed: torch.Tensor
    weights: torch.Tensor


@dataclass(frozen=True)
class RenderResult:
    """A rendered picture.

    Attributes:
        image: ``(B, 3, H, W)`` RGB, composited over the background.
        mask: ``(B, 1, H, W)`` face coverage in [0, 1].
    """

    image: torch.Tensor
    mask: torch.Tensor


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here; ``reason`` and ``fix`` say why not and what to do."""

    available: bool
    reason: str = ""
    fix: str = ""

    def __str__(self) -> str:
        if self.available:
            return "available"
        return f"unavailable: {self.reason}" + (f" (fix: {self.fix})" if self.fix else "")


class Renderer(ABC):
    """Base class of renderer backends. Subclasses set :attr:`name` and register."""

    #: Registry name (``renderer: <name>`` in configs).
    name: ClassVar[str] = ""
    #: Whether gradients flow to vertex positions through visibility/coverage.
    differentiable_geometry: ClassVar[bool] = True

    @classmethod
    def availability(cls, device: torch.device | str | None = None) -> Availability:
        """Whether this backend can run on ``device`` (default: anywhere it can)."""
        return Availability(True)

    @abstractmethod
    def photometric_samples(self, mesh: ScreenMesh, images: torch.Tensor) -> PhotometricSamples:
        """Predicted vs observed colours for the photometric loss.

        Args:
            mesh: the formed meshes.
            images: ``(B, 3, H, W)`` input images in [0, 1], same size as the camera.
        """

    @abstractmethod
    def render(self, mesh: ScreenMesh, background: torch.Tensor | None = None) -> RenderResult:
        """Draw the meshes.

        Args:
            mesh: the formed meshes.
            background: ``(B, 3, H, W)`` or ``(3, H, W)`` image, default black.
        """

    # ---------------------------------------------------------------- shared helpers
    @staticmethod
    def check_images(mesh: ScreenMesh, images: torch.Tensor, name: str = "images") -> torch.Tensor:
        """Validate ``(B, 3, H, W)`` images against the mesh batch and image size."""
        dims = mesh.validate()
        h, w = mesh.image_size
        check_tensor(name, images, f"{dims['B']} 3 {h} {w}", floating=True)
        return images

    @staticmethod
    def background_for(mesh: ScreenMesh, background: torch.Tensor | None) -> torch.Tensor:
        """``(B, 3, H, W)`` background: the given one (broadcast over B) or black."""
        h, w = mesh.image_size
        b = mesh.batch_size
        if background is None:
            return mesh.colors.new_zeros(b, 3, h, w)
        if background.dim() == 3:
            background = background.unsqueeze(0)
        check_tensor("background", background, f"* 3 {h} {w}", floating=True)
        if background.shape[0] not in (1, b):
            raise InputError(f"background: expected batch 1 or {b}, got {background.shape[0]}")
        return background.to(mesh.colors).expand(b, 3, h, w)
