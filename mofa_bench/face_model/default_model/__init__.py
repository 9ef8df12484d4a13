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

Modules
    :mod:`.regions` (template face, contours, soft masks), :mod:`.mesh` (normals,
    Laplacian eigenfunctions, mirror map), :mod:`.orthogonalise`, one module per basis
    (:mod:`.identity`, :mod:`.expression`, :mod:`.reflectance`), :mod:`.cache` and
    :mod:`.build` (:func:`build_default_model`). Loop subdivision lives in
    :mod:`mofa_bench.face_model.subdivision`.
"""

from __future__ import annotations

from mofa_bench.face_model.default_model.build import MAX_SUBDIVISIONS, build_default_model, build_fingerprint
from mofa_bench.face_model.default_model.cache import BUILD_VERSION, CACHE_ENV_VAR, cache_path, default_cache_dir
from mofa_bench.face_model.default_model.expression import EXPRESSION_MODE_NAMES
from mofa_bench.face_model.default_model.identity import IDENTITY_MODE_NAMES
from mofa_bench.face_model.default_model.reflectance import BROW_RGB, EYE_RGB, LIP_RGB, SKIN_RGB
from mofa_bench.face_model.subdivision import loop_subdivision_step, subdivision_operator

__all__ = [
    "BROW_RGB",
    "BUILD_VERSION",
    "CACHE_ENV_VAR",
    "EXPRESSION_MODE_NAMES",
    "EYE_RGB",
    "IDENTITY_MODE_NAMES",
    "LIP_RGB",
    "MAX_SUBDIVISIONS",
    "SKIN_RGB",
    "build_default_model",
    "build_fingerprint",
    "cache_path",
    "default_cache_dir",
    "loop_subdivision_step",
    "subdivision_operator",
]
