"""Coarse-to-fine bins of PyTorch3D's CUDA rasterizer: the default side and a safe capacity."""

from __future__ import annotations

import math

import torch


def default_bin_size(image_size: tuple[int, int]) -> int:
    """PyTorch3D's bin side for an image, px: 8 up to 64 px, else ``2^(ceil(log2 max(H, W)) - 4)``, ≥ 16."""
    longest = max(image_size)
    if longest <= 64:
        return 8
    return int(2 ** max(math.ceil(math.log2(longest)) - 4, 4))


def bin_capacity(uv: torch.Tensor, triangles: torch.Tensor, image_size: tuple[int, int], bin_size: int,
                 margin_px: float = 1.0) -> int:
    """The most triangles whose screen box meets any one ``bin_size`` bin: a safe ``max_faces_per_bin``.

    PyTorch3D's coarse kernel puts a triangle in every bin its bounding box (grown by the
    blur radius) overlaps and drops the triangles beyond a bin's capacity. This counts,
    per image and bin, the triangles whose box grown by ``margin_px`` overlaps it (a 2D
    difference array: +1/-1 at the box's bin corners, then cumulative sums), for bins laid
    from either image corner, since the count only has to bound PyTorch3D's from above.
    Triangles entirely off the image are not counted.

    Args:
        uv: ``(B, N, 2)`` vertex pixel positions (u right, v down).
        triangles: ``(F, 3)`` int64 vertex indices.
        image_size: ``(H, W)`` px.
        bin_size: bin side, px (> 0).
        margin_px: box growth, px (the blur radius plus a pixel of rounding).

    Returns:
        max over images and bins of the triangle count, ≥ 1.
    """
    height, width = image_size
    bsz = uv.shape[0]
    corners = uv.detach().index_select(1, triangles.to(uv.device).reshape(-1)).view(bsz, -1, 3, 2)
    low = corners.amin(dim=2) - margin_px  # (B, F, 2) as (u, v)
    high = corners.amax(dim=2) + margin_px
    extent = torch.tensor([width, height], device=uv.device, dtype=uv.dtype)
    weight = ((high >= 0) & (low <= extent)).all(dim=-1).to(torch.int32)  # (B, F): 1 if on the image
    bins_u, bins_v = math.ceil(width / bin_size), math.ceil(height / bin_size)
    stride = bins_u + 1  # the difference array has one more row and column than the bins
    image = torch.arange(bsz, device=uv.device).view(bsz, 1) * (bins_v + 1) * stride
    best = 1
    for flipped in (False, True):
        start, stop = (extent - high, extent - low) if flipped else (low, high)
        first = torch.floor(start / bin_size).long()
        last = torch.floor(stop / bin_size).long()
        first_u, last_u = first[..., 0].clamp(0, bins_u - 1), last[..., 0].clamp(0, bins_u - 1) + 1
        first_v, last_v = first[..., 1].clamp(0, bins_v - 1), last[..., 1].clamp(0, bins_v - 1) + 1
        diff = torch.zeros(bsz * (bins_v + 1) * stride, dtype=torch.int32, device=uv.device)
        for v, u, sign in ((first_v, first_u, 1), (first_v, last_u, -1), (last_v, first_u, -1), (last_v, last_u, 1)):
            diff.index_add_(0, (image + v * stride + u).reshape(-1), (weight * sign).reshape(-1))
        counts = diff.view(bsz, bins_v + 1, stride).cumsum(1).cumsum(2)
        best = max(best, int(counts.max()))
    return best
