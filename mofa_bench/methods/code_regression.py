"""The supervised upper bound: the MoFA encoder regressing the true codes of synthetic faces.

Not a method of the paper but the yardstick of the synthetic study: the same encoder,
images and budget as MoFA, trained with the ground truth that unsupervised training never
sees. What it cannot learn of a code part (its per-part diagnostics stay at the prior
mean) is not in the images at that resolution and budget, and no renderer will teach it.

Loss: each code entry's error divided by its prior spread (σ of α, δ, β; the rotation
range / √3; the translation σ; the light σ), squared and averaged within each part
(``alpha``, ``delta``, …, all logged); ``total`` is the mean of the six parts, so the three
rotation angles weigh as much as the 80 identity modes (with one mean over all 257 entries
the face parts' 224 entries would drown the pose).

Within α, δ and β the average is weighted (``method_options: {weighting: effect}``, the
default): each mode by the squared size of what it changes in the face model (its basis
column's norm: mm of geometry for α and δ, albedo for β), so a part's term is its share of
the expected squared geometric (or albedo) error and the modes an image shows — the global
proportions, the jaw, the skin tone — are not drowned by the dozens of fine modes that move
the face by a fraction of a millimetre. ``weighting: uniform`` averages every entry alike
(with it, 2,400 steps of the CPU protocol learn none of the face parts).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mofa_bench.methods.options import check_method_options
from mofa_bench.code_vector import CODE_DIM, CODE_SLICES
from mofa_bench.config import TrainConfig
from mofa_bench.data.batch import FaceBatch
from mofa_bench.decoder import MoFADecoder
from mofa_bench.encoders import FaceEncoder, build_encoder, parameter_groups
from mofa_bench.errors import ConfigError
from mofa_bench.sampling import CodePrior
from mofa_bench.methods.base import Method, NonFiniteBatch, Reconstruction

__all__ = ["WEIGHTINGS", "CodeRegression", "build_code_regression", "effect_weights", "parameter_loss_terms",
           "prior_scale"]

#: ``method_options.weighting`` values.
WEIGHTINGS: tuple[str, ...] = ("effect", "uniform")

#: Floor of an entry's scale, so a prior with a zero range (a part held fixed) stays finite.
_MIN_SCALE = 1e-3


def prior_scale(prior: CodePrior) -> torch.Tensor:
    """``(257,)`` the spread of each code entry under ``prior`` (its unit: σ, rad, mm, SH).

    α, δ, β: their σ; rotation: the uniform range's σ (limit / √3, rad); translation: the
    x/y and z σ (mm); light: the ambient σ for the first SH band, the light σ for the rest.
    Entries with no spread are floored at 1e-3 so their error stays finite.
    """
    scale = torch.empty(CODE_DIM)
    scale[CODE_SLICES["alpha"]] = prior.identity_std
    scale[CODE_SLICES["delta"]] = prior.expression_std
    scale[CODE_SLICES["beta"]] = prior.reflectance_std
    limits_deg = torch.tensor([prior.pitch_deg, prior.yaw_deg, prior.roll_deg])
    scale[CODE_SLICES["rotation"]] = limits_deg * (math.pi / 180.0) / math.sqrt(3.0)
    scale[CODE_SLICES["translation"]] = torch.tensor(
        [prior.translation_std_mm, prior.translation_std_mm, prior.depth_std_mm])
    gamma = torch.full((9, 3), prior.light_std + prior.colored_light_std)
    gamma[0] = prior.ambient_std + prior.colored_light_std
    scale[CODE_SLICES["gamma"]] = gamma.reshape(-1)
    return scale.clamp(min=_MIN_SCALE)


def effect_weights(model: Any, weighting: str = "effect") -> torch.Tensor:
    """``(257,)`` weights of the entries within each code part, summing to 1 per part.

    Args:
        model: the face model (``shape_basis``, ``expression_basis``, ``reflectance_basis``,
            each ``(N, 3, K)``).
        weighting: ``"effect"`` (α, δ, β modes ∝ their basis column's squared norm; the
            other parts uniform) or ``"uniform"`` (every part uniform).

    Raises:
        ConfigError: an unknown weighting, or a basis whose width is not the code's.
    """
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"method_options.weighting: expected one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
    weights = torch.empty(CODE_DIM, dtype=torch.float64)
    for part in CODE_SLICES.values():
        weights[part] = 1.0 / (part.stop - part.start)
    if weighting == "effect":
        for name, basis in (("alpha", model.shape_basis), ("delta", model.expression_basis),
                            ("beta", model.reflectance_basis)):
            part = CODE_SLICES[name]
            if basis.shape[-1] != part.stop - part.start:
                raise ConfigError(f"code_regression: the model has {basis.shape[-1]} {name} modes, "
                                  f"the code {part.stop - part.start}")
            squared = basis.detach().double().pow(2).sum(dim=(0, 1)).cpu()
            weights[part] = squared / squared.sum()
    return weights.to(torch.float32)


def parameter_loss_terms(code: torch.Tensor, true: torch.Tensor, scale: torch.Tensor,
                         weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """The parameter loss: each part's weighted mean squared scaled error and ``total``, their mean.

    Args:
        code: ``(B, 257)`` predicted codes.
        true: ``(B, 257)`` true codes.
        scale: ``(257,)`` per-entry prior spread (:func:`prior_scale`).
        weights: ``(257,)`` entry weights summing to 1 within each part (:func:`effect_weights`).

    Returns:
        ``{"total", "alpha", "delta", "beta", "rotation", "translation", "gamma"}`` scalars.
    """
    squared = ((code - true.to(code.dtype)) / scale) ** 2 * weights
    terms = {name: squared[:, part].sum(dim=1).mean() for name, part in CODE_SLICES.items()}
    terms["total"] = torch.stack(list(terms.values())).mean()
    return terms


class CodeRegression(Method):
    """The MoFA encoder trained on the true codes: ``mean_parts Σ_entries w · ((ĉ − c) / s)²``.

    Args:
        encoder: image → code network (zero-initialised head: it starts at the mean face).
        decoder: the analytic decoder (for reconstructions and scoring; not in the loss).
        scale: ``(257,)`` per-entry prior spread (:func:`prior_scale`).
        weights: ``(257,)`` entry weights summing to 1 within each part
            (:func:`effect_weights`); default uniform within each part.
    """

    def __init__(self, encoder: FaceEncoder, decoder: MoFADecoder, scale: torch.Tensor,
                 weights: torch.Tensor | None = None) -> None:
        super().__init__()
        if scale.shape != (CODE_DIM,) or not bool(torch.isfinite(scale).all()) or bool((scale <= 0).any()):
            raise ConfigError(f"code_regression: scale must be {CODE_DIM} finite positive numbers")
        if weights is None:
            weights = effect_weights(decoder.model, "uniform")
        if weights.shape != (CODE_DIM,) or not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
            raise ConfigError(f"code_regression: weights must be {CODE_DIM} finite numbers >= 0")
        self.encoder = encoder
        self.decoder = decoder
        self.register_buffer("scale", scale.to(torch.float32), persistent=False)
        self.register_buffer("weights", weights.to(torch.float32), persistent=False)

    def parameter_groups(self, lr: float, z_translation_lr: float) -> list[dict[str, Any]]:
        """The encoder's groups, as MoFA's (z-translation row at its own rate)."""
        return parameter_groups(self.encoder, lr, z_translation_lr)

    def loss_terms(self, batch: FaceBatch) -> dict[str, torch.Tensor]:
        """``total`` and each part's weighted mean squared scaled error.

        Raises:
            ConfigError: the batch has no ground-truth codes (real photos).
            NonFiniteBatch: the encoder predicted a NaN/Inf code.
        """
        if batch.codes is None:
            raise ConfigError("code_regression: the batch has no true codes (train it on synthetic data)")
        code = self.encoder(batch.images).float()
        if not bool(torch.isfinite(code).all()):
            raise NonFiniteBatch("non-finite code")
        return parameter_loss_terms(code, batch.codes, self.scale, self.weights)

    def reconstruct(self, images: torch.Tensor) -> Reconstruction:
        """Predicted codes of ``(B, 3, H, W)`` images and the face they decode to (over black)."""
        code = self.encoder(images).float()
        image, mask = self.decoder.render(code)
        return Reconstruction(image=image, mask=mask, code=code)


def build_code_regression(config: TrainConfig, decoder: MoFADecoder) -> CodeRegression:
    """The config's encoder regressing true codes, scaled by the config's synthetic prior.

    ``method_options``: ``weighting`` (``effect``, the default, or ``uniform``; see the module).

    Raises:
        ConfigError: an unknown ``method_options`` key or weighting, or photos without true codes.
    """
    options = check_method_options("code_regression", config.method_options, {"weighting": "effect"})
    if config.data.kind not in ("synthetic", "sharded"):
        raise ConfigError(f"data.kind: the code_regression method needs true codes (synthetic or sharded "
                          f"synthetic data), got {config.data.kind!r}")
    encoder = build_encoder(config.encoder.name, config.encoder.pretrained, image_size=config.camera.image_size)
    weights = effect_weights(decoder.model, options["weighting"])
    return CodeRegression(encoder, decoder, prior_scale(config.data.prior), weights).to(decoder.model.device)
