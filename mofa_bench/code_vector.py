"""The 257-dimensional MoFA code vector: one definition of its layout.

``x = [α (80) | δ (64) | β (80) | rotation (3) | translation (3) | γ (27)]``

- α: identity shape, δ: expression, β: reflectance; all ~ N(0, 1) under the prior.
- rotation: Euler angles (rad), applied as R = Rz · Ry · Rx (x = pitch, y = yaw, z = roll),
  about the model origin. Zero = frontal.
- translation: mm, added in camera space on top of the camera's default head distance.
- γ: 9 spherical-harmonic illumination coefficients per RGB channel, stored band-major
  (``γ.view(9, 3)``: row b = band b for R, G, B). :data:`AMBIENT_OFFSET` is added to the
  constant band of every channel, so the zero code is lit ambiently.

Note the order: the paper lists expression after shape and before reflectance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mofa_checks import check_tensor

#: (name, length) of each part, in order.
CODE_LAYOUT: tuple[tuple[str, int], ...] = (
    ("alpha", 80),
    ("delta", 64),
    ("beta", 80),
    ("rotation", 3),
    ("translation", 3),
    ("gamma", 27),
)
#: Length of the code vector (257).
CODE_DIM: int = sum(n for _, n in CODE_LAYOUT)
#: Offset added to the constant SH band of each colour channel.
AMBIENT_OFFSET: float = 0.7


def code_slices() -> dict[str, slice]:
    """Name → slice into the code vector."""
    out, start = {}, 0
    for name, n in CODE_LAYOUT:
        out[name] = slice(start, start + n)
        start += n
    return out


CODE_SLICES: dict[str, slice] = code_slices()


def part_entries(name: str) -> slice:
    """Code entries of a named part: a key of :data:`CODE_SLICES`, or ``"jaw_open"`` (the
    first expression mode alone, the default model's jaw opening)."""
    if name == "jaw_open":
        start = CODE_SLICES["delta"].start
        return slice(start, start + 1)
    if name not in CODE_SLICES:
        raise KeyError(f"code part {name!r}: expected 'jaw_open' or one of {', '.join(CODE_SLICES)}")
    return CODE_SLICES[name]


@dataclass(frozen=True)
class CodeParts:
    """The named parts of a batch of codes; every field is ``(B, k)``."""

    alpha: torch.Tensor
    delta: torch.Tensor
    beta: torch.Tensor
    rotation: torch.Tensor
    translation: torch.Tensor
    gamma: torch.Tensor

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name, _ in CODE_LAYOUT}


def split_code(code: torch.Tensor) -> CodeParts:
    """Split ``(B, 257)`` codes into named parts (views, no copy).

    Raises:
        InputError: wrong shape or dtype, or NaN/Inf in the code.
    """
    check_tensor("code", code, f"B {CODE_DIM}", floating=True, finite=True)
    return CodeParts(**{name: code[:, s] for name, s in CODE_SLICES.items()})


def join_code(parts: CodeParts | None = None, **named: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`split_code`.

    Accepts a :class:`CodeParts` or keyword tensors; missing parts are zero, so
    ``join_code(alpha=a)`` gives a code with only identity set. Returns ``(B, 257)``.
    """
    if parts is not None:
        named = {**parts.as_dict(), **named}
    unknown = set(named) - set(CODE_SLICES)
    if unknown:
        from mofa_bench.errors import InputError

        raise InputError(f"join_code: unknown code parts {sorted(unknown)}; known: {list(CODE_SLICES)}")
    if not named:
        from mofa_bench.errors import InputError

        raise InputError("join_code: give at least one part")
    ref = next(iter(named.values()))
    dims: dict[str, int] = {}
    pieces = []
    for name, n in CODE_LAYOUT:
        if name in named:
            pieces.append(check_tensor(name, named[name], f"B {n}", dims, floating=True))
        else:
            pieces.append(ref.new_zeros(ref.shape[0], n))
    return torch.cat(pieces, dim=1)


def zero_code(batch_size: int = 1, device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(B, 257)`` zeros: the mean face, frontal, centred, ambient-lit."""
    return torch.zeros(batch_size, CODE_DIM, device=device, dtype=dtype)
