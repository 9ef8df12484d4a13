"""The paper's convolutional autoencoder baseline: image → 257-d bottleneck → image.

:class:`~mofa_bench.methods.networks.ConvEncoder` then
:class:`~mofa_bench.methods.networks.DeconvDecoder`, trained end to end on the
photometric error alone. Its bottleneck is not a face-model code, so it has no geometry
(no pose, shape or landmarks to score): it is compared on the photometric error only,
over the whole image.
"""

from __future__ import annotations

from typing import Any

import torch

from mofa_bench.methods.networks import ConvEncoder, DeconvDecoder
from mofa_bench.methods.options import check_method_options, image_photometric_loss
from mofa_bench.config import TrainConfig
from mofa_bench.data.batch import FaceBatch
from mofa_bench.decoder import MoFADecoder
from mofa_bench.methods.base import Method, NonFiniteBatch, Reconstruction

__all__ = ["ConvAutoencoder", "build_conv_autoencoder"]


class ConvAutoencoder(Method):
    """Convolutional autoencoder: ``(B, 3, H, H)`` → ``(B, 257)`` → ``(B, 3, H, H)``.

    Loss: the mean ℓ2,1 RGB distance between the output and the input over the whole
    image (term ``photo``; ``total`` equals it). It predicts whole images: its
    reconstruction's mask is all ones and it has no face-model code.

    Args:
        image_size: H, a multiple of 16.
    """

    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.encoder = ConvEncoder(image_size)
        self.decoder_network = DeconvDecoder(image_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, H)`` images in [0, 1] → ``(B, 3, H, H)`` reconstructions in [0, 1]."""
        return self.decoder_network(self.encoder(images))

    def parameter_groups(self, lr: float, z_translation_lr: float) -> list[dict[str, Any]]:
        """Every parameter at ``lr`` (there is no z-translation to slow down)."""
        return [{"params": self.trainable_parameters(), "lr": lr}]

    def loss_terms(self, batch: FaceBatch) -> dict[str, torch.Tensor]:
        """``{"total", "photo"}``: the mean ℓ2,1 RGB distance over the whole image.

        Raises:
            NonFiniteBatch: the network produced a NaN/Inf image.
        """
        output = self(batch.images)
        if not bool(torch.isfinite(output).all()):
            raise NonFiniteBatch("non-finite reconstruction")
        photo = image_photometric_loss(output, batch.images)
        return {"total": photo, "photo": photo}

    def reconstruct(self, images: torch.Tensor) -> Reconstruction:
        """The output images, an all-ones ``(B, 1, H, W)`` mask and no code."""
        output = self(images)
        return Reconstruction(image=output, mask=torch.ones_like(output[:, :1]), code=None)


def build_conv_autoencoder(config: TrainConfig, decoder: MoFADecoder) -> ConvAutoencoder:
    """The autoencoder for the config's image size, on the decoder's device (no options).

    Raises:
        ConfigError: any ``method_options`` key, or an image size that is not a multiple of 16.
    """
    check_method_options("conv_autoencoder", config.method_options, {})
    return ConvAutoencoder(config.camera.image_size).to(decoder.model.device)
