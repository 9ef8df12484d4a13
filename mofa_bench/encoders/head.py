"""The encoders' last layer: zero-initialised :class:`CodeHead`, output scale, lr groups.

- **Head** (:class:`CodeHead`): the last fully connected layer, features ``(B, F)`` →
  raw code ``(B, 257)``, with all weights and biases zero, so the first prediction is the
  zero code (mean face, frontal, centred, ambient-lit), as in the paper. It is two
  ``nn.Linear`` layers whose outputs are interleaved back into code order: ``head.main``
  gives the 256 outputs other than z-translation, ``head.z_translation`` gives code index
  :data:`Z_TRANSLATION_INDEX` (229). Separate parameters let the optimizer give
  z-translation its own learning rate exactly (:func:`parameter_groups`; the paper uses
  0.1 and 0.0005 with AdaDelta).
- **Output scale**: the network output ``o`` becomes the code ``x = o ⊙ s`` with the
  ``(257,)`` vector ``s`` = :func:`output_scale_vector` of :data:`OUTPUT_SCALE`, so that
  outputs of order one span realistic parameter ranges.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from mofa_bench.code_vector import CODE_DIM, CODE_LAYOUT, CODE_SLICES
from mofa_bench.errors import ConfigError

__all__ = ["OUTPUT_SCALE", "Z_TRANSLATION_INDEX", "CodeHead", "output_scale_vector", "parameter_groups"]

#: Index of z-translation (camera-space depth, mm) in the code vector: 227 + 2 = 229.
Z_TRANSLATION_INDEX: int = CODE_SLICES["translation"].start + 2

#: Per-part output scale: code = network output × scale. A float applies to every entry of
#: the part, a tuple gives one value per entry.
#:
#: ============  ===============  ============================================================
#: part          scale            reasoning (network outputs |o| ≲ 2)
#: ============  ===============  ============================================================
#: alpha         1                prior N(0, 1): o is already in standard deviations.
#: delta         1                prior N(0, 1).
#: beta          1                prior N(0, 1).
#: rotation      1 rad            ±1 rad ≈ ±57°: covers in-the-wild yaw, pitch and roll.
#: translation   (10, 10, 50) mm  x, y: 1 mm ≈ 1 px at the default camera (f = 2.5 W at 600 mm,
#:                                W = 240), so ±2 → ±20 px of crop misalignment; z: ±2 → ±100 mm
#:                                of depth, a ±17 % change of apparent face size.
#: gamma         0.3              SH radiance coefficients next to the 0.7 ambient offset: ±1 →
#:                                ±0.27 irradiance on the constant band, ≈ ±0.31 directional
#:                                (band 1) variation against the ambient ≈ 0.62.
#: ============  ===============  ============================================================
OUTPUT_SCALE: dict[str, float | tuple[float, ...]] = {
    "alpha": 1.0,
    "delta": 1.0,
    "beta": 1.0,
    "rotation": 1.0,
    "translation": (10.0, 10.0, 50.0),
    "gamma": 0.3,
}


def output_scale_vector(table: Mapping[str, float | Sequence[float]] | None = None,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Build the ``(257,)`` per-entry output scale from a per-part table.

    Args:
        table: part name → scale (a number for the whole part or one number per entry);
            parts not given use :data:`OUTPUT_SCALE`.
        dtype: dtype of the result.

    Returns:
        ``(257,)`` positive scales in code order (α, δ, β: 1; rotation: rad; translation:
        mm; γ: SH units per unit network output).

    Raises:
        ConfigError: unknown part name, wrong number of entries, or a non-positive scale.
    """
    merged: dict[str, Any] = dict(OUTPUT_SCALE)
    if table:
        unknown = sorted(set(table) - set(CODE_SLICES))
        if unknown:
            raise ConfigError(f"output_scale: unknown code parts {unknown}; known: {list(CODE_SLICES)}")
        merged.update(table)
    pieces = []
    for name, n in CODE_LAYOUT:
        value = merged[name]
        values = torch.as_tensor(value, dtype=torch.float64).flatten()
        if values.numel() == 1:
            values = values.expand(n)
        if values.numel() != n:
            raise ConfigError(f"output_scale.{name}: expected 1 or {n} values, got {values.numel()}")
        if not bool((values > 0).all()) or not bool(torch.isfinite(values).all()):
            raise ConfigError(f"output_scale.{name}: scales must be finite and > 0, got {value!r}")
        pieces.append(values)
    return torch.cat(pieces).to(dtype)


class CodeHead(nn.Module):
    """The last fully connected layer, features ``(B, F)`` → raw code ``(B, 257)``.

    Two ``nn.Linear`` layers whose outputs are interleaved into code order:
    ``main`` (F → 256) gives every code entry except z-translation, in order, and
    ``z_translation`` (F → 1) gives entry :data:`Z_TRANSLATION_INDEX`. Mathematically this is
    one ``Linear(F, 257)`` with weight :attr:`weight`; keeping the z row in its own
    parameters lets an optimizer give it a separate learning rate.

    All weights and biases start at zero, so the head outputs zeros (the zero code).

    Args:
        in_features: feature size F of the backbone.
    """

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.in_features = int(in_features)
        self.main = nn.Linear(self.in_features, CODE_DIM - 1)
        self.z_translation = nn.Linear(self.in_features, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set every weight and bias to zero."""
        for layer in (self.main, self.z_translation):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @property
    def weight(self) -> torch.Tensor:
        """``(257, F)`` the equivalent single-layer weight, in code order (a new tensor)."""
        w = self.main.weight
        return torch.cat([w[:Z_TRANSLATION_INDEX], self.z_translation.weight, w[Z_TRANSLATION_INDEX:]], dim=0)

    @property
    def bias(self) -> torch.Tensor:
        """``(257,)`` the equivalent single-layer bias, in code order (a new tensor)."""
        b = self.main.bias
        return torch.cat([b[:Z_TRANSLATION_INDEX], self.z_translation.bias, b[Z_TRANSLATION_INDEX:]], dim=0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` features → ``(B, 257)`` raw outputs in code order."""
        m = self.main(features)
        z = self.z_translation(features)
        return torch.cat([m[:, :Z_TRANSLATION_INDEX], z, m[:, Z_TRANSLATION_INDEX:]], dim=1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={CODE_DIM}, z_translation_index={Z_TRANSLATION_INDEX}"


def parameter_groups(encoder: nn.Module, lr: float, z_translation_lr: float) -> list[dict[str, Any]]:
    """Optimizer parameter groups giving the z-translation output its own learning rate.

    The z-translation row of the head (code index :data:`Z_TRANSLATION_INDEX`) lives in
    ``encoder.head.z_translation`` (its weight ``(1, F)`` and bias ``(1,)``); every other
    trainable parameter, including the other 256 head rows (``head.main``), uses ``lr``.

    Args:
        encoder: an encoder (:class:`~mofa_bench.encoders.base.FaceEncoder`) with a
            :class:`CodeHead` at ``.head``.
        lr: learning rate of everything else (the paper: 0.1 with AdaDelta).
        z_translation_lr: learning rate of the z-translation row (the paper: 0.0005).

    Returns:
        ``[{"name": "default", "params": [...], "lr": lr},
        {"name": "z_translation", "params": [weight, bias], "lr": z_translation_lr}]``,
        ready for any ``torch.optim`` optimizer. Frozen parameters are left out.

    Raises:
        ConfigError: the encoder has no :class:`CodeHead`, or a negative rate.
    """
    head = getattr(encoder, "head", None)
    if not isinstance(head, CodeHead):
        raise ConfigError(f"parameter_groups: {type(encoder).__name__} has no CodeHead at .head")
    if lr < 0 or z_translation_lr < 0:
        raise ConfigError(f"parameter_groups: learning rates must be >= 0, got lr={lr}, "
                          f"z_translation_lr={z_translation_lr}")
    z_params = [p for p in head.z_translation.parameters() if p.requires_grad]
    z_ids = {id(p) for p in head.z_translation.parameters()}
    rest = [p for p in encoder.parameters() if p.requires_grad and id(p) not in z_ids]
    return [
        {"name": "default", "params": rest, "lr": float(lr)},
        {"name": "z_translation", "params": z_params, "lr": float(z_translation_lr)},
    ]
