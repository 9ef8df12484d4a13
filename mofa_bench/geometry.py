"""Mesh geometry on batched vertex tensors: face and vertex normals."""

from __future__ import annotations

import torch

from mofa_checks import check_tensor


def face_normals(vertices: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    """Unnormalised face normals (length = 2 × triangle area).

    Args:
        vertices: ``(B, N, 3)`` positions.
        triangles: ``(F, 3)`` int64 indices, counter-clockwise seen from the outside.

    Returns:
        ``(B, F, 3)`` cross products ``(v1 - v0) × (v2 - v0)``, pointing outwards.
    """
    check_tensor("vertices", vertices, "B N 3", floating=True)
    check_tensor("triangles", triangles, "F 3", integer=True)
    # One index_select for all corners: its backward is an index_add (atomic adds on
    # CUDA), where advanced indexing back-propagates through a sort-based index_put.
    corners = vertices.index_select(1, triangles.reshape(-1)).view(vertices.shape[0], -1, 3, 3)
    v0, v1, v2 = corners.unbind(2)
    return torch.linalg.cross(v1 - v0, v2 - v0, dim=-1)


def vertex_normals(vertices: torch.Tensor, triangles: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """One-ring, area-weighted unit vertex normals (the paper's normal model).

    Each vertex normal is the normalised sum of the unnormalised normals of its incident
    triangles, so larger triangles weigh more.

    Args:
        vertices: ``(B, N, 3)`` positions.
        triangles: ``(F, 3)`` int64 indices, counter-clockwise seen from the outside.
        eps: guards the normalisation of isolated vertices.

    Returns:
        ``(B, N, 3)`` unit normals (zero for vertices in no triangle).
    """
    fn = face_normals(vertices, triangles)
    b, n = vertices.shape[:2]
    acc = vertices.new_zeros(b, n, 3)
    for corner in range(3):
        acc = acc.index_add(1, triangles[:, corner], fn)
    norm = torch.sqrt((acc * acc).sum(-1, keepdim=True) + eps)
    return acc / norm
