"""Validated options of the PyTorch3D backend, in pixels and mm (not NDC)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from mofa_checks import InputError

#: ``max_faces_per_bin`` value that sizes the bins from the triangles
#: (:func:`~renderers.pytorch3d.bins.bin_capacity`).
AUTO_CAPACITY = "auto"

#: Probability a triangle gets at ``blur_radius`` when ``sigma`` is left to its default
#: (PyTorch3D's recipe ``blur_radius = log(1 / 1e-4 - 1) * sigma``).
_EDGE_PROBABILITY = 1e-4

#: Tile side (px) of CPU rasterization: at 64² and 240² with the default model the
#: fastest of 8, 16 and 32 px (``mofa-bench bench renderers``, reports/bench).
DEFAULT_CPU_TILE = 16


@dataclass(frozen=True)
class RasterSettings:
    """Validated options of the PyTorch3D backend (units: pixels and mm, not NDC).

    Attributes:
        blur_radius: px, ≥ 0. Triangles within this distance of a pixel centre touch the
            pixel; 0 = hard rasterization. Passed to PyTorch3D as ``(2 r / min(H, W))²``
            (its squared-NDC unit).
        faces_per_pixel: ≥ 1, nearest triangles kept per pixel. Must be 1 in hard mode
            (only the nearest one is drawn there). In soft mode PyTorch3D keeps the K
            nearest *in depth* among all triangles within ``blur_radius``, so K must be
            large enough for the triangles containing the pixel to be among them (≥ 8 when
            triangles are a few pixels across); as in SoftRas, a pixel on an edge shared by
            two triangles gets ``alpha = 1 - 0.5 · 0.5 = 0.75`` from those two alone.
        sigma: px², > 0, or None. Sharpness of the soft coverage ``sigmoid(-d / sigma)``
            (``d``: signed squared distance, px²). Default ``blur_radius² / ln(1e4 - 1)``,
            i.e. a triangle at ``blur_radius`` gets probability 1e-4. Soft mode only.
        gamma: mm, > 0. Depth temperature of the soft colour blend: a triangle Δz mm
            behind the nearest one is weighted by ``exp(-Δz / gamma)``. Soft mode only.
            (PyTorch3D's dimensionless ``gamma`` times ``zfar - znear``.)
        bin_size: coarse-to-fine bin size in pixels for the CUDA kernel; None = PyTorch3D's
            heuristic, 0 = naive rasterization. PyTorch3D's CPU kernel is naive only, so
            on CPU it is always 0.
        max_faces_per_bin: CUDA coarse rasterizer capacity per bin. ``"auto"`` (default):
            :func:`~renderers.pytorch3d.bins.bin_capacity` of each batch, the most triangles any one bin can receive
            (so no bin overflows), found from the triangles' screen bounding boxes at the
            cost of one device sync per call; None = PyTorch3D's default
            ``max(10000, F / 5)``; an int: that capacity (a bin holding more drops triangles).
        cull_backfaces: skip triangles seen from behind (clockwise on screen, given the
            model's counter-clockwise-from-outside winding).
        cpu_tile: px, ≥ 0. On the CPU the image is rasterized in tiles of this side, each
            given only the triangles near it (:mod:`~renderers.pytorch3d.tiles`); 0 = the
            whole image at once. The result is the same; only the time changes.
    """

    blur_radius: float = 0.0
    faces_per_pixel: int = 1
    sigma: float | None = None
    gamma: float = 1.0
    bin_size: int | None = None
    max_faces_per_bin: int | Literal["auto"] | None = "auto"
    cull_backfaces: bool = False
    cpu_tile: int = DEFAULT_CPU_TILE

    def __post_init__(self) -> None:
        def number(name: str, value: Any) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"{name}: expected a finite number, got {value!r}")
            return float(value)

        def integer(name: str, value: Any, minimum: int) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InputError(f"{name}: expected an int >= {minimum}, got {value!r}")
            return value

        if number("blur_radius", self.blur_radius) < 0:
            raise InputError(f"blur_radius: expected >= 0 px, got {self.blur_radius}")
        integer("faces_per_pixel", self.faces_per_pixel, 1)
        if self.blur_radius == 0 and self.faces_per_pixel != 1:
            raise InputError(
                f"faces_per_pixel: hard rasterization (blur_radius=0) draws only the nearest face, so it "
                f"must be 1, got {self.faces_per_pixel}; set blur_radius > 0 for soft rasterization"
            )
        if self.sigma is not None and number("sigma", self.sigma) <= 0:
            raise InputError(f"sigma: expected > 0 px², got {self.sigma}")
        if number("gamma", self.gamma) <= 0:
            raise InputError(f"gamma: expected > 0 mm, got {self.gamma}")
        if self.bin_size is not None:
            integer("bin_size", self.bin_size, 0)
        if self.max_faces_per_bin is not None and self.max_faces_per_bin != AUTO_CAPACITY:
            integer("max_faces_per_bin", self.max_faces_per_bin, 1)
        integer("cpu_tile", self.cpu_tile, 0)
        if not isinstance(self.cull_backfaces, bool):
            raise InputError(f"cull_backfaces: expected a bool, got {self.cull_backfaces!r}")

    @property
    def soft(self) -> bool:
        """Whether soft rasterization is on (``blur_radius > 0``)."""
        return self.blur_radius > 0

    @property
    def sigma_px2(self) -> float:
        """The effective ``sigma`` in px² (the default derived from ``blur_radius``)."""
        if self.sigma is not None:
            return float(self.sigma)
        return self.blur_radius ** 2 / math.log(1.0 / _EDGE_PROBABILITY - 1.0)
