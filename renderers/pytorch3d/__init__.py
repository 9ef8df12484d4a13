"""PyTorch3D mesh rasterization backend (``renderer: pytorch3d``), CPU and CUDA.

The backend rasterizes the :class:`~renderers.base.ScreenMesh` with PyTorch3D's
``rasterize_meshes`` kernel and colours every pixel with the mesh's shaded per-vertex
colours interpolated by the (perspective-correct) barycentrics: Gouraud shading, no
second shading model. It is a composition of small pieces, one module each:

1. :mod:`~renderers.pytorch3d.ndc` — :func:`screen_to_ndc`, the one conversion from the
   project's pixel convention to PyTorch3D's screen NDC;
2. :mod:`~renderers.pytorch3d.rasterizer` — :func:`rasterize`: PyTorch3D's kernel picks
   the K nearest triangles per pixel (on CUDA with the coarse bins sized by
   :mod:`~renderers.pytorch3d.bins`, on the CPU tile by tile, :mod:`~renderers.pytorch3d.tiles`);
   :mod:`~renderers.pytorch3d.fragments` evaluates their perspective-correct barycentrics,
   depths (and on the CPU their distances) in torch on the occupied slots; together
   :class:`Fragments` in pixels and mm;
3. :func:`interpolate_colors` — per-face Gouraud colours at every fragment;
4. :mod:`~renderers.pytorch3d.blend` — :func:`hard_blend` or :func:`soft_blend`:
   fragments → colour and coverage per pixel;
5. :mod:`~renderers.pytorch3d.backend` — :class:`PyTorch3DRenderer` runs them in turn
   with the options of :class:`RasterSettings` (:mod:`~renderers.pytorch3d.settings`);
   :mod:`~renderers.pytorch3d.library` imports PyTorch3D lazily and says how to install it.

Modes (constructor options of :class:`PyTorch3DRenderer`):

- **hard** (default; ``blur_radius=0``, ``faces_per_pixel=1``): the nearest triangle
  whose interior contains the pixel centre; coverage is 0/1. Gradients reach vertex
  positions only through the barycentrics of covered pixels, not through coverage.
- **soft** (``blur_radius > 0``): SoftRas-style aggregation of the ``faces_per_pixel``
  nearest triangles within ``blur_radius`` (see :mod:`~renderers.pytorch3d.blend`); the
  coverage is a soft silhouette and carries gradients w.r.t. vertex positions.

Precision: PyTorch3D's kernels take float32 only (CPU and CUDA), so which triangles
cover a pixel is a float32 decision (and on CUDA the soft distances are float32; on the
CPU they are evaluated in torch in the mesh's dtype). Barycentrics, depths,
colours and blending are evaluated in torch in the mesh's dtype, so for fixed coverage
the outputs and their gradients w.r.t. ``uv``, depth and colours are float64-exact for
float64 meshes (and gradcheck passes).

Requirements: ``pip install easypytorch3d==0.7.9.post1 iopath`` (prebuilt wheels for
torch 2.12.0 on CPython 3.10-3.14); anything else needs PyTorch3D built from source.
Vertices must lie in front of the camera (z > 0); PyTorch3D skips triangles behind it.
"""

from renderers.pytorch3d.backend import PyTorch3DRenderer
from renderers.pytorch3d.bins import bin_capacity, default_bin_size
from renderers.pytorch3d.blend import hard_blend, soft_blend
from renderers.pytorch3d.fragments import (
    FragmentIndex,
    Fragments,
    fragment_barycentrics,
    fragment_distances,
    fragment_index,
    interpolate_colors,
)
from renderers.pytorch3d.library import PYTORCH3D_FIX, cuda_probe, import_pytorch3d
from renderers.pytorch3d.ndc import ndc_scale, screen_to_ndc
from renderers.pytorch3d.rasterizer import rasterize
from renderers.pytorch3d.settings import AUTO_CAPACITY, RasterSettings

__all__ = [
    "AUTO_CAPACITY",
    "PYTORCH3D_FIX",
    "FragmentIndex",
    "Fragments",
    "PyTorch3DRenderer",
    "RasterSettings",
    "bin_capacity",
    "cuda_probe",
    "default_bin_size",
    "fragment_barycentrics",
    "fragment_distances",
    "fragment_index",
    "hard_blend",
    "import_pytorch3d",
    "interpolate_colors",
    "ndc_scale",
    "rasterize",
    "screen_to_ndc",
    "soft_blend",
]
