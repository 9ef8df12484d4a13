"""Cross-renderer tests: one camera convention, comparable images.

Every rasterizer is held against the plain-PyTorch z-buffer rasterizer
(``renderers.torch_raster``) and against the paper's per-vertex sampling, on meshes built
without the face model (:mod:`meshes`); CUDA cases are ``cuda``-marked and every case
skips with the backend's own availability reason where it cannot run.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from helpers import RASTERIZERS, renderer_or_skip
from meshes import TRI_SIZE, ellipsoid_mesh, to_device, triangle_mesh
from renderers import get_renderer
from renderers.per_vertex import sample_image
from renderers.torch_raster import zbuffer_interpolate, zbuffer_rasterize

#: The rasterizer cases without antialiasing (pixel-exact coverage).
HARD_RASTERIZERS = [
    pytest.param("pytorch3d", "cpu", {}, id="pytorch3d-cpu"),
    pytest.param("pytorch3d", "cuda", {}, id="pytorch3d-cuda", marks=pytest.mark.cuda),
    pytest.param("nvdiffrast", "cuda", {"antialias": False}, id="nvdiffrast-cuda", marks=pytest.mark.cuda),
]


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum() / (a | b).sum())


# ============================================================================ conventions
class TestConventions:
    @pytest.mark.parametrize("name, on, options", HARD_RASTERIZERS)
    def test_convention_pixel_exact_triangle(self, name, on, options):
        renderer = renderer_or_skip(name, on, options)
        out = renderer.render(to_device(triangle_mesh(), on))
        h, w = TRI_SIZE
        i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        expected = ((i >= 1) & (j >= 2) & (j + 2 * i <= 13)).float()
        frags = zbuffer_rasterize(triangle_mesh().uv, triangle_mesh().verts_cam[..., 2], triangle_mesh().triangles,
                                  TRI_SIZE)
        assert torch.equal(frags.mask[0, 0], expected)
        assert torch.equal(out.mask[0, 0].cpu().float(), expected)
        reference = zbuffer_interpolate(triangle_mesh().colors, frags, triangle_mesh().triangles)
        assert float((out.image.cpu() - reference).abs().max()) < 1e-4

    @pytest.mark.parametrize("name, on, options", RASTERIZERS)
    def test_convention_projected_vertex_is_where_the_rasterizer_draws_it(self, name, on, options):
        # With colours affine in the vertices' pixel positions, the rendered image is
        # (up to perspective correction) that affine function of the pixel position, so
        # sampling it at u_i (per_vertex's bilinear sampler) must give back c_i; a
        # half-pixel or flipped convention would miss by ≥ 0.5/W ≈ 0.01.
        renderer = renderer_or_skip(name, on, options)
        lit = ellipsoid_mesh(size=48)
        h, w = lit.image_size
        colors = torch.stack([lit.uv[..., 0] / w, lit.uv[..., 1] / h, torch.full_like(lit.uv[..., 0], 0.5)], -1)
        mesh = to_device(replace(lit, colors=colors), on)
        out = renderer.render(mesh)
        samples = get_renderer("per_vertex").photometric_samples(mesh, out.image)
        interior = sample_image(out.mask, mesh.uv)[..., 0] > 0.999
        facing = -(lit.normals_cam * torch.nn.functional.normalize(lit.verts_cam, dim=-1)).sum(-1) > 0.3
        keep = (samples.weights > 0) & interior & facing.to(on)
        assert int(keep.sum()) >= 20
        error = (samples.observed - samples.predicted).abs()[keep]
        assert float(error.max()) < 2e-3

    def test_pytorch3d_matches_zbuffer_rasterizer(self):
        renderer = renderer_or_skip("pytorch3d", "cpu", {})
        mesh = ellipsoid_mesh(size=40, batch=2)
        out = renderer.render(mesh)
        frags = zbuffer_rasterize(mesh.uv, mesh.verts_cam[..., 2], mesh.triangles, mesh.image_size)
        ref = zbuffer_interpolate(mesh.colors, frags, mesh.triangles)
        m, m_ref = out.mask > 0.5, frags.mask > 0.5
        assert mask_iou(m, m_ref) >= 0.99
        both = (m & m_ref).expand(-1, 3, -1, -1)
        assert float((out.image - ref)[both].abs().mean()) <= 0.01


@pytest.mark.cuda
class TestCudaBackendsAgree:
    def test_pytorch3d_and_nvdiffrast_images_agree(self):
        p3 = renderer_or_skip("pytorch3d", "cuda", {})
        nv = renderer_or_skip("nvdiffrast", "cuda", {})
        mesh = to_device(ellipsoid_mesh(size=64, batch=2), "cuda")
        a, b = p3.render(mesh), nv.render(mesh)
        ma, mb = a.mask > 0.5, b.mask > 0.5
        assert mask_iou(ma, mb) >= 0.99
        inside = (ma & mb).expand(-1, 3, -1, -1)
        assert float((a.image - b.image)[inside].abs().mean()) <= 0.01

    def test_photometric_samples_agree(self):
        p3 = renderer_or_skip("pytorch3d", "cuda", {})
        nv = renderer_or_skip("nvdiffrast", "cuda", {})
        mesh = to_device(ellipsoid_mesh(size=64), "cuda")
        images = torch.rand(1, 3, 64, 64, device="cuda")
        sa, sb = p3.photometric_samples(mesh, images), nv.photometric_samples(mesh, images)
        assert torch.equal(sa.observed, sb.observed)
        both = (sa.weights > 0.5) & (sb.weights > 0.5)
        assert float((sa.predicted - sb.predicted)[both].abs().mean()) <= 0.01
