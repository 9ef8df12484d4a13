"""Template-mesh operators of the default model: normals, Laplacian eigenfunctions, mirror map.

All arrays are NumPy float64 on the template mesh: ``vertices (V, 3)`` in mm and
``triangles (F, 3)`` int vertex indices, counter-clockwise seen from outside.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

__all__ = ["cotangent_laplacian", "laplacian_eigenfunctions", "mirror_map", "vertex_normals"]


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals, ``(N, 3)``."""
    p0, p1, p2 = (vertices[triangles[:, c]] for c in range(3))
    fn = np.cross(p1 - p0, p2 - p0)
    n = vertices.shape[0]
    corners = triangles.T.reshape(-1)
    acc = np.stack([np.bincount(corners, weights=np.tile(fn[:, d], 3), minlength=n) for d in range(3)], axis=1)
    return acc / np.maximum(np.linalg.norm(acc, axis=1, keepdims=True), 1e-12)


def cotangent_laplacian(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def laplacian_eigenfunctions(vertices: np.ndarray, triangles: np.ndarray, count: int) -> np.ndarray:
    """Lowest-frequency eigenfunctions of ``L φ = λ M φ``, ``(V, count)``, M-orthonormal.

    Solved as the symmetric problem ``M^-1/2 L M^-1/2 ψ = λ ψ`` (M is diagonal).
    The first is constant. Each is signed so that its M-weighted inner product with a
    fixed ramp over the vertex indices is positive (a deterministic convention that does
    not hinge on near-ties, unlike "largest entry positive" on a symmetric mesh).
    """
    lap, mass = cotangent_laplacian(vertices, triangles)
    scale = 1.0 / np.sqrt(mass)
    sym = lap * scale[:, None] * scale[None, :]
    _, vecs = scipy.linalg.eigh(0.5 * (sym + sym.T), subset_by_index=[0, count - 1])
    vecs = vecs * scale[:, None]
    ramp = mass * (1.0 + np.arange(vertices.shape[0]) / vertices.shape[0])
    signs = np.where(ramp @ vecs < 0.0, -1.0, 1.0)
    return vecs * signs[None, :]


def mirror_map(vertices: np.ndarray) -> np.ndarray:
    """Index of each vertex's mirror image under x → -x, ``(V,)`` (exact on the canonical mesh)."""
    from scipy.spatial import cKDTree

    _, idx = cKDTree(vertices).query(vertices * np.array([-1.0, 1.0, 1.0]))
    return idx.astype(np.int64)

