"""Checks of a baseline's ``method_options`` and the ℓ2,1 loss between whole images.

Every key of ``method_options`` must be one the method knows; a wrong key or value is a
:class:`~mofa_bench.errors.ConfigError` naming it as ``method_options.<key>``.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from mofa_bench.errors import ConfigError
from mofa_bench.losses import photometric_loss
from renderers.base import PhotometricSamples
from mofa_checks import check_tensor

__all__ = ["check_method_options", "image_photometric_loss", "positive_int"]


def check_method_options(method: str, options: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with ``options`` after checking every key.

    Args:
        method: the method's name (for the message).
        options: the config's ``method_options``.
        defaults: every known key with its default value.

    Raises:
        ConfigError: ``method_options.<key>: unknown option ...`` listing the known keys.
    """
    for key in options:
        if key not in defaults:
            raise ConfigError(f"method_options.{key}: unknown option of the {method} method; "
                              f"known options: {', '.join(defaults) or 'none'}")
    return {**defaults, **options}


def positive_int(key: str, value: Any) -> int:
    """``value`` as an int > 0, else :class:`ConfigError` naming ``method_options.<key>``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"method_options.{key}: expected an integer > 0, got {value!r}")
    return value


def image_photometric_loss(predicted: torch.Tensor, observed: torch.Tensor, weights: torch.Tensor | None = None,
                           normalization: str = "paper") -> torch.Tensor:
    """ℓ2,1 RGB distance between images (:func:`~mofa_bench.losses.photometric_loss` over pixels).

    Args:
        predicted: ``(B, 3, H, W)`` predicted images, RGB in [0, 1] (differentiable).
        observed: ``(B, 3, H, W)`` target images, RGB in [0, 1].
        weights: ``(B, 1, H, W)`` per-pixel weights in [0, 1]; default all ones (the
            mean over the whole image).
        normalization: ``"paper"`` divides by H·W, ``"weights"`` by Σ weights.

    Returns:
        Scalar tensor: per image ``Σ w ‖p − o‖₂ / (H·W or Σ w)``, averaged over the batch.
    """
    dims: dict[str, int] = {}
    check_tensor("predicted", predicted, "B 3 H W", dims, floating=True)
    check_tensor("observed", observed, "B 3 H W", dims, floating=True)
    if weights is None:
        weights = predicted.new_ones(predicted.shape[0], 1, *predicted.shape[2:])
    check_tensor("weights", weights, "B 1 H W", dims, floating=True)
    samples = PhotometricSamples(predicted=predicted.flatten(2).transpose(1, 2),
                                 observed=observed.flatten(2).transpose(1, 2), weights=weights.flatten(1))
    return photometric_loss(samples, normalization)
