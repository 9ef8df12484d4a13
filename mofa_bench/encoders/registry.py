"""Encoders by name: :func:`build_encoder` and :func:`encoder_names`.

Usage::

    encoder = build_encoder("alexnet", pretrained="weights/alexnet-owt-7be5be79.pth")
    code = encoder(images)                                  # (B, 3, 240, 240) → (B, 257)
"""

from __future__ import annotations

import inspect
from functools import partial
from pathlib import Path
from typing import Any, Callable

from mofa_bench.encoders.alexnet import AlexNetEncoder
from mofa_bench.encoders.base import FaceEncoder
from mofa_bench.encoders.pretrained import load_pretrained
from mofa_bench.encoders.resnet import ResNetEncoder
from mofa_bench.encoders.vgg import VGG16Encoder
from mofa_bench.errors import ConfigError

__all__ = ["build_encoder", "encoder_names"]

_ENCODERS: dict[str, Callable[..., FaceEncoder]] = {
    "alexnet": AlexNetEncoder,
    "vgg16": VGG16Encoder,
    "resnet18": partial(ResNetEncoder, depth=18),
    "resnet50": partial(ResNetEncoder, depth=50),
}
_ALIASES = {"vggface": "vgg16", "vgg-face": "vgg16", "vgg_face": "vgg16"}


def encoder_names() -> tuple[str, ...]:
    """Names accepted by :func:`build_encoder`."""
    return tuple(_ENCODERS)


def build_encoder(name: str, pretrained: str | Path | None = None, image_size: int = 240,
                  **options: Any) -> FaceEncoder:
    """Build an encoder by name, optionally with local pretrained backbone weights.

    Args:
        name: ``"alexnet"``, ``"vgg16"`` (alias ``"vggface"``), ``"resnet18"`` or
            ``"resnet50"`` (case-insensitive).
        pretrained: path of a local state_dict (``.pth``/``.pt``) to load with
            :func:`load_pretrained` (strict); ``None`` keeps the random initialisation.
            Nothing is downloaded.
        image_size: nominal square input size, px.
        **options: constructor options of the class (``dropout``, ``mean``, ``std``,
            ``output_scale``).

    Returns:
        The encoder (in training mode), with a zero head: it predicts the zero code.

    Raises:
        ConfigError: unknown name (the message lists the known names) or option.
        CheckpointError: ``pretrained`` is missing, unreadable or does not match.
    """
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _ENCODERS:
        raise ConfigError(f"encoder: unknown name {name!r}; known: {', '.join(encoder_names())}")
    factory = _ENCODERS[key]
    cls = factory.func if isinstance(factory, partial) else factory
    accepted = {p for c in (cls, FaceEncoder) for p in inspect.signature(c.__init__).parameters}
    accepted -= {"self", "kwargs", "depth"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(f"encoder {key!r}: unknown options {unknown}; accepted: {sorted(accepted - {'image_size'})}")
    encoder = factory(image_size=image_size, **options)
    if pretrained is not None:
        load_pretrained(encoder, pretrained)
    return encoder
