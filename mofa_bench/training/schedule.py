"""Deterministic data order: the sample indices of every training step.

The index stream is the concatenation of seeded random permutations of the dataset
(one per epoch), cut into batches. Step s's indices are a pure function of
``(seed, dataset size, batch size, s)``, so a resumed run sees exactly the data an
uninterrupted run would.
"""

from __future__ import annotations

import torch


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
