"""Fragments → colour and coverage per pixel: hard (nearest) or soft (SoftRas) blending.

- :func:`hard_blend`: the nearest fragment's colour; coverage is 0/1.
- :func:`soft_blend`: SoftRas-style aggregation as in PyTorch3D's
  ``sigmoid_alpha_blend`` / ``softmax_rgb_blend``. Each of the K nearest triangles within
  ``blur_radius`` of the pixel centre gets the probability ``p_k = sigmoid(-d_k / sigma)``
  (``d_k``: signed squared distance from the pixel centre to the triangle, px², negative
  inside). Coverage is the soft silhouette ``alpha = 1 - prod_k (1 - p_k)``; the face
  colour is the depth-softmax mean ``sum_k w_k c_k / sum_k w_k`` with
  ``w_k = p_k exp(-(z_k - z_min) / gamma)``. Unlike PyTorch3D's ``softmax_rgb_blend`` the
  background is not a softmax term: it enters only through ``alpha`` when compositing, so
  predicted colours are face colours and the photometric weights carry the silhouette
  (and its gradient).
"""

from __future__ import annotations

import torch

from renderers.pytorch3d.fragments import Fragments

#: Log-weight of an empty fragment slot in the soft colour blend (exp of it is 0).
_EMPTY_LOG_WEIGHT = -1e9


def hard_blend(face_colors: torch.Tensor, fragments: Fragments) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-fragment colour and 0/1 coverage.

    Args:
        face_colors: ``(B, H, W, K, 3)`` from :func:`~renderers.pytorch3d.fragments.interpolate_colors`.
        fragments: the fragments.

    Returns:
        ``(rgb (B, H, W, 3), alpha (B, H, W))``: the nearest face's colour (0 where
        uncovered) and coverage in {0, 1}, in ``face_colors``' dtype.
    """
    return face_colors[..., 0, :], fragments.valid[..., 0].to(face_colors.dtype)


def soft_blend(face_colors: torch.Tensor, fragments: Fragments, sigma: float,
               gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """SoftRas aggregation of the K fragments per pixel (see the module docstring).

    Args:
        face_colors: ``(B, H, W, K, 3)`` from :func:`~renderers.pytorch3d.fragments.interpolate_colors`.
        fragments: the fragments (``dists`` px², ``zbuf`` mm).
        sigma: px², sharpness of ``p_k = sigmoid(-dists_k / sigma)``.
        gamma: mm, depth temperature of the colour weights ``p_k exp(-(z_k - z_min)/gamma)``.

    Returns:
        ``(rgb (B, H, W, 3), alpha (B, H, W))``: the face colour (weighted mean over
        fragments, 0 where no fragment) and the soft silhouette ``1 - prod_k(1 - p_k)``,
        in ``face_colors``' dtype.
    """
    dtype = face_colors.dtype
    valid = fragments.valid
    logits = -fragments.dists.to(dtype) / sigma
    prob = torch.sigmoid(logits) * valid.to(dtype)
    alpha = 1.0 - torch.prod(1.0 - prob, dim=-1)
    zbuf = fragments.zbuf.to(dtype)
    # Normalised weights w_k / sum_k w_k as a softmax of log w_k = log p_k - (z_k - z_min) / gamma:
    # exact, and stable where every p_k underflows.
    log_weights = torch.nn.functional.logsigmoid(logits) - zbuf / gamma
    log_weights = torch.where(valid, log_weights, torch.full_like(log_weights, _EMPTY_LOG_WEIGHT))
    weights = torch.softmax(log_weights, dim=-1) * valid.to(dtype)
    rgb = (weights.unsqueeze(-1) * face_colors).sum(dim=-2)
    return rgb, alpha
