"""Differentiable renderer backends behind one interface (leaf package: torch only).

Backends register by name; :func:`get_renderer` builds one and raises
:class:`RendererUnavailableError` (with the fix) where it cannot run.
"""

from renderers.base import Availability, PhotometricSamples, Renderer, RenderResult, ScreenMesh
from mofa_checks import InputError
from renderers.errors import RendererError, RendererUnavailableError
from renderers.registry import (available_renderers, get_renderer, register_renderer, renderer_class, renderer_names,
                                renderer_options)
from renderers import per_vertex as _per_vertex  # noqa: F401  (registers "per_vertex")
from renderers import pytorch3d as _pytorch3d  # noqa: F401  (registers "pytorch3d")
from renderers import nvdiffrast_backend as _nvdiffrast_backend  # noqa: F401  (registers "nvdiffrast")

__all__ = [
    "Availability",
    "InputError",
    "PhotometricSamples",
    "Renderer",
    "RenderResult",
    "RendererError",
    "RendererUnavailableError",
    "ScreenMesh",
    "available_renderers",
    "get_renderer",
    "register_renderer",
    "renderer_class",
    "renderer_names",
    "renderer_options",
]
