"""nvdiffrast backend (``renderer: nvdiffrast``): CUDA rasterization with antialiasing.

Three nvdiffrast primitives in turn (Laine et al. 2020): ``rasterize`` the clip-space
triangles, ``interpolate`` the shaded per-vertex colours (Gouraud, perspective-correct),
``antialias`` the result, which blends colours across silhouette edges by the edges'
sub-pixel positions and so gives gradients w.r.t. vertex positions at silhouettes. The
coverage ``rast[..., 3] > 0`` is antialiased the same way and is the face mask and the
photometric weight.

Conventions (checked against nvdiffrast's sources and documentation):

- nvdiffrast samples pixel (i, j) at its centre, clip-space
  ``x/w = 2 (j + 0.5) / W - 1``, ``y/w = 2 (i + 0.5) / H - 1``, and stores image row 0 at
  ``y/w = -1`` (OpenGL's bottom-up memory order). :func:`screen_to_clip` maps our pixel
  position (u, v) to ``x/w = 2u/W - 1``, ``y/w = 2v/H - 1``: row 0 is then our top row and
  no image flip is needed. The mirror in y turns every triangle's screen winding around,
  which nvdiffrast does not care about (it never culls; antialiasing only compares
  neighbouring triangles' windings with each other).
- Depth: OpenGL clip space with ``w = z`` (mm) and near/far planes, so ``z/w`` runs from
  -1 at ``near`` to +1 at ``far`` and the nearest surface wins. Geometry outside
  ``[near, far]`` is clipped.

Precision: nvdiffrast computes in float32 only; float64 meshes are converted and the
outputs converted back, so values and gradients carry float32 precision.

Requirements: a CUDA device, ``pip install diffrp-nvdiffrast==0.3.3.1`` (imports as
``nvdiffrast``; NVIDIA Source Code License: non-commercial research/evaluation use only),
and, for the plugin that nvdiffrast compiles on first use, ``ninja`` and the CUDA toolkit
(``nvcc``) matching torch's CUDA version.
"""

from __future__ import annotations

import glob
import importlib
import math
import os
import shutil
import sys
from typing import Any

import torch

from renderers.base import Availability, PhotometricSamples, Renderer, RenderResult, ScreenMesh
from mofa_checks import InputError
from renderers.registry import register_renderer

#: How to install nvdiffrast (shown by :meth:`NvdiffrastRenderer.availability`).
NVDIFFRAST_FIX = (
    "pip install diffrp-nvdiffrast==0.3.3.1 (imports as nvdiffrast; NVIDIA Source Code License: "
    "non-commercial research/evaluation use only)"
)

#: Coverage below which a pixel's predicted colour is set to 0 instead of un-premultiplied.
_MIN_COVERAGE = 1e-6

#: One rasterizer context per CUDA device (creating one is slow).
_CONTEXTS: dict[str, Any] = {}


def _import_nvdiffrast() -> Any:
    """``nvdiffrast.torch`` (imported lazily).

    Raises:
        ImportError: the package is missing.
        OSError: a shared library cannot be loaded.
    """
    import nvdiffrast.torch as dr

    return dr


# --------------------------------------------------------------------------- conventions
def screen_to_clip(uv: torch.Tensor, depth: torch.Tensor, image_size: tuple[int, int],
                   near: float, far: float) -> torch.Tensor:
    """Homogeneous clip-space positions for nvdiffrast (the backend's only conversion).

    With ``w = z`` and pixel positions (u, v) (origin at the top-left image corner, pixel
    centres at +0.5):

        ``x = (2u/W - 1) z``,  ``y = (2v/H - 1) z``,
        ``z_clip = ((far + near) z - 2 far near) / (far - near)``,  ``w = z``.

    For ``u = f_x x_c / z + c_x`` (the pinhole K) this is exactly the OpenGL projection
    matrix built from K, ``[[2f_x/W, 0, 2c_x/W - 1, 0], [0, 2f_y/H, 2c_y/H - 1, 0],
    [0, 0, (f+n)/(f-n), -2fn/(f-n)], [0, 0, 1, 0]]``, applied to camera-space points, with
    y kept pointing down so that nvdiffrast's row 0 (clip y = -1) is the image's top row.

    Args:
        uv: ``(B, N, 2)`` pixel positions.
        depth: ``(B, N)`` camera-space z, mm.
        image_size: ``(H, W)`` in pixels.
        near: near plane, mm, > 0.
        far: far plane, mm, > near.

    Returns:
        ``(B, N, 4)`` clip-space positions in ``uv``'s dtype.
    """
    height, width = image_size
    z = depth.to(uv.dtype)
    x = (2.0 * uv[..., 0] / width - 1.0) * z
    y = (2.0 * uv[..., 1] / height - 1.0) * z
    zc = ((far + near) * z - 2.0 * far * near) / (far - near)
    return torch.stack([x, y, zc, z], dim=-1)


# --------------------------------------------------------------------------- helpers
def _plugin_built() -> bool:
    """Whether nvdiffrast's CUDA plugin is already compiled in torch's extension cache."""
    try:
        from torch.utils.cpp_extension import get_default_build_root

        root = os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()
        pattern = os.path.join(root, "**", "nvdiffrast_plugin*", "nvdiffrast_plugin*.so")
        return any("_gl" not in os.path.basename(path) for path in glob.glob(pattern, recursive=True))
    except Exception:  # noqa: BLE001  (best effort: any failure means "not known to be built")
        return False


def _build_tools_missing() -> list[tuple[str, str]]:
    """``(reason, fix)`` for each tool the first-use plugin build lacks."""
    missing: list[tuple[str, str]] = []
    if shutil.which("ninja") is None:
        beside = os.path.join(os.path.dirname(sys.executable), "ninja")
        if os.path.exists(beside):
            missing.append((f"ninja is installed in {os.path.dirname(sys.executable)} but not on PATH",
                            "activate the virtual environment (or add its bin/ to PATH)"))
        else:
            missing.append(("ninja (needed to compile nvdiffrast's CUDA plugin on first use) is missing",
                            "pip install ninja"))
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        try:
            from torch.utils.cpp_extension import CUDA_HOME
        except Exception:  # noqa: BLE001
            CUDA_HOME = None  # noqa: N806
        if CUDA_HOME is None or not os.path.exists(os.path.join(CUDA_HOME, "bin", "nvcc")):
            version = f" {torch.version.cuda}" if torch.version.cuda else ""
            missing.append((
                "nvcc (CUDA toolkit, needed to compile nvdiffrast's CUDA plugin on first use) is missing",
                f"install the CUDA toolkit{version} matching torch and set CUDA_HOME",
            ))
    return missing


def _require_cuda(device: torch.device) -> None:
    """Raise :class:`InputError` unless ``device`` is a CUDA device (nvdiffrast's only kind)."""
    if device.type != "cuda":
        raise InputError(f"mesh: nvdiffrast needs tensors on a CUDA device, got {device}")


def _load_plugin() -> None:
    """Compile (first use only) and load nvdiffrast's CUDA plugin.

    nvdiffrast builds the plugin with ``torch.utils.cpp_extension.load`` and then imports
    it by module name. torch loads extensions from their file path without putting the
    build directory on ``sys.path``, and on Python ≥ 3.12 the loaded module is not left in
    ``sys.modules`` either, so that import fails with ``No module named
    'nvdiffrast_plugin_…'`` although the plugin was built. The build directory is then
    added to ``sys.path`` and the import retried.
    """
    from nvdiffrast.torch import ops

    try:
        ops._get_plugin()
    except ModuleNotFoundError as err:
        if not (err.name or "").startswith("nvdiffrast_plugin"):
            raise
        from torch.utils.cpp_extension import _get_build_directory

        build_dir = _get_build_directory(err.name, False)
        if build_dir not in sys.path:
            sys.path.append(build_dir)
        importlib.invalidate_caches()
        ops._get_plugin()


def _context(device: torch.device) -> Any:
    """The cached ``RasterizeCudaContext`` of ``device`` (loads the plugin on first use)."""
    key = str(device)
    if key not in _CONTEXTS:
        dr = _import_nvdiffrast()
        _load_plugin()
        _CONTEXTS[key] = dr.RasterizeCudaContext(device=device)
    return _CONTEXTS[key]


# --------------------------------------------------------------------------- backend
@register_renderer("nvdiffrast")
class NvdiffrastRenderer(Renderer):
    """CUDA rasterization with nvdiffrast: Gouraud colours, antialiased coverage.

    Args:
        near: near clipping plane, mm (default 10).
        far: far clipping plane, mm (default 10000). The depth buffer is float32 in
            ``z/w``; the default range resolves ~0.01 mm at 600 mm.
        antialias: apply nvdiffrast's analytic antialiasing (default True). Without it
            coverage is 0/1 and gradients reach vertex positions only through the
            barycentrics of covered pixels.

    ``photometric_samples`` compares every pixel: predicted = rendered face colour
    ``(B, H·W, 3)`` (antialiased colour divided by antialiased coverage), observed = the
    image, weights = antialiased coverage. ``render`` antialiases the face composited over
    the background.

    Raises:
        InputError: an option out of range.
    """

    def __init__(self, near: float = 10.0, far: float = 10000.0, antialias: bool = True) -> None:
        for name, value in (("near", near), ("far", far)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"{name}: expected a finite number of mm, got {value!r}")
        if not 0 < near < far:
            raise InputError(f"near, far: expected 0 < near < far (mm), got near={near}, far={far}")
        if not isinstance(antialias, bool):
            raise InputError(f"antialias: expected a bool, got {antialias!r}")
        self.near = float(near)
        self.far = float(far)
        self.antialias = antialias
        #: Antialiasing differentiates silhouettes w.r.t. vertex positions.
        self.differentiable_geometry = antialias  # type: ignore[misc]
        self._topology: tuple[torch.Tensor, int, torch.Tensor, Any] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(near={self.near}, far={self.far}, antialias={self.antialias})"

    @classmethod
    def availability(cls, device: torch.device | str | None = None) -> Availability:
        """Needs a CUDA device, the ``nvdiffrast`` package and (before the plugin is built)
        ninja and nvcc; reports every missing piece with its fix."""
        if device is not None and torch.device(device).type != "cuda":
            return Availability(False, f"nvdiffrast runs on CUDA devices only, not {torch.device(device)}",
                                "use a CUDA device, or renderer 'pytorch3d' or 'per_vertex' on CPU")
        problems: list[tuple[str, str]] = []
        if not torch.cuda.is_available():
            problems.append((
                f"no CUDA device is available to torch {torch.__version__}",
                "run on a machine with an NVIDIA GPU and a CUDA build of torch",
            ))
        try:
            _import_nvdiffrast()
        except (ImportError, OSError) as exc:
            problems.append((f"nvdiffrast cannot be imported ({type(exc).__name__}: {exc})", NVDIFFRAST_FIX))
        tools = _build_tools_missing()
        if tools and not _plugin_built():
            problems.extend(tools)
        if problems:
            return Availability(False, "; ".join(r for r, _ in problems), "; ".join(f for _, f in problems))
        return Availability(True)

    # ------------------------------------------------------------------ pipeline
    def _triangles(self, mesh: ScreenMesh, device: torch.device, dr: Any) -> tuple[torch.Tensor, Any]:
        """``(F, 3)`` int32 contiguous triangles on ``device`` and their topology hash (cached)."""
        source = mesh.triangles
        cached = self._topology
        if (cached is not None and cached[0] is source and cached[1] == source._version
                and cached[2].device == device):
            return cached[2], cached[3]
        tri = source.to(device=device, dtype=torch.int32).contiguous()
        topology = dr.antialias_construct_topology_hash(tri) if self.antialias else None
        self._topology = (source, source._version, tri, topology)
        return tri, topology

    def rasterize_and_antialias(self, mesh: ScreenMesh,
                                background: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Rasterize, interpolate, composite and antialias.

        Args:
            mesh: the formed meshes, on a CUDA device.
            background: ``(B, H, W, 3)`` float32 background, or None for black.

        Returns:
            ``(rgb (B, H, W, 3), alpha (B, H, W))`` float32: the antialiased image
            (premultiplied face colour when ``background`` is None) and coverage.
        """
        mesh.validate()
        device = mesh.colors.device
        _require_cuda(device)
        if mesh.uv.device != device or mesh.verts_cam.device != device:
            raise InputError(
                f"mesh: uv, verts_cam and colors must share a device, got {mesh.uv.device}, "
                f"{mesh.verts_cam.device}, {device}"
            )
        dr = _import_nvdiffrast()
        height, width = mesh.image_size
        pos = screen_to_clip(mesh.uv, mesh.verts_cam[..., 2], mesh.image_size, self.near, self.far)
        pos = pos.to(torch.float32).contiguous()
        context = _context(device)
        tri, topology = self._triangles(mesh, device, dr)
        rast, _ = dr.rasterize(context, pos, tri, resolution=[height, width], grad_db=False)
        colors, _ = dr.interpolate(mesh.colors.to(torch.float32).contiguous(), rast, tri)
        cover = (rast[..., 3:4] > 0).to(torch.float32)
        face = colors * cover
        if background is not None:
            face = face + background * (1.0 - cover)
        layers = torch.cat([face, cover], dim=-1).contiguous()
        if self.antialias:
            layers = dr.antialias(layers, rast, pos, tri, topology_hash=topology)
        return layers[..., :3], layers[..., 3]

    def photometric_samples(self, mesh: ScreenMesh, images: torch.Tensor) -> PhotometricSamples:
        """Every pixel as a sample.

        Args:
            mesh: the formed meshes (CUDA).
            images: ``(B, 3, H, W)`` input images in [0, 1] on the mesh's device.

        Returns:
            :class:`PhotometricSamples` with M = H·W (row-major pixels): predicted
            ``(B, M, 3)`` face colours (antialiased colour / antialiased coverage, 0 off
            the face), observed ``(B, M, 3)`` image pixels, weights ``(B, M)`` antialiased
            coverage in [0, 1]; in the mesh's dtype.
        """
        self.check_images(mesh, images)
        if images.device != mesh.colors.device:
            raise InputError(f"images: expected a tensor on {mesh.colors.device} (the mesh's device), got {images.device}")
        premultiplied, alpha = self.rasterize_and_antialias(mesh)
        covered = alpha > _MIN_COVERAGE
        rgb = torch.where(covered.unsqueeze(-1), premultiplied / alpha.clamp(min=_MIN_COVERAGE).unsqueeze(-1),
                          torch.zeros_like(premultiplied))
        bsz = mesh.batch_size
        dtype = mesh.colors.dtype
        observed = images.permute(0, 2, 3, 1).reshape(bsz, -1, 3).to(dtype)
        return PhotometricSamples(predicted=rgb.reshape(bsz, -1, 3).to(dtype), observed=observed,
                                  weights=alpha.reshape(bsz, -1).to(dtype))

    def render(self, mesh: ScreenMesh, background: torch.Tensor | None = None) -> RenderResult:
        """Draw the faces over ``background`` (default black), antialiased.

        Returns:
            :class:`RenderResult`: image ``(B, 3, H, W)`` and mask ``(B, 1, H, W)`` (the
            antialiased coverage) in the mesh's dtype.
        """
        mesh.validate()
        bg = self.background_for(mesh, background)
        if bg.device != mesh.colors.device:
            raise InputError(f"background: expected a tensor on {mesh.colors.device} (the mesh's device), got {bg.device}")
        rgb, alpha = self.rasterize_and_antialias(mesh, bg.permute(0, 2, 3, 1).to(torch.float32))
        dtype = mesh.colors.dtype
        return RenderResult(image=rgb.permute(0, 3, 1, 2).to(dtype), mask=alpha.unsqueeze(1).to(dtype))
