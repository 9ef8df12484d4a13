"""Deterministic data order (the sample indices of every step) and the learning-rate schedule.

The index stream is the concatenation of seeded random permutations of the dataset
(one per epoch), cut into batches. Step s's indices are a pure function of
``(seed, dataset size, batch size, s)``, so a resumed run sees exactly the data an
uninterrupted run would.
"""

from __future__ import annotations

import math

import torch

from mofa_bench.config import LR_SCHEDULES
from mofa_bench.errors import ConfigError


def epoch_permutation(size: int, seed: int, epoch: int) -> torch.Tensor:
    """``(size,)`` int64 permutation for ``epoch``."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63 - 1))
    return torch.randperm(size, generator=generator)


def batch_indices(step: int, batch_size: int, size: int, seed: int) -> torch.Tensor:
    """``(batch_size,)`` int64 dataset indices of training step ``step`` (0-based)."""
    start = step * batch_size
    out = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), size)
        perm = epoch_permutation(size, seed, epoch)
        take = min(batch_size - len(out), size - offset)
        out.extend(perm[offset:offset + take].tolist())
    return torch.tensor(out, dtype=torch.int64)


def lr_factor(step: int, total_steps: int, schedule: str = "constant", warmup_steps: int = 0) -> float:
    """Multiplier of the base learning rates for training step ``step`` (0-based).

    A pure function of the step, so a resumed run follows the schedule an uninterrupted
    one does (a changed ``total_steps`` reshapes what is left of a cosine).

    Args:
        step: the step about to be taken, 0-based.
        total_steps: ``optim.iterations``.
        schedule: ``"constant"`` (1 after the warm-up) or ``"cosine"`` (from 1 at the end
            of the warm-up down to 0 at ``total_steps``, half a cosine period).
        warmup_steps: steps of linear ramp from ``1 / warmup_steps`` to 1 first.

    Returns:
        The factor in (0, 1].

    Raises:
        ConfigError: an unknown schedule.
    """
    if schedule not in LR_SCHEDULES:
        raise ConfigError(f"optim.schedule: expected one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    # Never exactly zero: the last step still moves (its rate is about 1/span² of the full one).
    return max(0.5 * (1.0 + math.cos(math.pi * progress)), 1.0 / (span * span))
