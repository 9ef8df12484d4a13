"""Loop subdivision of a triangle mesh as a sparse linear operator.

The operator form lets any per-vertex attribute (positions ``(V, 3)``, scalar fields
``(V, K)``) be carried to the subdivided mesh with one sparse product. New edge vertices
are stored after the old ones, so old vertices keep their indices at every level.
``trimesh.remesh.subdivide_loop`` applies the same rules to positions only and orders the
edge vertices differently, so it cannot stand in for the operator.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from mofa_bench.errors import InputError

__all__ = ["loop_subdivision_step", "subdivision_operator"]


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

    Args:
        triangles: ``(F, 3)`` int vertex indices of a manifold mesh.
        num_vertices: the number of vertices of that mesh.
        levels: rounds of subdivision (0 gives the identity).

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

