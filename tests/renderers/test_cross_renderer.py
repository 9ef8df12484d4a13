"""Cross-renderer tests: one camera convention, comparable images and gradients.

Every rasterizer is held against the plain-PyTorch reference (``renderers.torch_raster``)
and against the paper's per-vertex sampling; CUDA cases are ``cuda``-marked and every
case skips with the backend's own availability reason where it cannot run.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from mofa_bench import Camera, MoFADecoder, zero_code
from mofa_bench.code_vector import CODE_SLICES
from renderers import Renderer, ScreenMesh, get_renderer
from renderers.per_vertex import sample_image
from renderers.registry import available_renderers
from renderers.torch_raster import interpolate, rasterize

#: Image size (H, W) of the pixel-exact triangle; non-square on purpose.
TRI_SIZE = (12, 16)
#: Pixel (i, j) is covered iff i >= 1, j >= 2 and j + 2 i <= 13 (no centre on an edge).
TRI_UV = ((2.25, 1.25), (12.25, 1.25), (2.25, 6.25))

#: (renderer name, device, options) of every rasterizer case.
RASTERIZERS = [
    pytest.param("pytorch3d", "cpu", {}, id="pytorch3d-cpu"),
    pytest.param("pytorch3d", "cuda", {}, id="pytorch3d-cuda", marks=pytest.mark.cuda),
    pytest.param("nvdiffrast", "cuda", {}, id="nvdiffrast-cuda", marks=pytest.mark.cuda),
]
#: The same cases without antialiasing (pixel-exact coverage).
HARD_RASTERIZERS = [
    pytest.param("pytorch3d", "cpu", {}, id="pytorch3d-cpu"),
    pytest.param("pytorch3d", "cuda", {}, id="pytorch3d-cuda", marks=pytest.mark.cuda),
    pytest.param("nvdiffrast", "cuda", {"antialias": False}, id="nvdiffrast-cuda", marks=pytest.mark.cuda),
]


def renderer_or_skip(name: str, device: str, options: dict) -> Renderer:
    """The backend, or a skip carrying its availability reason."""
    state = available_renderers(device)[name]
    if not state.available:
        pytest.skip(f"{name} on {device}: {state}")
    return get_renderer(name, device, **options)


def to_device(mesh: ScreenMesh, device: str) -> ScreenMesh:
    """A plain :class:`ScreenMesh` copy of ``mesh`` on ``device``."""
    names = ("verts_cam", "uv", "colors", "visible", "triangles", "intrinsics")
    return ScreenMesh(image_size=mesh.image_size, **{n: getattr(mesh, n).to(device) for n in names})


def triangle_mesh(dtype: torch.dtype = torch.float32) -> ScreenMesh:
    """One red/green/blue triangle at 500 mm, placed at :data:`TRI_UV`."""
    k = Camera(image_size=TRI_SIZE).intrinsics(dtype=dtype)
    uv = torch.tensor([TRI_UV], dtype=dtype)
    z = torch.full((1, 3, 1), 500.0, dtype=dtype)
    return ScreenMesh(
        verts_cam=torch.cat([(uv - k[:2, 2]) / k[0, 0] * z, z], -1), uv=uv,
        colors=torch.eye(3, dtype=dtype).unsqueeze(0), visible=torch.ones(1, 3, dtype=torch.bool),
        triangles=torch.tensor([[0, 1, 2]]), intrinsics=k, image_size=TRI_SIZE,
    )


def posed_code(batch: int = 1, seed: int = 0) -> torch.Tensor:
    """``(B, 257)`` float32 codes with a small random pose and light."""
    gen = torch.Generator().manual_seed(seed)
    code = zero_code(batch)
    code[:, CODE_SLICES["rotation"]] = 0.15 * torch.randn(batch, 3, generator=gen)
    code[:, CODE_SLICES["translation"]] = 8.0 * torch.randn(batch, 3, generator=gen)
    code[:, CODE_SLICES["gamma"]] = 0.2 * torch.randn(batch, 27, generator=gen)
    return code


def weighted_photometric_loss(samples) -> torch.Tensor:
    """``Σ w ‖pred − obs‖ / Σ w`` per image, averaged over the batch."""
    dist = torch.sqrt(((samples.predicted - samples.observed) ** 2).sum(-1) + 1e-10)
    return ((samples.weights * dist).sum(-1) / samples.weights.sum(-1).clamp(min=1e-8)).mean()


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
        frags = rasterize(triangle_mesh().uv, triangle_mesh().verts_cam[..., 2], triangle_mesh().triangles, TRI_SIZE)
        assert torch.equal(frags.mask[0, 0], expected)
        assert torch.equal(out.mask[0, 0].cpu().float(), expected)
        reference = interpolate(triangle_mesh().colors, frags, triangle_mesh().triangles)
        assert float((out.image.cpu() - reference).abs().max()) < 1e-4

    @pytest.mark.parametrize("name, on, options", RASTERIZERS)
    def test_convention_projected_vertex_is_where_the_rasterizer_draws_it(self, tiny_model, name, on, options):
        # With colours affine in the vertices' pixel positions, the rendered image is
        # (up to perspective correction) that affine function of the pixel position, so
        # sampling it at u_i (per_vertex's bilinear sampler) must give back c_i; a
        # half-pixel or flipped convention would miss by ≥ 0.5/W ≈ 0.01.
        renderer = renderer_or_skip(name, on, options)
        formed = MoFADecoder(tiny_model, Camera(image_size=48)).form(posed_code())
        h, w = formed.image_size
        colors = torch.stack([formed.uv[..., 0] / w, formed.uv[..., 1] / h, torch.full_like(formed.uv[..., 0], 0.5)], -1)
        mesh = to_device(replace(formed, colors=colors), on)
        out = renderer.render(mesh)
        samples = get_renderer("per_vertex").photometric_samples(mesh, out.image)
        interior = sample_image(out.mask, mesh.uv)[..., 0] > 0.999
        facing = -(formed.normals_cam * torch.nn.functional.normalize(formed.verts_cam, dim=-1)).sum(-1) > 0.3
        keep = (samples.weights > 0) & interior & facing.to(on)
        assert int(keep.sum()) >= 20
        error = (samples.observed - samples.predicted).abs()[keep]
        assert float(error.max()) < 2e-3

    def test_pytorch3d_matches_reference_rasterizer(self, tiny_model):
        renderer = renderer_or_skip("pytorch3d", "cpu", {})
        mesh = MoFADecoder(tiny_model, Camera(image_size=40)).form(posed_code(batch=2))
        out = renderer.render(mesh)
        frags = rasterize(mesh.uv, mesh.verts_cam[..., 2], mesh.triangles, mesh.image_size)
        ref = interpolate(mesh.colors, frags, mesh.triangles)
        m, m_ref = out.mask > 0.5, frags.mask > 0.5
        assert mask_iou(m, m_ref) >= 0.99
        both = (m & m_ref).expand(-1, 3, -1, -1)
        assert float((out.image - ref)[both].abs().mean()) <= 0.01


@pytest.mark.cuda
class TestCudaBackendsAgree:
    def test_pytorch3d_and_nvdiffrast_images_agree(self, tiny_model):
        p3 = renderer_or_skip("pytorch3d", "cuda", {})
        nv = renderer_or_skip("nvdiffrast", "cuda", {})
        formed = MoFADecoder(tiny_model, Camera(image_size=64)).form(posed_code(batch=2))
        mesh = to_device(formed, "cuda")
        a, b = p3.render(mesh), nv.render(mesh)
        ma, mb = a.mask > 0.5, b.mask > 0.5
        assert mask_iou(ma, mb) >= 0.99
        inside = (ma & mb).expand(-1, 3, -1, -1)
        assert float((a.image - b.image)[inside].abs().mean()) <= 0.01

    def test_photometric_samples_agree(self, tiny_model):
        p3 = renderer_or_skip("pytorch3d", "cuda", {})
        nv = renderer_or_skip("nvdiffrast", "cuda", {})
        mesh = to_device(MoFADecoder(tiny_model, Camera(image_size=64)).form(posed_code()), "cuda")
        images = torch.rand(1, 3, 64, 64, device="cuda")
        sa, sb = p3.photometric_samples(mesh, images), nv.photometric_samples(mesh, images)
        assert torch.equal(sa.observed, sb.observed)
        both = (sa.weights > 0.5) & (sb.weights > 0.5)
        assert float((sa.predicted - sb.predicted)[both].abs().mean()) <= 0.01


# ============================================================================ gradients
class TestPhotometricGradients:
    """Every rasterizer's photometric gradient w.r.t. the code against per-vertex sampling's
    on the same device, on a target rendered by the rasterizer itself."""

    @pytest.fixture(params=[pytest.param(case.values, id=case.id, marks=case.marks) for case in RASTERIZERS])
    def setup(self, request, tiny_model):
        name, on, options = request.param
        renderer = renderer_or_skip(name, on, options)
        camera = Camera(image_size=48)
        decoders = {"per_vertex": MoFADecoder(tiny_model, camera, renderer="per_vertex"),
                    name: MoFADecoder(tiny_model, camera, renderer=renderer)}
        true = posed_code(seed=3)
        true[:, CODE_SLICES["translation"]] = torch.tensor([[4.0, -3.0, 0.0]])
        true = true.to(on)
        background = torch.full((1, 3, 48, 48), 0.5, device=on)
        with torch.no_grad():
            target, _ = decoders[name].render(true, background)
        return name, decoders, true, target

    @staticmethod
    def gradient(decoder: MoFADecoder, code: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        code = code.clone().requires_grad_(True)
        weighted_photometric_loss(decoder.photometric_samples(decoder.form(code), target)).backward()
        return code.grad[0].cpu()

    def test_gradients_point_the_same_way_as_per_vertex(self, setup):
        name, decoders, true, target = setup
        gen = torch.Generator().manual_seed(7)
        start = true.clone()
        start[:, CODE_SLICES["translation"]] += torch.tensor([[3.0, 2.0, 0.0]], device=start.device)
        start[:, CODE_SLICES["gamma"]] += 0.1 * torch.randn(1, 27, generator=gen).to(start.device)
        g_pv = self.gradient(decoders["per_vertex"], start, target)
        g_raster = self.gradient(decoders[name], start, target)
        cosine = torch.nn.functional.cosine_similarity
        assert float(cosine(g_pv, g_raster, dim=0)) > 0.5
        light = CODE_SLICES["gamma"]
        assert float(cosine(g_pv[light], g_raster[light], dim=0)) > 0.8

    def test_translation_gradients_point_to_the_target(self, setup):
        _, decoders, true, target = setup
        offset = torch.tensor([-3.0, 2.5])
        start = true.clone()
        start[0, 227:229] += offset.to(start.device)
        xy = slice(CODE_SLICES["translation"].start, CODE_SLICES["translation"].start + 2)
        for name, decoder in decoders.items():
            descent = -self.gradient(decoder, start, target)[xy]
            assert float(torch.nn.functional.cosine_similarity(descent, -offset, dim=0)) > 0.7, name


@pytest.fixture
def one_thread():
    """Run on one CPU thread: tiny tensors gain nothing from threads, and on a busy
    2-core machine OpenMP synchronisation made each step several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TestFitting:
    @pytest.mark.parametrize("name, on, options", RASTERIZERS)
    def test_fitting_translation_and_ambient_light_converges(self, tiny_model, one_thread, name, on, options):
        renderer = renderer_or_skip(name, on, options)
        decoder = MoFADecoder(tiny_model, Camera(image_size=32), renderer=renderer)
        xy = slice(CODE_SLICES["translation"].start, CODE_SLICES["translation"].start + 2)
        ambient = slice(CODE_SLICES["gamma"].start, CODE_SLICES["gamma"].start + 3)  # band 0, RGB
        base = zero_code(1)
        base[:, CODE_SLICES["gamma"]] = 0.2 * torch.randn(1, 27, generator=torch.Generator().manual_seed(99))
        gen = torch.Generator().manual_seed(4)
        true = base.clone()
        true[:, xy] = 4.0 * torch.randn(1, 2, generator=gen)
        true[:, ambient] += 0.3 * torch.randn(1, 3, generator=gen)
        base, true = base.to(on), true.to(on)
        with torch.no_grad():
            target, _ = decoder.render(true, torch.full((1, 3, 32, 32), 0.5, device=on))

        translation = base[:, xy].clone().requires_grad_(True)
        light = base[:, ambient].clone().requires_grad_(True)
        optimizer = torch.optim.Adam([{"params": [translation], "lr": 0.3}, {"params": [light], "lr": 0.05}])

        def loss() -> torch.Tensor:
            code = base.clone()
            code[:, xy] = translation
            code[:, ambient] = light
            return weighted_photometric_loss(decoder.photometric_samples(decoder.form(code), target))

        with torch.no_grad():
            first = float(loss())
        for _ in range(40):
            optimizer.zero_grad()
            value = loss()
            value.backward()
            optimizer.step()
        with torch.no_grad():
            last = float(loss())
        assert last < 0.1 * first
        start_error = float(true[0, xy].norm())
        assert float((translation.detach()[0] - true[0, xy]).norm()) < 0.3 * start_error
        assert float((light.detach() - true[:, ambient]).abs().max()) < 0.05
