"""Statistics shared by the diagnostics: one Pearson correlation for all of them."""

from __future__ import annotations

import torch

__all__ = ["correlation"]


def correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation over the first dimension, computed in float64.

    ``(N,)`` inputs give a 0-dim tensor; ``(N, D)`` inputs the correlation of each column
    of ``a`` with the same column of ``b``, ``(D,)``.

    A constant input (a column with one value throughout, e.g. a gradient entry that is
    zero on every face) has no correlation: the result is NaN there, not 0. Callers that
    print or average correlations must expect NaN.

    Raises:
        ValueError: ``a`` and ``b`` differ in shape, or have fewer than two rows.
    """
    if a.shape != b.shape:
        raise ValueError(f"correlation: shapes differ, {tuple(a.shape)} and {tuple(b.shape)}")
    if a.ndim == 0 or a.shape[0] < 2:
        raise ValueError(f"correlation: needs at least two rows, got shape {tuple(a.shape)}")
    a, b = a.detach().double(), b.detach().double()
    constant = (a.amax(0) == a.amin(0)) | (b.amax(0) == b.amin(0))
    a = a - a.mean(0)
    b = b - b.mean(0)
    value = (a * b).sum(0) / (a.norm(dim=0) * b.norm(dim=0))
    return torch.where(constant, torch.full_like(value, float("nan")), value)
