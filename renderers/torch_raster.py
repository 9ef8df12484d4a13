"""A z-buffer triangle rasterizer in plain PyTorch (CPU or CUDA, any float dtype).

Slow-but-obvious hard rasterization with a z-buffer: :func:`zbuffer_rasterize` keeps the
nearest triangle per pixel as :class:`ZBufferFragments`, :func:`zbuffer_interpolate`
spreads per-vertex values over them. The ``per_vertex`` backend draws its pictures with
it, and the tests hold every other rasterizer against it.

Conventions: a pixel (i, j) is covered when its centre ``(j + 0.5, i + 0.5)`` lies
inside the projected triangle (edges inclusive); depth and barycentrics are
perspective-correct; nearest depth wins, ties go to the higher triangle index. Both
triangle orientations are drawn (no culling).

Gradients: the barycentrics of covered pixels are differentiable w.r.t. the screen
positions ``uv`` and depths (like PyTorch3D's hard rasterizer); coverage itself is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mofa_checks import check_tensor

#: Upper bound on (triangle, pixel) candidate pairs evaluated at once.
_MAX_CANDIDATES = 1 << 22


@dataclass(frozen=True)
class ZBufferFragments:
    """Per-pixel rasterization result for the nearest triangle.

    Attributes:
        triangle: ``(B, H, W)`` int64 triangle index, -1 where no triangle covers.
        bary: ``(B, H, W, 3)`` perspective-correct barycentrics (0 on background).
        depth: ``(B, H, W)`` camera-space z, mm (0 on background).
    """

    triangle: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """``(B, 1, H, W)`` float coverage (1 under a triangle)."""
        return (self.triangle >= 0).unsqueeze(1).to(self.bary.dtype)


def _edge_barycentrics(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Screen-space barycentrics of points ``p`` in triangles ``abc`` (all ``(..., 2)``).

    Returns ``(bary (..., 3), signed_area (...))``.
    """
    def cross(o: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (s[..., 0] - o[..., 0]) * (t[..., 1] - o[..., 1]) - (s[..., 1] - o[..., 1]) * (t[..., 0] - o[..., 0])

    area = cross(a, b, c)
    safe = torch.where(area.abs() > 1e-12, area, torch.ones_like(area))
    w0 = cross(p, b, c) / safe
    w1 = cross(p, c, a) / safe
    w2 = cross(p, a, b) / safe
    return torch.stack([w0, w1, w2], dim=-1), area


def _perspective_correct(bary: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Screen barycentrics ``(..., 3)`` and vertex depths ``(..., 3)`` → (world bary, depth)."""
    inv = bary / z
    total = inv.sum(-1, keepdim=True)
    return inv / total, 1.0 / total.squeeze(-1)


def _candidates(uv_tri: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Enumerate (triangle, pixel) pairs whose pixel centre lies in the triangle's bbox.

    Args:
        uv_tri: ``(F, 3, 2)`` screen positions of one mesh's triangle corners.

    Returns:
        ``(tri_index (K,), pixel_y (K,), pixel_x (K,))`` int64.
    """
    lo = torch.ceil(uv_tri.min(dim=1).values - 0.5).long()
    hi = torch.floor(uv_tri.max(dim=1).values - 0.5).long()
    lo[:, 0].clamp_(min=0)
    lo[:, 1].clamp_(min=0)
    hi[:, 0].clamp_(max=width - 1)
    hi[:, 1].clamp_(max=height - 1)
    extent = (hi - lo + 1).clamp(min=0)
    keep = (extent[:, 0] > 0) & (extent[:, 1] > 0)
    tri_all = torch.nonzero(keep).squeeze(1)
    out_t, out_y, out_x = [], [], []
    if tri_all.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=uv_tri.device)
        return empty, empty, empty
    size = extent[tri_all].max(dim=1).values
    # Bucket triangles by bbox size (powers of two) so small triangles stay cheap.
    bucket = torch.ceil(torch.log2(size.double())).long()
    for level in torch.unique(bucket).tolist():
        tris = tri_all[bucket == level]
        k = 1 << int(level)
        per_chunk = max(1, _MAX_CANDIDATES // (k * k))
        offs = torch.arange(k, device=uv_tri.device)
        for start in range(0, tris.numel(), per_chunk):
            t = tris[start:start + per_chunk]
            ys = lo[t, 1:2] + offs  # (T, k)
            xs = lo[t, 0:1] + offs
            valid = (ys <= hi[t, 1:2]).unsqueeze(2) & (xs <= hi[t, 0:1]).unsqueeze(1)  # (T, k, k)
            ti, yi, xi = torch.nonzero(valid, as_tuple=True)
            out_t.append(t[ti])
            out_y.append(ys[ti, yi])
            out_x.append(xs[ti, xi])
    return torch.cat(out_t), torch.cat(out_y), torch.cat(out_x)


def zbuffer_rasterize(uv: torch.Tensor, depth: torch.Tensor, triangles: torch.Tensor,
                      image_size: tuple[int, int]) -> ZBufferFragments:
    """Hard-rasterize a batch of projected meshes.

    Args:
        uv: ``(B, N, 2)`` pixel positions of the vertices.
        depth: ``(B, N)`` camera-space z of the vertices, mm, > 0.
        triangles: ``(F, 3)`` int64 vertex indices.
        image_size: ``(H, W)``.

    Returns:
        :class:`ZBufferFragments` for the nearest triangle per pixel.
    """
    dims: dict[str, int] = {}
    check_tensor("uv", uv, "B N 2", dims, floating=True)
    check_tensor("depth", depth, "B N", dims, floating=True)
    check_tensor("triangles", triangles, "F 3", integer=True)
    height, width = image_size
    bsz = uv.shape[0]
    tri_out = torch.full((bsz, height * width), -1, dtype=torch.long, device=uv.device)
    bary_out = uv.new_zeros(bsz, height * width, 3)
    depth_out = uv.new_zeros(bsz, height * width)
    for b in range(bsz):
        with torch.no_grad():
            uv_tri = uv[b][triangles].detach()  # (F, 3, 2)
            z_tri = depth[b][triangles].detach()
            t, y, x = _candidates(uv_tri, height, width)
            centre = torch.stack([x.to(uv.dtype) + 0.5, y.to(uv.dtype) + 0.5], dim=-1)
            a, bb, c = uv_tri[t].unbind(1)
            bary, area = _edge_barycentrics(centre, a, bb, c)
            inside = (bary >= 0).all(-1) & (area.abs() > 1e-12) & (z_tri[t] > 0).all(-1)
            t, y, x, bary = t[inside], y[inside], x[inside], bary[inside]
            _, z = _perspective_correct(bary, z_tri[t])
            pix = y * width + x
            zbuf = torch.full((height * width,), float("inf"), dtype=uv.dtype, device=uv.device)
            zbuf = zbuf.scatter_reduce(0, pix, z, reduce="amin")
            nearest = z <= zbuf[pix]
            winner = torch.full((height * width,), -1, dtype=torch.long, device=uv.device)
            winner = winner.scatter_reduce(0, pix[nearest], t[nearest], reduce="amax")
            hit = torch.nonzero(winner >= 0).squeeze(1)
            tri_hit = winner[hit]
        # Differentiable barycentrics of the winning triangle at each covered pixel.
        hy = torch.div(hit, width, rounding_mode="floor")
        hx = hit - hy * width
        centre = torch.stack([hx.to(uv.dtype) + 0.5, hy.to(uv.dtype) + 0.5], dim=-1)
        corners = uv[b][triangles[tri_hit]]  # (P, 3, 2)
        bary_screen, _ = _edge_barycentrics(centre, corners[:, 0], corners[:, 1], corners[:, 2])
        bary_world, z_hit = _perspective_correct(bary_screen, depth[b][triangles[tri_hit]])
        tri_out[b, hit] = tri_hit
        bary_out = bary_out.index_put((torch.full_like(hit, b), hit), bary_world)
        depth_out = depth_out.index_put((torch.full_like(hit, b), hit), z_hit)
    return ZBufferFragments(
        triangle=tri_out.view(bsz, height, width),
        bary=bary_out.view(bsz, height, width, 3),
        depth=depth_out.view(bsz, height, width),
    )


def zbuffer_interpolate(attributes: torch.Tensor, fragments: ZBufferFragments,
                        triangles: torch.Tensor) -> torch.Tensor:
    """Interpolate per-vertex attributes over the fragments.

    Args:
        attributes: ``(B, N, C)`` per-vertex values.
        fragments: output of :func:`zbuffer_rasterize`.
        triangles: ``(F, 3)`` the same triangles.

    Returns:
        ``(B, C, H, W)`` interpolated values, 0 on background.
    """
    bsz, height, width = fragments.triangle.shape
    tri = fragments.triangle.clamp(min=0).view(bsz, -1)  # (B, P)
    corners = triangles[tri]  # (B, P, 3)
    channels = attributes.shape[-1]
    gathered = torch.gather(
        attributes.unsqueeze(2).expand(-1, -1, 3, -1), 1,
        corners.unsqueeze(-1).expand(-1, -1, -1, channels),
    )  # (B, P, 3, C)
    values = (gathered * fragments.bary.view(bsz, -1, 3, 1)).sum(2)
    values = values * (fragments.triangle >= 0).view(bsz, -1, 1).to(values.dtype)
    return values.view(bsz, height, width, channels).permute(0, 3, 1, 2)
