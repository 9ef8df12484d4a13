"""Background augmentation for synthetic renders."""

from __future__ import annotations

import logging
import sys

import pytest
import torch

from mofa_bench.data import backgrounds as bg_module
from mofa_bench.data.backgrounds import (
    BACKGROUND_KINDS,
    DEFAULT_PHOTOS,
    BackgroundConfig,
    available_photos,
    sample_backgrounds,
)
from mofa_bench.errors import ConfigError, InputError


def only(kind: str) -> BackgroundConfig:
    return BackgroundConfig(**{k: (1.0 if k == kind else 0.0) for k in BACKGROUND_KINDS})


@pytest.fixture
def no_skimage(monkeypatch: pytest.MonkeyPatch):
    """Pretend scikit-image is not installed (photo cache and notes reset around the test)."""
    bg_module._load_photos.cache_clear()
    bg_module._NOTED.clear()
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    yield
    bg_module._load_photos.cache_clear()
    bg_module._NOTED.clear()


class TestBackgroundConfig:
    def test_negative_weight_rejected_naming_field(self):
        with pytest.raises(ConfigError, match="BackgroundConfig.texture"):
            BackgroundConfig(texture=-1.0)

    def test_jitter_must_stay_below_one(self):
        with pytest.raises(ConfigError, match="jitter"):
            BackgroundConfig(jitter=1.0)

    def test_dict_round_trip(self):
        config = BackgroundConfig(noise=0.5, photo=0.0, photos=("coffee",), jitter=0.1)
        assert BackgroundConfig.from_dict(config.to_dict()) == config

    def test_unknown_key_rejected(self):
        with pytest.raises(ConfigError, match="unknown keys"):
            BackgroundConfig.from_dict({"nosie": 1.0})

    def test_active_kinds_are_normalised(self):
        kinds, probs = BackgroundConfig(noise=1.0, gradient=3.0, texture=0.0, photo=0.0).active_kinds()
        assert kinds == ("noise", "gradient")
        torch.testing.assert_close(probs, torch.tensor([0.25, 0.75], dtype=torch.float64))

    def test_convention_default_photos_show_no_faces(self):
        assert "astronaut" not in DEFAULT_PHOTOS and "camera" not in DEFAULT_PHOTOS


class TestSampleBackgrounds:
    def test_shape_range_dtype(self):
        out = sample_backgrounds(6, (24, 40), torch.Generator().manual_seed(0))
        assert out.shape == (6, 3, 24, 40) and out.dtype == torch.float32
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0

    def test_deterministic_for_a_generator_state(self):
        a = sample_backgrounds(5, 32, torch.Generator().manual_seed(7))
        b = sample_backgrounds(5, 32, torch.Generator().manual_seed(7))
        assert torch.equal(a, b)

    def test_different_seeds_differ(self):
        a = sample_backgrounds(3, 32, torch.Generator().manual_seed(1))
        b = sample_backgrounds(3, 32, torch.Generator().manual_seed(2))
        assert not torch.allclose(a, b)

    @pytest.mark.parametrize("kind", BACKGROUND_KINDS)
    def test_each_kind_draws_varied_images(self, kind):
        if kind == "photo" and available_photos() == 0:
            pytest.skip("scikit-image photos are not available here")
        out = sample_backgrounds(4, 32, torch.Generator().manual_seed(3), only(kind))
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        assert float(out.flatten(1).std(1).min()) > 0.005, "a background is flat"
        assert not torch.allclose(out[0], out[1])

    def test_disabled_config_gives_black(self):
        out = sample_backgrounds(2, 16, torch.Generator().manual_seed(0), BackgroundConfig.disabled())
        assert torch.count_nonzero(out) == 0

    def test_photo_kind_skipped_with_note_without_skimage(self, no_skimage, caplog):
        with caplog.at_level(logging.WARNING, logger="mofa_bench.data.backgrounds"):
            kinds, _ = BackgroundConfig().active_kinds()
            out = sample_backgrounds(3, 16, torch.Generator().manual_seed(0))
        assert "photo" not in kinds
        assert out.shape == (3, 3, 16, 16)
        assert "scikit-image is not installed" in caplog.text

    def test_non_positive_count_rejected(self):
        with pytest.raises(InputError, match="n:"):
            sample_backgrounds(0, 16)
