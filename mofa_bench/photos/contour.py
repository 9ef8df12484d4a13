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

The brows' outer ends (17, 26) are the outermost brow vertex still facing the camera.
Confidence: :func:`~mofa_bench.photos.landmarks68.point_confidence` of the vertices
used (interpolated along the outline), so contour points keep their low grazing-angle
confidence.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mofa_bench.errors import InputError

__all__ = ["BROW_CHAINS", "JAW_CHAINS", "JAW_FRACTIONS", "JAW_OUTSET", "candidate_lines", "contour_landmarks"]

#: The face-oval chains, ear level → chin: the subject's right (image left) and left side.
JAW_CHAINS: tuple[tuple[int, ...], tuple[int, ...]] = (
    (127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152),
    (356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152),
)
#: Brow vertices, outer → inner: right brow (iBUG 17 at its outer end), left brow (26).
BROW_CHAINS: tuple[tuple[int, ...], tuple[int, ...]] = ((70, 63, 105, 66, 107), (300, 293, 334, 296, 336))
#: Arc-length fraction (ear level 0 → chin 1) of iBUG jaw points 0..8 along their side's
#: outline; 9..16 mirror 7..0.
JAW_FRACTIONS: tuple[float, ...] = (0.024, 0.144, 0.269, 0.39, 0.51, 0.632, 0.758, 0.877, 1.0)
#: Outward shift of jaw points 0..8 (9..16 mirror them) from the outline, in outer-eye-corner
#: distances, along the direction from the face's centre: 300-W's jaw lies on the face's
#: edge, a little outside MediaPipe's face oval towards the chin (calibrated with
#: :data:`JAW_FRACTIONS`).
JAW_OUTSET: tuple[float, ...] = (0.03, 0.019, 0.01, 0.017, 0.027, 0.039, 0.038, 0.053, 0.045)
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
              chain: tuple[int, ...]) -> tuple[np.ndarray, float]:
    for vertex in chain:
        if facing[vertex] > 0:
            return points[vertex], float(confidence[vertex])
    return points[chain[0]], float(confidence[chain[0]])


def contour_landmarks(mesh: np.ndarray, confidence: np.ndarray, facing: np.ndarray,
                      fractions: tuple[float, ...] = JAW_FRACTIONS,
                      outset: tuple[float, ...] = JAW_OUTSET) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The jaw on the visible outline and the brows' visible outer ends.

    Args:
        mesh: ``(V ≥ 468, 3)`` detected mesh: x, y px (y down), z depth (larger = farther).
        confidence: ``(468,)`` per-vertex confidences in [0, 1].
        facing: ``(468,)`` cosine between each vertex normal and the direction to the
            camera (> 0: facing it).
        fractions: arc-length fractions of jaw points 0..8 (9..16 mirror them).
        outset: outward shifts of jaw points 0..8 (9..16 mirror them), outer-eye-corner distances.

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
    brows = np.array([[*end, conf] for end, conf in (_brow_end(points, facing, confidence, chain)
                                                     for chain in BROW_CHAINS)])
    return jaw, jaw_conf, brows
