"""PyTorch3D itself: the lazy import of its rasterizer, how to install it, and a CUDA probe.

PyTorch3D is optional: nothing here imports it at module level, so the package loads
without it and the backend reports what is missing through its availability.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

#: How to install PyTorch3D (shown by the backend's availability report).
PYTORCH3D_FIX = (
    "pip install easypytorch3d==0.7.9.post1 iopath (prebuilt for torch==2.12.0 on CPython 3.10-3.14); "
    "otherwise install PyTorch3D from source: "
    "https://github.com/facebookresearch/pytorch3d/blob/main/INSTALL.md"
)


def import_pytorch3d() -> tuple[Any, Any]:
    """PyTorch3D's ``rasterize_meshes`` and ``Meshes`` (imported lazily).

    Raises:
        ImportError: PyTorch3D is missing, or its compiled extension does not match
            the installed torch (undefined symbols).
        OSError: a shared library of the extension cannot be loaded.
    """
    from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
    from pytorch3d.structures import Meshes

    return rasterize_meshes, Meshes


@functools.lru_cache(maxsize=None)
def cuda_probe(device: str) -> str:
    """Rasterize one triangle on ``device``; returns '' on success, else the error text."""
    try:
        rasterize_meshes, meshes_cls = import_pytorch3d()
        verts = torch.tensor([[[0.5, 0.5, 2.0], [-0.5, 0.5, 2.0], [0.0, -0.5, 2.0]]], device=device)
        faces = torch.tensor([[[0, 1, 2]]], device=device)
        rasterize_meshes(meshes_cls(verts=verts, faces=faces), image_size=8, faces_per_pixel=1)
        torch.cuda.synchronize(device)
    except (RuntimeError, ImportError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""
