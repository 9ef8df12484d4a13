"""evaluation.diagnostics.stats: the one Pearson correlation the diagnostics share."""

from __future__ import annotations

import math

import pytest
import torch

from evaluation.diagnostics.stats import correlation


def test_columnwise_on_constructed_columns():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(500, 3, generator=generator)
    b = torch.stack([3.0 * a[:, 0] + 1.0, -a[:, 1], torch.randn(500, generator=generator)], dim=1)
    corr = correlation(a, b)
    assert corr.shape == (3,) and corr.dtype == torch.float64
    assert corr[0] == pytest.approx(1.0) and corr[1] == pytest.approx(-1.0)
    assert abs(float(corr[2])) < 0.15


def test_one_dimensional_inputs_give_one_value():
    value = correlation(torch.arange(5.0), -2 * torch.arange(5.0))
    assert value.shape == () and float(value) == pytest.approx(-1.0)


def test_a_constant_input_has_no_correlation():
    """NaN, not 0 (pose_landscape's own helper used to return 0 here)."""
    assert math.isnan(float(correlation(torch.zeros(4), torch.arange(4.0))))
    assert math.isnan(float(correlation(torch.arange(4.0), torch.full((4,), 0.1))))  # constant, not exactly mean
    corr = correlation(torch.stack([torch.arange(4.0), torch.full((4,), 0.3)], 1), torch.randn(4, 2))
    assert not math.isnan(float(corr[0])) and math.isnan(float(corr[1]))


def test_bad_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        correlation(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="two rows"):
        correlation(torch.zeros(1, 2), torch.zeros(1, 2))
