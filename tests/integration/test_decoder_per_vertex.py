"""The decoder drawing and sampling through the ``per_vertex`` backend (formation → renderer)."""

from __future__ import annotations

import pytest
import torch

from helpers import assert_close
from mofa_bench import CODE_DIM, Camera, MoFADecoder
from renderers import InputError


class TestDecoderWithPerVertex:
    def test_samples_of_own_render_equal_vertex_colours(self, tiny_model):
        decoder = MoFADecoder(tiny_model, Camera(96), renderer="per_vertex")
        code = torch.zeros(1, CODE_DIM, dtype=torch.float64)
        code[0, 230:257] = 0.05 * torch.randn(27, dtype=torch.float64)
        formed = decoder.form(code)
        image, _ = decoder.render(code)
        samples = decoder.photometric_samples(formed, image)
        # Vertices well inside the silhouette (front-facing, facing the camera squarely).
        facing = -(formed.normals_cam * torch.nn.functional.normalize(formed.verts_cam, dim=-1)).sum(-1)
        good = facing[0] > 0.5
        assert int(good.sum()) > 10
        assert_close(samples.observed[0, good], formed.colors[0, good], atol=0.02, rtol=0)

    def test_weights_are_front_facing_and_inside(self, tiny_model):
        decoder = MoFADecoder(tiny_model, Camera(64))
        code = torch.zeros(1, CODE_DIM, dtype=torch.float64)
        code[0, 227] = 60.0  # shift right by 60 mm → part of the head leaves the image
        formed = decoder.form(code)
        s = decoder.photometric_samples(formed, torch.zeros(1, 3, 64, 64, dtype=torch.float64))
        inside = (formed.uv[..., 0] <= 64)
        assert bool((s.weights[~inside] == 0).all())
        assert bool((s.weights.bool() == (formed.visible & inside & (formed.uv[..., 0] >= 0))).all())

    def test_wrong_image_size_raises(self, tiny_model):
        decoder = MoFADecoder(tiny_model, Camera(64))
        formed = decoder.form(torch.zeros(1, CODE_DIM, dtype=torch.float64))
        with pytest.raises(InputError, match="images"):
            decoder.photometric_samples(formed, torch.zeros(1, 3, 32, 32, dtype=torch.float64))

    def test_background_composited(self, tiny_model):
        decoder = MoFADecoder(tiny_model, Camera(32)).float()
        bg = torch.ones(3, 32, 32)
        image, mask = decoder.render(torch.zeros(1, CODE_DIM), background=bg)
        assert_close(image[0][:, mask[0, 0] == 0], torch.ones(3, int((mask[0, 0] == 0).sum())))
