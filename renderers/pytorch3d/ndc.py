"""The one conversion from the project's pixel convention to PyTorch3D's screen NDC."""

from __future__ import annotations

import torch


def ndc_scale(image_size: tuple[int, int]) -> float:
    """Pixels per PyTorch3D NDC unit: ``min(H, W) / 2`` (the shorter side spans [-1, 1])."""
    return min(image_size) / 2.0


def screen_to_ndc(uv: torch.Tensor, depth: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Project pixel positions into PyTorch3D's screen NDC (the backend's only conversion).

    The project's pixels have their origin at the top-left image corner, u right, v down,
    pixel (i, j) centred at ``(j + 0.5, i + 0.5)``. PyTorch3D's NDC has +X left and +Y up,
    the shorter image side spans [-1, 1] (the longer one proportionally more), and its
    rasterizer puts the centre of output pixel (i, j) at
    ``X = (W - 2 j - 1) / s``, ``Y = (H - 2 i - 1) / s`` with ``s = min(H, W)``. Hence

        ``X = (W - 2 u) / s``,   ``Y = (H - 2 v) / s``,   ``Z = z``,

    which maps every pixel centre of ours onto the same pixel centre of PyTorch3D's, with
    no flip of the output image. Z is the camera-space depth (mm), which PyTorch3D uses for
    depth ordering and perspective-correct barycentrics. The map from camera space
    (x right, y down, z forward) to PyTorch3D's view space (x left, y up, z forward) is a
    rotation by 180° about z, so triangle orientations (and back-face culling) agree.

    Args:
        uv: ``(B, N, 2)`` pixel positions ``(u, v)``.
        depth: ``(B, N)`` camera-space z, mm (> 0 in front of the camera).
        image_size: ``(H, W)`` in pixels.

    Returns:
        ``(B, N, 3)`` NDC positions ``(X, Y, Z)`` in ``uv``'s dtype.
    """
    height, width = image_size
    s = float(min(height, width))
    x = (width - 2.0 * uv[..., 0]) / s
    y = (height - 2.0 * uv[..., 1]) / s
    return torch.stack([x, y, depth.to(uv.dtype)], dim=-1)
