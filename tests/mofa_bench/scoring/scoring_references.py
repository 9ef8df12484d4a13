"""Slow, obviously right versions of evaluation functions, for tests only."""

from __future__ import annotations

import torch


def geometric_error_reference(pred: torch.Tensor, target: torch.Tensor,
                              compensate_scale: bool = True) -> torch.Tensor:
    """Loop-based ``geometric_error`` (one sample and one point at a time).

    Args:
        pred: ``(B, N, 3)`` predicted vertices, mm.
        target: ``(B, N, 3)`` ground-truth vertices, mm.
        compensate_scale: apply the least-squares isotropic scale.

    Returns:
        ``(B,)`` mean distance, mm.
    """
    out = []
    for b in range(pred.shape[0]):
        n = pred.shape[1]
        cp = sum(pred[b, i] for i in range(n)) / n
        ct = sum(target[b, i] for i in range(n)) / n
        p = [pred[b, i] - cp for i in range(n)]
        t = [target[b, i] - ct for i in range(n)]
        s = pred.new_tensor(1.0)
        if compensate_scale:
            num = sum(torch.dot(p[i], t[i]) for i in range(n))
            den = sum(torch.dot(p[i], p[i]) for i in range(n))
            s = num / den if den > 0 else pred.new_tensor(0.0)
        dists = [torch.sqrt(((s * p[i] - t[i]) ** 2).sum()) for i in range(n)]
        out.append(sum(dists) / n)
    return torch.stack(out)
