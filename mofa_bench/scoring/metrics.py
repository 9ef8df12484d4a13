"""Evaluation metrics of the MoFA paper (Tewari et al. 2017, Sec. 7), batched in torch.

Every metric returns one value per batch element, ``(B,)``, in the unit of its input
(mm for geometry, RGB distance for colours in [0, 1], pixels for landmarks), is
differentiable, and runs on any device and floating dtype. Averaging over a test set is
left to the caller (``nanmean`` where empty regions give NaN).

- :func:`geometric_error`: mean point-to-point distance after compensating translation
  and isotropic scale, *not* rotation (the paper's synthetic-data protocol), or
  rotation too (Procrustes); :func:`aligned_distances` gives the per-point distances.
- :func:`photometric_error`: mean Euclidean RGB distance over a mask (the region covered
  by the rendered face).
- :func:`landmark_error`: mean 2D distance over the 68 landmarks or a subset (e.g. the
  46 of :data:`mofa_bench.face_model.model.LANDMARKS_46`), optionally confidence-weighted.

Inputs are validated with :func:`mofa_checks.check_tensor`; a wrong shape or dtype
raises :class:`~renderers.errors.InputError` naming the argument.
"""

from __future__ import annotations

from typing import Sequence

import torch

from mofa_checks import check_tensor
from mofa_checks import InputError

__all__ = [
    "aligned_distances",
    "geometric_error",
    "landmark_error",
    "photometric_error",
]


def aligned_distances(pred: torch.Tensor, target: torch.Tensor, compensate_scale: bool = True,
                      compensate_rotation: bool = False) -> torch.Tensor:
    """Per-point distances after translation (and optionally scale and rotation) compensation.

    Both point sets are centred on their own centroid. With ``compensate_rotation`` the
    prediction is then rotated onto the target by the least-squares rotation (Kabsch:
    SVD of ``pᵀt``, reflections excluded). With ``compensate_scale`` it is scaled by the
    least-squares factor ``s = ⟨p, t⟩ / ⟨p, p⟩`` (``p``, ``t`` the centred, rotated sets,
    inner product over all points and coordinates), which minimises
    ``Σ_i ‖s·p_i − t_i‖²``. A prediction that collapses to one point (``⟨p, p⟩ = 0``)
    keeps ``s·p = 0``, giving the target's distances to its centroid.

    Args:
        pred: ``(B, N, 3)`` predicted vertex positions, mm, any frame shared with
            ``target`` up to the compensated transformations (same vertex order).
        target: ``(B, N, 3)`` ground-truth vertex positions, mm.
        compensate_scale: apply the least-squares isotropic scale.
        compensate_rotation: apply the least-squares rotation first (Procrustes).

    Returns:
        ``(B, N)`` distance of each point to its target, mm (for heat maps).

    Raises:
        InputError: shapes differ or are not ``(B, N, 3)``, non-floating dtype, or N = 0.
    """
    dims: dict[str, int] = {}
    check_tensor("pred", pred, "B N 3", dims, floating=True)
    check_tensor("target", target, "B N 3", dims, floating=True)
    if dims["N"] == 0:
        raise InputError("pred: expected at least one point, got N = 0")
    p = pred - pred.mean(dim=1, keepdim=True)
    t = target - target.mean(dim=1, keepdim=True)
    if compensate_rotation:
        u, _, vh = torch.linalg.svd(p.transpose(1, 2) @ t)
        d = torch.sign(torch.linalg.det(u @ vh))
        flip = torch.ones_like(p[:, 0])
        flip[:, -1] = d
        rotation = u @ torch.diag_embed(flip) @ vh
        p = p @ rotation
    if compensate_scale:
        pt = (p * t).sum(dim=(1, 2))
        pp = (p * p).sum(dim=(1, 2))
        tiny = torch.finfo(p.dtype).tiny
        s = pt / pp.clamp_min(tiny)
        p = p * s.view(-1, 1, 1)
    return (p - t).norm(dim=-1)


def geometric_error(pred: torch.Tensor, target: torch.Tensor, compensate_scale: bool = True,
                    compensate_rotation: bool = False) -> torch.Tensor:
    """Mean point-to-point distance after translation and isotropic-scale compensation.

    The mean over points of :func:`aligned_distances`. By default rotation is **not**
    compensated, so a pose error counts (the paper's synthetic-data protocol on posed
    meshes); ``compensate_rotation=True`` gives the Procrustes (rotation + scale +
    translation) variant.

    Args:
        pred: ``(B, N, 3)`` predicted vertex positions, mm.
        target: ``(B, N, 3)`` ground-truth vertex positions, mm.
        compensate_scale: apply the least-squares scale; ``False`` compensates
            translation only.
        compensate_rotation: also compensate rotation (least-squares, before scale).

    Returns:
        ``(B,)`` mean distance per sample, mm.

    Raises:
        InputError: shapes differ or are not ``(B, N, 3)``, non-floating dtype, or N = 0.
    """
    return aligned_distances(pred, target, compensate_scale, compensate_rotation).mean(dim=1)


def photometric_error(pred_images: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean RGB distance over a masked region.

    The paper's photometric error: per pixel the ℓ2 distance between RGB triples
    (channels in [0, 1], so the maximum is √3), averaged over the region covered by the
    rendered face. Pass the renderer's coverage mask (``decoder.render``'s second
    output); a soft mask in [0, 1] (antialiased coverage) weights pixels:
    ``Σ m·d / Σ m``.

    An empty mask (``Σ m = 0``, e.g. a face rendered off-screen) gives **NaN** for that
    sample rather than an error, so one failed reconstruction does not stop an
    evaluation; aggregate with ``nanmean`` and count the NaNs.

    Args:
        pred_images: ``(B, 3, H, W)`` rendered images, RGB in [0, 1].
        target: ``(B, 3, H, W)`` input images, RGB in [0, 1].
        mask: ``(B, 1, H, W)`` region to average over: bool, or float weights in [0, 1].

    Returns:
        ``(B,)`` mean RGB distance per sample (NaN where the mask is empty).

    Raises:
        InputError: shapes do not match ``(B, 3, H, W)`` / ``(B, 1, H, W)``, non-floating
            images, or negative mask values.
    """
    dims: dict[str, int] = {}
    check_tensor("pred_images", pred_images, "B 3 H W", dims, floating=True)
    check_tensor("target", target, "B 3 H W", dims, floating=True)
    check_tensor("mask", mask, "B 1 H W", dims)
    weights = mask.to(pred_images.dtype)
    if bool((weights < 0).any()):
        raise InputError("mask: expected weights >= 0 (bool or coverage in [0, 1]), got negative values")
    dist = (pred_images - target).norm(dim=1, keepdim=True)
    total = weights.sum(dim=(1, 2, 3))
    weighted = (dist * weights).sum(dim=(1, 2, 3))
    nan = torch.full_like(total, float("nan"))
    return torch.where(total > 0, weighted / torch.where(total > 0, total, torch.ones_like(total)), nan)


def landmark_error(pred: torch.Tensor, target: torch.Tensor, subset: Sequence[int] | torch.Tensor | None = None,
                   confidence: torch.Tensor | None = None) -> torch.Tensor:
    """Mean 2D landmark distance in pixels.

    ``e = Σ_{j∈S} c_j ‖pred_j − target_j‖₂ / Σ_{j∈S} c_j`` with ``S`` the subset (all
    landmarks by default) and ``c_j`` the confidences (all ones by default). Samples whose
    confidences over ``S`` sum to zero give NaN.

    Args:
        pred: ``(B, L, 2)`` predicted landmark positions, px (e.g. ``formed.landmarks_uv``,
            L = 68 in iBUG order).
        target: ``(B, L, 2)`` ground-truth / detected positions, px, same order.
        subset: 0-based indices into the L landmarks to evaluate, e.g.
            :data:`mofa_bench.face_model.model.LANDMARKS_46`; ``None`` for all.
        confidence: ``(B, L)`` non-negative weights per landmark, or ``None``.

    Returns:
        ``(B,)`` mean distance per sample, px.

    Raises:
        InputError: shapes do not match ``(B, L, 2)`` / ``(B, L)``, an empty or
            out-of-range subset, or negative confidences.
    """
    dims: dict[str, int] = {}
    check_tensor("pred", pred, "B L 2", dims, floating=True)
    check_tensor("target", target, "B L 2", dims, floating=True)
    n = dims["L"]
    dist = (pred - target).norm(dim=-1)
    if confidence is None:
        weights = torch.ones_like(dist)
    else:
        check_tensor("confidence", confidence, "B L", dims, floating=True)
        if bool((confidence < 0).any()):
            raise InputError("confidence: expected non-negative weights, got negative values")
        weights = confidence.to(dist.dtype)
    if subset is not None:
        index = torch.as_tensor(subset, dtype=torch.int64, device=dist.device).flatten()
        if index.numel() == 0:
            raise InputError("subset: expected at least one landmark index, got none")
        if bool((index < 0).any()) or bool((index >= n).any()):
            raise InputError(f"subset: indices must lie in [0, {n}), "
                             f"got min {int(index.min())}, max {int(index.max())}")
        dist = dist[:, index]
        weights = weights[:, index]
    total = weights.sum(dim=1)
    weighted = (dist * weights).sum(dim=1)
    nan = torch.full_like(total, float("nan"))
    return torch.where(total > 0, weighted / torch.where(total > 0, total, torch.ones_like(total)), nan)
