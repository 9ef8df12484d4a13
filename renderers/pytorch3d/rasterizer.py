"""Rasterize a :class:`~renderers.base.ScreenMesh` with PyTorch3D's ``rasterize_meshes`` kernel."""

from __future__ import annotations

import torch

from renderers.base import ScreenMesh
from renderers.pytorch3d.bins import bin_capacity, default_bin_size
from renderers.pytorch3d.fragments import Fragments, fragment_barycentrics, fragment_distances, fragment_index
from renderers.pytorch3d.library import import_pytorch3d
from renderers.pytorch3d.ndc import ndc_scale, screen_to_ndc
from renderers.pytorch3d.settings import AUTO_CAPACITY, RasterSettings
from renderers.pytorch3d.tiles import stitch_tiles, tile_batch


def rasterize(mesh: ScreenMesh, settings: RasterSettings) -> Fragments:
    """Rasterize a batch of screen meshes with PyTorch3D's kernel.

    PyTorch3D decides which triangles touch each pixel; barycentrics and depths are then
    evaluated in torch by :func:`fragment_barycentrics`, in the mesh's dtype.

    - On CUDA the kernel runs on the whole image with coarse bins, and in soft mode its
      ``dists`` (and their backward pass) carry the silhouette's gradient.
    - On the CPU (a naive kernel: every pixel tests every triangle, its backward pass
      single-threaded) the image is cut into ``settings.cpu_tile`` px tiles that each see
      only the triangles near them (:mod:`~renderers.pytorch3d.tiles`), and the kernel's
      output is only used to pick the triangles: the soft distances are evaluated in torch
      (:func:`fragment_distances`), so no gradient goes through the kernel.

    Args:
        mesh: ``uv`` ``(B, N, 2)`` px, ``verts_cam`` ``(B, N, 3)`` mm, ``triangles``
            ``(F, 3)``, ``image_size`` ``(H, W)``; any float dtype, CPU or CUDA.
        settings: rasterization options.

    Returns:
        :class:`Fragments` with ``K = settings.faces_per_pixel`` on the mesh's device.
    """
    depth = mesh.verts_cam[..., 2]
    faces = mesh.triangles.to(device=mesh.uv.device, dtype=torch.int64)
    if mesh.uv.is_cuda:
        pix_to_face, dists = _rasterize_whole(mesh, faces, depth, settings)
    else:
        pix_to_face = _rasterize_cpu(mesh, faces, depth, settings)
        dists = None
    index = fragment_index(faces, pix_to_face)
    if dists is None:
        dists = fragment_distances(mesh.uv if settings.soft else mesh.uv.detach(), index)
    bary, zbuf = fragment_barycentrics(mesh.uv, depth, index, clip=settings.soft)
    return Fragments(pix_to_face=pix_to_face, bary=bary, zbuf=zbuf, dists=dists, index=index)


def _kernel(settings: RasterSettings, meshes, image_size: tuple[int, int], bin_size: int,
            max_faces_per_bin: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch3D's ``rasterize_meshes`` with the options of ``settings``: ``(pix_to_face, dists)``, packed."""
    rasterize_meshes, _ = import_pytorch3d()
    scale = ndc_scale(image_size)
    pix_to_face, _, _, dists = rasterize_meshes(
        meshes,
        image_size=image_size,
        blur_radius=(settings.blur_radius / scale) ** 2,
        faces_per_pixel=settings.faces_per_pixel,
        bin_size=bin_size,
        max_faces_per_bin=max_faces_per_bin,
        perspective_correct=False,
        clip_barycentric_coords=False,
        cull_backfaces=settings.cull_backfaces,
    )
    return pix_to_face, dists


def _rasterize_whole(mesh: ScreenMesh, faces: torch.Tensor, depth: torch.Tensor,
                     settings: RasterSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole image in one kernel call (CUDA): ``(pix_to_face (B, H, W, K), dists px²)``."""
    _, meshes_cls = import_pytorch3d()
    bsz = mesh.batch_size
    ndc = screen_to_ndc(mesh.uv, depth, mesh.image_size).float()
    if not settings.soft:
        ndc = ndc.detach()
    num_faces = int(faces.shape[0])
    meshes = meshes_cls(verts=ndc, faces=faces.unsqueeze(0).expand(bsz, num_faces, 3))
    bin_size = settings.bin_size
    max_faces_per_bin = settings.max_faces_per_bin
    if max_faces_per_bin == AUTO_CAPACITY:
        max_faces_per_bin = None
        if bin_size != 0:
            side = default_bin_size(mesh.image_size) if bin_size is None else bin_size
            max_faces_per_bin = bin_capacity(mesh.uv, faces, mesh.image_size, side, margin_px=settings.blur_radius + 1.0)
    pix_to_face, dists = _kernel(settings, meshes, mesh.image_size, bin_size, max_faces_per_bin)
    valid = pix_to_face >= 0
    offsets = torch.arange(bsz, device=pix_to_face.device).view(bsz, 1, 1, 1) * num_faces
    pix_to_face = torch.where(valid, pix_to_face - offsets, pix_to_face)
    dists = torch.where(valid, dists * ndc_scale(mesh.image_size) ** 2, dists)
    return pix_to_face, dists


def _rasterize_cpu(mesh: ScreenMesh, faces: torch.Tensor, depth: torch.Tensor,
                   settings: RasterSettings) -> torch.Tensor:
    """``(B, H, W, K)`` triangle per fragment from the naive CPU kernel, tile by tile (no gradient)."""
    _, meshes_cls = import_pytorch3d()
    height, width = mesh.image_size
    tile = settings.cpu_tile if 0 < settings.cpu_tile < max(height, width) else max(height, width)
    batch = tile_batch(mesh.uv, depth, faces, mesh.image_size, tile, margin_px=settings.blur_radius)
    meshes = meshes_cls(verts=batch.verts, faces=batch.faces)
    packed, _ = _kernel(settings, meshes, (tile, tile), bin_size=0, max_faces_per_bin=None)
    valid = packed >= 0
    pix_to_face = torch.where(valid, batch.face_ids[packed.clamp(min=0)], packed)
    return stitch_tiles(pix_to_face, batch, mesh.batch_size, mesh.image_size)
