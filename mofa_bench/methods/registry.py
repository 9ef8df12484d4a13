"""The method registry: a config's ``method`` name → the builder of that method.

Every method the toolkit trains or evaluates is registered here by name, with the
module and function that build it (imported only when the method is built, so reading
the names costs nothing and a config can check its ``method`` before anything heavy is
loaded)::

    from mofa_bench.methods import build_method, method_names
    method_names()                              # ('mofa', 'conv_autoencoder', ...)
    method = build_method(config, decoder)      # the method config.method names

A method added from outside the package registers its builder with
:func:`register_method`; :func:`method_names` then lists it and configs accept it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from mofa_bench.errors import ConfigError

if TYPE_CHECKING:
    from mofa_bench.config import TrainConfig
    from mofa_bench.decoder import MoFADecoder
    from mofa_bench.methods.base import Method, MethodBuilder

#: The built-in methods: name → ``"module:function"`` of its builder ``(config, decoder) -> Method``.
BUILTIN_METHODS: dict[str, str] = {
    "mofa": "mofa_bench.methods.mofa:build_mofa_method",
    "conv_autoencoder": "mofa_bench.methods.conv_autoencoder:build_conv_autoencoder",
    "learned_decoder": "mofa_bench.methods.learned_decoder:build_learned_decoder",
    "fit": "mofa_bench.methods.fit:build_fit",
    "code_regression": "mofa_bench.methods.code_regression:build_code_regression",
    "mean_face": "mofa_bench.methods.mean_face:build_mean_face",
    "inversefacenet": "mofa_bench.methods.inversefacenet:build_inversefacenet",
    "multilevel": "mofa_bench.methods.multilevel:build_multilevel",
}

_registered: dict[str, MethodBuilder] = {}


def method_names() -> tuple[str, ...]:
    """Every method a config may name, the built-in ones first (in a fixed order)."""
    return tuple(BUILTIN_METHODS) + tuple(name for name in _registered if name not in BUILTIN_METHODS)


def register_method(name: str, builder: MethodBuilder) -> None:
    """Register ``builder`` under ``name`` (replacing an earlier registration of that name).

    Raises:
        ConfigError: ``name`` is empty or a built-in method's.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"method name: expected a non-empty string, got {name!r}")
    if name in BUILTIN_METHODS:
        raise ConfigError(f"method name: {name!r} is a built-in method; register under another name")
    _registered[name] = builder


def method_builder(name: str) -> MethodBuilder:
    """The builder ``(config, decoder) -> Method`` of a method name.

    Raises:
        ConfigError: an unknown name (the message lists the known ones).
    """
    if name in _registered:
        return _registered[name]
    if name not in BUILTIN_METHODS:
        raise ConfigError(f"method: unknown method {name!r}; known methods: {', '.join(method_names())}")
    module, function = BUILTIN_METHODS[name].split(":")
    return getattr(importlib.import_module(module), function)


def build_method(config: TrainConfig, decoder: MoFADecoder) -> Method:
    """The method ``config.method`` names, built around ``decoder`` (its face model, camera and renderer)."""
    return method_builder(config.method)(config, decoder)
