"""The face region of a crop: the pixels inside the detected face's outline.

A per-image fit compares the model's colours with the photo wherever the model's
vertices land; where a misplaced model lands on hair or background, those pixels pull
the pose and the face towards them. The face region keeps the comparison on the face:
it is the convex hull of the detected points (MediaPipe's 468 mesh vertices — forehead
to chin, ear to ear — or, without a mesh, the 68 iBUG points), filled.
"""

from __future__ import annotations

import numpy as np

from mofa_bench.errors import InputError

__all__ = ["face_region_mask"]


def face_region_mask(points: np.ndarray, size: int) -> np.ndarray:
    """The filled convex hull of ``points`` on a ``size × size`` grid.

    Args:
        points: ``(K ≥ 3, 2)`` x, y in the crop's pixels (origin at the top-left pixel
            corner; a pixel is inside when its centre is).
        size: the crop's side S, px.

    Returns:
        ``(S, S)`` float32 mask, 1 inside the hull and 0 outside.

    Raises:
        InputError: fewer than 3 points, non-finite points or a size < 1.
    """
    from scipy.spatial import ConvexHull, QhullError

    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3 or not np.all(np.isfinite(points)):
        raise InputError(f"points: expected finite (K ≥ 3, 2) crop pixels, got shape {points.shape}")
    if size < 1:
        raise InputError(f"size: expected ≥ 1 px, got {size}")
    try:
        hull = points[ConvexHull(points).vertices]  # counter-clockwise in x-right, y-up terms
    except QhullError:  # all points on a line: no area
        return np.zeros((size, size), np.float32)
    centres = (np.arange(size, dtype=np.float64) + 0.5)
    x, y = np.meshgrid(centres, centres)  # (S, S): pixel centres, row = y
    inside = np.ones((size, size), dtype=bool)
    for a, b in zip(hull, np.roll(hull, -1, axis=0)):
        inside &= (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]) >= -1e-9
    return inside.astype(np.float32)
