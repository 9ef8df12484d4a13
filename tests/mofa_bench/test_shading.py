import math

import numpy as np
import pytest
import torch

from mofa_bench.code_vector import AMBIENT_OFFSET
from mofa_bench.shading import SHShader, ambient_irradiance, irradiance_basis, sh_basis, sh_shading
from helpers import assert_close


def _sphere_quadrature(n_theta: int = 200, n_phi: int = 400):
    """Midpoint quadrature on the unit sphere: (directions (K,3), weights (K,))."""
    theta = (np.arange(n_theta) + 0.5) * math.pi / n_theta
    phi = (np.arange(n_phi) + 0.5) * 2 * math.pi / n_phi
    t, p = np.meshgrid(theta, phi, indexing="ij")
    dirs = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    w = (np.sin(t) * (math.pi / n_theta) * (2 * math.pi / n_phi)).reshape(-1)
    return torch.from_numpy(dirs), torch.from_numpy(w)


class TestSHBasis:
    def test_orthonormal_on_sphere(self):
        dirs, w = _sphere_quadrature()
        y = sh_basis(dirs)
        gram = (y * w[:, None]).T @ y
        assert_close(gram, torch.eye(9, dtype=torch.float64), atol=1e-4, rtol=0)

    def test_irradiance_of_constant_radiance_is_pi_times_radiance(self):
        # Radiance L = 1 everywhere ⇒ SH coeff of Y00 = sqrt(4π); irradiance = π everywhere.
        n = torch.nn.functional.normalize(torch.randn(20, 3, dtype=torch.float64), dim=-1)
        e = irradiance_basis(n)[:, 0] * math.sqrt(4 * math.pi)
        assert_close(e, torch.full((20,), math.pi, dtype=torch.float64))

    def test_irradiance_matches_clamped_cosine_integral(self):
        # Radiance from a narrow cap around direction d: irradiance ≈ max(0, n·d) * power.
        dirs, w = _sphere_quadrature(100, 200)
        d = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
        radiance = torch.exp(10 * (dirs @ d - 1))  # smooth lobe
        coeffs = (sh_basis(dirs) * (radiance * w)[:, None]).sum(0)  # (9,)
        n = torch.nn.functional.normalize(torch.tensor([[0.0, 0.3, 1.0], [0.2, 0.0, 1.0]], dtype=torch.float64), dim=-1)
        approx = irradiance_basis(n) @ coeffs
        exact = torch.stack([((dirs @ ni).clamp(min=0) * radiance * w).sum() for ni in n])
        assert_close(approx, exact, rtol=0.05, atol=0)


class TestSHShading:
    def test_zero_light_gives_ambient_times_reflectance(self):
        n = torch.nn.functional.normalize(torch.randn(2, 10, 3, dtype=torch.float64), dim=-1)
        r = torch.rand(2, 10, 3, dtype=torch.float64)
        c = sh_shading(n, r, torch.zeros(2, 27, dtype=torch.float64))
        assert_close(c, r * ambient_irradiance())
        assert ambient_irradiance() == pytest.approx(AMBIENT_OFFSET * math.sqrt(math.pi) / 2)

    def test_gamma_is_band_major_rgb_inner(self):
        n = torch.tensor([[[0.0, 0.0, 1.0]]], dtype=torch.float64)
        r = torch.ones(1, 1, 3, dtype=torch.float64)
        gamma = torch.zeros(1, 27, dtype=torch.float64)
        gamma[0, 2 * 3 + 0] = 1.0  # band Y10 (z), red channel
        c = sh_shading(n, r, gamma) - sh_shading(n, r, torch.zeros_like(gamma))
        expected_red = (2 * math.pi / 3) * math.sqrt(3 / (4 * math.pi))
        assert_close(c[0, 0], torch.tensor([expected_red, 0.0, 0.0], dtype=torch.float64))

    def test_module_equals_function(self):
        n = torch.nn.functional.normalize(torch.randn(1, 5, 3), dim=-1)
        r, g = torch.rand(1, 5, 3), torch.randn(1, 27)
        assert_close(SHShader()(n, r, g), sh_shading(n, r, g))

    def test_gradcheck(self):
        n = torch.nn.functional.normalize(torch.randn(1, 4, 3, dtype=torch.float64), dim=-1).requires_grad_()
        r = torch.rand(1, 4, 3, dtype=torch.float64, requires_grad=True)
        g = torch.randn(1, 27, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(sh_shading, (n, r, g))
