"""Tiled rasterization for PyTorch3D's CPU kernel: each tile sees only the triangles near it.

PyTorch3D's CPU rasterizer is naive: every pixel tests every triangle of its mesh, so a
64² image of a 3.6k-triangle face costs 15 M tests, almost all of them for triangles far
from the pixel. Cutting the image into ``T × T`` tiles and giving each tile only the
triangles whose screen bounding box (grown by the blur radius) reaches its pixel centres
makes the same kernel test a few hundred triangles per pixel instead. The tiles of every
image of the batch go to the kernel as one padded batch of meshes (one mesh per tile,
sharing the image's vertices), and the per-tile outputs are stitched back. Which
triangles touch a pixel, their order and their distances are the kernel's own, so the
result equals an untiled call (up to float32 rounding of the NDC coordinates of a pixel
centre lying exactly on an edge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from renderers.pytorch3d.ndc import screen_to_ndc


@dataclass(frozen=True)
class TileBatch:
    """The kernel's input for every (image, tile) pair, and how to map its output back.

    Attributes:
        verts: ``(B·G, N, 3)`` float32 vertices of each tile's mesh in that tile's screen
            NDC (``G`` tiles per image, row-major), detached.
        faces: ``(B·G, Fmax, 3)`` int64 vertex indices of the triangles each tile sees,
            padded with -1 (PyTorch3D's padded ``Meshes`` convention).
        face_ids: ``(ΣF_t,)`` int64 original triangle index of each packed face, in the
            order PyTorch3D packs them (tile by tile), so packed kernel output maps back.
        grid: ``(rows, columns)`` of tiles per image.
        tile: tile side T, px.
    """

    verts: torch.Tensor
    faces: torch.Tensor
    face_ids: torch.Tensor
    grid: tuple[int, int]
    tile: int


def tile_batch(uv: torch.Tensor, depth: torch.Tensor, triangles: torch.Tensor, image_size: tuple[int, int],
               tile: int, margin_px: float) -> TileBatch:
    """Split a batch of screen meshes into per-tile meshes holding only nearby triangles.

    Args:
        uv: ``(B, N, 2)`` pixel positions (the project's convention: pixel ``(i, j)``
            centred at ``(j + 0.5, i + 0.5)``).
        depth: ``(B, N)`` camera-space z, mm.
        triangles: ``(F, 3)`` int64 vertex indices.
        image_size: ``(H, W)``, px.
        tile: tile side T, px (the last row and column of tiles may reach past the image).
        margin_px: how far from a pixel centre a triangle still counts (the blur radius), px.

    Returns:
        :class:`TileBatch`.
    """
    height, width = image_size
    bsz = uv.shape[0]
    rows, cols = math.ceil(height / tile), math.ceil(width / tile)
    uv = uv.detach().float()
    corners = uv[:, triangles]  # (B, F, 3, 2)
    lo, hi = corners.amin(2), corners.amax(2)  # (B, F, 2) bounding boxes, px
    origin_x = torch.arange(cols, dtype=uv.dtype, device=uv.device) * tile
    origin_y = torch.arange(rows, dtype=uv.dtype, device=uv.device) * tile
    grow = margin_px + 1e-3  # a triangle within the margin of a pixel centre must not be missed
    # Pixel centres of a tile span [origin + 0.5, origin + T - 0.5] on each axis.
    hit_x = (hi[..., None, 0] >= origin_x + 0.5 - grow) & (lo[..., None, 0] <= origin_x + tile - 0.5 + grow)
    hit_y = (hi[..., None, 1] >= origin_y + 0.5 - grow) & (lo[..., None, 1] <= origin_y + tile - 0.5 + grow)
    hits = hit_y.unsqueeze(-1) & hit_x.unsqueeze(-2)  # (B, F, rows, cols)
    hits = hits.permute(0, 2, 3, 1).reshape(bsz * rows * cols, -1)  # (B·G, F)
    mesh_index, face_ids = hits.nonzero(as_tuple=True)  # sorted by mesh, then triangle
    counts = hits.sum(1)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(face_ids.numel(), device=uv.device) - starts[mesh_index]
    width_max = max(int(counts.max()) if counts.numel() else 0, 1)
    num_verts = uv.shape[1]
    faces = torch.full((bsz * rows * cols, width_max, 3), -1, dtype=torch.int64, device=uv.device)
    faces[mesh_index, slot] = triangles[face_ids]
    # Every tile's mesh holds its image's vertices, shifted so the tile is the whole NDC square.
    shift = torch.stack(torch.meshgrid(origin_y, origin_x, indexing="ij"), dim=-1).flip(-1).reshape(1, -1, 1, 2)
    tile_uv = (uv.unsqueeze(1) - shift).reshape(bsz * rows * cols, num_verts, 2)
    tile_depth = depth.detach().float().unsqueeze(1).expand(bsz, rows * cols, num_verts).reshape(-1, num_verts)
    verts = screen_to_ndc(tile_uv, tile_depth, (tile, tile))
    return TileBatch(verts=verts, faces=faces, face_ids=face_ids, grid=(rows, cols), tile=tile)


def stitch_tiles(values: torch.Tensor, batch: TileBatch, bsz: int, image_size: tuple[int, int]) -> torch.Tensor:
    """Per-tile kernel output back into whole images.

    Args:
        values: ``(B·G, T, T, ...)`` one tile's output per mesh of :func:`tile_batch`.
        batch: the tile batch it came from.
        bsz: B.
        image_size: ``(H, W)``.

    Returns:
        ``(B, H, W, ...)``: the tiles in place, cropped to the image.
    """
    rows, cols = batch.grid
    tile = batch.tile
    trailing = values.shape[3:]
    out = values.reshape(bsz, rows, cols, tile, tile, *trailing)
    out = out.transpose(2, 3).reshape(bsz, rows * tile, cols * tile, *trailing)
    return out[:, : image_size[0], : image_size[1]]
