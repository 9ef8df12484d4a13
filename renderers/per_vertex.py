"""The paper's renderer: compare colours at the projected vertices (MoFA Sec. 4.2).

``photometric_samples`` bilinearly samples the input image at every vertex's pixel
position u_i; a vertex counts (weight 1) when it is front-facing and its position lies
inside the image. Occlusion by other parts of the face is not modelled, as in the paper.
``render`` draws pictures with the plain-PyTorch z-buffer rasterizer of
:mod:`renderers.torch_raster` (Gouraud colours).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from renderers.base import PhotometricSamples, Renderer, RenderResult, ScreenMesh
from renderers.registry import register_renderer
from renderers.torch_raster import zbuffer_interpolate, zbuffer_rasterize


def sample_image(images: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``(B, C, H, W)`` images at ``(B, M, 2)`` pixel positions.

    Uses the project's pixel convention (centre of pixel (i, j) at (j + 0.5, i + 0.5)),
    which is exactly ``grid_sample(align_corners=False)``. Outside the image the
    border pixel value is used. Returns ``(B, M, C)``.
    """
    height, width = images.shape[-2:]
    scale = uv.new_tensor([2.0 / width, 2.0 / height])
    grid = (uv * scale - 1.0).unsqueeze(1)  # (B, 1, M, 2)
    out = F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=False)
    return out.squeeze(2).transpose(1, 2)


def inside_image(uv: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """``(B, M)`` bool: positions inside ``[0, W] × [0, H]``."""
    height, width = image_size
    return (uv[..., 0] >= 0) & (uv[..., 0] <= width) & (uv[..., 1] >= 0) & (uv[..., 1] <= height)


@register_renderer("per_vertex")
class PerVertexRenderer(Renderer):
    """Per-vertex photometric sampling (the paper's method); no options."""

    def photometric_samples(self, mesh: ScreenMesh, images: torch.Tensor) -> PhotometricSamples:
        self.check_images(mesh, images)
        observed = sample_image(images, mesh.uv)
        weights = (mesh.visible & inside_image(mesh.uv, mesh.image_size)).to(mesh.colors.dtype)
        return PhotometricSamples(predicted=mesh.colors, observed=observed.to(mesh.colors.dtype), weights=weights)

    def render(self, mesh: ScreenMesh, background: torch.Tensor | None = None) -> RenderResult:
        mesh.validate()
        bg = self.background_for(mesh, background)
        fragments = zbuffer_rasterize(mesh.uv, mesh.verts_cam[..., 2], mesh.triangles, mesh.image_size)
        colors = zbuffer_interpolate(mesh.colors, fragments, mesh.triangles)
        mask = fragments.mask
        return RenderResult(image=colors * mask + bg * (1.0 - mask), mask=mask)
