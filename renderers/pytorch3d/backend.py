"""The ``pytorch3d`` renderer: rasterize with PyTorch3D, Gouraud colours, hard or soft blending."""

from __future__ import annotations

from typing import Literal

import torch

from renderers.base import Availability, PhotometricSamples, Renderer, RenderResult, ScreenMesh
from mofa_checks import InputError
from renderers.pytorch3d.blend import hard_blend, soft_blend
from renderers.pytorch3d.fragments import interpolate_colors
from renderers.pytorch3d.library import PYTORCH3D_FIX, cuda_probe, import_pytorch3d
from renderers.pytorch3d.rasterizer import rasterize
from renderers.pytorch3d.settings import DEFAULT_CPU_TILE, RasterSettings
from renderers.registry import register_renderer


@register_renderer("pytorch3d")
class PyTorch3DRenderer(Renderer):
    """Mesh rasterization with PyTorch3D, Gouraud colours, hard (default) or soft.

    Args:
        blur_radius: px, ≥ 0; > 0 turns soft rasterization on (see
            :class:`~renderers.pytorch3d.settings.RasterSettings`).
        faces_per_pixel: triangles aggregated per pixel in soft mode (1 in hard mode).
        sigma: px², soft coverage sharpness; default derived from ``blur_radius``.
        gamma: mm, depth temperature of the soft colour blend (default 1 mm).
        bin_size: CUDA coarse-to-fine bin size (None: PyTorch3D's heuristic; CPU: naive).
        max_faces_per_bin: CUDA bin capacity ("auto", the default: sized from the triangles
            each call so that no bin overflows; None: PyTorch3D's ``max(10000, F / 5)``).
        cull_backfaces: drop back-facing triangles (default False).
        cpu_tile: CPU tile side, px (default 16; 0: the whole image at once); the same
            result, faster (see :mod:`~renderers.pytorch3d.tiles`).

    ``photometric_samples`` compares every pixel: predicted = rendered face colour
    ``(B, H·W, 3)``, observed = the image, weights = coverage (soft: the silhouette
    alpha). ``render`` composites the face over the background with that coverage.

    Raises:
        InputError: an option out of range.

    Example:
        >>> renderer = get_renderer("pytorch3d", blur_radius=1.0, faces_per_pixel=4)
    """

    def __init__(self, blur_radius: float = 0.0, faces_per_pixel: int = 1, sigma: float | None = None,
                 gamma: float = 1.0, bin_size: int | None = None,
                 max_faces_per_bin: int | Literal["auto"] | None = "auto",
                 cull_backfaces: bool = False, cpu_tile: int = DEFAULT_CPU_TILE) -> None:
        self.settings = RasterSettings(
            blur_radius=blur_radius, faces_per_pixel=faces_per_pixel, sigma=sigma, gamma=gamma,
            bin_size=bin_size, max_faces_per_bin=max_faces_per_bin, cull_backfaces=cull_backfaces,
            cpu_tile=cpu_tile,
        )
        #: Soft mode differentiates coverage w.r.t. vertex positions; hard mode does not.
        self.differentiable_geometry = self.settings.soft  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings})"

    @classmethod
    def availability(cls, device: torch.device | str | None = None) -> Availability:
        """Import check (CPU) plus, for a CUDA device, a one-triangle probe of the kernel."""
        try:
            import_pytorch3d()
        except (ImportError, OSError) as exc:
            return Availability(False, f"PyTorch3D cannot be imported ({type(exc).__name__}: {exc})", PYTORCH3D_FIX)
        if device is None or torch.device(device).type == "cpu":
            return Availability(True)
        dev = torch.device(device)
        if dev.type != "cuda":
            return Availability(False, f"PyTorch3D runs on CPU and CUDA only, not {dev.type}",
                                "use device 'cpu' or 'cuda'")
        if not torch.cuda.is_available():
            return Availability(False, "no CUDA device is available to torch",
                                "use device 'cpu', or a machine with an NVIDIA GPU and a CUDA build of torch")
        error = cuda_probe(str(dev))
        if error:
            return Availability(False, f"PyTorch3D's CUDA rasterizer failed ({error})",
                                "install a PyTorch3D build with CUDA support: " + PYTORCH3D_FIX)
        return Availability(True)

    # ------------------------------------------------------------------ pipeline
    def rasterize_and_blend(self, mesh: ScreenMesh) -> tuple[torch.Tensor, torch.Tensor]:
        """Rasterize, interpolate the Gouraud colours and blend (hard or soft).

        Args:
            mesh: the formed meshes (validated here).

        Returns:
            ``(rgb (B, H, W, 3), alpha (B, H, W))``: face colour (Gouraud) and coverage in
            [0, 1], in ``mesh.colors``' dtype and device.
        """
        mesh.validate()
        if mesh.uv.device != mesh.colors.device or mesh.verts_cam.device != mesh.colors.device:
            raise InputError(
                f"mesh: uv, verts_cam and colors must share a device, got {mesh.uv.device}, "
                f"{mesh.verts_cam.device}, {mesh.colors.device}"
            )
        fragments = rasterize(mesh, self.settings)
        face_colors = interpolate_colors(mesh.colors, fragments)
        if self.settings.soft:
            return soft_blend(face_colors, fragments, self.settings.sigma_px2, self.settings.gamma)
        return hard_blend(face_colors, fragments)

    def photometric_samples(self, mesh: ScreenMesh, images: torch.Tensor) -> PhotometricSamples:
        """Every pixel as a sample.

        Args:
            mesh: the formed meshes.
            images: ``(B, 3, H, W)`` input images in [0, 1] on the mesh's device.

        Returns:
            :class:`PhotometricSamples` with M = H·W (row-major pixels): predicted
            ``(B, M, 3)`` rendered face colours (0 off the face), observed ``(B, M, 3)``
            image pixels, weights ``(B, M)`` coverage in [0, 1].
        """
        self.check_images(mesh, images)
        _check_device("images", images, mesh)
        rgb, alpha = self.rasterize_and_blend(mesh)
        bsz = mesh.batch_size
        observed = images.permute(0, 2, 3, 1).reshape(bsz, -1, 3).to(mesh.colors.dtype)
        return PhotometricSamples(predicted=rgb.reshape(bsz, -1, 3), observed=observed,
                                  weights=alpha.reshape(bsz, -1))

    def render(self, mesh: ScreenMesh, background: torch.Tensor | None = None) -> RenderResult:
        """Composite the rendered faces over ``background`` (default black).

        Returns:
            :class:`RenderResult`: image ``(B, 3, H, W)`` = ``rgb · alpha + bg · (1 - alpha)``,
            mask ``(B, 1, H, W)`` = alpha.
        """
        rgb, alpha = self.rasterize_and_blend(mesh)
        bg = self.background_for(mesh, background)
        _check_device("background", bg, mesh)
        mask = alpha.unsqueeze(1)
        image = rgb.permute(0, 3, 1, 2) * mask + bg * (1.0 - mask)
        return RenderResult(image=image, mask=mask)


def _check_device(name: str, tensor: torch.Tensor, mesh: ScreenMesh) -> None:
    """Raise :class:`InputError` unless ``tensor`` is on the mesh's device."""
    if tensor.device != mesh.colors.device:
        raise InputError(f"{name}: expected a tensor on {mesh.colors.device} (the mesh's device), got {tensor.device}")
