"""Tests for mofa_bench.config: every nested option is checked at load and named by its key path."""

from __future__ import annotations

import pytest

from mofa_bench.config import config_from_dict, config_to_dict, load_config
from mofa_bench.data.backgrounds import BackgroundConfig
from mofa_bench.errors import ConfigError
from renderers import renderer_options


class TestNestedOptions:
    @pytest.mark.parametrize("overrides, message", [
        (["renderer.options={foo: 1}"], r"renderer.options.foo: unknown option of the per_vertex renderer"),
        (["renderer.name=pytorch3d", "renderer.options={blur_radius: -1}"], r"renderer.options: blur_radius"),
        (["renderer.name=pytorch3d", "renderer.options={faces_per_pixle: 4}"],
         r"renderer.options.faces_per_pixle: .*known options: blur_radius, faces_per_pixel"),
        (["renderer.name=nvdiffrast", "renderer.options={near: 0}"], r"renderer.options: near, far"),
        (["renderer.name=nope"], r"renderer.name: unknown renderer 'nope'"),
        (["data.synthetic_renderer=nope"], r"data.synthetic_renderer: unknown renderer"),
        (["model.options={bar: 2}"], r"model.options.bar: unknown option of the 'default' model loader"),
        (["model.source=face.obj"], r"model.source: .*unknown face-model format"),
        (["data.backgrounds={nise: 1}"], r"data.backgrounds.nise: unknown key"),
        (["data.backgrounds={noise: -1}"], r"data.backgrounds: .*noise"),
        (["data.backgrounds={photos: astronaut}"], r"data.backgrounds.photos: expected a list"),
        (["best_metric=''"], r"best_metric"),
        (["optim.lr=.nan"], r"optim.lr: expected a finite value > 0"),
        (["optim.lr=.inf"], r"optim.lr: expected a finite value > 0"),
        (["optim.weight_decay=-0.1"], r"optim.weight_decay: expected a finite value >= 0"),
        (["optim.grad_clip=-1"], r"optim.grad_clip: expected a finite value > 0"),
        (["optim.z_translation_lr=0"], r"optim.z_translation_lr"),
        (["seed=18446744073709551616"], r"seed: expected a finite value >= 0 and < 9.22337e\+18"),
        (["data.seed=-1"], r"data.seed"),
        (["num_val_images=-2"], r"num_val_images"),
        (["keep_every=-1"], r"keep_every"),
        (["data.val_size=0"], r"data.val_size: expected a finite value > 0"),
        (["camera.focal_length=-5"], r"camera.focal_length"),
        (["camera.head_distance=.inf"], r"camera.head_distance"),
        (["method=autoencoder"], r"method: expected one of mofa, conv_autoencoder"),
        (["method_options={steps: 3}"], r"method_options: the mofa method has no options"),
        (["camera.image_size=32", "encoder.name=resnet18"],
         r"camera.image_size: the resnet18 encoder needs images of at least 64 px, got 32"),
    ])
    def test_bad_option_is_a_config_error_naming_it(self, overrides, message):
        with pytest.raises(ConfigError, match=message):
            load_config(None, overrides)

    def test_backgrounds_are_typed_and_round_trip(self):
        cfg = load_config(None, ["data.backgrounds={photo: 0.0, photos: [coffee]}"])
        assert isinstance(cfg.data.backgrounds, BackgroundConfig)
        assert cfg.data.backgrounds.photos == ("coffee",) and cfg.data.backgrounds.photo == 0.0
        assert config_from_dict(config_to_dict(cfg)) == cfg

    def test_renamed_key_still_loads_with_a_warning(self):
        with pytest.warns(DeprecationWarning, match="data.render_renderer is now data.synthetic_renderer"):
            cfg = load_config(None, ["data.render_renderer=pytorch3d"])
        assert cfg.data.synthetic_renderer == "pytorch3d"
        with pytest.raises(ConfigError, match="both are given"):
            load_config(None, ["data.render_renderer=pytorch3d", "data.synthetic_renderer=per_vertex"])

    def test_renderer_options_are_the_backend_constructor_keywords(self):
        assert renderer_options("per_vertex") == []
        assert "antialias" in renderer_options("nvdiffrast")


def test_a_key_given_twice_is_an_error(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("optim:\n  lr: 0.1\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match="duplicate key 'lr'"):
        load_config(path)
