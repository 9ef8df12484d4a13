"""Lambertian shading under 3-band spherical-harmonic illumination (MoFA Eq. 4).

``C = r ⊙ Σ_b γ_b H_b(n)`` with ``H_b(n) = A_l(b) · Y_b(n)``: Y_b are the 9 orthonormal
real SH basis functions (bands l = 0, 1, 2) and A_l = (π, 2π/3, π/4) the Lambertian
convolution constants (Ramamoorthi & Hanrahan 2001), so γ are radiance SH coefficients
and Σ_b γ_b H_b is irradiance. Normals are unit vectors in camera space.
The constant band of every channel gets :data:`~mofa_bench.code_vector.AMBIENT_OFFSET`,
so zero illumination code gives ambient irradiance ``AMBIENT_OFFSET · π · Y_00 ≈ 0.62``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mofa_bench.code_vector import AMBIENT_OFFSET
from mofa_checks import check_tensor

#: Normalisation constants of the 9 real SH functions, in the order of :func:`sh_basis`.
_SH_C0 = 0.5 * math.sqrt(1.0 / math.pi)
_SH_C1 = math.sqrt(3.0 / (4.0 * math.pi))
_SH_C2 = 0.5 * math.sqrt(15.0 / math.pi)
_SH_C20 = 0.25 * math.sqrt(5.0 / math.pi)
_SH_C22 = 0.25 * math.sqrt(15.0 / math.pi)
#: Lambertian convolution constant per basis function (band 0, 1 ×3, 2 ×5).
LAMBERT_BAND_FACTORS = (math.pi,) + (2.0 * math.pi / 3.0,) * 3 + (math.pi / 4.0,) * 5
#: Number of SH basis functions (3 bands).
N_SH = 9


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """The 9 orthonormal real spherical harmonics Y_b at unit directions.

    Order: Y_00; Y_1-1 (y), Y_10 (z), Y_11 (x); Y_2-2 (xy), Y_2-1 (yz), Y_20 (3z²-1),
    Y_21 (xz), Y_22 (x²-y²).

    Args:
        normals: ``(*, 3)`` unit vectors.

    Returns:
        ``(*, 9)`` basis values.
    """
    check_tensor("normals", normals, "* 3", floating=True)
    x, y, z = normals.unbind(-1)
    one = torch.ones_like(x)
    return torch.stack(
        [
            _SH_C0 * one,
            _SH_C1 * y,
            _SH_C1 * z,
            _SH_C1 * x,
            _SH_C2 * x * y,
            _SH_C2 * y * z,
            _SH_C20 * (3.0 * z * z - 1.0),
            _SH_C2 * x * z,
            _SH_C22 * (x * x - y * y),
        ],
        dim=-1,
    )


def irradiance_basis(normals: torch.Tensor) -> torch.Tensor:
    """``H_b(n) = A_l(b) · Y_b(n)``: ``(*, 3)`` unit normals → ``(*, 9)``."""
    factors = normals.new_tensor(LAMBERT_BAND_FACTORS)
    return sh_basis(normals) * factors


def illumination_coefficients(gamma: torch.Tensor, ambient_offset: float = AMBIENT_OFFSET) -> torch.Tensor:
    """Code γ ``(B, 27)`` → SH coefficients ``(B, 9, 3)`` with the ambient offset added."""
    check_tensor("gamma", gamma, "B 27", floating=True)
    coeffs = gamma.view(-1, N_SH, 3)
    offset = torch.zeros_like(coeffs)
    offset[:, 0, :] = ambient_offset
    return coeffs + offset


def sh_shading(normals: torch.Tensor, reflectance: torch.Tensor, gamma: torch.Tensor,
               ambient_offset: float = AMBIENT_OFFSET) -> torch.Tensor:
    """Shaded colours ``C = r ⊙ Σ_b γ_b H_b(n)``.

    Args:
        normals: ``(B, N, 3)`` unit camera-space normals.
        reflectance: ``(B, N, 3)`` albedo, linear RGB.
        gamma: ``(B, 27)`` illumination part of the code (band-major, RGB inner).
        ambient_offset: added to the constant band of each channel.

    Returns:
        ``(B, N, 3)`` linear RGB colours (not clamped).
    """
    dims: dict[str, int] = {}
    check_tensor("normals", normals, "B N 3", dims, floating=True)
    check_tensor("reflectance", reflectance, "B N 3", dims, floating=True)
    irradiance = torch.einsum("bnk,bkc->bnc", irradiance_basis(normals), illumination_coefficients(gamma, ambient_offset))
    return reflectance * irradiance


def ambient_irradiance(ambient_offset: float = AMBIENT_OFFSET) -> float:
    """Irradiance of the zero illumination code: ``ambient_offset · π · Y_00``."""
    return ambient_offset * LAMBERT_BAND_FACTORS[0] * _SH_C0


class SHShader(nn.Module):
    """Module form of :func:`sh_shading` (stores the ambient offset)."""

    def __init__(self, ambient_offset: float = AMBIENT_OFFSET) -> None:
        super().__init__()
        self.ambient_offset = float(ambient_offset)

    def forward(self, normals: torch.Tensor, reflectance: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        return sh_shading(normals, reflectance, gamma, self.ambient_offset)
