"""Slow, obviously right versions of mofa_bench functions, for tests only."""

from __future__ import annotations

import torch


def vertex_normals_reference(vertices: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    """Loop version of ``mofa_bench.geometry.vertex_normals``: ``(B, N, 3)`` unit normals."""
    out = torch.zeros_like(vertices)
    for b in range(vertices.shape[0]):
        for tri in triangles.tolist():
            p = vertices[b, tri]
            n = torch.linalg.cross(p[1] - p[0], p[2] - p[0], dim=-1)
            for i in tri:
                out[b, i] += n
    return torch.nn.functional.normalize(out, dim=-1)
