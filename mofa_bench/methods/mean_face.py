"""The mean face: the zero code for every image, the start every learnt method is measured from.

The paper's Fig. 10 reports each error at the start of training and at its end; a MoFA
encoder with a zero-initialised last layer starts exactly here (mean identity, expression
and reflectance, frontal, centred, ambient-lit). As a method it has nothing to train and
predicts the zero code whatever the image, so its test row in a suite is the ``_start``
column of every learnt run on the same test faces.
"""

from __future__ import annotations

from typing import Any

import torch

from mofa_bench.methods.options import check_method_options
from mofa_bench.code_vector import zero_code
from mofa_bench.config import TrainConfig
from mofa_bench.data.batch import FaceBatch
from mofa_bench.decoder import MoFADecoder
from mofa_bench.methods.base import Method, Reconstruction

__all__ = ["MeanFace", "build_mean_face"]


class MeanFace(Method):
    """Predicts the zero code for every image (nothing to train).

    Args:
        decoder: the analytic decoder that draws and scores the zero code.
    """

    trains = False

    def __init__(self, decoder: MoFADecoder) -> None:
        super().__init__()
        self.decoder = decoder

    def parameter_groups(self, lr: float, z_translation_lr: float) -> list[dict[str, Any]]:
        """None: there is nothing to learn."""
        return []

    def loss_terms(self, batch: FaceBatch) -> dict[str, torch.Tensor]:
        """Not trainable: always raises."""
        raise TypeError("the mean face has nothing to train")

    def reconstruct(self, images: torch.Tensor) -> Reconstruction:
        """``(B, 257)`` zero codes for ``(B, 3, H, W)`` images and the mean face they draw."""
        model = self.decoder.model
        code = zero_code(images.shape[0], device=model.device, dtype=model.dtype)
        image, mask = self.decoder.render(code)
        return Reconstruction(image=image, mask=mask, code=code)


def build_mean_face(config: TrainConfig, decoder: MoFADecoder) -> MeanFace:
    """The mean face around ``decoder`` (no options).

    Raises:
        ConfigError: any ``method_options`` key.
    """
    check_method_options("mean_face", config.method_options, {})
    return MeanFace(decoder)
