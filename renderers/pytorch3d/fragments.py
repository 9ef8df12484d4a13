"""PyTorch3D fragments and what is evaluated on them in torch, in the mesh's dtype.

PyTorch3D's kernel only decides which triangles touch a pixel; the barycentrics and
depths of the pixel centre in those triangles (:func:`fragment_barycentrics`) and the
Gouraud colours there (:func:`interpolate_colors`) are computed here, so their gradients
are exact in the mesh's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Fragments:
    """The ``K`` nearest triangles at every pixel, sorted front to back.

    Attributes:
        pix_to_face: ``(B, H, W, K)`` int64 triangle index into the mesh's ``(F, 3)``
            triangles (per mesh, not packed), -1 where fewer than K triangles touch.
        bary: ``(B, H, W, K, 3)`` perspective-correct barycentrics of the pixel centre
            (clipped onto the triangle in soft mode), 0 on empty slots; mesh dtype,
            differentiable w.r.t. ``uv`` and depth.
        zbuf: ``(B, H, W, K)`` camera-space depth of the fragment, mm, 0 on empty slots;
            mesh dtype, differentiable.
        dists: ``(B, H, W, K)`` signed squared distance from the pixel centre to the
            triangle, px² (negative inside), -1 on empty slots; float32 (PyTorch3D),
            differentiable w.r.t. ``uv`` in soft mode only.
        corners: ``(B, H·W·K, 3)`` int64 vertex indices of each fragment's triangle
            (triangle 0's on empty slots), from :func:`fragment_corners`.
    """

    pix_to_face: torch.Tensor
    bary: torch.Tensor
    zbuf: torch.Tensor
    dists: torch.Tensor
    corners: torch.Tensor

    @property
    def valid(self) -> torch.Tensor:
        """``(B, H, W, K)`` bool, a triangle is stored in the slot."""
        return self.pix_to_face >= 0


def fragment_corners(triangles: torch.Tensor, pix_to_face: torch.Tensor) -> torch.Tensor:
    """``(B, H·W·K, 3)`` vertex indices of each fragment's triangle (triangle 0's on empty slots).

    Args:
        triangles: ``(F, 3)`` vertex indices.
        pix_to_face: ``(B, H, W, K)`` triangle per fragment, -1 on empty slots.
    """
    bsz = pix_to_face.shape[0]
    return triangles.to(pix_to_face.device)[pix_to_face.clamp(min=0).reshape(bsz, -1)]


def gather_corners(values: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
    """Per-vertex values at the corners of each fragment's triangle.

    One ``index_select`` on the flattened ``(B·N, C)`` values: its backward is an
    ``index_add`` (atomic adds on CUDA), where advanced indexing ``values[batch, corners]``
    back-propagates through a sort-based ``index_put`` that took 30 ms per training step
    at batch 64, 240² on an H200.

    Args:
        values: ``(B, N, C)`` per-vertex values.
        corners: ``(B, P, 3)`` int64 vertex indices (into N) of each fragment's triangle.

    Returns:
        ``(B, P, 3, C)``.
    """
    bsz, num_verts, channels = values.shape
    offsets = torch.arange(bsz, device=corners.device).view(bsz, 1, 1) * num_verts
    flat = (corners + offsets).reshape(-1)
    return values.reshape(bsz * num_verts, channels).index_select(0, flat).view(*corners.shape, channels)


def fragment_barycentrics(uv: torch.Tensor, depth: torch.Tensor, corners: torch.Tensor,
                          pix_to_face: torch.Tensor, clip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Perspective-correct barycentrics and depth of each pixel centre in its fragments.

    Screen-space barycentrics of the centre ``(j + 0.5, i + 0.5)`` from the triangle's
    pixel positions; with ``clip`` they are clamped to ≥ 0 and renormalised (the point
    moves onto the triangle) *before* the perspective correction
    ``b_k / z_k / Σ_l (b_l / z_l)``, whose denominator is then positive. (PyTorch3D's own
    kernel corrects before clipping; outside a triangle its denominator can vanish and
    its backward pass then returns gradients of 1e7 and more.)

    Args:
        uv: ``(B, N, 2)`` pixel positions of the vertices.
        depth: ``(B, N)`` camera-space z, mm (> 0).
        corners: ``(B, H·W·K, 3)`` vertex indices of each fragment's triangle
            (:func:`fragment_corners`).
        pix_to_face: ``(B, H, W, K)`` triangle per fragment, -1 on empty slots.
        clip: clip barycentrics onto the triangle.

    Returns:
        ``(bary (B, H, W, K, 3), depth (B, H, W, K))`` in ``uv``'s dtype, 0 on empty slots.
    """
    bsz, height, width, k = pix_to_face.shape
    valid = (pix_to_face >= 0).reshape(bsz, -1)
    tri = gather_corners(torch.cat([uv, depth.to(uv.dtype).unsqueeze(-1)], -1), corners)  # (B, P, 3, 3)
    tri_uv, tri_z = tri[..., :2], tri[..., 2]
    rows = torch.arange(height, device=uv.device, dtype=uv.dtype) + 0.5
    cols = torch.arange(width, device=uv.device, dtype=uv.dtype) + 0.5
    centre = torch.stack(torch.meshgrid(cols, rows, indexing="xy"), dim=-1)  # (H, W, 2) as (u, v)
    centre = centre.unsqueeze(2).expand(height, width, k, 2).reshape(1, -1, 2)
    a, b, c = tri_uv.unbind(2)

    def cross(o: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (s[..., 0] - o[..., 0]) * (t[..., 1] - o[..., 1]) - (s[..., 1] - o[..., 1]) * (t[..., 0] - o[..., 0])

    area = cross(a, b, c)
    area = torch.where(area.abs() > 1e-12, area, torch.ones_like(area))
    bary = torch.stack([cross(centre, b, c), cross(centre, c, a), cross(centre, a, b)], dim=-1) / area.unsqueeze(-1)
    if clip:
        bary = bary.clamp(min=0.0)
        bary = bary / bary.sum(-1, keepdim=True).clamp(min=1e-12)
    inv = bary / tri_z.clamp(min=1e-12)
    total = inv.sum(-1, keepdim=True)
    total = torch.where(valid.unsqueeze(-1) & (total > 0), total, torch.ones_like(total))
    keep = valid.unsqueeze(-1).to(uv.dtype)
    bary = inv / total * keep
    z = (1.0 / total) * keep
    return bary.view(bsz, height, width, k, 3), z.view(bsz, height, width, k)


def interpolate_colors(colors: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """Gouraud colours of every fragment: barycentric mix of its triangle's vertex colours.

    Args:
        colors: ``(B, N, C)`` per-vertex values (shaded colours, C = 3).
        fragments: output of :func:`~renderers.pytorch3d.rasterizer.rasterize`.

    Returns:
        ``(B, H, W, K, C)`` in ``colors``' dtype, 0 on empty slots.
    """
    bsz, height, width, k = fragments.pix_to_face.shape
    channels = colors.shape[-1]
    gathered = gather_corners(colors, fragments.corners)  # (B, P, 3, C)
    bary = fragments.bary.to(colors.dtype).reshape(bsz, -1, 3, 1)
    values = (gathered * bary).sum(2) * fragments.valid.reshape(bsz, -1, 1).to(colors.dtype)
    return values.view(bsz, height, width, k, channels)
