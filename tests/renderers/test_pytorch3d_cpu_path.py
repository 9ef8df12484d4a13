"""The PyTorch3D backend's CPU path: tiled rasterization and the soft distances evaluated in torch.

On the CPU the image is rasterized in tiles (``RasterSettings.cpu_tile``) and the kernel only
picks triangles; the signed distances of soft mode come from
:func:`~renderers.pytorch3d.fragments.fragment_distances`. These tests hold both against the
kernel's own whole-image output and its backward pass.
"""

from __future__ import annotations

import pytest
import torch

from helpers import assert_close
from meshes import as_screen_mesh, ellipsoid_mesh
from renderers import get_renderer
from renderers import pytorch3d as p3d
from renderers.pytorch3d import RasterSettings
from renderers.pytorch3d import rasterizer as p3d_rasterizer
from renderers.pytorch3d.tiles import tile_batch

AVAILABILITY = p3d.PyTorch3DRenderer.availability("cpu")
pytestmark = pytest.mark.skipif(not AVAILABILITY.available, reason=str(AVAILABILITY))

SOFT = {"blur_radius": 0.7, "faces_per_pixel": 8}


def _mesh(size: int = 40, batch: int = 2, dtype: torch.dtype = torch.float32):
    return ellipsoid_mesh(size=size, batch=batch, dtype=dtype)


def _whole_image(mesh, settings: RasterSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel on the whole image at once, its own distances (the CUDA path, run on the CPU)."""
    faces = mesh.triangles.to(torch.int64)
    return p3d_rasterizer._rasterize_whole(mesh, faces, mesh.verts_cam[..., 2], settings)


@pytest.mark.parametrize("tile", [0, 7, 16])
@pytest.mark.parametrize("options", [{}, SOFT], ids=["hard", "soft"])
def test_tiles_pick_the_triangles_the_whole_image_does(tile, options):
    mesh = _mesh()
    settings = RasterSettings(cpu_tile=tile, **options)
    tiled = p3d.rasterize(mesh, settings).pix_to_face
    whole, _ = _whole_image(mesh, settings)
    if not options:  # hard: the nearest triangle, exactly
        assert torch.equal(tiled, whole)
        return
    # Soft: the same triangles at every pixel whose K slots are not all full (where they are,
    # which of several equally near candidates is dropped may differ by float32 rounding).
    open_slots = (whole < 0).any(-1)
    assert open_slots.float().mean() > 0.8
    assert torch.equal(tiled.sort(-1).values[open_slots], whole.sort(-1).values[open_slots])


def test_tiles_reaching_past_the_image_are_cropped():
    mesh = ellipsoid_mesh(size=(30, 21), batch=1)
    tiled = p3d.rasterize(mesh, RasterSettings(cpu_tile=8)).pix_to_face
    whole, _ = _whole_image(mesh, RasterSettings())
    assert tiled.shape == (1, 30, 21, 1) and torch.equal(tiled, whole)


def test_a_tile_gets_only_the_triangles_near_it():
    mesh = _mesh(size=48, batch=1)
    batch = tile_batch(mesh.uv, mesh.verts_cam[..., 2], mesh.triangles.long(), (48, 48), 12, margin_px=0.0)
    counts = (batch.faces[..., 0] >= 0).sum(1)
    assert batch.grid == (4, 4) and counts.shape == (16,)
    assert int(counts.max()) < mesh.triangles.shape[0] // 2  # a tile sees a fraction of the mesh
    assert int(counts.sum()) >= int((mesh.uv[0, mesh.triangles.long()].amin(1) < 48).all(-1).sum())


def test_distances_equal_the_kernels():
    mesh = _mesh()
    settings = RasterSettings(cpu_tile=0, **SOFT)
    fragments = p3d.rasterize(mesh, settings)
    pix_to_face, kernel_dists = _whole_image(mesh, settings)
    assert torch.equal(fragments.pix_to_face, pix_to_face)
    valid = pix_to_face >= 0
    assert_close(fragments.dists[valid], kernel_dists[valid], atol=2e-4, rtol=1e-3)
    assert (fragments.dists[~valid] == -1).all()


def test_soft_gradient_equals_the_kernels_backward():
    # The same soft loss, its silhouette gradient through torch (CPU path) or through the
    # kernel's backward pass (whole-image path): the same gradient w.r.t. the screen positions.
    mesh = _mesh(size=32, batch=1)
    settings = RasterSettings(cpu_tile=0, **SOFT)
    target = torch.rand(1, 32, 32, 3, generator=torch.Generator().manual_seed(0))

    def loss_through(path: str) -> torch.Tensor:
        uv = mesh.uv.clone().requires_grad_(True)
        moved = as_screen_mesh(mesh, uv=uv)
        if path == "torch":
            fragments = p3d.rasterize(moved, settings)
        else:
            depth = moved.verts_cam[..., 2]
            pix_to_face, dists = _whole_image(moved, settings)
            index = p3d.fragment_index(moved.triangles.long(), pix_to_face)
            bary, zbuf = p3d.fragment_barycentrics(moved.uv, depth, index, clip=True)
            fragments = p3d.Fragments(pix_to_face=pix_to_face, bary=bary, zbuf=zbuf, dists=dists, index=index)
        rgb, alpha = p3d.soft_blend(p3d.interpolate_colors(moved.colors, fragments), fragments,
                                    settings.sigma_px2, settings.gamma)
        ((rgb - target) ** 2).sum().add((alpha - 0.5).pow(2).sum()).backward()
        return uv.grad

    assert_close(loss_through("torch"), loss_through("kernel"), atol=1e-3, rtol=1e-3)


def test_distances_gradcheck_float64():
    mesh = _mesh(size=12, batch=1, dtype=torch.float64)
    fragments = p3d.rasterize(mesh, RasterSettings(**SOFT))
    index = fragments.index
    uv = mesh.uv.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda u: p3d.fragment_distances(u, index)[fragments.valid], (uv,))


def test_renderer_output_does_not_depend_on_the_tile():
    mesh = _mesh(size=36)
    whole = get_renderer("pytorch3d", "cpu", cpu_tile=0, **SOFT).render(mesh)
    tiled = get_renderer("pytorch3d", "cpu", cpu_tile=9, **SOFT).render(mesh)
    same = (whole.mask - tiled.mask).abs() < 1e-5
    assert same.float().mean() > 0.99
    assert_close(tiled.image * same, whole.image * same, atol=1e-5, rtol=1e-5)
