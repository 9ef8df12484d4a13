"""The test reconstructions a suite keeps are drawn as the photometric error scores them."""

from __future__ import annotations

import torch
from torch import nn
from torch.testing import assert_close

from evaluation.suite.evaluate import drawn_reconstruction
from helpers import renderer_or_skip
from mofa_bench import Camera, MoFADecoder
from mofa_bench.methods.base import Reconstruction
from mofa_bench.scoring.validation import SCORING_RENDERER

#: A wide blur with few faces per pixel: a soft silhouette well below 1 inside the face.
WIDE_FEW = {"blur_radius": 2.0, "faces_per_pixel": 4, "sigma": 0.5}


class _Fixed(nn.Module):
    """A stand-in method: fixed codes, drawn by its own decoder (what MoFA's reconstruct returns)."""

    def __init__(self, decoder: MoFADecoder | None, code: torch.Tensor) -> None:
        super().__init__()
        self.decoder, self.code = decoder, code

    def reconstruct(self, images: torch.Tensor) -> Reconstruction:
        if self.decoder is None:
            return Reconstruction(image=images * 0.5, mask=torch.ones_like(images[:, :1]))
        image, mask = self.decoder.render(self.code)
        return Reconstruction(image=image, mask=mask, code=self.code)


def test_codes_are_drawn_by_the_scoring_renderer_not_the_soft_one(tiny_model):
    model = tiny_model.to(dtype=torch.float32)
    soft = MoFADecoder(model, Camera(32), renderer=renderer_or_skip("pytorch3d", "cpu", WIDE_FEW))
    code = torch.zeros(2, 257)
    code[1, 80:85] = 0.5
    images = torch.rand(2, 3, 32, 32)
    _, own_mask = soft.render(code)
    inside = own_mask > 0.01
    assert float(own_mask[inside].mean()) < 0.9  # the soft drawing leaves gaps in the face

    image, mask = drawn_reconstruction(_Fixed(soft, code), images)
    expected_image, expected_mask = soft.with_renderer(SCORING_RENDERER).render(code)
    assert_close(image, expected_image)
    assert_close(mask, expected_mask)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}


def test_a_method_without_codes_shows_its_own_image():
    images = torch.rand(2, 3, 16, 16)
    image, mask = drawn_reconstruction(_Fixed(None, torch.zeros(2, 257)), images)
    assert_close(image, images * 0.5)
    assert_close(mask, torch.ones(2, 1, 16, 16))
