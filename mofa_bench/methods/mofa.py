"""The MoFA method: CNN encoder → 257-d code → analytic decoder → renderer → MoFA loss."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch

from mofa_bench.config import TrainConfig
from mofa_bench.data.batch import FaceBatch
from mofa_bench.decoder import MoFADecoder
from mofa_bench.encoders import FaceEncoder, build_encoder, parameter_groups
from mofa_bench.losses import LossWeights, mofa_loss, prior_factor
from mofa_bench.methods.base import Method, NonFiniteBatch, Reconstruction

#: ``loss_path(code, images, landmarks, confidence) -> terms``.
LossPath = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None", "torch.Tensor | None"],
                    dict[str, torch.Tensor]]


class MoFAMethod(Method):
    """Model-based face autoencoder (Tewari et al. 2017): a learnt encoder, a fixed decoder.

    Args:
        encoder: image → code network (last layer zero-initialised: the first prediction
            is the mean face, centred, ambient-lit).
        decoder: face model + camera + renderer (no learnable parameters).
        loss_weights: weights of the landmark, photometric and regularisation terms (the
            prior's weight follows ``loss_weights.reg_final`` over training, see
            :meth:`set_step`).
        amp: run the encoder under bfloat16 autocast (on the images' device: CUDA or CPU).
        compile_encoder: wrap the encoder in ``torch.compile`` (CUDA only).
        compile_loss_path: wrap :meth:`loss_path` (formation, renderer samples, loss) in
            ``torch.compile`` (any device).
    """

    def __init__(self, encoder: FaceEncoder, decoder: MoFADecoder, loss_weights: LossWeights = LossWeights(),
                 amp: bool = False, compile_encoder: bool = False, compile_loss_path: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.base_loss_weights = loss_weights
        self.loss_weights = loss_weights
        """The weights of the current step (``reg`` scaled by :meth:`set_step`)."""
        self.amp = amp
        self.compile_encoder = compile_encoder
        self.loss_path_fn: LossPath = torch.compile(self.loss_path) if compile_loss_path else self.loss_path

    def parameter_groups(self, lr: float, z_translation_lr: float) -> list[dict[str, Any]]:
        """The encoder's groups: everything at ``lr``, the head's z-translation row at its own rate."""
        return parameter_groups(self.encoder, lr, z_translation_lr)

    def set_step(self, step: int, total_steps: int) -> None:
        """Scale the prior's weight for ``step``: ``reg × prior_factor(step, total, reg_final)``."""
        base = self.base_loss_weights
        if base.reg_final != 1.0:
            factor = prior_factor(step, total_steps, base.reg_final)
            self.loss_weights = dataclasses.replace(base, reg=base.reg * factor)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` images → ``(B, 257)`` float32 codes (autocast/compile as configured)."""
        on_cuda = images.device.type == "cuda"
        encoder = self.encoder
        if self.compile_encoder and on_cuda:
            # Kept out of the module tree (``__dict__``) so the state dict holds the encoder once.
            encoder = self.__dict__.setdefault("_compiled_encoder", torch.compile(self.encoder))
        with torch.autocast(device_type=images.device.type, dtype=torch.bfloat16, enabled=self.amp):
            code = encoder(images)
        return code.float()

    def loss_terms(self, batch: FaceBatch) -> dict[str, torch.Tensor]:
        """The MoFA loss of a batch (:func:`~mofa_bench.losses.mofa_loss` terms and ``"total"``).

        Raises:
            NonFiniteBatch: the encoder predicted a NaN/Inf code.
        """
        code = self.encode(batch.images)
        if not bool(torch.isfinite(code).all()):
            raise NonFiniteBatch("non-finite code")
        subset = self.decoder.model.landmark_subset
        target = batch.landmarks[:, subset] if batch.landmarks is not None else None
        confidence = batch.landmark_confidence[:, subset] if batch.landmark_confidence is not None else None
        return self.loss_path_fn(code, batch.images, target, confidence)

    def loss_path(self, code: torch.Tensor, images: torch.Tensor, landmarks: torch.Tensor | None,
                  confidence: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Image formation, the renderer's photometric samples and the MoFA loss terms.

        Args:
            code: ``(B, 257)`` float32 codes.
            images: ``(B, 3, H, W)`` input images.
            landmarks: ``(B, L, 2)`` target landmarks (px) of the model's landmark subset, or None.
            confidence: ``(B, L)`` their confidences, or None.

        Returns:
            The named loss terms and ``"total"`` (:func:`~mofa_bench.losses.mofa_loss`).
        """
        formed = self.decoder.form(code)
        samples = self.decoder.photometric_samples(formed, images)
        landmarks_uv = formed.landmarks_uv[:, self.decoder.model.landmark_subset]
        return mofa_loss(code, samples, self.loss_weights, landmarks_uv, landmarks, confidence)

    def reconstruct(self, images: torch.Tensor) -> Reconstruction:
        """Codes of ``(B, 3, H, W)`` images and the face they decode to (over black)."""
        code = self.encode(images)
        image, mask = self.decoder.render(code)
        return Reconstruction(image=image, mask=mask, code=code)


def build_mofa_method(config: TrainConfig, decoder: MoFADecoder) -> MoFAMethod:
    """The MoFA method a config describes, around ``decoder``, on the decoder's device."""
    encoder = build_encoder(config.encoder.name, config.encoder.pretrained, image_size=config.camera.image_size)
    method = MoFAMethod(encoder, decoder, config.loss, amp=config.amp, compile_encoder=config.compile,
                        compile_loss_path=config.compile_decoder)
    return method.to(decoder.model.device)
