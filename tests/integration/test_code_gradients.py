"""The decoder → renderer seam: photometric gradients w.r.t. the code, and code fitting.

Codes are formed into meshes by ``mofa_bench``'s decoder and drawn by every rasterizing
backend; the gradients and fits are held against the paper's per-vertex sampling. CUDA
cases are ``cuda``-marked and every case skips with the backend's own availability
reason where it cannot run.
"""

from __future__ import annotations

import pytest
import torch

from helpers import RASTERIZERS, renderer_or_skip
from mofa_bench import Camera, MoFADecoder, zero_code
from mofa_bench.code_vector import CODE_SLICES


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


class TestPhotometricGradients:
    """Every rasterizer's photometric gradient w.r.t. the code against per-vertex sampling's
    on the same device, on a target rendered by the rasterizer itself."""

    @pytest.fixture(params=[pytest.param(case.values, id=case.id, marks=case.marks) for case in RASTERIZERS])
    def setup(self, request, tiny_model):
        name, on, options = request.param
        renderer = renderer_or_skip(name, on, options)
        camera = Camera(image_size=48)
        decoders = {"per_vertex": MoFADecoder(tiny_model, camera, renderer="per_vertex").to(on, torch.float32),
                    name: MoFADecoder(tiny_model, camera, renderer=renderer).to(on, torch.float32)}
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
        decoder = MoFADecoder(tiny_model, Camera(image_size=32), renderer=renderer).to(on, torch.float32)
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
