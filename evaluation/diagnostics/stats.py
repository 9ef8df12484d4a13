"""Statistics shared by the diagnostics: one Pearson correlation for all of them, and one
bootstrap interval over test images."""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["bootstrap_interval", "correlation"]

#: Resamples of :func:`bootstrap_interval` unless told.
BOOTSTRAP_RESAMPLES = 2000


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


def bootstrap_interval(statistic: Callable[..., torch.Tensor], *samples: torch.Tensor,
                       resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95,
                       seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Percentile bootstrap interval of ``statistic`` over the rows (test images) of ``samples``.

    Each resample draws N rows with replacement, the same rows from every input (so a
    correlation keeps its pairs), and evaluates ``statistic(*resampled)``. NaN statistics
    (e.g. a correlation of a resample with a constant column) are left out of the
    quantiles; a statistic NaN in every resample gives a NaN interval.

    Args:
        statistic: maps ``samples`` (first dimension N) to a tensor of any fixed shape,
            e.g. :func:`correlation` or ``lambda x: x.mean(0)``.
        samples: tensors with the same first dimension N ≥ 2.
        resamples: bootstrap resamples.
        level: coverage of the interval (0.95: the 2.5 % and 97.5 % quantiles).
        seed: the resampling's seed (the same rows for the same N and seed).

    Returns:
        ``(low, high)``, each of the statistic's shape, float64.

    Raises:
        ValueError: no samples, differing first dimensions, fewer than two rows, or a
            level outside (0, 1).
    """
    if not samples:
        raise ValueError("bootstrap_interval: give at least one sample")
    n = samples[0].shape[0] if samples[0].ndim else 0
    if any(s.ndim == 0 or s.shape[0] != n for s in samples) or n < 2:
        raise ValueError(f"bootstrap_interval: expected inputs sharing a first dimension >= 2, got shapes "
                         f"{[tuple(s.shape) for s in samples]}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"bootstrap_interval: level must lie in (0, 1), got {level}")
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, n, (resamples, n), generator=generator)
    values = torch.stack([statistic(*(s.detach()[index.to(s.device)] for s in samples)).detach().double().cpu()
                          for index in rows])
    tail = (1.0 - level) / 2.0
    low, high = torch.nanquantile(values, torch.tensor([tail, 1.0 - tail], dtype=torch.float64), dim=0)
    return low, high
