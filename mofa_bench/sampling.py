"""Random codes from the model prior with realistic pose, expression and light ranges.

Used for contact sheets and for the synthetic ground-truth dataset (the paper's
Fig. 10 protocol). Identity, expression and reflectance are drawn from N(0, σ²) with a
configurable σ per part (1 = the model prior); pose angles uniformly within ± limits;
translation normal in mm; illumination as a random lobe plus noise on the 9×3
coefficients, so faces are lit from varied directions but never black.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from mofa_bench.code_vector import CODE_DIM, CODE_SLICES
from mofa_bench.errors import InputError


#: Words of a counter stream that one code takes (:func:`sample_codes_counter`): 224 normals
#: of α, δ and β, 3 uniforms of the rotation, then normals of the translation (3) and the
#: light (8, 24, 1, 3), each call rounded up to an even number of words.
COUNTER_CODE_WORDS = 224 + 3 + 4 + 8 + 24 + 2 + 4


@dataclass(frozen=True)
class CodePrior:
    """Ranges of the sampled codes.

    Attributes:
        identity_std: σ of α (1 = model prior).
        expression_std: σ of δ.
        reflectance_std: σ of β.
        yaw_deg: yaw drawn uniformly in ±yaw_deg (degrees; converted to rad).
        pitch_deg: pitch range ± (degrees).
        roll_deg: roll range ± (degrees).
        translation_std_mm: σ of x/y translation, mm.
        depth_std_mm: σ of z translation, mm.
        light_std: σ of the non-ambient SH coefficients (band 1 and 2).
        ambient_std: σ of the constant band (added to the ambient offset).
        colored_light_std: σ of per-channel deviations from white light.
    """

    identity_std: float = 1.0
    expression_std: float = 0.7
    reflectance_std: float = 1.0
    yaw_deg: float = 35.0
    pitch_deg: float = 15.0
    roll_deg: float = 10.0
    translation_std_mm: float = 8.0
    depth_std_mm: float = 30.0
    light_std: float = 0.2
    ambient_std: float = 0.1
    colored_light_std: float = 0.01

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
                raise InputError(f"CodePrior.{name}: expected a finite number ≥ 0, got {value!r}")


def sample_codes(n: int, prior: CodePrior = CodePrior(), generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Draw ``(n, 257)`` codes on the CPU (seed via ``generator``; move them afterwards).

    Args:
        n: number of codes.
        prior: sampling ranges.
        generator: torch RNG for reproducibility.
        dtype: float dtype.
    """
    if n <= 0:
        raise InputError(f"n: expected a positive number of codes, got {n}")

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(n, *shape, generator=generator, dtype=dtype)

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(n, *shape, generator=generator, dtype=dtype)

    return _codes(n, prior, normal, uniform, dtype, torch.device("cpu"))


def sample_codes_counter(draws: Any, prior: CodePrior = CodePrior(), dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Draw one code per sample of a counter stream, on its device (the same distribution as :func:`sample_codes`).

    Args:
        draws: a :class:`~mofa_bench.data.counter_rng.CounterStream` (its samples' code
            stream): the codes take its next :data:`COUNTER_CODE_WORDS` words (normals in
            pairs), in the order :func:`sample_codes` draws them, prefetched in one call.
        prior: sampling ranges.
        dtype: float dtype.

    Returns:
        ``(B, 257)`` codes on ``draws.device``; sample ``b`` depends only on its own index.
    """
    n = len(draws)
    if n <= 0:
        raise InputError(f"draws: expected at least one sample, got {n}")
    draws.prefetch(COUNTER_CODE_WORDS)
    return _codes(n, prior, lambda *shape: draws.normal(*shape, dtype=dtype),
                  lambda *shape: draws.uniform(*shape, dtype=dtype), dtype, draws.device)


def _codes(n: int, prior: CodePrior, normal: Callable[..., torch.Tensor], uniform: Callable[..., torch.Tensor],
           dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(n, 257)`` codes from ``normal(*shape)`` and ``uniform(*shape)`` (in [0, 1)) draws of ``(n, *shape)``."""
    def centred(*shape: int) -> torch.Tensor:
        return uniform(*shape) * 2.0 - 1.0

    code = torch.zeros(n, CODE_DIM, dtype=dtype, device=device)
    code[:, CODE_SLICES["alpha"]] = prior.identity_std * normal(80)
    code[:, CODE_SLICES["delta"]] = prior.expression_std * normal(64)
    code[:, CODE_SLICES["beta"]] = prior.reflectance_std * normal(80)
    limits = torch.tensor([prior.pitch_deg, prior.yaw_deg, prior.roll_deg], dtype=dtype, device=device) * math.pi / 180.0
    code[:, CODE_SLICES["rotation"]] = centred(3) * limits
    trans_std = torch.tensor([prior.translation_std_mm, prior.translation_std_mm, prior.depth_std_mm], dtype=dtype,
                             device=device)
    code[:, CODE_SLICES["translation"]] = normal(3) * trans_std
    gamma = torch.zeros(n, 9, 3, dtype=dtype, device=device)
    white = prior.light_std * normal(8, 1)
    gamma[:, 1:, :] = white + prior.colored_light_std * normal(8, 3)
    gamma[:, 0, :] = prior.ambient_std * normal(1) + prior.colored_light_std * normal(3)
    code[:, CODE_SLICES["gamma"]] = gamma.reshape(n, 27)
    return code
