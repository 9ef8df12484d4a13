"""The PyTorch3D backend under its earlier module path; it lives in :mod:`renderers.pytorch3d`.

Every public name of the package is re-exported here, so ``from
renderers.pytorch3d_backend import PyTorch3DRenderer, RasterSettings, bin_capacity`` keeps
working.
"""

from renderers.pytorch3d.backend import PyTorch3DRenderer
from renderers.pytorch3d.bins import bin_capacity, default_bin_size
from renderers.pytorch3d.blend import hard_blend, soft_blend
from renderers.pytorch3d.fragments import (
    Fragments,
    fragment_barycentrics,
    fragment_corners,
    gather_corners,
    interpolate_colors,
)
from renderers.pytorch3d.library import PYTORCH3D_FIX, cuda_probe, import_pytorch3d
from renderers.pytorch3d.ndc import ndc_scale, screen_to_ndc
from renderers.pytorch3d.rasterizer import rasterize
from renderers.pytorch3d.settings import AUTO_CAPACITY, RasterSettings

__all__ = [
    "AUTO_CAPACITY",
    "PYTORCH3D_FIX",
    "Fragments",
    "PyTorch3DRenderer",
    "RasterSettings",
    "bin_capacity",
    "cuda_probe",
    "default_bin_size",
    "fragment_barycentrics",
    "fragment_corners",
    "gather_corners",
    "hard_blend",
    "import_pytorch3d",
    "interpolate_colors",
    "ndc_scale",
    "rasterize",
    "screen_to_ndc",
    "soft_blend",
]
