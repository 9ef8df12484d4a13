"""Tests of the plain-PyTorch z-buffer rasterizer (``renderers.torch_raster``)."""

import pytest
import torch

from renderers.torch_raster import zbuffer_interpolate, zbuffer_rasterize
from helpers import assert_close


def _quad(dtype=torch.float64):
    """Two triangles covering the pixel square [2, 6] × [1, 5] at depth 10."""
    uv = torch.tensor([[[2.0, 1.0], [6.0, 1.0], [6.0, 5.0], [2.0, 5.0]]], dtype=dtype)
    depth = torch.full((1, 4), 10.0, dtype=dtype)
    tris = torch.tensor([[0, 1, 2], [0, 2, 3]])
    return uv, depth, tris


class TestZBufferRasterize:
    def test_convention_pixel_centres_at_half(self):
        uv, depth, tris = _quad()
        frags = zbuffer_rasterize(uv, depth, tris, (8, 8))
        mask = frags.mask[0, 0]
        # Pixel (i, j) is covered iff its centre (j + .5, i + .5) lies in [2, 6] × [1, 5].
        expected = torch.zeros(8, 8, dtype=torch.float64)
        expected[1:5, 2:6] = 1.0
        assert_close(mask, expected)

    def test_barycentrics_interpolate_linear_attribute(self):
        uv, depth, tris = _quad()
        attr = torch.cat([uv, torch.ones(1, 4, 1, dtype=torch.float64)], -1)  # value = position
        frags = zbuffer_rasterize(uv, depth, tris, (8, 8))
        out = zbuffer_interpolate(attr, frags, tris)
        assert_close(out[0, 0, 2, 3], torch.tensor(3.5, dtype=torch.float64))
        assert_close(out[0, 1, 2, 3], torch.tensor(2.5, dtype=torch.float64))
        assert_close(out[0, 2][frags.triangle[0] >= 0], torch.ones(16, dtype=torch.float64))

    def test_nearest_triangle_wins(self):
        uv = torch.tensor([[[0.0, 0.0], [8.0, 0.0], [0.0, 8.0], [0.0, 0.0], [8.0, 0.0], [0.0, 8.0]]], dtype=torch.float64)
        depth = torch.tensor([[10.0, 10.0, 10.0, 5.0, 5.0, 5.0]], dtype=torch.float64)
        tris = torch.tensor([[0, 1, 2], [3, 4, 5]])
        frags = zbuffer_rasterize(uv, depth, tris, (8, 8))
        covered = frags.triangle[0] >= 0
        assert bool((frags.triangle[0][covered] == 1).all())
        assert_close(frags.depth[0][covered], torch.full((int(covered.sum()),), 5.0, dtype=torch.float64))

    def test_perspective_correct_depth(self):
        # A segment from depth 1 to depth 3 across the image: at the screen midpoint,
        # perspective-correct depth is the harmonic mean 2·1·3/(1+3) = 1.5.
        uv = torch.tensor([[[0.0, 0.0], [8.0, 0.0], [0.0, 8.0], [8.0, 8.0]]], dtype=torch.float64)
        depth = torch.tensor([[1.0, 3.0, 1.0, 3.0]], dtype=torch.float64)
        frags = zbuffer_rasterize(uv, depth, torch.tensor([[0, 1, 3], [0, 3, 2]]), (8, 8))
        # pixel centre x = 4.5 → screen fraction 4.5/8
        s = 4.5 / 8
        expected = 1.0 / ((1 - s) / 1.0 + s / 3.0)
        assert float(frags.depth[0, 3, 4]) == pytest.approx(expected)

    def test_gradcheck_colours_and_positions(self):
        uv, depth, tris = _quad()
        colors = torch.rand(1, 4, 3, dtype=torch.float64, requires_grad=True)
        uv = (uv + 0.1 * torch.rand_like(uv)).requires_grad_()

        def fn(c, p):
            return zbuffer_interpolate(c, zbuffer_rasterize(p, depth, tris, (8, 8)), tris)

        assert torch.autograd.gradcheck(fn, (colors, uv))

    def test_large_and_small_triangles_together(self):
        # Exercise several bbox-size buckets in one call.
        uv = torch.tensor([[[0.0, 0.0], [64.0, 0.0], [0.0, 64.0], [40.0, 40.0], [42.0, 40.0], [40.0, 42.0]]], dtype=torch.float64)
        depth = torch.tensor([[10.0, 10.0, 10.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
        frags = zbuffer_rasterize(uv, depth, torch.tensor([[0, 1, 2], [3, 4, 5]]), (64, 64))
        assert int((frags.triangle[0] == 0).sum()) > 1900
        assert int((frags.triangle[0] == 1).sum()) >= 1
