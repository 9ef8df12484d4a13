"""Finding faces a single pass misses: small ones (tiles) and tilted ones (a rotation search).

MediaPipe's short-range detector sees its input letterboxed to 128 × 128 px and was
trained on roughly upright faces, so a face under ≈ 1/10 of the view or rolled past
≈ 30° goes unseen. Two fallbacks, each tried only when the passes before it confirmed no
face (:meth:`~mofa_bench.photos.detection.MediaPipeDetector.confirm`):

- :func:`tiles`: square windows whose side is a few times the smallest face wanted
  (:data:`TILE_FACES` × ``min_face``), half-overlapping, so a 40-px face fills ≈ 1/4 of
  its window;
- :func:`rotate_view` / :func:`unrotate_points`: the photo (or a region of it) turned by
  each angle of :data:`ROTATIONS` about its centre (whole view, windows, then tiles); what
  is found there is turned back.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ROTATIONS", "TILE_FACES", "rotate_view", "tiles", "unrotate_points"]

#: Angles (degrees, counter-clockwise in the image) of the rotation search, in order.
ROTATIONS: tuple[float, ...] = (30.0, -30.0, 60.0, -60.0)
#: A tile's side in smallest-face sides.
TILE_FACES: float = 4.0


def tiles(height: int, width: int, side: int) -> list[tuple[int, int]]:
    """Top-left corners of half-overlapping ``side``-px square windows covering an ``H × W`` photo."""

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        count = math.ceil((length - side) / (side / 2)) + 1
        return sorted({round(i * (length - side) / (count - 1)) for i in range(count)})

    return [(x, y) for y in starts(height) for x in starts(width)]


def rotate_view(rgb: np.ndarray, angle: float) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    """The photo turned by ``angle`` degrees (counter-clockwise) about its centre, canvas enlarged.

    Args:
        rgb: ``(H, W, 3)`` uint8.
        angle: degrees.

    Returns:
        ``(view, centre, view_centre)``: the ``(H', W', 3)`` uint8 view (new corners
        filled with the photo's mean colour), and the rotation centre in photo px and in
        view px (for :func:`unrotate_points`).
    """
    from PIL import Image

    fill = tuple(int(v) for v in rgb.reshape(-1, 3).mean(axis=0))
    image = Image.fromarray(rgb).rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=fill)
    height, width = rgb.shape[:2]
    return np.asarray(image), (width / 2.0, height / 2.0), (image.size[0] / 2.0, image.size[1] / 2.0)


def unrotate_points(points: np.ndarray, angle: float, centre: tuple[float, float],
                    view_centre: tuple[float, float]) -> np.ndarray:
    """Map ``(..., 2)`` points of a :func:`rotate_view` view back to photo px."""
    a = math.radians(angle)
    p = np.asarray(points, dtype=np.float64) - np.asarray(view_centre)
    # the view is the photo turned counter-clockwise on screen (y down): undo by turning back
    x = p[..., 0] * math.cos(a) - p[..., 1] * math.sin(a)
    y = p[..., 0] * math.sin(a) + p[..., 1] * math.cos(a)
    return np.stack([x, y], axis=-1) + np.asarray(centre)
