"""Tests of the nvdiffrast backend (``renderers.nvdiffrast_backend``).

nvdiffrast needs CUDA, so the real kernels are exercised only by ``cuda``-marked tests,
which skip with the backend's availability reason elsewhere. On CPU the tests, on meshes
built without the face model (:mod:`meshes`), check the availability report, option
validation, the clip-space convention, and the backend's plumbing against
:class:`FakeNvdiffrast`, a slow CPU stand-in for ``nvdiffrast.torch`` built on the
z-buffer rasterizer that follows nvdiffrast's documented conventions (pixel centres at
``2 (j + 0.5) / W - 1`` in clip x/w, image row 0 at clip y/w = -1, ``interpolate`` =
``u·a0 + v·a1 + (1 - u - v)·a2``) and input requirements (contiguous float32 positions
and colours, contiguous int32 triangles).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.utils import cpp_extension

from helpers import assert_close
from meshes import TRI_SIZE, ellipsoid_mesh, to_device, triangle_mesh
from renderers import InputError, RendererUnavailableError, get_renderer
from renderers import nvdiffrast_backend as nvb
from renderers.nvdiffrast_backend import NvdiffrastRenderer, screen_to_clip
from renderers.torch_raster import zbuffer_interpolate, zbuffer_rasterize


def expected_triangle_mask() -> torch.Tensor:
    h, w = TRI_SIZE
    i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return ((i >= 1) & (j >= 2) & (j + 2 * i <= 13)).float()


def reference_render(mesh) -> tuple[torch.Tensor, torch.Tensor]:
    """``(image (B, 3, H, W), mask (B, 1, H, W))`` of ``mesh`` by the z-buffer rasterizer."""
    frags = zbuffer_rasterize(mesh.uv, mesh.verts_cam[..., 2], mesh.triangles, mesh.image_size)
    return zbuffer_interpolate(mesh.colors, frags, mesh.triangles), frags.mask


# ============================================================================ fake nvdiffrast
class FakeNvdiffrast:
    """CPU stand-in for ``nvdiffrast.torch`` (no antialiasing: ``antialias`` is identity)."""

    def __init__(self) -> None:
        self.topology_hashes = 0

    class RasterizeCudaContext:
        def __init__(self, device=None) -> None:
            self.device = device

    def rasterize(self, glctx, pos, tri, resolution, ranges=None, grad_db=True):
        assert isinstance(glctx, FakeNvdiffrast.RasterizeCudaContext)
        assert pos.dtype == torch.float32 and pos.is_contiguous() and pos.dim() == 3 and pos.shape[-1] == 4
        assert tri.dtype == torch.int32 and tri.is_contiguous() and tri.shape[-1] == 3
        height, width = resolution
        w = pos[..., 3]
        # Clip x/w = 2 (j + 0.5) / W - 1 at the centre of column j; row i at y/w = 2 (i + 0.5) / H - 1.
        px = (pos[..., 0] / w + 1.0) * width / 2.0
        py = (pos[..., 1] / w + 1.0) * height / 2.0
        frags = zbuffer_rasterize(torch.stack([px, py], -1), w, tri.long(), (height, width))
        rast = torch.stack([frags.bary[..., 0], frags.bary[..., 1], torch.zeros_like(frags.depth),
                            (frags.triangle + 1).to(torch.float32)], -1)
        return rast.contiguous(), torch.zeros(*rast.shape[:3], 4)

    def interpolate(self, attr, rast, tri, rast_db=None, diff_attrs=None):
        assert attr.dtype == torch.float32 and attr.is_contiguous()
        tri_id = rast[..., 3].long() - 1
        corners = tri.long()[tri_id.clamp(min=0)]  # (B, H, W, 3)
        batch = torch.arange(attr.shape[0]).view(-1, 1, 1, 1)
        values = attr[batch, corners]  # (B, H, W, 3, C)
        u, v = rast[..., 0:1], rast[..., 1:2]
        out = values[..., 0, :] * u + values[..., 1, :] * v + values[..., 2, :] * (1.0 - u - v)
        return out * (tri_id >= 0).unsqueeze(-1).to(out.dtype), None

    def antialias(self, color, rast, pos, tri, topology_hash=None, pos_gradient_boost=1.0):
        assert color.dtype == torch.float32 and color.is_contiguous() and color.dim() == 4
        assert topology_hash is not None
        return color.clone()

    def antialias_construct_topology_hash(self, tri):
        assert tri.dtype == torch.int32
        self.topology_hashes += 1
        return object()


@pytest.fixture
def fake(monkeypatch) -> FakeNvdiffrast:
    """Route the backend to :class:`FakeNvdiffrast` and let it run on CPU tensors."""
    module = FakeNvdiffrast()
    monkeypatch.setattr(nvb, "_import_nvdiffrast", lambda: module)
    monkeypatch.setattr(nvb, "_require_cuda", lambda device: None)
    monkeypatch.setattr(nvb, "_load_plugin", lambda: None)
    monkeypatch.setattr(nvb, "_CONTEXTS", {})
    return module


# ============================================================================ availability
class TestAvailability:
    def test_cpu_device_is_unavailable_with_alternatives(self):
        state = NvdiffrastRenderer.availability("cpu")
        assert not state.available
        assert "CUDA" in state.reason and "pytorch3d" in state.fix

    def test_unavailable_backend_raises_with_the_fix(self, monkeypatch):
        def missing():
            raise ImportError("No module named 'nvdiffrast'")

        monkeypatch.setattr(nvb, "_import_nvdiffrast", missing)
        with pytest.raises(RendererUnavailableError, match=r"pip install diffrp-nvdiffrast==0\.3\.3\.1"):
            get_renderer("nvdiffrast")

    def test_every_missing_piece_is_reported(self, monkeypatch):
        def missing():
            raise ImportError("No module named 'nvdiffrast'")

        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        monkeypatch.setattr(nvb, "_import_nvdiffrast", missing)
        monkeypatch.setattr(nvb, "_plugin_built", lambda: False)
        monkeypatch.setattr(nvb.shutil, "which", lambda name: None)
        monkeypatch.setattr(nvb.sys, "executable", "/nonexistent/bin/python")
        monkeypatch.setattr(cpp_extension, "CUDA_HOME", None)
        state = NvdiffrastRenderer.availability("cuda")
        assert not state.available
        for piece in ("no CUDA device", "No module named 'nvdiffrast'", "ninja", "nvcc"):
            assert piece in state.reason
        for fix in ("diffrp-nvdiffrast==0.3.3.1", "NVIDIA Source Code License", "pip install ninja", "CUDA toolkit"):
            assert fix in state.fix

    def test_built_plugin_needs_no_build_tools(self, monkeypatch, fake):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(nvb, "_plugin_built", lambda: True)
        monkeypatch.setattr(nvb.shutil, "which", lambda name: None)
        assert NvdiffrastRenderer.availability("cuda").available

    def test_available_when_everything_is_present(self, monkeypatch, fake):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(nvb.shutil, "which", lambda name: f"/usr/bin/{name}")
        assert NvdiffrastRenderer.availability("cuda").available
        assert NvdiffrastRenderer.availability().available


# ============================================================================ options
class TestOptions:
    @pytest.mark.parametrize("options", [
        dict(near=0.0), dict(near=-1.0), dict(near=100.0, far=50.0), dict(far=float("inf")),
        dict(near="1"), dict(antialias=1),
    ])
    def test_invalid_options_raise_input_error(self, options):
        with pytest.raises(InputError):
            NvdiffrastRenderer(**options)

    def test_defaults(self):
        r = NvdiffrastRenderer()
        assert (r.near, r.far, r.antialias, r.differentiable_geometry) == (10.0, 10000.0, True, True)
        assert not NvdiffrastRenderer(antialias=False).differentiable_geometry


# ============================================================================ conventions
class TestScreenToClip:
    def test_convention_pixel_centres_land_on_nvdiffrast_pixel_centres(self):
        h, w = 6, 10
        i, j = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
        uv = torch.stack([j + 0.5, i + 0.5], -1).reshape(1, -1, 2)
        clip = screen_to_clip(uv, torch.full((1, h * w), 700.0, dtype=torch.float64), (h, w), 10.0, 1e4)
        ndc = clip[..., :3] / clip[..., 3:]
        assert_close(ndc[0, :, 0], (2 * (j + 0.5) / w - 1).reshape(-1))
        # Row 0 (our top row) sits at clip y/w = -1 + 1/H: nvdiffrast's memory row 0.
        assert_close(ndc[0, :, 1], (2 * (i + 0.5) / h - 1).reshape(-1))

    def test_depth_runs_from_minus_one_at_near_to_one_at_far(self):
        uv = torch.zeros(1, 3, 2, dtype=torch.float64)
        depth = torch.tensor([[10.0, 600.0, 1e4]], dtype=torch.float64)
        clip = screen_to_clip(uv, depth, (8, 8), 10.0, 1e4)
        z_ndc = clip[..., 2] / clip[..., 3]
        assert float(z_ndc[0, 0]) == pytest.approx(-1.0) and float(z_ndc[0, 2]) == pytest.approx(1.0)
        assert -1.0 < float(z_ndc[0, 1]) < 1.0
        assert_close(clip[..., 3], depth)

    def test_equals_opengl_projection_built_from_k(self):
        formed = ellipsoid_mesh(size=24, dtype=torch.float64)
        h, w = formed.image_size
        k = formed.intrinsics
        n, f = 10.0, 1e4
        proj = torch.tensor([
            [2 * k[0, 0] / w, 0.0, 2 * k[0, 2] / w - 1, 0.0],
            [0.0, 2 * k[1, 1] / h, 2 * k[1, 2] / h - 1, 0.0],
            [0.0, 0.0, (f + n) / (f - n), -2 * f * n / (f - n)],
            [0.0, 0.0, 1.0, 0.0],
        ], dtype=torch.float64)
        homogeneous = torch.cat([formed.verts_cam, torch.ones_like(formed.verts_cam[..., :1])], -1)
        expected = homogeneous @ proj.T
        got = screen_to_clip(formed.uv, formed.verts_cam[..., 2], (h, w), n, f)
        assert_close(got, expected, rtol=1e-9, atol=1e-6)


# ============================================================================ plumbing (fake)
class TestPlumbingWithFake:
    def test_convention_pixel_exact_triangle(self, fake):
        out = NvdiffrastRenderer().render(triangle_mesh())
        assert torch.equal(out.mask[0, 0], expected_triangle_mask())
        reference, _ = reference_render(triangle_mesh())
        assert_close(out.image, reference, rtol=0, atol=1e-5)

    def test_render_matches_reference_on_faces(self, fake):
        mesh = ellipsoid_mesh(size=32, batch=2)
        out = NvdiffrastRenderer().render(mesh)
        image, mask = reference_render(mesh)
        assert torch.equal(out.mask, mask)
        assert_close(out.image, image, rtol=0, atol=1e-5)

    def test_background_fills_uncovered_pixels(self, fake):
        mesh = ellipsoid_mesh(size=24)
        bg = torch.rand(3, 24, 24)
        out = NvdiffrastRenderer().render(mesh, bg)
        off = (out.mask == 0).expand(-1, 3, -1, -1)
        assert_close(out.image[off], bg.expand(1, 3, 24, 24)[off])

    def test_photometric_samples_shapes_and_values(self, fake):
        mesh = ellipsoid_mesh(size=24, batch=2)
        images = torch.rand(2, 3, 24, 24)
        s = NvdiffrastRenderer().photometric_samples(mesh, images)
        assert s.predicted.shape == (2, 576, 3) and s.observed.shape == (2, 576, 3) and s.weights.shape == (2, 576)
        assert_close(s.observed[1, 3 * 24 + 5], images[1, :, 3, 5])
        image, mask = reference_render(mesh)
        assert_close(s.weights, mask.reshape(2, -1))
        assert_close(s.predicted, image.permute(0, 2, 3, 1).reshape(2, -1, 3), rtol=0, atol=1e-5)

    def test_float64_mesh_gives_float64_outputs_and_gradients(self, fake):
        mesh = ellipsoid_mesh(size=20, dtype=torch.float64)
        uv = mesh.uv.detach().clone().requires_grad_(True)
        colors = mesh.colors.detach().clone().requires_grad_(True)
        m = replace(mesh, uv=uv, colors=colors)
        s = NvdiffrastRenderer().photometric_samples(m, torch.rand(1, 3, 20, 20, dtype=torch.float64))
        assert s.predicted.dtype == s.weights.dtype == s.observed.dtype == torch.float64
        (s.weights.unsqueeze(-1) * s.predicted).sum().backward()
        assert uv.grad.dtype == torch.float64 and float(uv.grad.abs().sum()) > 0
        assert float(colors.grad.abs().sum()) > 0

    def test_topology_hash_is_built_once_per_topology(self, fake):
        mesh = ellipsoid_mesh(size=16)
        renderer = NvdiffrastRenderer()
        renderer.render(mesh)
        renderer.render(mesh)
        assert fake.topology_hashes == 1
        renderer.render(replace(mesh, triangles=mesh.triangles.clone()))
        assert fake.topology_hashes == 2

    @pytest.mark.parametrize("shape", [(1, 3, 24, 20), (1, 1, 24, 24), (2, 3, 24, 24)])
    def test_wrong_image_shape_raises_input_error(self, fake, shape):
        mesh = ellipsoid_mesh(size=24)
        with pytest.raises(InputError):
            NvdiffrastRenderer().photometric_samples(mesh, torch.zeros(shape))

    def test_cpu_mesh_raises_input_error_without_the_fake(self):
        mesh = ellipsoid_mesh(size=16)
        with pytest.raises(InputError, match="CUDA"):
            NvdiffrastRenderer().render(mesh)


# ============================================================================ CUDA
@pytest.mark.cuda
class TestCuda:
    @pytest.fixture(autouse=True)
    def _needs_nvdiffrast(self):
        state = NvdiffrastRenderer.availability("cuda")
        if not state.available:
            pytest.skip(str(state))

    def test_convention_pixel_exact_triangle(self):
        out = NvdiffrastRenderer(antialias=False).render(triangle_mesh(device="cuda"))
        assert torch.equal(out.mask[0, 0].cpu(), expected_triangle_mask())
        reference, _ = reference_render(triangle_mesh())
        assert_close(out.image.cpu(), reference, rtol=0, atol=1e-4)

    def test_antialiased_render_matches_reference(self):
        mesh = ellipsoid_mesh(size=64, batch=2)
        out = NvdiffrastRenderer().render(to_device(mesh, "cuda"))
        image, mask = reference_render(mesh)
        got = out.mask.cpu() > 0.5
        want = mask > 0.5
        assert float((got & want).sum() / (got | want).sum()) >= 0.99
        assert float(out.mask.min()) >= 0.0 and float(out.mask.max()) <= 1.0
        interior = (torch.nn.functional.avg_pool2d(mask, 3, 1, 1) > 0.999).expand(-1, 3, -1, -1)
        diff = (out.image.cpu() - image)[interior].abs()
        # Antialiasing also blends across occlusion edges inside the face (nose, cheek
        # contours), where the un-antialiased reference differs slightly: up to 6.2e-4
        # on an H200 (2026-11-28), float32 rounding (~3e-8) everywhere else.
        assert float(diff.max()) < 2e-3
        assert float(diff.mean()) < 5e-5

    def test_antialiasing_gives_silhouette_gradients(self):
        mesh = to_device(ellipsoid_mesh(size=48), "cuda")
        uv = mesh.uv.detach().clone().requires_grad_(True)
        s = NvdiffrastRenderer().photometric_samples(replace(mesh, uv=uv), torch.zeros(1, 3, 48, 48, device="cuda"))
        assert s.weights.requires_grad
        s.weights.sum().backward()
        assert bool(torch.isfinite(uv.grad).all()) and float(uv.grad.abs().sum()) > 0

    def test_float64_mesh(self):
        out = NvdiffrastRenderer(antialias=False).render(triangle_mesh(dtype=torch.float64, device="cuda"))
        assert out.image.dtype == torch.float64
        assert torch.equal(out.mask[0, 0].cpu().float(), expected_triangle_mask())
