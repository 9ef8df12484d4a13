import pytest
import torch

from mofa_bench import CODE_DIM, join_code, split_code
from mofa_bench.code_vector import CODE_LAYOUT, CODE_SLICES, zero_code
from mofa_bench.errors import InputError


class TestCodeLayout:
    def test_convention_code_is_257_in_paper_order(self):
        assert CODE_DIM == 257
        assert [n for n, _ in CODE_LAYOUT] == ["alpha", "delta", "beta", "rotation", "translation", "gamma"]
        assert [k for _, k in CODE_LAYOUT] == [80, 64, 80, 3, 3, 27]
        assert CODE_SLICES["gamma"] == slice(230, 257)

    def test_split_join_round_trip(self):
        code = torch.randn(4, CODE_DIM)
        parts = split_code(code)
        assert parts.alpha.shape == (4, 80) and parts.gamma.shape == (4, 27)
        torch.testing.assert_close(join_code(parts), code)

    def test_join_missing_parts_are_zero(self):
        t = torch.tensor([[1.0, 2.0, 3.0]])
        code = join_code(translation=t)
        assert code.shape == (1, CODE_DIM)
        torch.testing.assert_close(split_code(code).translation, t)
        assert code.abs().sum() == 6.0

    def test_zero_code(self):
        assert zero_code(3).shape == (3, CODE_DIM) and zero_code().abs().sum() == 0

    @pytest.mark.parametrize("bad", [torch.zeros(2, 256), torch.zeros(257), torch.zeros(2, 257, dtype=torch.long)])
    def test_wrong_shape_or_dtype_raises(self, bad):
        with pytest.raises(InputError, match="code"):
            split_code(bad)

    def test_nan_code_raises(self):
        code = torch.zeros(1, CODE_DIM)
        code[0, 5] = float("nan")
        with pytest.raises(InputError, match="NaN"):
            split_code(code)

    def test_join_unknown_part_raises(self):
        with pytest.raises(InputError, match="unknown"):
            join_code(shape=torch.zeros(1, 80))


def test_part_entries_name_a_part_or_the_jaw_opening():
    from mofa_bench.code_vector import CODE_SLICES, part_entries

    assert part_entries("alpha") == CODE_SLICES["alpha"]
    assert part_entries("jaw_open") == slice(CODE_SLICES["delta"].start, CODE_SLICES["delta"].start + 1)
    with pytest.raises(KeyError, match="jaw_open"):
        part_entries("nose")
