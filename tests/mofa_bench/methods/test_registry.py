"""The method registry: names a config may use, the builder of each, methods added from outside."""

from __future__ import annotations

import pytest
from helpers import tiny_train_config

from mofa_bench.config import load_config
from mofa_bench.errors import ConfigError
from mofa_bench.methods import BUILTIN_METHODS, Method, build_method, method_builder, method_names, registry
from mofa_bench.methods.mean_face import MeanFace, build_mean_face
from mofa_bench.methods.mofa import MoFAMethod, build_mofa_method


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_registered", {})


def test_every_builtin_name_resolves_to_its_builder():
    assert method_names()[:len(BUILTIN_METHODS)] == tuple(BUILTIN_METHODS)
    assert method_builder("mofa") is build_mofa_method
    assert method_builder("mean_face") is build_mean_face
    for name in BUILTIN_METHODS:
        assert callable(method_builder(name))


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown method 'vae'.*conv_autoencoder"):
        method_builder("vae")


def test_the_config_reads_its_method_names_from_the_registry(clean_registry):
    with pytest.raises(ConfigError, match="method: expected one of mofa, .*mean_face.*, got 'mine'"):
        load_config(None, ["method=mine"])
    registry.register_method("mine", build_mean_face)
    assert "mine" in method_names()
    assert load_config(None, ["method=mine"]).method == "mine"


def test_a_registered_method_is_built_by_name(clean_registry, tmp_path, tiny_model_path):
    from mofa_bench.decoder import MoFADecoder

    calls = []

    def build_mine(config, decoder):
        calls.append(config.method)
        return build_mean_face(config, decoder)

    registry.register_method("mine", build_mine)
    config = tiny_train_config(tmp_path, tiny_model_path, "method=mine")
    decoder = MoFADecoder(config.model.load(), config.camera.build(), renderer="per_vertex")
    method = build_method(config, decoder)
    assert isinstance(method, MeanFace) and isinstance(method, Method) and calls == ["mine"]


def test_build_method_builds_what_the_config_names(tmp_path, tiny_model_path):
    from mofa_bench.decoder import MoFADecoder

    config = tiny_train_config(tmp_path, tiny_model_path)
    decoder = MoFADecoder(config.model.load(), config.camera.build(), renderer="per_vertex")
    assert isinstance(build_method(config, decoder), MoFAMethod)


@pytest.mark.parametrize("name", ["", "mofa"])
def test_a_builtin_or_empty_name_cannot_be_registered(clean_registry, name):
    with pytest.raises(ConfigError, match="method name"):
        registry.register_method(name, build_mean_face)
