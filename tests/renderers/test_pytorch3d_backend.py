"""Tests of the PyTorch3D backend (``renderers.pytorch3d``).

Everything runs on CPU with tiny meshes, built without the face model (:mod:`meshes`),
and tiny images (PyTorch3D's CPU rasterizer costs pixels × faces forward and pixels ×
faces-per-pixel, slowly, backward); CUDA tests are ``cuda``-marked. Without PyTorch3D every test that needs it skips with the reason
reported by the backend's availability check.
"""

from __future__ import annotations

import pytest
import torch

from helpers import assert_close
from meshes import TRI_SIZE, as_screen_mesh, ellipsoid_mesh, expected_triangle, triangle_mesh
from renderers import InputError, RendererUnavailableError, ScreenMesh, get_renderer
from renderers import pytorch3d as p3d
from renderers.pytorch3d import PyTorch3DRenderer, RasterSettings, screen_to_ndc
from renderers.pytorch3d import backend as p3d_backend
from renderers.torch_raster import zbuffer_interpolate, zbuffer_rasterize

AVAILABILITY = PyTorch3DRenderer.availability("cpu")
needs_pytorch3d = pytest.mark.skipif(not AVAILABILITY.available, reason=str(AVAILABILITY))


# ============================================================================ options
class TestOptions:
    def test_defaults_are_hard_single_face(self):
        s = RasterSettings()
        assert (s.blur_radius, s.faces_per_pixel, s.cull_backfaces, s.soft) == (0.0, 1, False, False)

    def test_default_sigma_gives_edge_probability_1e4(self):
        s = RasterSettings(blur_radius=2.0, faces_per_pixel=4)
        p = torch.sigmoid(torch.tensor(-(2.0 ** 2) / s.sigma_px2))
        assert float(p) == pytest.approx(1e-4, rel=1e-3)

    @pytest.mark.parametrize("options", [
        dict(blur_radius=-1.0),
        dict(blur_radius=float("nan")),
        dict(faces_per_pixel=0),
        dict(faces_per_pixel=4),  # hard mode keeps only the nearest face
        dict(blur_radius=1.0, faces_per_pixel=2.5),
        dict(blur_radius=1.0, faces_per_pixel=4, sigma=0.0),
        dict(gamma=-1.0),
        dict(bin_size=-8),
        dict(max_faces_per_bin=0),
        dict(max_faces_per_bin="lots"),
        dict(cull_backfaces="yes"),
    ])
    def test_invalid_options_raise_input_error(self, options):
        with pytest.raises(InputError):
            PyTorch3DRenderer(**options)

    @needs_pytorch3d
    def test_get_renderer_passes_options(self):
        r = get_renderer("pytorch3d", blur_radius=1.0, faces_per_pixel=8, cull_backfaces=True)
        assert isinstance(r, PyTorch3DRenderer)
        assert r.settings.faces_per_pixel == 8 and r.settings.cull_backfaces
        assert r.differentiable_geometry and not PyTorch3DRenderer().differentiable_geometry


# ============================================================================ availability
class TestBinCapacity:
    """``max_faces_per_bin="auto"``: the capacity that no bin of PyTorch3D's coarse pass exceeds."""

    @staticmethod
    def uv_of(triangles_px: list[list[tuple[float, float]]]) -> tuple[torch.Tensor, torch.Tensor]:
        uv = torch.tensor([corner for triangle in triangles_px for corner in triangle], dtype=torch.float32)
        return uv.unsqueeze(0), torch.arange(len(uv)).view(-1, 3)

    def test_counts_triangles_per_bin_from_either_corner(self):
        small = [[(2, 2), (6, 2), (2, 6)], [(3, 3), (5, 3), (3, 5)]]  # bin (0, 0); mirrored: bin (3, 3)
        everywhere = [[(-50, -50), (200, -50), (-50, 200)]]
        off_image = [[(-300, -300), (-290, -300), (-300, -290)]]
        uv, triangles = self.uv_of(small + everywhere + off_image)
        assert p3d.bin_capacity(uv, triangles, (64, 64), 16, margin_px=0.0) == 3

    def test_margin_reaches_into_the_next_bin(self):
        near_edge = [[(18, 2), (20, 2), (18, 4)]]  # bin (0, 1); 2 px from bin (0, 0)
        uv, triangles = self.uv_of([[(2, 2), (6, 2), (2, 6)]] + near_edge)
        assert p3d.bin_capacity(uv, triangles, (64, 64), 16, margin_px=1.0) == 1
        assert p3d.bin_capacity(uv, triangles, (64, 64), 16, margin_px=3.0) == 2

    def test_bounds_a_per_pixel_count_on_a_random_batch(self):
        generator = torch.Generator().manual_seed(3)
        height, width, side = 50, 70, 16
        uv = torch.rand(2, 40, 2, generator=generator) * torch.tensor([width * 1.2, height * 1.2]) - 5.0
        triangles = torch.randint(0, 40, (60, 3), generator=generator)
        capacity = p3d.bin_capacity(uv, triangles, (height, width), side, margin_px=0.0)
        corners = uv[:, triangles]  # (B, F, 3, 2)
        low, high = corners.amin(2), corners.amax(2)
        centres_u = torch.arange(width) + 0.5
        centres_v = torch.arange(height) + 0.5
        worst = 0
        for flip in (False, True):
            bin_u = ((width - centres_u) if flip else centres_u).div(side).floor()
            bin_v = ((height - centres_v) if flip else centres_v).div(side).floor()
            for b in range(2):
                for bu in bin_u.unique():
                    for bv in bin_v.unique():
                        us, vs = centres_u[bin_u == bu], centres_v[bin_v == bv]
                        hit = ((high[b, :, 0] >= us.min()) & (low[b, :, 0] <= us.max())
                               & (high[b, :, 1] >= vs.min()) & (low[b, :, 1] <= vs.max()))
                        worst = max(worst, int(hit.sum()))
        assert worst > 1 and capacity >= worst

    @pytest.mark.parametrize("size, side", [(32, 8), (64, 8), (128, 16), (240, 16), (512, 32), (1024, 64)])
    def test_default_bin_size_is_pytorch3d_heuristic(self, size, side):
        assert p3d.default_bin_size((size, size)) == side

    def test_auto_is_a_valid_option(self):
        assert PyTorch3DRenderer(max_faces_per_bin="auto").settings.max_faces_per_bin == "auto"


class TestAvailability:
    @needs_pytorch3d
    def test_available_on_cpu_here(self):
        assert PyTorch3DRenderer.availability("cpu").available
        assert PyTorch3DRenderer.availability().available

    @pytest.mark.parametrize("error", [ImportError("No module named 'pytorch3d'"),
                                       OSError("libc10.so: undefined symbol: _ZN3c10")])
    def test_import_failure_reports_message_and_fix(self, monkeypatch, error):
        def broken():
            raise error

        monkeypatch.setattr(p3d_backend, "import_pytorch3d", broken)
        state = PyTorch3DRenderer.availability("cpu")
        assert not state.available
        assert str(error) in state.reason
        assert "easypytorch3d==0.7.9.post1" in state.fix and "iopath" in state.fix
        with pytest.raises(RendererUnavailableError, match="easypytorch3d==0.7.9.post1"):
            get_renderer("pytorch3d")

    def test_no_cuda_device_reported(self, monkeypatch):
        if not AVAILABILITY.available:
            pytest.skip(str(AVAILABILITY))
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        state = PyTorch3DRenderer.availability("cuda")
        assert not state.available and "CUDA" in state.reason


# ============================================================================ conventions
class TestScreenToNdc:
    def test_convention_pixel_centres_map_to_pytorch3d_pixel_centres(self):
        # PyTorch3D puts output pixel (i, j) at X = (W - 2j - 1)/s, Y = (H - 2i - 1)/s.
        h, w = 6, 10
        i, j = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
        uv = torch.stack([j + 0.5, i + 0.5], -1).reshape(1, -1, 2)
        ndc = screen_to_ndc(uv, torch.ones(1, h * w, dtype=torch.float64), (h, w))
        s = min(h, w)
        assert_close(ndc[0, :, 0], ((w - 2 * j - 1) / s).reshape(-1))
        assert_close(ndc[0, :, 1], ((h - 2 * i - 1) / s).reshape(-1))
        assert_close(ndc[0, :, 2], torch.ones(h * w, dtype=torch.float64))

    def test_shorter_side_spans_minus_one_to_one(self):
        for h, w in [(8, 16), (16, 8)]:
            corners = torch.tensor([[[0.0, 0.0], [w, h]]], dtype=torch.float64)
            ndc = screen_to_ndc(corners, torch.ones(1, 2, dtype=torch.float64), (h, w))
            x_range, y_range = ndc[0, 0, 0] - ndc[0, 1, 0], ndc[0, 0, 1] - ndc[0, 1, 1]
            assert float(min(x_range, y_range)) == pytest.approx(2.0)
            assert float(max(x_range, y_range)) == pytest.approx(4.0)


@needs_pytorch3d
class TestRasterizeConventions:
    def test_convention_pixel_exact_triangle_non_square(self):
        mask, colours = expected_triangle()
        out = PyTorch3DRenderer().render(triangle_mesh(dtype=torch.float64))
        assert_close(out.mask[0, 0], mask)
        assert_close(out.image[0], colours, rtol=0, atol=1e-5)

    def test_batch_items_render_independently(self):
        mesh = ellipsoid_mesh(size=32, batch=2)
        together = PyTorch3DRenderer().render(mesh)
        for b in range(2):
            one = as_screen_mesh(mesh, **{n: getattr(mesh, n)[b:b + 1] for n in ("verts_cam", "uv", "colors", "visible")})
            alone = PyTorch3DRenderer().render(one)
            assert_close(together.image[b:b + 1], alone.image)
            assert_close(together.mask[b:b + 1], alone.mask)

    def test_convention_cull_backfaces_keeps_outward_faces(self):
        mesh = ellipsoid_mesh(size=32)
        plain = p3d.rasterize(mesh, RasterSettings())
        culled = p3d.rasterize(mesh, RasterSettings(cull_backfaces=True))
        assert torch.equal(plain.pix_to_face, culled.pix_to_face)
        inside_out = as_screen_mesh(mesh, triangles=mesh.triangles[:, [0, 2, 1]])
        far_side = p3d.rasterize(inside_out, RasterSettings(cull_backfaces=True))
        covered = plain.valid[..., 0] & far_side.valid[..., 0]
        assert bool(covered.any())
        assert bool((far_side.zbuf[..., 0][covered] > plain.zbuf[..., 0][covered]).all())

    def test_zbuf_is_camera_depth_and_dists_in_pixels(self):
        frags = p3d.rasterize(triangle_mesh(dtype=torch.float64, depth=420.0), RasterSettings())
        valid = frags.valid[..., 0]
        assert_close(frags.zbuf[..., 0][valid], torch.full((int(valid.sum()),), 420.0), rtol=1e-6, atol=1e-3)
        # Pixel (3, 4) has its centre (4.5, 3.5); the nearest edge is v = 1.25 at 2.25 px,
        # or the hypotenuse u + 2v = 14.75 at (14.75 - 11.5)/sqrt(5) = 1.4534 px.
        assert float(frags.dists[0, 3, 4, 0]) == pytest.approx(-(3.25 / 5 ** 0.5) ** 2, rel=1e-4)

    def test_wart_coverage_is_decided_in_float32(self):
        # PyTorch3D's kernels are float32-only: which triangles cover a pixel is a float32
        # decision even for float64 meshes; barycentrics, depths, colours and (on the CPU,
        # where they are evaluated in torch) the soft distances keep the mesh dtype.
        frags = p3d.rasterize(triangle_mesh(dtype=torch.float64), RasterSettings())
        assert frags.dists.dtype == torch.float64
        assert frags.bary.dtype == torch.float64 and frags.zbuf.dtype == torch.float64
        out = PyTorch3DRenderer().render(triangle_mesh(dtype=torch.float64))
        assert out.image.dtype == torch.float64 and out.mask.dtype == torch.float64


# ============================================================================ outputs
@needs_pytorch3d
class TestRender:
    @pytest.mark.parametrize("float_dtype", [torch.float32, torch.float64])
    def test_shapes_and_dtype(self, float_dtype):
        mesh = ellipsoid_mesh(size=24, batch=2, dtype=float_dtype)
        out = PyTorch3DRenderer().render(mesh)
        assert out.image.shape == (2, 3, 24, 24) and out.mask.shape == (2, 1, 24, 24)
        assert out.image.dtype == float_dtype and out.mask.dtype == float_dtype
        assert set(out.mask.unique().tolist()) <= {0.0, 1.0}

    def test_background_composited_outside_the_face(self):
        mesh = ellipsoid_mesh(size=24)
        bg = torch.rand(3, 24, 24)
        out = PyTorch3DRenderer().render(mesh, bg)
        off = (out.mask == 0).expand(-1, 3, -1, -1)
        assert_close(out.image[off], bg.unsqueeze(0).expand(1, 3, 24, 24)[off])
        inside = (out.mask == 1).expand(-1, 3, -1, -1)
        assert_close(out.image[inside], PyTorch3DRenderer().render(mesh).image[inside])

    def test_soft_mask_is_fractional_and_stays_within_blur_radius(self):
        mesh = ellipsoid_mesh(size=24)
        hard = PyTorch3DRenderer().render(mesh)
        soft = PyTorch3DRenderer(blur_radius=1.0, faces_per_pixel=8).render(mesh)
        assert float(soft.mask.min()) >= 0.0 and float(soft.mask.max()) <= 1.0
        assert bool(((soft.mask > 0) & (soft.mask < 1)).any())
        assert float(soft.mask[hard.mask > 0].mean()) > 0.9
        near = torch.nn.functional.max_pool2d(hard.mask, kernel_size=5, stride=1, padding=2) > 0
        assert float(soft.mask[~near].abs().max()) == 0.0

    def test_soft_colour_matches_hard_colour_inside(self):
        mesh = ellipsoid_mesh(size=24)
        hard = PyTorch3DRenderer().render(mesh)
        soft = PyTorch3DRenderer(blur_radius=1.0, faces_per_pixel=8).render(mesh)
        rgb_soft = soft.image / soft.mask.clamp(min=1e-6)
        inside = (hard.mask > 0).expand(-1, 3, -1, -1)
        assert float((rgb_soft - hard.image)[inside].abs().mean()) < 0.02

    def test_bad_background_raises_input_error(self):
        mesh = ellipsoid_mesh(size=24)
        with pytest.raises(InputError):
            PyTorch3DRenderer().render(mesh, torch.zeros(3, 20, 24))


@needs_pytorch3d
class TestPhotometricSamples:
    def test_every_pixel_is_a_sample_in_row_major_order(self):
        mesh = ellipsoid_mesh(size=24, batch=2)
        images = torch.rand(2, 3, 24, 24)
        renderer = PyTorch3DRenderer()
        s = renderer.photometric_samples(mesh, images)
        assert s.predicted.shape == (2, 24 * 24, 3) and s.observed.shape == (2, 24 * 24, 3)
        assert s.weights.shape == (2, 24 * 24)
        assert_close(s.observed[1, 5 * 24 + 7], images[1, :, 5, 7])
        out = renderer.render(mesh)
        assert_close(s.weights, out.mask.reshape(2, -1))
        assert_close(s.predicted, (out.image * out.mask).permute(0, 2, 3, 1).reshape(2, -1, 3))

    @pytest.mark.parametrize("shape", [(1, 3, 24, 20), (1, 1, 24, 24), (2, 3, 24, 24), (3, 24, 24)])
    def test_wrong_image_shape_raises_input_error(self, shape):
        mesh = ellipsoid_mesh(size=24)
        with pytest.raises(InputError):
            PyTorch3DRenderer().photometric_samples(mesh, torch.zeros(shape))

    def test_integer_images_raise_input_error(self):
        mesh = ellipsoid_mesh(size=24)
        with pytest.raises(InputError):
            PyTorch3DRenderer().photometric_samples(mesh, torch.zeros(1, 3, 24, 24, dtype=torch.uint8))

    def test_wrong_mesh_shapes_raise_input_error(self):
        mesh = ellipsoid_mesh(size=24)
        bad = as_screen_mesh(mesh, colors=mesh.colors[..., :2])
        with pytest.raises(InputError):
            PyTorch3DRenderer().render(bad)


# ============================================================================ gradients
@needs_pytorch3d
class TestFragmentIndexGather:
    def test_equals_advanced_indexing(self, device):
        values = torch.randn(3, 7, 4, device=device)
        pix_to_face = torch.randint(-1, 5, (3, 2, 2, 2), device=device)
        triangles = torch.randint(0, 7, (5, 3), device=device)
        index = p3d.fragment_index(triangles, pix_to_face)
        expected = values[index.batch.unsqueeze(1), index.corners]
        assert index.corners.shape[0] == int((pix_to_face >= 0).sum())
        assert torch.equal(index.gather(values), expected)

    def test_gradcheck_float64_with_repeated_corners(self):
        values = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
        triangles = torch.tensor([[0, 1, 2], [2, 2, 4], [4, 3, 0], [0, 0, 0]])
        index = p3d.fragment_index(triangles, torch.tensor([[[[0, 1]]], [[[2, 3]]]]))
        assert torch.autograd.gradcheck(index.gather, (values,))


class TestGradients:
    @pytest.mark.parametrize("options", [{}, dict(blur_radius=1.0, faces_per_pixel=4)])
    def test_gradcheck_float64_wrt_vertex_colours(self, options):
        mesh = triangle_mesh(dtype=torch.float64)
        renderer = PyTorch3DRenderer(**options)
        images = torch.rand(1, 3, *TRI_SIZE, dtype=torch.float64)
        colors = torch.rand(1, 3, 3, dtype=torch.float64, requires_grad=True)

        def fn(c):
            return renderer.photometric_samples(as_screen_mesh(mesh, colors=c), images).predicted

        assert torch.autograd.gradcheck(fn, (colors,), fast_mode=True)

    def test_hard_gradients_equal_zbuffer_rasterizer(self):
        mesh = ellipsoid_mesh(size=20, dtype=torch.float64)
        upstream = torch.randn(1, 20 * 20, 3, dtype=torch.float64)

        def grads(render):
            uv = mesh.uv.detach().clone().requires_grad_(True)
            z = mesh.verts_cam[..., 2].detach().clone().requires_grad_(True)
            colors = mesh.colors.detach().clone().requires_grad_(True)
            (render(uv, z, colors) * upstream).sum().backward()
            return uv.grad, z.grad, colors.grad

        def ours(uv, z, colors):
            verts = torch.cat([mesh.verts_cam[..., :2], z.unsqueeze(-1)], -1)
            m = as_screen_mesh(mesh, uv=uv, verts_cam=verts, colors=colors)
            return PyTorch3DRenderer().photometric_samples(m, torch.zeros(1, 3, 20, 20, dtype=torch.float64)).predicted

        def reference(uv, z, colors):
            frags = zbuffer_rasterize(uv, z, mesh.triangles, mesh.image_size)
            return zbuffer_interpolate(colors, frags, mesh.triangles).permute(0, 2, 3, 1).reshape(1, -1, 3)

        for name, got, want in zip(("uv", "depth", "colors"), grads(ours), grads(reference)):
            assert float(want.abs().max()) > 0, name
            assert_close(got, want, rtol=1e-3, atol=1e-4 * float(want.abs().max()), msg=name)

    def test_soft_gradients_match_finite_differences(self):
        # Soft coverage depends on PyTorch3D's float32 distances, so check directional
        # derivatives of a weighted loss against float32 central differences. Settings
        # keep the function smooth at this scale: no pixel fills all K slots, and a
        # triangle entering the blur radius gets probability sigmoid(-1/0.06) ~ 6e-8.
        mesh = ellipsoid_mesh(size=20)
        renderer = PyTorch3DRenderer(blur_radius=1.0, faces_per_pixel=32, sigma=0.06, gamma=10.0)
        gen = torch.Generator().manual_seed(1)
        upstream = torch.randn(1, 20 * 20, 4, generator=gen)
        images = torch.zeros(1, 3, 20, 20)

        def loss(uv):
            s = renderer.photometric_samples(as_screen_mesh(mesh, uv=uv), images)
            return (s.weights * ((s.predicted * upstream[..., :3]).sum(-1) + 3.0 * upstream[..., 3])).sum()

        uv = mesh.uv.detach().clone().requires_grad_(True)
        loss(uv).backward()
        eps = 1e-3
        for _ in range(3):
            direction = torch.randn(uv.shape, generator=gen)
            analytic = float((uv.grad * direction).sum())
            with torch.no_grad():
                numeric = float(loss(uv + eps * direction) - loss(uv - eps * direction)) / (2 * eps)
            assert analytic == pytest.approx(numeric, rel=0.05, abs=0.05)

    def test_gradcheck_float64_wrt_uv_and_depth(self):
        # Barycentrics and depths are evaluated in torch, so float64 gradcheck works for
        # positions too (coverage does not change under the tiny perturbations).
        mesh = triangle_mesh(dtype=torch.float64)
        images = torch.rand(1, 3, *TRI_SIZE, dtype=torch.float64)
        uv = (mesh.uv + 0.1 * torch.rand(mesh.uv.shape, dtype=torch.float64)).requires_grad_(True)
        z = torch.tensor([[480.0, 510.0, 530.0]], dtype=torch.float64, requires_grad=True)

        def fn(uv, z):
            verts = torch.cat([mesh.verts_cam[..., :2], z.unsqueeze(-1)], -1)
            return PyTorch3DRenderer().photometric_samples(as_screen_mesh(mesh, uv=uv, verts_cam=verts), images).predicted

        assert torch.autograd.gradcheck(fn, (uv, z), fast_mode=True)

    def test_hard_mode_has_no_coverage_gradient(self):
        mesh = ellipsoid_mesh(size=20)
        uv = mesh.uv.detach().clone().requires_grad_(True)
        s = PyTorch3DRenderer().photometric_samples(as_screen_mesh(mesh, uv=uv), torch.zeros(1, 3, 20, 20))
        assert not s.weights.requires_grad
        s.predicted.sum().backward()
        assert float(uv.grad.abs().sum()) > 0


# ============================================================================ CUDA
@pytest.mark.cuda
class TestCuda:
    @pytest.fixture(autouse=True)
    def _needs_cuda_pytorch3d(self):
        state = PyTorch3DRenderer.availability("cuda")
        if not state.available:
            pytest.skip(str(state))

    @pytest.mark.parametrize("options", [{}, dict(blur_radius=1.0, faces_per_pixel=8)])
    def test_cpu_and_cuda_agree_on_images_and_gradients(self, options):
        renderer = PyTorch3DRenderer(**options)
        mesh = ellipsoid_mesh(size=48, batch=2)
        upstream = torch.randn(2, 48 * 48, 3)
        images = torch.rand(2, 3, 48, 48)
        results = []
        for device in ("cpu", "cuda"):
            uv = mesh.uv.detach().to(device).requires_grad_(True)
            colors = mesh.colors.detach().to(device).requires_grad_(True)
            m = ScreenMesh(verts_cam=mesh.verts_cam.to(device), uv=uv, colors=colors, visible=mesh.visible.to(device),
                           triangles=mesh.triangles.to(device), intrinsics=mesh.intrinsics.to(device),
                           image_size=mesh.image_size)
            s = renderer.photometric_samples(m, images.to(device))
            ((s.predicted * upstream.to(device)).sum() + s.weights.sum()).backward()
            results.append((s.predicted.cpu(), s.weights.cpu(), uv.grad.cpu(), colors.grad.cpu()))
        for name, a, b in zip(("predicted", "weights", "uv grad", "colour grad"), *results):
            assert_close(b, a, rtol=1e-3, atol=1e-4, msg=name)

    def test_float64_mesh_on_cuda(self):
        mesh = triangle_mesh(dtype=torch.float64, device="cuda")
        out = PyTorch3DRenderer().render(mesh)
        mask, colours = expected_triangle()
        assert_close(out.mask[0, 0].cpu(), mask)
        assert_close(out.image[0].cpu(), colours, rtol=0, atol=1e-5)

    def test_binned_rasterization_matches_naive(self):
        mesh = ellipsoid_mesh(size=64)
        cuda = ScreenMesh(**{n: (getattr(mesh, n).cuda() if isinstance(getattr(mesh, n), torch.Tensor) else getattr(mesh, n))
                             for n in ("verts_cam", "uv", "colors", "visible", "triangles", "intrinsics", "image_size")})
        naive = PyTorch3DRenderer(bin_size=0).render(cuda)
        binned = PyTorch3DRenderer(bin_size=8).render(cuda)
        assert_close(binned.image, naive.image)
        for bin_size in (8, 32, None):
            sized = PyTorch3DRenderer(bin_size=bin_size, max_faces_per_bin="auto").render(cuda)
            assert_close(sized.image, naive.image, msg=f"bin_size {bin_size}, auto capacity")
        side = p3d.default_bin_size(cuda.image_size)
        assert p3d.bin_capacity(cuda.uv, cuda.triangles, cuda.image_size, side) < 10000
