"""The multi-level face model (Tewari et al., arXiv:1712.02859): MoFA plus a learned corrective level.

The config's encoder predicts, from one feature vector, the 257-d code (its usual head)
and the corrective coefficients (a second zero-initialised linear head); a
:class:`~mofa_bench.methods.correctives.CorrectiveSpace` learned jointly with it turns
those into geometry and albedo offsets on the 3DMM face. Both levels are formed and
compared with the image through the config's renderer (the renderer seam is unchanged:
only the formed face's geometry and colours differ):

``E = E_base + w_level · E_corrected + Σ_r w_r R_r``

- ``E_base``: MoFA's loss (:func:`~mofa_bench.losses.mofa_loss`) of the 3DMM face: photo,
  landmark, statistical prior and pose prior, weighted by the config's ``loss`` section
  (the prior's schedule, ``loss.reg_final``, applies as for MoFA);
- ``E_corrected``: the photometric and landmark terms of the corrected face, same weights;
- ``R_r``: the corrective regularisers (magnitude, smoothness, coefficients; see
  :mod:`~mofa_bench.methods.correctives`), weights in ``method_options``.

Logged terms: ``total``; the base level's ``photo``, ``landmark``, ``reg``, ``pose``;
``photo_corrected``, ``landmark_corrected``; each regulariser (unweighted).

Reconstruction: the corrected face (its mesh and albedo under the code's pose and light)
in :attr:`~mofa_bench.methods.base.Reconstruction.formed`, the code its base level; scoring
measures the corrected geometry. :func:`load_multilevel` restores a trained one for
``mofa-bench reconstruct``, which exports the corrected mesh.

``method_options`` (defaults in :data:`OPTIONS`): ``shape_size``, ``reflectance_size`` (the
corrective spaces' sizes K_s, K_r), ``level_weight`` (w_level), ``orthogonal`` (project the
3DMM's span out of the correctives), one weight per regulariser (``shape_magnitude`` per
mm², ``shape_smoothness`` per mm², ``reflectance_magnitude``, ``reflectance_smoothness``,
``coefficients``), ``init_shape_mm`` and ``init_reflectance`` (σ of the initial bases).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mofa_bench.config import TrainConfig
from mofa_bench.data.batch import FaceBatch
from mofa_bench.decoder import MoFADecoder
from mofa_bench.encoders import FaceEncoder, build_encoder, parameter_groups
from mofa_bench.errors import ConfigError
from mofa_bench.formation import FormedFace
from mofa_bench.losses import LossWeights, landmark_loss, mofa_loss, photometric_loss
from mofa_bench.methods.base import NonFiniteBatch, Reconstruction
from mofa_bench.methods.correctives import REGULARIZERS, CorrectiveSpace
from mofa_bench.methods.mofa import MoFAMethod
from mofa_bench.methods.options import check_method_options

__all__ = ["OPTIONS", "MultiLevelMethod", "build_multilevel", "corrective_options"]

#: ``method_options`` of the multilevel method and their defaults.
OPTIONS: dict[str, Any] = {
    "shape_size": 32, "reflectance_size": 32, "level_weight": 1.0, "orthogonal": True,
    "shape_magnitude": 1e-3, "shape_smoothness": 1e-2, "reflectance_magnitude": 0.1,
    "reflectance_smoothness": 1.0, "coefficients": 1e-4, "init_shape_mm": 0.05, "init_reflectance": 2e-3,
}


class MultiLevelMethod(MoFAMethod):
    """MoFA's encoder and loss at the 3DMM level, plus a learned corrective level (module docstring).

    Args:
        encoder: image → code network; its features also feed the corrective head.
        decoder: face model + camera + renderer (no learnable parameters).
        correctives: the corrective space (learned).
        loss_weights: the MoFA loss weights (both levels' photo and landmark terms).
        level_weight: w_level, the corrected level's weight.
        regularizer_weights: ``{name: weight}`` for each of :data:`~mofa_bench.methods.correctives.REGULARIZERS`.
        amp: bfloat16 autocast for the encoder.
    """

    def __init__(self, encoder: FaceEncoder, decoder: MoFADecoder, correctives: CorrectiveSpace,
                 loss_weights: LossWeights = LossWeights(), level_weight: float = 1.0,
                 regularizer_weights: dict[str, float] | None = None, amp: bool = False) -> None:
        super().__init__(encoder, decoder, loss_weights, amp=amp)
        self.correctives = correctives
        self.corrective_head = nn.Linear(encoder.feature_dim, correctives.size)
        nn.init.zeros_(self.corrective_head.weight)
        nn.init.zeros_(self.corrective_head.bias)
        self.level_weight = level_weight
        self.regularizer_weights = {name: 0.0 for name in REGULARIZERS} | dict(regularizer_weights or {})

    def parameter_groups(self, lr: float, z_translation_lr: float) -> list[dict[str, Any]]:
        """The encoder's groups (z-translation at its own rate) with the corrective head and bases at ``lr``."""
        groups = parameter_groups(self.encoder, lr, z_translation_lr)
        groups.append({"name": "correctives", "params": [*self.corrective_head.parameters(),
                                                         *self.correctives.parameters()], "lr": float(lr)})
        return groups

    def encode_levels(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 3, H, W)`` images → ``(B, 257)`` codes and ``(B, K_s + K_r)`` corrective coefficients (float32)."""
        encoder = self.encoder
        with torch.autocast(device_type=images.device.type, dtype=torch.bfloat16, enabled=self.amp):
            features = encoder.extract_features(encoder.normalize(images))
            raw = encoder.head(features)
            coefficients = self.corrective_head(features)
        code = raw.float() * encoder.output_scale.to(torch.float32)
        return code.to(images.dtype), coefficients.to(images.dtype)

    def corrected_face(self, code: torch.Tensor, coefficients: torch.Tensor,
                       base: FormedFace | None = None) -> tuple[FormedFace, torch.Tensor, torch.Tensor]:
        """The corrected level: the 3DMM face of ``code`` plus the corrective offsets.

        Args:
            code: ``(B, 257)`` codes.
            coefficients: ``(B, K_s + K_r)`` corrective coefficients.
            base: the codes' 3DMM face if already formed.

        Returns:
            ``(formed, shape_offset (B, N, 3) mm, reflectance_offset (B, N, 3))``.
        """
        base = self.decoder.form(code) if base is None else base
        shape_offset, reflectance_offset = self.correctives.offsets(coefficients)
        formed = self.decoder.form_geometry(base.vertices + shape_offset, base.reflectance + reflectance_offset, code)
        return formed, shape_offset, reflectance_offset

    def loss_terms(self, batch: FaceBatch) -> dict[str, torch.Tensor]:
        """Both levels' loss terms, the regularisers and ``total`` (module docstring).

        Raises:
            NonFiniteBatch: the encoder predicted a NaN/Inf code or coefficient.
        """
        code, coefficients = self.encode_levels(batch.images)
        if not (bool(torch.isfinite(code).all()) and bool(torch.isfinite(coefficients).all())):
            raise NonFiniteBatch("non-finite code or corrective coefficients")
        subset = self.decoder.model.landmark_subset
        target = batch.landmarks[:, subset] if batch.landmarks is not None else None
        confidence = batch.landmark_confidence[:, subset] if batch.landmark_confidence is not None else None
        return self.level_terms(code, coefficients, batch.images, target, confidence)

    def level_terms(self, code: torch.Tensor, coefficients: torch.Tensor, images: torch.Tensor,
                    landmarks: torch.Tensor | None, confidence: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The loss terms of given codes and coefficients (the part :meth:`loss_terms` differentiates).

        Args:
            code: ``(B, 257)``.
            coefficients: ``(B, K_s + K_r)``.
            images: ``(B, 3, H, W)`` in [0, 1].
            landmarks: ``(B, L, 2)`` target landmarks (px) of the model's landmark subset, or None.
            confidence: ``(B, L)`` their confidences, or None.
        """
        w = self.loss_weights
        subset = self.decoder.model.landmark_subset
        base = self.decoder.form(code)
        terms = mofa_loss(code, self.decoder.photometric_samples(base, images), w,
                          base.landmarks_uv[:, subset], landmarks, confidence)
        corrected, shape_offset, reflectance_offset = self.corrected_face(code, coefficients, base)
        photo = photometric_loss(self.decoder.photometric_samples(corrected, images), w.photo_normalization)
        level = w.photo * photo
        land = photo.new_zeros(())
        if landmarks is not None:
            with torch.set_grad_enabled(w.landmark > 0 and torch.is_grad_enabled()):
                land = landmark_loss(corrected.landmarks_uv[:, subset], landmarks, confidence)
            level = level + w.landmark * land if w.landmark > 0 else level
        regularizers = self.correctives.regularizers(coefficients, shape_offset, reflectance_offset)
        total = terms["total"] + self.level_weight * level
        for name, value in regularizers.items():
            total = total + self.regularizer_weights[name] * value
        return {**terms, "total": total, "photo_corrected": photo, "landmark_corrected": land, **regularizers}

    def reconstruct(self, images: torch.Tensor) -> Reconstruction:
        """The corrected faces of ``(B, 3, H, W)`` images over black; ``code`` their base level."""
        code, coefficients = self.encode_levels(images)
        formed, _, _ = self.corrected_face(code, coefficients)
        rendered = self.decoder.renderer.render(formed)
        return Reconstruction(image=rendered.image, mask=rendered.mask, code=code, formed=formed)


def corrective_options(options: dict[str, Any]) -> dict[str, Any]:
    """Checked ``method_options`` of the multilevel method (defaults filled in).

    Raises:
        ConfigError: an unknown key, or a value of the wrong kind, named ``method_options.<key>``.
    """
    options = check_method_options("multilevel", options, OPTIONS)
    for key in ("shape_size", "reflectance_size"):
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"method_options.{key}: expected an integer >= 0, got {value!r}")
    if options["shape_size"] + options["reflectance_size"] == 0:
        raise ConfigError("method_options: shape_size and reflectance_size are both 0; the multilevel method needs "
                          "a corrective space (train method=mofa for the 3DMM alone)")
    if not isinstance(options["orthogonal"], bool):
        raise ConfigError(f"method_options.orthogonal: expected true or false, got {options['orthogonal']!r}")
    for key in ("level_weight", *REGULARIZERS, "init_shape_mm", "init_reflectance"):
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            raise ConfigError(f"method_options.{key}: expected a finite number >= 0, got {value!r}")
    return options


def build_multilevel(config: TrainConfig, decoder: MoFADecoder) -> MultiLevelMethod:
    """The multi-level method a config describes, around ``decoder``, on the decoder's device.

    Raises:
        ConfigError: bad ``method_options`` (see :func:`corrective_options`).
    """
    options = corrective_options(config.method_options)
    correctives = CorrectiveSpace(decoder.model, options["shape_size"], options["reflectance_size"],
                                  options["orthogonal"], options["init_shape_mm"], options["init_reflectance"],
                                  seed=config.seed)
    encoder = build_encoder(config.encoder.name, config.encoder.pretrained, image_size=config.camera.image_size)
    method = MultiLevelMethod(encoder, decoder, correctives, config.loss, options["level_weight"],
                              {name: float(options[name]) for name in REGULARIZERS}, amp=config.amp)
    return method.to(decoder.model.device)
