"""evaluation.diagnostics.partial_truth: codes true on the named parts and zero elsewhere."""

from __future__ import annotations

import torch

from mofa_bench.code_vector import CODE_SLICES
from evaluation.diagnostics import partial_truth


def test_only_the_named_parts_are_true():
    true = torch.randn(3, 257)
    code = partial_truth.partly_true(true, ("rotation", "gamma"))
    for name, part in CODE_SLICES.items():
        expected = true[:, part] if name in ("rotation", "gamma") else torch.zeros_like(true[:, part])
        assert torch.equal(code[:, part], expected), name


def test_jaw_open_is_the_first_expression_mode_alone():
    true = torch.randn(2, 257)
    code = partial_truth.partly_true(true, ("jaw_open",))
    start = CODE_SLICES["delta"].start
    assert torch.equal(code[:, start], true[:, start])
    assert int((code != 0).sum()) == 2
