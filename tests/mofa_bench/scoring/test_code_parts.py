"""Tests for mofa_bench.scoring.code_parts: per-part cosine and RMS errors of predicted codes."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_close

from mofa_bench.scoring.code_parts import CODE_PARTS, code_part_errors, summarize_code_part_errors
from mofa_bench import CODE_DIM, CODE_LAYOUT, join_code, split_code
from mofa_checks import InputError

PART_SIZES = dict(CODE_LAYOUT)


def random_codes(b: int, dtype: torch.dtype, device: torch.device, seed: int = 0) -> torch.Tensor:
    """Seeded ``(b, 257)`` codes with a different scale per entry (made on CPU, then moved)."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.linspace(0.5, 3.0, CODE_DIM, dtype=torch.float64)
    return (torch.randn(b, CODE_DIM, generator=g, dtype=torch.float64) * scale).to(device=device, dtype=dtype)


def code_part_errors_loop(pred: torch.Tensor, true: torch.Tensor) -> dict[str, torch.Tensor]:
    """Naive version: one sample and one entry at a time, in Python floats."""
    out: dict[str, list[float]] = {}
    start = 0
    for name, n in CODE_LAYOUT:
        for b in range(pred.shape[0]):
            p = [float(v) for v in pred[b, start:start + n]]
            t = [float(v) for v in true[b, start:start + n]]
            dot = sum(x * y for x, y in zip(p, t))
            norm_p = math.sqrt(sum(x * x for x in p))
            norm_t = math.sqrt(sum(y * y for y in t))
            cos = dot / (norm_p * norm_t) if norm_p > 0 and norm_t > 0 else 0.0
            out.setdefault(f"{name}_cos", []).append(cos)
            out.setdefault(f"{name}_rms", []).append(math.sqrt(sum((x - y) ** 2 for x, y in zip(p, t)) / n))
            out.setdefault(f"{name}_rms_zero", []).append(math.sqrt(sum(y * y for y in t) / n))
        start += n
    return {key: torch.tensor(values, dtype=torch.float64) for key, values in out.items()}


class TestCodePartErrors:
    def test_smoke_keys_and_shapes(self, device, dtype):
        codes = random_codes(5, dtype, device)
        errors = code_part_errors(codes, codes.flip(0))
        assert set(errors) == {f"{p}_{m}" for p in CODE_PARTS for m in ("cos", "rms", "rms_zero")}
        for value in errors.values():
            assert value.shape == (5,)
            assert value.dtype == dtype and value.device.type == device.type

    def test_convention_parts_in_code_order(self):
        assert CODE_PARTS == ("alpha", "delta", "beta", "rotation", "translation", "gamma")

    def test_identical_codes_have_cos_one_and_rms_zero(self, device, dtype):
        codes = random_codes(4, dtype, device)
        errors = code_part_errors(codes, codes.clone())
        for name in CODE_PARTS:
            assert_close(errors[f"{name}_cos"], torch.ones(4, dtype=dtype, device=device))
            assert_close(errors[f"{name}_rms"], torch.zeros(4, dtype=dtype, device=device))

    def test_negated_codes_have_cos_minus_one_and_twice_the_zero_rms(self, device, dtype):
        codes = random_codes(4, dtype, device)
        errors = code_part_errors(-codes, codes)
        for name in CODE_PARTS:
            assert_close(errors[f"{name}_cos"], -torch.ones(4, dtype=dtype, device=device))
            assert_close(errors[f"{name}_rms"], 2.0 * errors[f"{name}_rms_zero"])

    def test_zero_prediction_scores_the_zero_rms_and_cos_zero(self, device, dtype):
        codes = random_codes(4, dtype, device)
        errors = code_part_errors(torch.zeros_like(codes), codes)
        for name in CODE_PARTS:
            assert_close(errors[f"{name}_rms"], errors[f"{name}_rms_zero"])
            assert_close(errors[f"{name}_cos"], torch.zeros(4, dtype=dtype, device=device))
            assert bool((errors[f"{name}_rms_zero"] > 0).all())

    def test_rms_zero_is_the_rms_of_the_true_part(self, device, dtype):
        codes = random_codes(3, dtype, device)
        errors = code_part_errors(random_codes(3, dtype, device, seed=1), codes)
        for name, part in split_code(codes).as_dict().items():
            assert_close(errors[f"{name}_rms_zero"], part.pow(2).mean(-1).sqrt())

    def test_values_match_loop_reference(self):
        pred = random_codes(6, torch.float64, torch.device("cpu"), seed=2)
        true = random_codes(6, torch.float64, torch.device("cpu"), seed=3)
        errors = code_part_errors(pred, true)
        expected = code_part_errors_loop(pred, true)
        for key, value in expected.items():
            assert_close(errors[key], value, msg=key)

    def test_cosine_ignores_scale_rms_does_not(self, device, dtype):
        codes = random_codes(3, dtype, device)
        errors = code_part_errors(3.0 * codes, codes)
        for name in CODE_PARTS:
            assert_close(errors[f"{name}_cos"], torch.ones(3, dtype=dtype, device=device))
            assert_close(errors[f"{name}_rms"], 2.0 * errors[f"{name}_rms_zero"])

    @pytest.mark.parametrize("changed", CODE_PARTS)
    def test_parts_are_independent(self, changed, device, dtype):
        codes = random_codes(4, dtype, device)
        parts = split_code(codes).as_dict()
        parts[changed] = -parts[changed]
        pred = join_code(**parts)
        errors = code_part_errors(pred, codes)
        for name in CODE_PARTS:
            expected_cos = -1.0 if name == changed else 1.0
            assert_close(errors[f"{name}_cos"], torch.full((4,), expected_cos, dtype=dtype, device=device), msg=name)
            if name != changed:
                assert_close(errors[f"{name}_rms"], torch.zeros(4, dtype=dtype, device=device), msg=name)

    def test_per_sample_values_are_not_mixed_across_the_batch(self):
        codes = random_codes(3, torch.float64, torch.device("cpu"))
        pred = codes.clone()
        pred[1] = -pred[1]
        errors = code_part_errors(pred, codes)
        for name in CODE_PARTS:
            assert errors[f"{name}_cos"].tolist() == pytest.approx([1.0, -1.0, 1.0])
            assert float(errors[f"{name}_rms"][0]) == pytest.approx(0.0)
            assert float(errors[f"{name}_rms"][1]) > 0.0

    def test_rms_is_in_the_part_unit_per_entry(self):
        # Every translation entry off by 4 mm: RMS 4 whatever the part size.
        true = torch.zeros(2, CODE_DIM, dtype=torch.float64)
        pred = join_code(translation=torch.full((2, 3), 4.0, dtype=torch.float64),
                         alpha=torch.full((2, 80), 0.5, dtype=torch.float64))
        errors = code_part_errors(pred, true)
        assert errors["translation_rms"].tolist() == pytest.approx([4.0, 4.0])
        assert errors["alpha_rms"].tolist() == pytest.approx([0.5, 0.5])
        assert errors["delta_rms"].tolist() == pytest.approx([0.0, 0.0])

    def test_zero_true_part_gives_cos_zero_not_nan(self):
        pred = random_codes(2, torch.float64, torch.device("cpu"))
        true = join_code(alpha=torch.ones(2, 80, dtype=torch.float64))
        errors = code_part_errors(pred, true)
        for name in CODE_PARTS[1:]:
            assert errors[f"{name}_cos"].tolist() == [0.0, 0.0]
            assert errors[f"{name}_rms_zero"].tolist() == [0.0, 0.0]
        assert all(math.isfinite(float(v)) for value in errors.values() for v in value)

    def test_gradient_flows_to_prediction(self):
        pred = random_codes(2, torch.float64, torch.device("cpu"), seed=4).requires_grad_(True)
        true = random_codes(2, torch.float64, torch.device("cpu"), seed=5)
        errors = code_part_errors(pred, true)

        def total(x: torch.Tensor) -> torch.Tensor:
            e = code_part_errors(x, true)
            return sum(e[f"{p}_rms"].sum() + e[f"{p}_cos"].sum() for p in CODE_PARTS)

        assert errors["alpha_rms"].requires_grad
        assert torch.autograd.gradcheck(total, (pred,), fast_mode=True)

    @pytest.mark.parametrize("bad_pred, bad_true", [
        (torch.zeros(2, 256), torch.zeros(2, 257)),
        (torch.zeros(2, 257), torch.zeros(3, 257)),
        (torch.zeros(257), torch.zeros(257)),
        (torch.zeros(2, 257, dtype=torch.int64), torch.zeros(2, 257)),
        (torch.full((2, 257), float("nan")), torch.zeros(2, 257)),
    ])
    def test_exception_on_bad_input(self, bad_pred, bad_true):
        with pytest.raises(InputError):
            code_part_errors(bad_pred, bad_true)


class TestSummarizeCodePartErrors:
    def test_batch_rms_and_ratio(self):
        true = join_code(alpha=torch.tensor([[3.0] * 80, [4.0] * 80], dtype=torch.float64))
        pred = torch.zeros_like(true)
        summary = summarize_code_part_errors(code_part_errors(pred, true))
        # Batch RMS of the per-sample RMS values 3 and 4: sqrt((9 + 16) / 2).
        assert summary["alpha_rms"] == pytest.approx(math.sqrt(12.5))
        assert summary["alpha_rms_zero"] == pytest.approx(math.sqrt(12.5))
        assert summary["alpha_rms_ratio"] == pytest.approx(1.0)
        assert summary["alpha_cos"] == pytest.approx(0.0)
        assert math.isnan(summary["delta_rms_ratio"])

    def test_learnt_part_has_ratio_below_one(self):
        true = random_codes(8, torch.float64, torch.device("cpu"))
        pred = true.clone()
        pred[:, 80:] = random_codes(8, torch.float64, torch.device("cpu"), seed=9)[:, 80:]
        summary = summarize_code_part_errors(code_part_errors(pred, true))
        assert summary["alpha_rms_ratio"] == pytest.approx(0.0)
        assert summary["alpha_cos"] == pytest.approx(1.0)
        assert summary["delta_rms_ratio"] > 1.0
        assert set(summary) == {f"{p}_{m}" for p in CODE_PARTS for m in ("cos", "rms", "rms_zero", "rms_ratio")}
