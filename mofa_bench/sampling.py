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

import torch

from mofa_bench.code_vector import CODE_DIM, CODE_SLICES
from mofa_bench.errors import InputError


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
        return torch.randn(*shape, generator=generator, dtype=dtype)

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, dtype=dtype) * 2.0 - 1.0

    code = torch.zeros(n, CODE_DIM, dtype=dtype)
    code[:, CODE_SLICES["alpha"]] = prior.identity_std * normal(n, 80)
    code[:, CODE_SLICES["delta"]] = prior.expression_std * normal(n, 64)
    code[:, CODE_SLICES["beta"]] = prior.reflectance_std * normal(n, 80)
    limits = torch.tensor([prior.pitch_deg, prior.yaw_deg, prior.roll_deg], dtype=dtype) * math.pi / 180.0
    code[:, CODE_SLICES["rotation"]] = uniform(n, 3) * limits
    trans_std = torch.tensor([prior.translation_std_mm, prior.translation_std_mm, prior.depth_std_mm], dtype=dtype)
    code[:, CODE_SLICES["translation"]] = normal(n, 3) * trans_std
    gamma = torch.zeros(n, 9, 3, dtype=dtype)
    white = prior.light_std * normal(n, 8, 1)
    gamma[:, 1:, :] = white + prior.colored_light_std * normal(n, 8, 3)
    gamma[:, 0, :] = prior.ambient_std * normal(n, 1) + prior.colored_light_std * normal(n, 3)
    code[:, CODE_SLICES["gamma"]] = gamma.reshape(n, 27)
    return code
