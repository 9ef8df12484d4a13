"""The MoFA training loss (Tewari et al. 2017, Sec. 5).

``E = w_land · E_land + w_photo · E_photo + w_reg · E_reg`` with the paper's weights
w_photo = 1.92, w_reg = 2.9e-5 and w_land ∈ {0, 1} as defaults.

- E_photo (ℓ2,1): ``Σ_i w_i ‖o_i − c_i‖₂ / M`` per image over the renderer's samples
  (M = number of samples: the N vertices for ``per_vertex``, the H·W pixels for
  rasterizers; w_i = visibility or coverage) — the paper's ``1/N Σ_{i∈V}``. With
  ``normalization="weights"`` it divides by Σ w_i instead (mean over compared samples).
- E_land: ``Σ_j c_j ‖u_{k_j} − s_j‖²`` over the training landmarks (46 of 68), pixels².
- E_reg: ``Σα² + w_β Σβ² + w_δ Σδ²`` (w_β = 1.7e-3, w_δ = 0.8); pose and light free.
- E_pose (not in the paper, off by default): ``w_r Σ r² + w_t Σ t²`` over the rotation
  (rad) and translation (mm) of the code, a restoring force towards the centred frontal
  pose that face crops are framed in.

Every term is averaged over the batch. Functions are pure; :class:`LossWeights` holds
the weights.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch

from mofa_bench.code_vector import split_code
from renderers.base import PhotometricSamples
from mofa_checks import check_tensor
from mofa_checks import InputError

#: Keeps the ℓ2 norm differentiable where prediction equals observation.
_NORM_EPS = 1e-10


def photometric_loss(samples: PhotometricSamples,
                     normalization: Literal["paper", "weights"] = "paper") -> torch.Tensor:
    """ℓ2,1 photometric energy, averaged over the batch.

    Args:
        samples: predicted ``(B, M, 3)``, observed ``(B, M, 3)``, weights ``(B, M)``.
        normalization: ``"paper"`` divides by M, ``"weights"`` by Σ w (per image).

    Returns:
        Scalar tensor (RGB distance units, channels in [0, 1]).
    """
    dims: dict[str, int] = {}
    check_tensor("predicted", samples.predicted, "B M 3", dims, floating=True)
    check_tensor("observed", samples.observed, "B M 3", dims, floating=True)
    check_tensor("weights", samples.weights, "B M", dims, floating=True)
    diff = samples.predicted - samples.observed
    dist = torch.sqrt((diff * diff).sum(-1) + _NORM_EPS)
    total = (samples.weights * dist).sum(-1)
    if normalization == "paper":
        per_image = total / samples.weights.shape[1]
    elif normalization == "weights":
        per_image = total / samples.weights.sum(-1).clamp(min=1e-8)
    else:
        raise InputError(f"normalization: expected 'paper' or 'weights', got {normalization!r}")
    return per_image.mean()


def landmark_loss(predicted: torch.Tensor, target: torch.Tensor,
                  confidence: torch.Tensor | None = None) -> torch.Tensor:
    """Confidence-weighted squared landmark distance, summed over landmarks, batch mean.

    Args:
        predicted: ``(B, L, 2)`` projected model landmarks, px.
        target: ``(B, L, 2)`` detected landmarks, px.
        confidence: ``(B, L)`` weights c_j (default 1).

    Returns:
        Scalar tensor in px².
    """
    dims: dict[str, int] = {}
    check_tensor("predicted", predicted, "B L 2", dims, floating=True)
    check_tensor("target", target, "B L 2", dims, floating=True)
    sq = ((predicted - target) ** 2).sum(-1)
    if confidence is not None:
        check_tensor("confidence", confidence, "B L", dims, floating=True)
        sq = sq * confidence
    return sq.sum(-1).mean()


def regularization_loss(code: torch.Tensor, beta_weight: float = 1.7e-3,
                        delta_weight: float = 0.8) -> torch.Tensor:
    """Statistical prior ``Σα² + w_β Σβ² + w_δ Σδ²`` on ``(B, 257)`` codes, batch mean."""
    parts = split_code(code)
    reg = (parts.alpha ** 2).sum(-1) + beta_weight * (parts.beta ** 2).sum(-1) + delta_weight * (parts.delta ** 2).sum(-1)
    return reg.mean()


def pose_loss(code: torch.Tensor, rotation_weight: float, translation_weight: float) -> torch.Tensor:
    """Pose prior ``w_r Σ r² + w_t Σ t²`` on ``(B, 257)`` codes (r in rad, t in mm), batch mean."""
    parts = split_code(code)
    pose = rotation_weight * (parts.rotation ** 2).sum(-1) + translation_weight * (parts.translation ** 2).sum(-1)
    return pose.mean()


def prior_factor(step: int, total_steps: int, final: float = 1.0) -> float:
    """Multiplier of the statistical prior's weight (``loss.reg``) at training step ``step``.

    Falls from 1 at step 0 to ``final`` at ``total_steps`` along half a cosine: a strong
    prior holds the face codes at the mean while the encoder's features are still noise,
    a weaker one later lets them follow the images. A pure function of the step (resumed
    runs follow it exactly).

    Args:
        step: the step about to be taken, 0-based.
        total_steps: ``optim.iterations``.
        final: ``loss.reg_final``, the factor at the end (1: a constant prior).

    Returns:
        The factor, between ``final`` and 1.
    """
    progress = min(max(step, 0) / max(total_steps, 1), 1.0)
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class LossWeights:
    """Weights of the MoFA loss (paper defaults).

    Attributes:
        photo: w_photo (1.92).
        landmark: w_land (0 = unsupervised, 1 = with the landmark surrogate loss).
        reg: w_reg (2.9e-5).
        reg_beta: relative weight of Σβ² in E_reg (1.7e-3).
        reg_delta: relative weight of Σδ² in E_reg (0.8).
        photo_normalization: ``"paper"`` (÷ M samples) or ``"weights"`` (÷ Σ weights).
        reg_final: the factor ``reg`` falls to by the end of a training run, along half a
            cosine (1: constant). The trainer applies it
            (:func:`prior_factor`); :func:`mofa_loss` uses
            ``reg`` as given.
        reg_rotation: w_r of the pose prior, per rad² of the Euler angles (0: none).
        reg_translation: w_t of the pose prior, per mm² of the translation (0: none).
    """

    photo: float = 1.92
    landmark: float = 0.0
    reg: float = 2.9e-5
    reg_beta: float = 1.7e-3
    reg_delta: float = 0.8
    photo_normalization: str = "paper"
    reg_final: float = 1.0
    reg_rotation: float = 0.0
    reg_translation: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name != "photo_normalization" and (isinstance(value, bool) or not isinstance(value, (int, float))
                                                  or not math.isfinite(value) or value < 0):
                raise InputError(f"LossWeights.{name}: expected a finite number ≥ 0, got {value!r}")
        if self.photo_normalization not in ("paper", "weights"):
            raise InputError(f"LossWeights.photo_normalization: expected 'paper' or 'weights', "
                             f"got {self.photo_normalization!r}")


def mofa_loss(code: torch.Tensor, samples: PhotometricSamples, weights: LossWeights = LossWeights(),
              landmarks_pred: torch.Tensor | None = None, landmarks_target: torch.Tensor | None = None,
              landmark_confidence: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The combined loss and its terms.

    Args:
        code: ``(B, 257)`` predicted codes.
        samples: the renderer's photometric samples for these codes.
        weights: term weights.
        landmarks_pred: ``(B, L, 2)`` projected training landmarks (needed when
            ``weights.landmark > 0``).
        landmarks_target: ``(B, L, 2)`` detected landmarks.
        landmark_confidence: ``(B, L)`` detection confidences.

    Returns:
        ``{"total", "photo", "landmark", "reg", "pose"}`` scalar tensors (unweighted terms
        except ``"pose"``, which carries its two weights).
    """
    photo = photometric_loss(samples, weights.photo_normalization)
    reg = regularization_loss(code, weights.reg_beta, weights.reg_delta)
    if weights.landmark > 0:
        if landmarks_pred is None or landmarks_target is None:
            raise InputError("landmark loss weight > 0 but no landmarks were given")
        land = landmark_loss(landmarks_pred, landmarks_target, landmark_confidence)
    elif landmarks_pred is not None and landmarks_target is not None:
        with torch.no_grad():
            land = landmark_loss(landmarks_pred, landmarks_target, landmark_confidence)
    else:
        land = photo.new_zeros(())
    pose = pose_loss(code, weights.reg_rotation, weights.reg_translation)
    total = weights.photo * photo + weights.reg * reg + weights.landmark * land + pose
    return {"total": total, "photo": photo, "landmark": land, "reg": reg, "pose": pose}
