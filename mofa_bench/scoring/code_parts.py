"""Per-code-part diagnostics: how well predicted codes match the true ones, part by part.

A MoFA code has six parts (:data:`mofa_bench.code_vector.CODE_LAYOUT`): identity α (80),
expression δ (64), reflectance β (80), rotation (3, rad), translation (3, mm) and
illumination γ (27). On synthetic data with ground-truth codes, one global error hides
which parts an encoder has learnt; these functions report each part separately.

For every part ``p`` and sample ``b`` (``x̂`` the prediction, ``x`` the truth, both the
part's ``k`` entries):

- ``p_cos``: cosine similarity ``⟨x̂, x⟩ / (‖x̂‖ ‖x‖)`` in [−1, 1]; 0 when either vector
  is zero (a prediction of the prior mean carries no direction).
- ``p_rms``: ``sqrt(mean_k (x̂ − x)²)``, in the part's unit (σ of the prior for α, δ, β;
  rad; mm; SH units).
- ``p_rms_zero``: ``sqrt(mean_k x²)``, the RMS error of predicting zero (the prior mean
  of every part) for the same sample.

"Learnt" means ``p_rms`` below ``p_rms_zero``: a prediction that ignores the image and
outputs the prior mean scores ``p_rms = p_rms_zero`` and ``p_cos = 0``; one that outputs
an independent draw from the prior scores ``p_rms ≈ √2 · p_rms_zero``.
:func:`summarize_code_part_errors` reduces the per-sample values to batch numbers.

Example:
    >>> errors = code_part_errors(encoder(batch.images), batch.codes)
    >>> summary = summarize_code_part_errors(errors)
    >>> summary["alpha_cos"], summary["alpha_rms_ratio"]   # mean cosine, RMS / zero-RMS
"""

from __future__ import annotations

import torch

from mofa_bench import CODE_DIM, CODE_LAYOUT, split_code
from mofa_checks import check_tensor

__all__ = [
    "CODE_PARTS",
    "code_part_errors",
    "summarize_code_part_errors",
]

#: Names of the code parts, in code order (alpha, delta, beta, rotation, translation, gamma).
CODE_PARTS: tuple[str, ...] = tuple(name for name, _ in CODE_LAYOUT)

# Below this norm a part vector counts as zero for the cosine (its direction is undefined).
_COS_EPS = 1e-12


def code_part_errors(pred: torch.Tensor, true: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample cosine, RMS error and zero-prediction RMS error of every code part.

    Args:
        pred: ``(B, 257)`` predicted codes (layout of :mod:`mofa_bench.code_vector`).
        true: ``(B, 257)`` ground-truth codes, same dtype and device.

    Returns:
        For each part ``p`` in :data:`CODE_PARTS` three ``(B,)`` tensors in ``pred``'s
        dtype: ``f"{p}_cos"`` (cosine similarity in [−1, 1], 0 where either vector is
        zero), ``f"{p}_rms"`` (RMS error over the part's entries, in the part's unit) and
        ``f"{p}_rms_zero"`` (RMS of the true part, i.e. the RMS error of predicting
        zero). 18 entries in all. Differentiable in ``pred``.

    Raises:
        InputError: a code is not ``(B, 257)`` floating point and finite, or the two
            batch sizes differ.
    """
    dims: dict[str, int] = {}
    check_tensor("pred", pred, f"B {CODE_DIM}", dims, floating=True, finite=True)
    check_tensor("true", true, f"B {CODE_DIM}", dims, floating=True, finite=True)
    true = true.to(dtype=pred.dtype, device=pred.device)
    pred_parts = split_code(pred).as_dict()
    true_parts = split_code(true).as_dict()
    out: dict[str, torch.Tensor] = {}
    for name in CODE_PARTS:
        p, t = pred_parts[name], true_parts[name]
        p_norm, t_norm = p.norm(dim=-1), t.norm(dim=-1)
        defined = (p_norm > _COS_EPS) & (t_norm > _COS_EPS)
        denominator = torch.where(defined, p_norm * t_norm, torch.ones_like(p_norm))
        cos = torch.where(defined, (p * t).sum(-1) / denominator, torch.zeros_like(p_norm))
        out[f"{name}_cos"] = cos
        out[f"{name}_rms"] = (p - t).pow(2).mean(-1).sqrt()
        out[f"{name}_rms_zero"] = t.pow(2).mean(-1).sqrt()
    return out


def summarize_code_part_errors(errors: dict[str, torch.Tensor]) -> dict[str, float]:
    """Batch summary of :func:`code_part_errors`.

    Args:
        errors: the dict returned by :func:`code_part_errors` (``(B,)`` values).

    Returns:
        For each part ``p``: ``f"{p}_cos"`` (mean cosine), ``f"{p}_rms"`` and
        ``f"{p}_rms_zero"`` (batch RMS, ``sqrt(mean_b rms_b²)``, i.e. the RMS over every
        entry of the part in the batch) and ``f"{p}_rms_ratio"`` (their ratio: < 1 learnt,
        1 no better than the prior mean, ≈ √2 a random draw; ``nan`` if the truth is all
        zero).
    """
    summary: dict[str, float] = {}
    for name in CODE_PARTS:
        rms = float(errors[f"{name}_rms"].pow(2).mean().sqrt())
        rms_zero = float(errors[f"{name}_rms_zero"].pow(2).mean().sqrt())
        summary[f"{name}_cos"] = float(errors[f"{name}_cos"].mean())
        summary[f"{name}_rms"] = rms
        summary[f"{name}_rms_zero"] = rms_zero
        summary[f"{name}_rms_ratio"] = rms / rms_zero if rms_zero > 0 else float("nan")
    return summary
