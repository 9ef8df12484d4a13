"""Tests for mofa_bench.config: every nested option is checked at load and named by its key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.suite.spec import load_suite_spec
from mofa_bench.config import config_from_dict, config_to_dict, load_config, set_dotted
from mofa_bench.configs import config_names, config_path
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


CONFIGS = Path(__file__).resolve().parents[2] / "mofa_bench" / "configs"


class TestConfigsByName:
    """``--config quick`` and ``mofa-bench suite quick``: packaged configs by name, files by path."""

    def test_packaged_names(self):
        assert config_names("train") == ["converge", "paper", "quick", "synthetic"]
        assert config_names("suite") == ["gpu_fig10", "gpu_study", "learning_cpu", "methods_cpu",
                                         "methods_cpu_domain_gap", "methods_cpu_out_of_span", "paper", "quick",
                                         "renderers_cpu", "smoke"]
        with pytest.raises(ValueError, match="kind"):
            config_names("model")

    @pytest.mark.parametrize("name", ["quick", "quick.yaml"])
    def test_a_name_with_or_without_yaml_is_the_packaged_file(self, name, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)  # nothing called quick here
        assert config_path(name) == CONFIGS / "quick.yaml"
        assert load_config(name) == load_config(CONFIGS / "quick.yaml")
        assert load_config(name).name == "quick"

    def test_an_existing_file_is_used_as_it_is(self, tmp_path, monkeypatch):
        (tmp_path / "quick.yaml").write_text("name: mine\n")
        monkeypatch.chdir(tmp_path)
        assert config_path("quick.yaml") == Path("quick.yaml")  # the file here, not the packaged one
        assert load_config("quick.yaml").name == "mine"
        assert load_config("quick").name == "quick"  # no file called `quick`: the packaged config
        assert load_config(tmp_path / "quick.yaml").name == "mine"
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "c.yaml").write_text("name: relative\n")
        assert load_config("sub/c.yaml").name == "relative"

    def test_a_folder_named_like_a_config_does_not_hide_it(self, tmp_path, monkeypatch):
        (tmp_path / "quick").mkdir()
        monkeypatch.chdir(tmp_path)
        assert load_config("quick").name == "quick"

    def test_an_unknown_name_lists_the_known_ones(self):
        with pytest.raises(ConfigError, match=r"config file nope does not exist and is not a packaged train config; "
                                              r"known names: converge, paper, quick, synthetic"):
            load_config("nope")
        with pytest.raises(ConfigError, match=r"suite file nope\.yaml does not exist .*known names: gpu_fig10, "
                                              r"gpu_study, learning_cpu, methods_cpu, .*paper, quick, renderers_cpu, smoke"):
            load_suite_spec("nope.yaml")

    def test_a_missing_path_says_so_and_names_the_packaged_configs(self, tmp_path):
        with pytest.raises(ConfigError, match=r"config file .*absent\.yaml does not exist \(packaged train configs, "
                                              r"by name: converge, paper, quick, synthetic\)"):
            load_config(tmp_path / "absent.yaml")
        with pytest.raises(ConfigError, match=r"config file .* is not a file"):
            load_config(tmp_path)

    def test_a_suite_by_name(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        spec = load_suite_spec("smoke")
        assert spec.name == "smoke" and spec.base == (CONFIGS / "synthetic.yaml").resolve()
        assert load_suite_spec("smoke.yaml") == spec == load_suite_spec(CONFIGS / "suites" / "smoke.yaml")
        # The packaged suites name their base configs by name.
        bases = {name: load_suite_spec(name).base for name in config_names("suite")}
        converge = (CONFIGS / "converge.yaml").resolve()
        assert bases == {"learning_cpu": converge, "methods_cpu": converge, "methods_cpu_domain_gap": converge,
                         "methods_cpu_out_of_span": converge, "renderers_cpu": converge, "gpu_study": converge,
                         "paper": (CONFIGS / "paper.yaml").resolve(), "gpu_fig10": (CONFIGS / "paper.yaml").resolve(),
                         "quick": (CONFIGS / "quick.yaml").resolve(),
                         "smoke": (CONFIGS / "synthetic.yaml").resolve()}

    @pytest.mark.parametrize("base", ["converge", "converge.yaml"])
    def test_a_suite_base_by_name(self, base, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        (tmp_path / "s").mkdir()
        path = tmp_path / "s" / "suite.yaml"
        path.write_text(f"base: {base}\ngrid: {{seed: [0]}}\n")
        assert load_suite_spec(path).base == (CONFIGS / "converge.yaml").resolve()

    def test_a_suite_base_next_to_the_suite_file_wins_over_the_name(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / "converge.yaml").write_text("name: mine\n")
        (tmp_path / "s" / "suite.yaml").write_text("base: converge.yaml\n")
        (tmp_path / "s" / "rel.yaml").write_text("base: ../other/train.yaml\n")
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "train.yaml").write_text("name: other\n")
        assert load_suite_spec(tmp_path / "s" / "suite.yaml").base == (tmp_path / "s" / "converge.yaml").resolve()
        assert load_suite_spec(tmp_path / "s" / "rel.yaml").base == (tmp_path / "other" / "train.yaml").resolve()

    def test_an_unknown_suite_base_lists_the_packaged_configs(self, tmp_path):
        path = tmp_path / "suite.yaml"
        path.write_text("base: nope\n")
        with pytest.raises(ConfigError, match=r"suite file .*suite\.yaml: base: nope not found \(looked in .*; "
                                              r"packaged train configs, by name: converge, paper, quick, synthetic\)"):
            load_suite_spec(path)


class TestRendererShorthand:
    """``renderer: nvdiffrast`` is ``renderer: {name: nvdiffrast}``: the one-line renderer swap."""

    def test_a_bare_string_names_the_renderer(self, tmp_path):
        path = tmp_path / "c.yaml"
        path.write_text("renderer: nvdiffrast\n")
        cfg = load_config(path)
        assert cfg.renderer.name == "nvdiffrast" and cfg.renderer.options == {}
        assert config_from_dict({"renderer": "pytorch3d"}).renderer.name == "pytorch3d"
        assert config_to_dict(cfg)["renderer"] == {"name": "nvdiffrast", "options": {}}

    def test_overrides_apply_on_top_of_the_shorthand(self, tmp_path):
        path = tmp_path / "c.yaml"
        path.write_text("renderer: pytorch3d\n")
        cfg = load_config(path, ["renderer.options={blur_radius: 0.5, faces_per_pixel: 16}"])
        assert cfg.renderer.name == "pytorch3d" and cfg.renderer.options["faces_per_pixel"] == 16
        assert load_config(None, ["renderer=nvdiffrast"]).renderer.name == "nvdiffrast"
        assert load_config(path, renderer__name="per_vertex").renderer.name == "per_vertex"

    def test_other_values_are_still_errors(self):
        with pytest.raises(ConfigError, match=r"renderer: expected a mapping, got int"):
            config_from_dict({"renderer": 3})
        with pytest.raises(ConfigError, match=r"renderer.name: unknown renderer 'nope'"):
            config_from_dict({"renderer": "nope"})


class TestSetDotted:
    def test_sets_a_copy_and_creates_sections(self):
        data: dict = {}
        value = {"blur_radius": 0.5}
        set_dotted(data, "renderer.options", value)
        value["blur_radius"] = 1.0
        assert data == {"renderer": {"options": {"blur_radius": 0.5}}}

    def test_errors_name_the_override_or_the_layer(self):
        with pytest.raises(ConfigError, match=r"^override optim\.lr\.x: lr is not a section$"):
            set_dotted({"optim": {"lr": 0.1}}, "optim.lr.x", 1)
        with pytest.raises(ConfigError, match=r"^set: optim\.lr\.x: lr is not a section$"):
            set_dotted({"optim": {"lr": 0.1}}, "optim.lr.x", 1, where="set")
