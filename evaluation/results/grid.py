"""Grids of cells: spec checks, presets and the expansion of named axes into cells.

A *grid* is a frozen spec dataclass whose tuple fields are axes (``batches``,
``image_sizes``, …) plus settings (device, warm-up, repeats, budget, time limit). Its
``validate`` method uses the ``check_*`` guards here, :func:`spec_preset` builds its full
or quick variant for a device, and :func:`expand_grid` lists its cells.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Mapping, Sequence, TypeVar

from mofa_bench.errors import ConfigError

__all__ = [
    "SpecError",
    "check_sizes",
    "check_time_limit",
    "check_timing",
    "expand_grid",
    "spec_preset",
]

#: A grid spec dataclass (see :func:`spec_preset`).
S = TypeVar("S")


class SpecError(ConfigError):
    """A grid or results option is invalid (unknown name, empty axis, bad number, missing CSV)."""


def check_sizes(name: str, values: Sequence[int], minimum: int = 1) -> None:
    """Raise :class:`SpecError` unless ``values`` is a non-empty sequence of ints ≥ ``minimum``."""
    if not values:
        raise SpecError(f"{name}: expected at least one value")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SpecError(f"{name}: expected integers ≥ {minimum}, got {value!r}")


def check_time_limit(seconds: float | None) -> None:
    """Raise :class:`SpecError` unless ``seconds`` is ``None`` or a time > 0."""
    if seconds is not None and not (isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
                                    and seconds > 0):
        raise SpecError(f"--time-limit-s: expected a time > 0 s, got {seconds!r}")


def check_timing(warmup: int, repeats: int) -> None:
    """Raise :class:`SpecError` unless ``warmup ≥ 0`` and ``repeats ≥ 1``."""
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise SpecError(f"warmup: expected an integer ≥ 0, got {warmup!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise SpecError(f"repeats: expected an integer ≥ 1, got {repeats!r}")


def spec_preset(cls: type[S], device: str, quick_grid: dict[str, Any] | None, changes: dict[str, Any]) -> S:
    """A grid spec dataclass on ``device``: the quick grid or the full one, then ``changes``.

    ``quick_grid`` (field values of the CPU-sized grid) also sets warm-up 1 and 3 repeats;
    ``None`` is the class's full grid, with its own timing on CUDA and warm-up 1 and 5
    repeats on the CPU. ``None`` values in ``changes`` are ignored. The result is validated.
    """
    from mofa_bench.environment import resolve_device

    dev = resolve_device(device)
    if quick_grid is not None:
        base = cls(device=str(dev), warmup=1, repeats=3, **quick_grid)
    elif dev.type == "cuda":
        base = cls(device=str(dev))
    else:
        base = cls(device=str(dev), warmup=1, repeats=5)
    return dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None}).validate()



def expand_grid(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every cell of the grid spanned by ``axes``, as ``{axis: value}`` dicts.

    The first axis varies slowest, the last fastest (``itertools.product`` order):
    ``expand_grid({"a": (1, 2), "b": ("x", "y")})`` is ``[{"a": 1, "b": "x"},
    {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]``.

    Raises:
        SpecError: an axis has no values.
    """
    empty = [name for name, values in axes.items() if len(values) == 0]
    if empty:
        raise SpecError(f"{', '.join(empty)}: expected at least one value")
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*(axes[name] for name in names))]
