"""A synthetic sample's random streams: global indices, stream numbers and CPU generator seeds.

Sample ``g`` of a synthetic dataset draws its code, background and any further parts from
streams of its own (:data:`CODE_STREAM`, :data:`BACKGROUND_STREAM`, ...): with the default
generator, CPU ``torch.Generator`` objects seeded by :func:`sample_seed`; with the counter
generator, :mod:`mofa_bench.data.counter_rng`. :mod:`mofa_bench.data.synthetic` re-exports
these names.
"""

from __future__ import annotations

from typing import Any

import torch

from mofa_bench.errors import InputError
from mofa_checks import check_tensor

__all__ = ["BACKGROUND_STREAM", "CODE_STREAM", "GENERATORS", "check_indices", "sample_seed"]

#: Random stream of the code of a sample (see :func:`sample_seed`).
CODE_STREAM = 0
#: Random stream of the background of a sample.
BACKGROUND_STREAM = 1
#: How samples' codes and backgrounds are drawn (:class:`~mofa_bench.data.synthetic.SyntheticFaces`):
#: per-sample CPU generators (the default) or the batched counter-based generator on the device.
GENERATORS = ("cpu", "counter")

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def sample_seed(seed: int, index: int, stream: int = CODE_STREAM) -> int:
    """Seed of one sample's random stream: a SplitMix64 mix of ``(seed, index, stream)``.

    Pure integer arithmetic (no salted ``hash``), so it is the same in every process.

    Args:
        seed: dataset seed (any int; reduced modulo 2⁶⁴).
        index: global sample index.
        stream: :data:`CODE_STREAM` or :data:`BACKGROUND_STREAM`.

    Returns:
        A seed in ``[0, 2⁶³)`` for ``torch.Generator.manual_seed``.
    """
    h = _splitmix64(seed & _MASK64)
    h = _splitmix64(h ^ (index & _MASK64))
    h = _splitmix64(h ^ (stream & _MASK64))
    return h & ((1 << 63) - 1)


def check_indices(indices: torch.Tensor | Any, size: int) -> torch.Tensor:
    """Validate dataset indices (a tensor, sequence or int) → ``(B,)`` int64 on the CPU.

    Raises:
        InputError: not a 1-D integer tensor, empty, or a value outside ``[0, size)``.
    """
    if not isinstance(indices, torch.Tensor):
        indices = torch.as_tensor(indices)
    if indices.dim() == 0:
        indices = indices.reshape(1)
    check_tensor("indices", indices, "B", integer=True)
    indices = indices.detach().to("cpu", torch.int64)
    if indices.numel() == 0:
        raise InputError("indices: expected at least one index, got an empty tensor")
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= size:
        raise InputError(f"indices: expected values in [0, {size}), got range [{low}, {high}]")
    return indices
