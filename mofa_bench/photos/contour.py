"""A jaw that follows the face: iBUG-68's 17 jaw points and the brows' outer ends on the visible outline.

300-W annotates the jaw (points 0-16) on the face's *visible outline*: as the head turns,
the far side's points move onto the cheek's silhouette and the near side's onto the jaw's
edge, so no fixed mesh vertex marks them. Given MediaPipe's detected 3-D mesh (478 points,
x, y in px, z depth), each side's outline is found along a fixed chain of MediaPipe's face
oval, ear level (127 / 356) to chin (152):

- each chain vertex has a fixed *candidate line* of mesh vertices running from it towards
  the nose tip (canonical mesh, frontal view; :func:`candidate_lines`);
- for the pose the mesh implies, the line's *outline vertex* is the candidate that lies
  farthest out in the image along the direction from the face's centre (the mean of the
  468 points) to the chain vertex: on a frontal face the chain vertex itself, on the far
  side of a turned head the cheek's silhouette in front of it;
- the outline is the polyline through the chain's outline vertices, and jaw point j sits
  at the fraction :data:`JAW_FRACTIONS` [j] of its side's arc length (0 = ear level,
  1 = chin), the fractions 300-W's spacing implies, shifted outward by
  :data:`JAW_OUTSET` (300-W's jaw is the face's edge, a little outside MediaPipe's oval
  towards the chin). Both are calibrated on scikit-image's ``lfw_subset`` faces 0-49
  against dlib's 68-point predictor (medians, left/right symmetrised:
  ``python tests/photos/bm_jaw.py --calibrate``); the other faces measure it.

Where the photo shows the outline, the jaw points then move onto it
(:func:`snap_to_edges`): each searches the photo along its normal to the outline, within
:data:`EDGE_REACH` outer-eye-corner distances, for the strongest edge (colour gradient,
weighted by a Gaussian of width :data:`EDGE_PRIOR` about the outline), and moves there
only if its whole search line lies inside the photo and the edge stands out (at least
:data:`EDGE_CONTRAST` times the line's median gradient, and a step of 4 grey levels or
more); the moves are median-filtered along the jaw. MediaPipe's oval follows its prior
of a face's shape and sits inside the outline of a face shaped otherwise (on renders of
the default model, 0.18 eye-corner distances above the chin); a face cut off by the
photo's border (e.g. ``lfw_subset``'s tight crops) keeps the mesh's estimate.

The brows' outer ends (17, 26) are the outermost brow position still facing the camera,
halfway between the brow's upper and lower edge (:data:`BROW_CHAINS`,
:data:`BROW_LOWER_CHAINS`): 300-W puts them on the brow's tail, below MediaPipe's upper
brow line (against dlib's predictor on ``lfw_subset`` faces 0-49 the mid-line is nearer
than either edge; faces 50-99 and the astronaut agree).
Confidence: :func:`~mofa_bench.photos.landmarks68.point_confidence` of the vertices
used (interpolated along the outline), so contour points keep their low grazing-angle
confidence.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from mofa_bench.errors import InputError

__all__ = ["BROW_CHAINS", "BROW_LOWER_CHAINS", "EDGE_CONTRAST", "EDGE_PRIOR", "EDGE_REACH", "JAW_CHAINS",
           "JAW_FRACTIONS", "JAW_OUTSET", "candidate_lines", "contour_landmarks", "snap_to_edges"]

#: The face-oval chains, ear level → chin: the subject's right (image left) and left side.
JAW_CHAINS: tuple[tuple[int, ...], tuple[int, ...]] = (
    (127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152),
    (356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152),
)
#: Brow vertices, outer → inner: right brow (iBUG 17 at its outer end), left brow (26).
BROW_CHAINS: tuple[tuple[int, ...], tuple[int, ...]] = ((70, 63, 105, 66, 107), (300, 293, 334, 296, 336))
#: The brows' lower edges, vertex for vertex below :data:`BROW_CHAINS`.
BROW_LOWER_CHAINS: tuple[tuple[int, ...], tuple[int, ...]] = ((46, 53, 52, 65, 55), (276, 283, 282, 295, 285))
#: Arc-length fraction (ear level 0 → chin 1) of iBUG jaw points 0..8 along their side's
#: outline; 9..16 mirror 7..0.
JAW_FRACTIONS: tuple[float, ...] = (0.024, 0.144, 0.269, 0.39, 0.51, 0.632, 0.758, 0.877, 1.0)
#: Outward shift of jaw points 0..8 (9..16 mirror them) from the outline, in outer-eye-corner
#: distances, along the direction from the face's centre: 300-W's jaw lies on the face's
#: edge, a little outside MediaPipe's face oval towards the chin (calibrated with
#: :data:`JAW_FRACTIONS`).
JAW_OUTSET: tuple[float, ...] = (0.03, 0.019, 0.01, 0.017, 0.027, 0.039, 0.038, 0.053, 0.045)
#: :func:`snap_to_edges` searches this far (outer-eye-corner distances) either side of the outline,
EDGE_REACH: float = 0.12
#: ... weighting edges by a Gaussian of this width (same unit) about it,
EDGE_PRIOR: float = 0.1
#: ... and moves a point only to an edge this many times the search line's median gradient.
EDGE_CONTRAST: float = 4.0
#: ... and at least a step of this many grey levels (of 255),
_EDGE_MIN_STEP = 4.0
#: The photo is smoothed with a Gaussian of this width (outer-eye-corner distances) first.
_EDGE_SMOOTH = 0.015
#: Samples along each search line.
_EDGE_SAMPLES = 49
#: Faces larger than this (outer-eye-corner distance, px) are searched in a copy shrunk to it.
_EDGE_WORK_SCALE = 100.0
#: Candidate lines run from the chain vertex this far towards the nose tip (fraction).
_LINE_REACH = 0.45
#: ... within this distance of that segment (fraction of its full length).
_LINE_BAND = 0.07
_NOSE_TIP = 4
#: MediaPipe vertices of the outer eye corners (iBUG 36, 45).
_EYE_CORNERS = (33, 263)


@lru_cache(maxsize=1)
def candidate_lines() -> dict[int, tuple[int, ...]]:
    """Per chain vertex of :data:`JAW_CHAINS`, its candidate line: mesh vertices from it towards the nose tip.

    Built from the canonical mesh in frontal view (x, y): the vertices within
    ``_LINE_BAND`` of the segment from the chain vertex to ``_LINE_REACH`` of the way to
    the nose tip, ordered outward → inward, the chain vertex first.
    """
    from mofa_bench.face_model.mediapipe_mesh import load_canonical_mesh

    xy = load_canonical_mesh().vertices[:, :2]
    tip = xy[_NOSE_TIP]
    lines: dict[int, tuple[int, ...]] = {}
    for chain in JAW_CHAINS:
        for vertex in chain:
            start = xy[vertex]
            axis = tip - start
            length = float(np.linalg.norm(axis))
            t = (xy - start) @ axis / length ** 2
            off = np.abs((xy - start) @ np.array([-axis[1], axis[0]])) / length ** 2
            picked = np.flatnonzero((t >= 0) & (t <= _LINE_REACH) & (off <= _LINE_BAND))
            order = [vertex] + [int(k) for k in picked[np.argsort(t[picked])] if k != vertex]
            lines[vertex] = tuple(order)
    return lines


def _outline(points: np.ndarray, confidence: np.ndarray, chain: tuple[int, ...],
             centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``((K, 2) outline vertices' px, (K,) their confidences)`` of one chain."""
    lines = candidate_lines()
    out, conf = [], []
    for vertex in chain:
        line = np.asarray(lines[vertex])
        direction = points[vertex] - centre
        direction = direction / max(float(np.linalg.norm(direction)), 1e-9)
        best = line[int(np.argmax(points[line] @ direction))]
        out.append(points[best])
        conf.append(confidence[best])
    return np.asarray(out), np.asarray(conf)


def _along(polyline: np.ndarray, values: np.ndarray, fractions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points (and interpolated values) at arc-length ``fractions`` of a ``(K, 2)`` polyline."""
    steps = np.linalg.norm(np.diff(polyline, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    at = fractions * arc[-1]
    xs = np.interp(at, arc, polyline[:, 0])
    ys = np.interp(at, arc, polyline[:, 1])
    return np.stack([xs, ys], axis=1), np.interp(at, arc, values)


def _brow_end(points: np.ndarray, facing: np.ndarray, confidence: np.ndarray,
              upper: tuple[int, ...], lower: tuple[int, ...]) -> tuple[np.ndarray, float]:
    """The first (outermost) upper/lower brow vertex pair whose upper vertex faces the camera: their midpoint."""
    for a, b in zip(upper, lower):
        if facing[a] > 0:
            break
    else:
        a, b = upper[0], lower[0]
    return (points[a] + points[b]) / 2.0, float(min(confidence[a], confidence[b]))


def snap_to_edges(rgb: np.ndarray, points: np.ndarray, centre: np.ndarray,
                  scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Move outline points onto the photo's edge along their normals, where it is visible (module docstring).

    Args:
        rgb: ``(H, W, 3)`` uint8 photo.
        points: ``(K ≥ 2, 2)`` px, an open polyline (the jaw, ear to ear).
        centre: ``(2,)`` px, the face's centre (normals point away from it).
        scale: the outer-eye-corner distance, px.

    Returns:
        ``((K, 2) moved points, (K,) moves along the normals in px)``.
    """
    from PIL import Image
    from scipy import ndimage

    points = np.asarray(points, dtype=np.float64)
    count = len(points)
    tangent = np.empty_like(points)
    tangent[1:-1] = points[2:] - points[:-2]
    tangent[0], tangent[-1] = points[1] - points[0], points[-1] - points[-2]
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    normal[np.einsum("kc,kc->k", normal, points - centre) < 0] *= -1.0
    reach = EDGE_REACH * scale
    t = np.linspace(-reach, reach, _EDGE_SAMPLES)
    lines = points[:, None, :] + t[None, :, None] * normal[:, None, :]          # (K, S, 2) px
    height, width = rgb.shape[:2]
    ends = lines[:, [0, -1]]
    inside = ((ends[..., 0] >= 0) & (ends[..., 0] <= width) & (ends[..., 1] >= 0)
              & (ends[..., 1] <= height)).all(axis=1)
    if scale <= 0 or not inside.any():
        return points.copy(), np.zeros(count)
    # the region the lines cover, shrunk to a face of _EDGE_WORK_SCALE px at most, smoothed
    low = np.maximum(np.floor(lines.reshape(-1, 2).min(0)) - 2, 0).astype(int)
    high = np.minimum(np.ceil(lines.reshape(-1, 2).max(0)) + 2, [width, height]).astype(int)
    shrink = min(1.0, _EDGE_WORK_SCALE / scale)
    crop = rgb[low[1]:high[1], low[0]:high[0]]
    if shrink < 1.0:
        size = (max(2, round(crop.shape[1] * shrink)), max(2, round(crop.shape[0] * shrink)))
        crop = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR))
        shrink_xy = np.array([size[0] / (high[0] - low[0]), size[1] / (high[1] - low[1])])
    else:
        shrink_xy = np.ones(2)
    sigma = max(_EDGE_SMOOTH * scale * float(shrink_xy.mean()), 0.7)
    crop = ndimage.gaussian_filter(crop.astype(np.float32), (sigma, sigma, 0))
    at = (lines - low) * shrink_xy - 0.5                                        # pixel centres at +0.5
    profile = np.stack([ndimage.map_coordinates(crop[..., c], [at[..., 1].ravel(), at[..., 0].ravel()], order=1,
                                                mode="nearest").reshape(count, -1) for c in range(3)], axis=-1)
    gradient = np.linalg.norm(np.gradient(profile, t, axis=1), axis=-1)           # (K, S)
    best = np.argmax(gradient * np.exp(-0.5 * (t / (EDGE_PRIOR * scale)) ** 2), axis=1)
    peak = gradient[np.arange(count), best]
    # a step of s grey levels blurred by the Gaussian peaks at s / (√(2π) σ) per px (σ in photo px)
    least = _EDGE_MIN_STEP / (math.sqrt(2.0 * math.pi) * sigma / float(shrink_xy.mean()))
    clear = inside & (peak >= least) & (peak >= EDGE_CONTRAST * np.median(gradient, axis=1))
    moves = ndimage.median_filter(np.where(clear, t[best], 0.0), size=3, mode="nearest")
    return points + moves[:, None] * normal, moves


def contour_landmarks(mesh: np.ndarray, confidence: np.ndarray, facing: np.ndarray,
                      fractions: tuple[float, ...] = JAW_FRACTIONS,
                      outset: tuple[float, ...] = JAW_OUTSET,
                      rgb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The jaw on the visible outline and the brows' visible outer ends.

    Args:
        mesh: ``(V ≥ 468, 3)`` detected mesh: x, y px (y down), z depth (larger = farther).
        confidence: ``(468,)`` per-vertex confidences in [0, 1].
        facing: ``(468,)`` cosine between each vertex normal and the direction to the
            camera (> 0: facing it).
        fractions: arc-length fractions of jaw points 0..8 (9..16 mirror them).
        outset: outward shifts of jaw points 0..8 (9..16 mirror them), outer-eye-corner distances.
        rgb: the ``(H, W, 3)`` uint8 photo the mesh was detected in: the jaw then moves onto
            its visible edge (:func:`snap_to_edges`); ``None``: the mesh alone.

    Returns:
        ``(jaw, jaw_confidence, brows)``: ``(17, 2)`` px, ``(17,)`` in [0, 1], and ``(2, 3)``
        x, y (px) and confidence of iBUG 17 and 26.

    Raises:
        InputError: ``mesh`` is not ``(V ≥ 468, 3)``.
    """
    mesh = np.asarray(mesh, dtype=np.float64)
    if mesh.ndim != 2 or mesh.shape[0] < 468 or mesh.shape[1] != 3:
        raise InputError(f"mesh: expected shape (468 or more, 3), got {mesh.shape}")
    points = mesh[:468, :2]
    centre = points.mean(axis=0)
    half = np.asarray(fractions[:9], dtype=np.float64)
    right, right_conf = _along(*_outline(points, confidence, JAW_CHAINS[0], centre), half)
    left, left_conf = _along(*_outline(points, confidence, JAW_CHAINS[1], centre), half)
    jaw = np.concatenate([right, left[:8][::-1]])
    jaw_conf = np.concatenate([right_conf, left_conf[:8][::-1]])
    jaw[8] = (right[8] + left[8]) / 2.0  # both sides end at the chin
    shift = np.asarray(outset[:9], dtype=np.float64)
    shift = np.concatenate([shift, shift[:8][::-1]]) * float(np.linalg.norm(points[_EYE_CORNERS[0]]
                                                                             - points[_EYE_CORNERS[1]]))
    outward = jaw - centre
    jaw = jaw + outward / np.maximum(np.linalg.norm(outward, axis=1, keepdims=True), 1e-9) * shift[:, None]
    if rgb is not None:
        eyes = float(np.linalg.norm(points[_EYE_CORNERS[0]] - points[_EYE_CORNERS[1]]))
        jaw = snap_to_edges(rgb, jaw, centre, eyes)[0]
    brows = np.array([[*end, conf] for end, conf in (_brow_end(points, facing, confidence, upper, lower)
                                                     for upper, lower in zip(BROW_CHAINS, BROW_LOWER_CHAINS))])
    return jaw, jaw_conf, brows
