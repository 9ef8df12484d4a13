"""Where things are on the template face: contours, soft region masks and field helpers.

:class:`Face` holds the mean mesh at the build level; :func:`face_regions` derives the
signed distances, soft masks and anchor points that the identity, expression and
reflectance bases are built from. Positions are mm in the model frame (x image right =
the subject's left, y up, z towards the viewer); contours are MediaPipe vertex indices on
the subject's right (x < 0), their left counterparts are mirror images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# MediaPipe contours on the subject's right (x < 0); the left ones are their mirrors.
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291,
               375, 321, 405, 314, 17, 84, 181, 91, 146)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
RIGHT_INNER_BROW = (107, 55)
RIGHT_ALAR = (48, 64)
NOSE_BRIDGE_TOP, NOSE_TIP, CHIN = 6, 4, 152
RIGHT_MOUTH_CORNER = 61
RIGHT_EAR = 234  # face-oval vertex in front of the ear, near the jaw joint
# Image-plane (x, y) in mm of the right cheek centre on the canonical mesh.
RIGHT_CHEEK_XY = (-45.0, -25.0)


def smoothstep(t: np.ndarray) -> np.ndarray:
    """C² ramp from 0 (t ≤ 0) to 1 (t ≥ 1)."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * t * (t * (6.0 * t - 15.0) + 10.0)


def polygon_sdf(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) of ``(N, 2)`` points to a closed ``(M, 2)`` polygon."""
    a = polygon
    b = np.roll(polygon, -1, axis=0)
    ab = b - a
    ap = points[:, None, :] - a[None, :, :]
    t = np.clip(np.einsum("nmd,md->nm", ap, ab) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    closest = a[None] + t[..., None] * ab[None]
    dist = np.sqrt(((points[:, None, :] - closest) ** 2).sum(-1)).min(axis=1)
    px, py = points[:, 0:1], points[:, 1:2]
    crosses = ((a[None, :, 1] > py) != (b[None, :, 1] > py)) & (
        px < a[None, :, 0] + (py - a[None, :, 1]) * ab[None, :, 0] / np.where(ab[None, :, 1] == 0, 1e-12, ab[None, :, 1])
    )
    inside = crosses.sum(axis=1) % 2 == 1
    return np.where(inside, -dist, dist)


def interp_contour(x: np.ndarray, contour: np.ndarray) -> np.ndarray:
    """y of a contour given as ``(M, 2)`` (x, y) points, linearly interpolated at ``x``."""
    order = np.argsort(contour[:, 0], kind="stable")
    return np.interp(x, contour[order, 0], contour[order, 1])


def gaussian(vertices: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Isotropic Gaussian ``exp(-d² / 2r²)`` of ``(N, 3)`` points around ``centre (3,)``, mm → ``(N,)``."""
    d2 = ((vertices - centre) ** 2).sum(-1)
    return np.exp(-0.5 * d2 / radius ** 2)


def segment_distance(vertices: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in mm of ``(N, 3)`` points to the segment from ``a (3,)`` to ``b (3,)`` → ``(N,)``."""
    ab = b - a
    t = np.clip(((vertices - a) @ ab) / float(ab @ ab), 0.0, 1.0)
    return np.linalg.norm(vertices - (a + t[:, None] * ab), axis=1)


@dataclass
class Face:
    """The mean mesh at the build level plus what the fields are defined from.

    Attributes:
        v: ``(N, 3)`` mean shape, mm.
        tri: ``(F, 3)`` triangles.
        normals: ``(N, 3)`` unit vertex normals of the mean shape.
        phi: ``(N, K)`` Laplacian eigenfunctions of the canonical mesh, subdivided.
        canonical: ``(468, 3)`` canonical mesh vertices, mm.
        mirror: ``(468,)`` index of each canonical vertex's mirror image (x → -x).
    """

    v: np.ndarray
    tri: np.ndarray
    normals: np.ndarray
    phi: np.ndarray
    canonical: np.ndarray
    mirror: np.ndarray

    @property
    def n(self) -> int:
        return self.v.shape[0]

    @property
    def x(self) -> np.ndarray:
        return self.v[:, 0]

    @property
    def y(self) -> np.ndarray:
        return self.v[:, 1]

    def at(self, indices: tuple[int, ...] | list[int] | int) -> np.ndarray:
        """Positions of the given vertices, ``(K, 3)`` (``(3,)`` for one index), mm."""
        return self.v[np.asarray(indices)]

    def side(self, indices: tuple[int, ...], left: bool) -> tuple[int, ...]:
        """Right-side contour indices, or their mirror images (``left``)."""
        return tuple(int(self.mirror[i]) for i in indices) if left else tuple(indices)

    def contour_xy(self, indices: tuple[int, ...]) -> np.ndarray:
        """Image-plane ``(K, 2)`` (x, y) of a contour's vertices, mm."""
        return self.at(indices)[:, :2]

    def sdf(self, polygon: tuple[int, ...]) -> np.ndarray:
        """``(N,)`` image-plane signed distance (mm, negative inside) to a closed vertex contour."""
        return polygon_sdf(self.v[:, :2], self.contour_xy(polygon))


def face_regions(face: Face) -> dict[str, Any]:
    """Soft masks and anchor geometry shared by the expression and reflectance fields."""
    x, y = face.x, face.y
    out: dict[str, Any] = {}
    up_in = face.contour_xy(LIPS_INNER_UPPER)
    lo_in = face.contour_xy(LIPS_INNER_LOWER)
    corner_r, corner_l = face.at(LIPS_INNER_UPPER[0]), face.at(LIPS_INNER_UPPER[-1])
    ear = face.at(RIGHT_EAR)
    x_c = 0.5 * (corner_l[0] - corner_r[0])
    y_c = 0.5 * (corner_l[1] + corner_r[1])
    x_t = abs(ear[0])
    ax = np.abs(x)
    # Mouth line between the lips, extended from the corners (first sideways, then
    # rising) to the jaw joints; the jaw mask goes from 0 above it to 1 below it across
    # the lip gap, over a transition that widens on the cheeks.
    y_mid = 0.5 * (interp_contour(x, up_in) + interp_contour(x, lo_in))
    half_gap = np.maximum(0.5 * (interp_contour(x, up_in) - interp_contour(x, lo_in)), 1.5)
    lateral = np.clip((ax - x_c) / (x_t - x_c), 0.0, 1.0)
    y_line = np.where(ax <= x_c, y_mid, y_c + lateral ** 2 * (ear[1] - y_c))
    h = np.where(ax <= x_c, half_gap, 1.5 + 0.5 * (np.minimum(ax, x_t) - x_c))
    # The mandible barely moves near the jaw joints: fade out above the mouth corners.
    out["jaw"] = smoothstep((y_line - y) / (2.0 * h) + 0.5) * (1.0 - smoothstep((y - y_c) / 25.0))
    out["jaw_pivot"] = np.array([0.0, y_c, ear[2]])
    out["lips"] = face.sdf(LIPS_OUTER)
    out["upper_lip"] = face.sdf(LIPS_OUTER_UPPER + tuple(reversed(LIPS_INNER_UPPER)))
    out["lower_lip"] = face.sdf(LIPS_OUTER_LOWER + tuple(reversed(LIPS_INNER_LOWER)))
    out["mouth_centre"] = face.at(LIPS_OUTER).mean(axis=0)
    cheek = int(np.argmin(((face.canonical[:, :2] - np.array(RIGHT_CHEEK_XY)) ** 2).sum(1)))
    for left, tag in ((False, "right"), (True, "left")):
        upper = face.side(RIGHT_EYE_UPPER, left)
        lower = face.side(RIGHT_EYE_LOWER, left)
        out[f"eye_upper_{tag}"] = interp_contour(x, face.contour_xy(upper))
        out[f"eye_lower_{tag}"] = interp_contour(x, face.contour_xy(lower))
        out[f"eye_{tag}"] = face.sdf(upper + tuple(reversed(lower[1:-1])))
        corners = face.at((upper[0], upper[-1]))
        out[f"eye_xrange_{tag}"] = (corners[:, 0].min(), corners[:, 0].max())
        out[f"eye_centre_{tag}"] = face.at(upper + lower).mean(axis=0)
        out[f"brow_{tag}"] = face.sdf(face.side(RIGHT_BROW, left))
        out[f"brow_centre_{tag}"] = face.at(face.side(RIGHT_BROW, left)).mean(axis=0)
        out[f"inner_brow_{tag}"] = face.at(face.side(RIGHT_INNER_BROW, left)).mean(axis=0)
        out[f"alar_{tag}"] = face.at(face.side(RIGHT_ALAR, left)).mean(axis=0)
        out[f"cheek_{tag}"] = face.at(int(face.mirror[cheek]) if left else cheek)
        out[f"corner_{tag}"] = face.at(int(face.mirror[RIGHT_MOUTH_CORNER]) if left else RIGHT_MOUTH_CORNER)
    return out
