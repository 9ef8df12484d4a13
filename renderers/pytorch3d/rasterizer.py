"""Rasterize a :class:`~renderers.base.ScreenMesh` with PyTorch3D's ``rasterize_meshes`` kernel."""

from __future__ import annotations

import torch

from renderers.base import ScreenMesh
from renderers.pytorch3d.bins import bin_capacity, default_bin_size
from renderers.pytorch3d.fragments import Fragments, fragment_barycentrics, fragment_corners
from renderers.pytorch3d.library import import_pytorch3d
from renderers.pytorch3d.ndc import ndc_scale, screen_to_ndc
from renderers.pytorch3d.settings import AUTO_CAPACITY, RasterSettings


def rasterize(mesh: ScreenMesh, settings: RasterSettings) -> Fragments:
    """Rasterize a batch of screen meshes with PyTorch3D's kernel.

    PyTorch3D decides which triangles touch each pixel (and, in soft mode, how far they
    are); barycentrics and depths are then evaluated in torch by
    :func:`fragment_barycentrics`, in the mesh's dtype. In hard mode the kernel's
    backward pass is never used.

    Args:
        mesh: ``uv`` ``(B, N, 2)`` px, ``verts_cam`` ``(B, N, 3)`` mm, ``triangles``
            ``(F, 3)``, ``image_size`` ``(H, W)``; any float dtype, CPU or CUDA.
        settings: rasterization options.

    Returns:
        :class:`Fragments` with ``K = settings.faces_per_pixel`` on the mesh's device.
    """
    rasterize_meshes, meshes_cls = import_pytorch3d()
    height, width = mesh.image_size
    bsz = mesh.batch_size
    depth = mesh.verts_cam[..., 2]
    ndc = screen_to_ndc(mesh.uv, depth, mesh.image_size).float()
    if not settings.soft:
        ndc = ndc.detach()
    faces = mesh.triangles.to(device=ndc.device, dtype=torch.int64)
    num_faces = int(faces.shape[0])
    meshes = meshes_cls(verts=ndc, faces=faces.unsqueeze(0).expand(bsz, num_faces, 3))
    scale = ndc_scale(mesh.image_size)
    bin_size = settings.bin_size if ndc.is_cuda else 0
    max_faces_per_bin = settings.max_faces_per_bin
    if max_faces_per_bin == AUTO_CAPACITY:
        max_faces_per_bin = None
        if bin_size != 0:  # binned: CUDA only (0 on the CPU)
            side = default_bin_size(mesh.image_size) if bin_size is None else bin_size
            max_faces_per_bin = bin_capacity(mesh.uv, faces, mesh.image_size, side, margin_px=settings.blur_radius + 1.0)
    pix_to_face, _, _, dists = rasterize_meshes(
        meshes,
        image_size=(height, width),
        blur_radius=(settings.blur_radius / scale) ** 2,
        faces_per_pixel=settings.faces_per_pixel,
        bin_size=bin_size,
        max_faces_per_bin=max_faces_per_bin,
        perspective_correct=False,
        clip_barycentric_coords=False,
        cull_backfaces=settings.cull_backfaces,
    )
    valid = pix_to_face >= 0
    offsets = torch.arange(bsz, device=pix_to_face.device).view(bsz, 1, 1, 1) * num_faces
    pix_to_face = torch.where(valid, pix_to_face - offsets, pix_to_face)
    dists = torch.where(valid, dists * scale ** 2, dists)
    corners = fragment_corners(faces, pix_to_face)
    bary, zbuf = fragment_barycentrics(mesh.uv, depth, corners, pix_to_face, clip=settings.soft)
    return Fragments(pix_to_face=pix_to_face, bary=bary, zbuf=zbuf, dists=dists, corners=corners)
