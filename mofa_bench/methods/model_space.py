"""InverseFaceNet's model-space code loss: how differently two codes form a face.

Kim et al. (arXiv:1703.10956) train their encoder with a loss in *model space*: not the
distance of the raw parameters (``code_regression``'s loss, divided by the prior's
spread), but the difference of what the two codes do to the face through the face model
and image formation. Here, per sample, over the N vertices of the decoder's mesh:

- ``geometry``: ``(1/N) Σ_i ‖V̂_i − V_i‖²`` (mm²) of the **posed** camera-space vertices
  (identity, expression, rotation and translation all move them);
- ``reflectance``: ``(1/N) Σ_i ‖R̂_i − R_i‖²`` of the albedo (RGB units²);
- ``screen``: ``(1/N) Σ_i ‖û_i − u_i‖²`` (px²) of the projected vertices (the camera's share
  of image formation: depth and x/y translation move them unlike camera space does);
- ``shading``: ``(1/N) Σ_i ‖ĉ_i − c_i‖²`` of the shaded vertex colours (RGB²: illumination
  through the normals, times albedo).

Every vertex counts, visible or not (a loss in model space, not in the image). Each term
is divided by its **scale**, its mean between prior codes and the zero code (the mean
face; :func:`model_space_scale`, drawn once from a fixed seed), so a term of the mean face
against a typical face is about 1 and the terms weigh alike; the loss is the weighted mean
of the scaled terms (weights default 1).
"""

from __future__ import annotations

from typing import Mapping

import torch

from mofa_bench.decoder import MoFADecoder
from mofa_bench.errors import ConfigError
from mofa_bench.formation import FormedFace
from mofa_bench.sampling import CodePrior, sample_codes

__all__ = ["MODEL_SPACE_TERMS", "ModelSpaceLoss", "model_space_scale", "model_space_terms"]

#: The terms of the model-space loss, in order.
MODEL_SPACE_TERMS: tuple[str, ...] = ("geometry", "reflectance", "screen", "shading")


def _mean_squared(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(B,)`` mean over vertices of the squared Euclidean distance of ``(B, N, C)`` tensors."""
    return (a - b).pow(2).sum(-1).mean(-1)


def model_space_terms(predicted: FormedFace, true: FormedFace) -> dict[str, torch.Tensor]:
    """Per-sample model-space differences of two formed faces (unscaled; module docstring).

    Args:
        predicted: the formed faces of the predicted codes (``(B, N, ·)`` per-vertex fields).
        true: the formed faces of the true codes, same B and N.

    Returns:
        ``{term: (B,)}`` for each of :data:`MODEL_SPACE_TERMS`: mm², albedo², px², RGB².
    """
    return {
        "geometry": _mean_squared(predicted.verts_cam, true.verts_cam),
        "reflectance": _mean_squared(predicted.reflectance, true.reflectance),
        "screen": _mean_squared(predicted.uv, true.uv),
        "shading": _mean_squared(predicted.colors, true.colors),
    }


@torch.no_grad()
def model_space_scale(decoder: MoFADecoder, prior: CodePrior, count: int = 64, seed: int = 0) -> torch.Tensor:
    """``(4,)`` the mean of each term between ``count`` prior codes and the zero code.

    Args:
        decoder: forms the faces (its model's device and dtype).
        prior: the codes' prior (the config's ``data.prior``).
        count: number of prior codes.
        seed: seed of the codes (fixed: every run of a config gets the same scale).

    Returns:
        float32 on the CPU, in the order of :data:`MODEL_SPACE_TERMS`, each floored at 1e-12.
    """
    model = decoder.model
    codes = sample_codes(count, prior, torch.Generator().manual_seed(seed)).to(model.device, model.dtype)
    terms = model_space_terms(decoder.form(torch.zeros_like(codes)), decoder.form(codes))
    return torch.stack([terms[name].mean() for name in MODEL_SPACE_TERMS]).float().cpu().clamp(min=1e-12)


class ModelSpaceLoss(torch.nn.Module):
    """The model-space loss of predicted against true codes through one decoder.

    Args:
        decoder: the analytic decoder (face model, camera; its renderer is not used).
        scale: ``(4,)`` each term's scale (:func:`model_space_scale`).
        weights: weight of each term (missing: 1); the total is their weighted mean.

    Raises:
        ConfigError: an unknown term in ``weights``, a weight < 0 or all weights 0, or a
            scale that is not 4 positive numbers.
    """

    def __init__(self, decoder: MoFADecoder, scale: torch.Tensor, weights: Mapping[str, float] | None = None) -> None:
        super().__init__()
        weights = dict(weights or {})
        for name, value in weights.items():
            if name not in MODEL_SPACE_TERMS:
                raise ConfigError(f"method_options.weights.{name}: unknown model-space term; known terms: "
                                  f"{', '.join(MODEL_SPACE_TERMS)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ConfigError(f"method_options.weights.{name}: expected a number >= 0, got {value!r}")
        vector = torch.tensor([float(weights.get(name, 1.0)) for name in MODEL_SPACE_TERMS])
        if float(vector.sum()) <= 0:
            raise ConfigError("method_options.weights: at least one model-space term needs a weight > 0")
        if scale.shape != (len(MODEL_SPACE_TERMS),) or not bool((scale > 0).all()):
            raise ConfigError(f"model-space scale: expected {len(MODEL_SPACE_TERMS)} positive numbers, got {scale}")
        self.decoder = decoder
        self.register_buffer("scale", scale.float(), persistent=False)
        self.register_buffer("weights", vector / vector.sum(), persistent=False)

    def forward(self, predicted: torch.Tensor, true: torch.Tensor) -> dict[str, torch.Tensor]:
        """Scalar terms of ``(B, 257)`` predicted against ``(B, 257)`` true codes.

        Returns:
            ``{"total", "geometry", "reflectance", "screen", "shading"}``: each term its
            batch mean divided by its scale; ``total`` their weighted mean.
        """
        with torch.no_grad():
            target = self.decoder.form(true)
        terms = model_space_terms(self.decoder.form(predicted), target)
        scaled = {name: terms[name].mean() / self.scale[i] for i, name in enumerate(MODEL_SPACE_TERMS)}
        total = sum(self.weights[i] * scaled[name] for i, name in enumerate(MODEL_SPACE_TERMS))
        return {"total": total, **scaled}
