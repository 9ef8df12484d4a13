"""PyTorch3D mesh rasterization backend (``renderer: pytorch3d``), CPU and CUDA.

The backend rasterizes the :class:`~renderers.base.ScreenMesh` with PyTorch3D's
``rasterize_meshes`` kernel and colours every pixel with the mesh's shaded per-vertex
colours interpolated by the (perspective-correct) barycentrics: Gouraud shading, no
second shading model. It is a composition of small pieces, each a plain function:

1. :func:`screen_to_ndc` — the one conversion from the project's pixel convention to
   PyTorch3D's screen NDC;
2. :func:`rasterize` — PyTorch3D's kernel picks the K nearest triangles per pixel (and
   their distances); :func:`fragment_barycentrics` evaluates their perspective-correct
   barycentrics and depths in torch; together :class:`Fragments` in pixels and mm;
3. :func:`interpolate_colors` — per-face Gouraud colours at every fragment;
4. :func:`hard_blend` or :func:`soft_blend` — fragments → colour and coverage per pixel.

Modes (constructor options of :class:`PyTorch3DRenderer`):

- **hard** (default; ``blur_radius=0``, ``faces_per_pixel=1``): the nearest triangle
  whose interior contains the pixel centre; coverage is 0/1. Gradients reach vertex
  positions only through the barycentrics of covered pixels, not through coverage.
- **soft** (``blur_radius > 0``): SoftRas-style aggregation as in PyTorch3D's
  ``sigmoid_alpha_blend`` / ``softmax_rgb_blend``. Each of the ``faces_per_pixel``
  nearest triangles within ``blur_radius`` of the pixel centre gets the probability
  ``p_k = sigmoid(-d_k / sigma)`` (``d_k``: signed squared distance from the pixel centre to
  the triangle, px², negative inside). Coverage is the soft silhouette
  ``alpha = 1 - prod_k (1 - p_k)``; the face colour is the depth-softmax mean
  ``sum_k w_k c_k / sum_k w_k`` with ``w_k = p_k exp(-(z_k - z_min) / gamma)``. Unlike
  PyTorch3D's ``softmax_rgb_blend`` the background is not a softmax term: it enters only
  through ``alpha`` when compositing, so predicted colours are face colours and the
  photometric weights carry the silhouette (and its gradient).

Precision: PyTorch3D's kernels take float32 only (CPU and CUDA), so which triangles
cover a pixel, and the soft distances, are float32 decisions. Barycentrics, depths,
colours and blending are evaluated in torch in the mesh's dtype, so for fixed coverage
the outputs and their gradients w.r.t. ``uv``, depth and colours are float64-exact for
float64 meshes (and gradcheck passes).

Requirements: ``pip install easypytorch3d==0.7.9.post1 iopath`` (a prebuilt wheel for
torch 2.12.0 on Python 3.11 only); anything else needs PyTorch3D built from source.
Vertices must lie in front of the camera (z > 0); PyTorch3D skips triangles behind it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from renderers.base import Availability, PhotometricSamples, Renderer, RenderResult, ScreenMesh
from renderers.errors import InputError
from renderers.registry import register_renderer

#: How to install PyTorch3D (shown by :meth:`PyTorch3DRenderer.availability`).
PYTORCH3D_FIX = (
    "pip install easypytorch3d==0.7.9.post1 iopath (prebuilt for torch==2.12.0 on Python 3.11 only); "
    "otherwise install PyTorch3D from source: "
    "https://github.com/facebookresearch/pytorch3d/blob/main/INSTALL.md"
)

#: ``max_faces_per_bin`` value that sizes the bins from the triangles (:func:`bin_capacity`).
AUTO_CAPACITY = "auto"

#: Probability a triangle gets at ``blur_radius`` when ``sigma`` is left to its default
#: (PyTorch3D's recipe ``blur_radius = log(1 / 1e-4 - 1) * sigma``).
_EDGE_PROBABILITY = 1e-4
#: Log-weight of an empty fragment slot in the soft colour blend (exp of it is 0).
_EMPTY_LOG_WEIGHT = -1e9


def _import_pytorch3d() -> tuple[Any, Any]:
    """PyTorch3D's ``rasterize_meshes`` and ``Meshes`` (imported lazily).

    Raises:
        ImportError: PyTorch3D is missing, or its compiled extension does not match
            the installed torch (undefined symbols).
        OSError: a shared library of the extension cannot be loaded.
    """
    from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
    from pytorch3d.structures import Meshes

    return rasterize_meshes, Meshes


# --------------------------------------------------------------------------- conventions
def ndc_scale(image_size: tuple[int, int]) -> float:
    """Pixels per PyTorch3D NDC unit: ``min(H, W) / 2`` (the shorter side spans [-1, 1])."""
    return min(image_size) / 2.0


def screen_to_ndc(uv: torch.Tensor, depth: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Project pixel positions into PyTorch3D's screen NDC (the backend's only conversion).

    The project's pixels have their origin at the top-left image corner, u right, v down,
    pixel (i, j) centred at ``(j + 0.5, i + 0.5)``. PyTorch3D's NDC has +X left and +Y up,
    the shorter image side spans [-1, 1] (the longer one proportionally more), and its
    rasterizer puts the centre of output pixel (i, j) at
    ``X = (W - 2 j - 1) / s``, ``Y = (H - 2 i - 1) / s`` with ``s = min(H, W)``. Hence

        ``X = (W - 2 u) / s``,   ``Y = (H - 2 v) / s``,   ``Z = z``,

    which maps every pixel centre of ours onto the same pixel centre of PyTorch3D's, with
    no flip of the output image. Z is the camera-space depth (mm), which PyTorch3D uses for
    depth ordering and perspective-correct barycentrics. The map from camera space
    (x right, y down, z forward) to PyTorch3D's view space (x left, y up, z forward) is a
    rotation by 180° about z, so triangle orientations (and back-face culling) agree.

    Args:
        uv: ``(B, N, 2)`` pixel positions ``(u, v)``.
        depth: ``(B, N)`` camera-space z, mm (> 0 in front of the camera).
        image_size: ``(H, W)`` in pixels.

    Returns:
        ``(B, N, 3)`` NDC positions ``(X, Y, Z)`` in ``uv``'s dtype.
    """
    height, width = image_size
    s = float(min(height, width))
    x = (width - 2.0 * uv[..., 0]) / s
    y = (height - 2.0 * uv[..., 1]) / s
    return torch.stack([x, y, depth.to(uv.dtype)], dim=-1)


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class RasterSettings:
    """Validated options of the PyTorch3D backend (units: pixels and mm, not NDC).

    Attributes:
        blur_radius: px, ≥ 0. Triangles within this distance of a pixel centre touch the
            pixel; 0 = hard rasterization. Passed to PyTorch3D as ``(2 r / min(H, W))²``
            (its squared-NDC unit).
        faces_per_pixel: ≥ 1, nearest triangles kept per pixel. Must be 1 in hard mode
            (only the nearest one is drawn there). In soft mode PyTorch3D keeps the K
            nearest *in depth* among all triangles within ``blur_radius``, so K must be
            large enough for the triangles containing the pixel to be among them (≥ 8 when
            triangles are a few pixels across); as in SoftRas, a pixel on an edge shared by
            two triangles gets ``alpha = 1 - 0.5 · 0.5 = 0.75`` from those two alone.
        sigma: px², > 0, or None. Sharpness of the soft coverage ``sigmoid(-d / sigma)``
            (``d``: signed squared distance, px²). Default ``blur_radius² / ln(1e4 - 1)``,
            i.e. a triangle at ``blur_radius`` gets probability 1e-4. Soft mode only.
        gamma: mm, > 0. Depth temperature of the soft colour blend: a triangle Δz mm
            behind the nearest one is weighted by ``exp(-Δz / gamma)``. Soft mode only.
            (PyTorch3D's dimensionless ``gamma`` times ``zfar - znear``.)
        bin_size: coarse-to-fine bin size in pixels for the CUDA kernel; None = PyTorch3D's
            heuristic, 0 = naive rasterization. PyTorch3D's CPU kernel is naive only, so
            on CPU it is always 0.
        max_faces_per_bin: CUDA coarse rasterizer capacity per bin. ``"auto"`` (default):
            :func:`bin_capacity` of each batch, the most triangles any one bin can receive
            (so no bin overflows), found from the triangles' screen bounding boxes at the
            cost of one device sync per call; None = PyTorch3D's default
            ``max(10000, F / 5)``; an int: that capacity (a bin holding more drops triangles).
        cull_backfaces: skip triangles seen from behind (clockwise on screen, given the
            model's counter-clockwise-from-outside winding).
    """

    blur_radius: float = 0.0
    faces_per_pixel: int = 1
    sigma: float | None = None
    gamma: float = 1.0
    bin_size: int | None = None
    max_faces_per_bin: int | Literal["auto"] | None = "auto"
    cull_backfaces: bool = False

    def __post_init__(self) -> None:
        def number(name: str, value: Any) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"{name}: expected a finite number, got {value!r}")
            return float(value)

        def integer(name: str, value: Any, minimum: int) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InputError(f"{name}: expected an int >= {minimum}, got {value!r}")
            return value

        if number("blur_radius", self.blur_radius) < 0:
            raise InputError(f"blur_radius: expected >= 0 px, got {self.blur_radius}")
        integer("faces_per_pixel", self.faces_per_pixel, 1)
        if self.blur_radius == 0 and self.faces_per_pixel != 1:
            raise InputError(
                f"faces_per_pixel: hard rasterization (blur_radius=0) draws only the nearest face, so it "
                f"must be 1, got {self.faces_per_pixel}; set blur_radius > 0 for soft rasterization"
            )
        if self.sigma is not None and number("sigma", self.sigma) <= 0:
            raise InputError(f"sigma: expected > 0 px², got {self.sigma}")
        if number("gamma", self.gamma) <= 0:
            raise InputError(f"gamma: expected > 0 mm, got {self.gamma}")
        if self.bin_size is not None:
            integer("bin_size", self.bin_size, 0)
        if self.max_faces_per_bin is not None and self.max_faces_per_bin != AUTO_CAPACITY:
            integer("max_faces_per_bin", self.max_faces_per_bin, 1)
        if not isinstance(self.cull_backfaces, bool):
            raise InputError(f"cull_backfaces: expected a bool, got {self.cull_backfaces!r}")

    @property
    def soft(self) -> bool:
        """Whether soft rasterization is on (``blur_radius > 0``)."""
        return self.blur_radius > 0

    @property
    def sigma_px2(self) -> float:
        """The effective ``sigma`` in px² (the default derived from ``blur_radius``)."""
        if self.sigma is not None:
            return float(self.sigma)
        return self.blur_radius ** 2 / math.log(1.0 / _EDGE_PROBABILITY - 1.0)


# --------------------------------------------------------------------------- rasterize
@dataclass(frozen=True)
class Fragments:
    """The ``K`` nearest triangles at every pixel, sorted front to back.

    Attributes:
        pix_to_face: ``(B, H, W, K)`` int64 triangle index into the mesh's ``(F, 3)``
            triangles (per mesh, not packed), -1 where fewer than K triangles touch.
        bary: ``(B, H, W, K, 3)`` perspective-correct barycentrics of the pixel centre
            (clipped onto the triangle in soft mode), 0 on empty slots; mesh dtype,
            differentiable w.r.t. ``uv`` and depth.
        zbuf: ``(B, H, W, K)`` camera-space depth of the fragment, mm, 0 on empty slots;
            mesh dtype, differentiable.
        dists: ``(B, H, W, K)`` signed squared distance from the pixel centre to the
            triangle, px² (negative inside), -1 on empty slots; float32 (PyTorch3D),
            differentiable w.r.t. ``uv`` in soft mode only.
        corners: ``(B, H·W·K, 3)`` int64 vertex indices of each fragment's triangle
            (triangle 0's on empty slots), from :func:`fragment_corners`.
    """

    pix_to_face: torch.Tensor
    bary: torch.Tensor
    zbuf: torch.Tensor
    dists: torch.Tensor
    corners: torch.Tensor

    @property
    def valid(self) -> torch.Tensor:
        """``(B, H, W, K)`` bool, a triangle is stored in the slot."""
        return self.pix_to_face >= 0


def fragment_corners(triangles: torch.Tensor, pix_to_face: torch.Tensor) -> torch.Tensor:
    """``(B, H·W·K, 3)`` vertex indices of each fragment's triangle (triangle 0's on empty slots).

    Args:
        triangles: ``(F, 3)`` vertex indices.
        pix_to_face: ``(B, H, W, K)`` triangle per fragment, -1 on empty slots.
    """
    bsz = pix_to_face.shape[0]
    return triangles.to(pix_to_face.device)[pix_to_face.clamp(min=0).reshape(bsz, -1)]


def gather_corners(values: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
    """Per-vertex values at the corners of each fragment's triangle.

    One ``index_select`` on the flattened ``(B·N, C)`` values: its backward is an
    ``index_add`` (atomic adds on CUDA), where advanced indexing ``values[batch, corners]``
    back-propagates through a sort-based ``index_put`` that took 30 ms per training step
    at batch 64, 240² on an H200.

    Args:
        values: ``(B, N, C)`` per-vertex values.
        corners: ``(B, P, 3)`` int64 vertex indices (into N) of each fragment's triangle.

    Returns:
        ``(B, P, 3, C)``.
    """
    bsz, num_verts, channels = values.shape
    offsets = torch.arange(bsz, device=corners.device).view(bsz, 1, 1) * num_verts
    flat = (corners + offsets).reshape(-1)
    return values.reshape(bsz * num_verts, channels).index_select(0, flat).view(*corners.shape, channels)


def fragment_barycentrics(uv: torch.Tensor, depth: torch.Tensor, corners: torch.Tensor,
                          pix_to_face: torch.Tensor, clip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Perspective-correct barycentrics and depth of each pixel centre in its fragments.

    Screen-space barycentrics of the centre ``(j + 0.5, i + 0.5)`` from the triangle's
    pixel positions; with ``clip`` they are clamped to ≥ 0 and renormalised (the point
    moves onto the triangle) *before* the perspective correction
    ``b_k / z_k / Σ_l (b_l / z_l)``, whose denominator is then positive. (PyTorch3D's own
    kernel corrects before clipping; outside a triangle its denominator can vanish and
    its backward pass then returns gradients of 1e7 and more.)

    Args:
        uv: ``(B, N, 2)`` pixel positions of the vertices.
        depth: ``(B, N)`` camera-space z, mm (> 0).
        corners: ``(B, H·W·K, 3)`` vertex indices of each fragment's triangle
            (:func:`fragment_corners`).
        pix_to_face: ``(B, H, W, K)`` triangle per fragment, -1 on empty slots.
        clip: clip barycentrics onto the triangle.

    Returns:
        ``(bary (B, H, W, K, 3), depth (B, H, W, K))`` in ``uv``'s dtype, 0 on empty slots.
    """
    bsz, height, width, k = pix_to_face.shape
    valid = (pix_to_face >= 0).reshape(bsz, -1)
    tri = gather_corners(torch.cat([uv, depth.to(uv.dtype).unsqueeze(-1)], -1), corners)  # (B, P, 3, 3)
    tri_uv, tri_z = tri[..., :2], tri[..., 2]
    rows = torch.arange(height, device=uv.device, dtype=uv.dtype) + 0.5
    cols = torch.arange(width, device=uv.device, dtype=uv.dtype) + 0.5
    centre = torch.stack(torch.meshgrid(cols, rows, indexing="xy"), dim=-1)  # (H, W, 2) as (u, v)
    centre = centre.unsqueeze(2).expand(height, width, k, 2).reshape(1, -1, 2)
    a, b, c = tri_uv.unbind(2)

    def cross(o: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (s[..., 0] - o[..., 0]) * (t[..., 1] - o[..., 1]) - (s[..., 1] - o[..., 1]) * (t[..., 0] - o[..., 0])

    area = cross(a, b, c)
    area = torch.where(area.abs() > 1e-12, area, torch.ones_like(area))
    bary = torch.stack([cross(centre, b, c), cross(centre, c, a), cross(centre, a, b)], dim=-1) / area.unsqueeze(-1)
    if clip:
        bary = bary.clamp(min=0.0)
        bary = bary / bary.sum(-1, keepdim=True).clamp(min=1e-12)
    inv = bary / tri_z.clamp(min=1e-12)
    total = inv.sum(-1, keepdim=True)
    total = torch.where(valid.unsqueeze(-1) & (total > 0), total, torch.ones_like(total))
    keep = valid.unsqueeze(-1).to(uv.dtype)
    bary = inv / total * keep
    z = (1.0 / total) * keep
    return bary.view(bsz, height, width, k, 3), z.view(bsz, height, width, k)


def rasterize(mesh: ScreenMesh, settings: RasterSettings) -> Fragments:
    """Rasterize a batch of screen meshes with PyTorch3D's kernel.

    PyTorch3D decides which triangles touch each pixel (and, in soft mode, how far they
    are); barycentrics and depths are then evaluated in torch by
    :func:`fragment_barycentrics`, in the mesh's dtype. In hard mode the kernel's
    backward pass is never used.

    Args:
        mesh: ``uv`` ``(B, N, 2)`` px, ``verts_cam`` ``(B, N, 3)`` mm, ``triangles``
            ``(F, 3)``, ``image_size`` ``(H, W)``; any float dtype, CPU or CUDA.
        settings: rasterization options.

    Returns:
        :class:`Fragments` with ``K = settings.faces_per_pixel`` on the mesh's device.
    """
    rasterize_meshes, meshes_cls = _import_pytorch3d()
    height, width = mesh.image_size
    bsz = mesh.batch_size
    depth = mesh.verts_cam[..., 2]
    ndc = screen_to_ndc(mesh.uv, depth, mesh.image_size).float()
    if not settings.soft:
        ndc = ndc.detach()
    faces = mesh.triangles.to(device=ndc.device, dtype=torch.int64)
    num_faces = int(faces.shape[0])
    meshes = meshes_cls(verts=ndc, faces=faces.unsqueeze(0).expand(bsz, num_faces, 3))
    scale = ndc_scale(mesh.image_size)
    bin_size = settings.bin_size if ndc.is_cuda else 0
    max_faces_per_bin = settings.max_faces_per_bin
    if max_faces_per_bin == AUTO_CAPACITY:
        max_faces_per_bin = None
        if bin_size != 0:  # binned: CUDA only (0 on the CPU)
            side = default_bin_size(mesh.image_size) if bin_size is None else bin_size
            max_faces_per_bin = bin_capacity(mesh.uv, faces, mesh.image_size, side, margin_px=settings.blur_radius + 1.0)
    pix_to_face, _, _, dists = rasterize_meshes(
        meshes,
        image_size=(height, width),
        blur_radius=(settings.blur_radius / scale) ** 2,
        faces_per_pixel=settings.faces_per_pixel,
        bin_size=bin_size,
        max_faces_per_bin=max_faces_per_bin,
        perspective_correct=False,
        clip_barycentric_coords=False,
        cull_backfaces=settings.cull_backfaces,
    )
    valid = pix_to_face >= 0
    offsets = torch.arange(bsz, device=pix_to_face.device).view(bsz, 1, 1, 1) * num_faces
    pix_to_face = torch.where(valid, pix_to_face - offsets, pix_to_face)
    dists = torch.where(valid, dists * scale ** 2, dists)
    corners = fragment_corners(faces, pix_to_face)
    bary, zbuf = fragment_barycentrics(mesh.uv, depth, corners, pix_to_face, clip=settings.soft)
    return Fragments(pix_to_face=pix_to_face, bary=bary, zbuf=zbuf, dists=dists, corners=corners)


def default_bin_size(image_size: tuple[int, int]) -> int:
    """PyTorch3D's bin side for an image, px: 8 up to 64 px, else ``2^(ceil(log2 max(H, W)) - 4)``, ≥ 16."""
    longest = max(image_size)
    if longest <= 64:
        return 8
    return int(2 ** max(math.ceil(math.log2(longest)) - 4, 4))


def bin_capacity(uv: torch.Tensor, triangles: torch.Tensor, image_size: tuple[int, int], bin_size: int,
                 margin_px: float = 1.0) -> int:
    """The most triangles whose screen box meets any one ``bin_size`` bin: a safe ``max_faces_per_bin``.

    PyTorch3D's coarse kernel puts a triangle in every bin its bounding box (grown by the
    blur radius) overlaps and drops the triangles beyond a bin's capacity. This counts,
    per image and bin, the triangles whose box grown by ``margin_px`` overlaps it (a 2D
    difference array: +1/-1 at the box's bin corners, then cumulative sums), for bins laid
    from either image corner, since the count only has to bound PyTorch3D's from above.
    Triangles entirely off the image are not counted.

    Args:
        uv: ``(B, N, 2)`` vertex pixel positions (u right, v down).
        triangles: ``(F, 3)`` int64 vertex indices.
        image_size: ``(H, W)`` px.
        bin_size: bin side, px (> 0).
        margin_px: box growth, px (the blur radius plus a pixel of rounding).

    Returns:
        max over images and bins of the triangle count, ≥ 1.
    """
    height, width = image_size
    bsz = uv.shape[0]
    corners = uv.detach().index_select(1, triangles.to(uv.device).reshape(-1)).view(bsz, -1, 3, 2)
    low = corners.amin(dim=2) - margin_px  # (B, F, 2) as (u, v)
    high = corners.amax(dim=2) + margin_px
    extent = torch.tensor([width, height], device=uv.device, dtype=uv.dtype)
    weight = ((high >= 0) & (low <= extent)).all(dim=-1).to(torch.int32)  # (B, F): 1 if on the image
    bins_u, bins_v = math.ceil(width / bin_size), math.ceil(height / bin_size)
    stride = bins_u + 1  # the difference array has one more row and column than the bins
    image = torch.arange(bsz, device=uv.device).view(bsz, 1) * (bins_v + 1) * stride
    best = 1
    for flipped in (False, True):
        start, stop = (extent - high, extent - low) if flipped else (low, high)
        first = torch.floor(start / bin_size).long()
        last = torch.floor(stop / bin_size).long()
        first_u, last_u = first[..., 0].clamp(0, bins_u - 1), last[..., 0].clamp(0, bins_u - 1) + 1
        first_v, last_v = first[..., 1].clamp(0, bins_v - 1), last[..., 1].clamp(0, bins_v - 1) + 1
        diff = torch.zeros(bsz * (bins_v + 1) * stride, dtype=torch.int32, device=uv.device)
        for v, u, sign in ((first_v, first_u, 1), (first_v, last_u, -1), (last_v, first_u, -1), (last_v, last_u, 1)):
            diff.index_add_(0, (image + v * stride + u).reshape(-1), (weight * sign).reshape(-1))
        counts = diff.view(bsz, bins_v + 1, stride).cumsum(1).cumsum(2)
        best = max(best, int(counts.max()))
    return best


def interpolate_colors(colors: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """Gouraud colours of every fragment: barycentric mix of its triangle's vertex colours.

    Args:
        colors: ``(B, N, C)`` per-vertex values (shaded colours, C = 3).
        fragments: output of :func:`rasterize`.

    Returns:
        ``(B, H, W, K, C)`` in ``colors``' dtype, 0 on empty slots.
    """
    bsz, height, width, k = fragments.pix_to_face.shape
    channels = colors.shape[-1]
    gathered = gather_corners(colors, fragments.corners)  # (B, P, 3, C)
    bary = fragments.bary.to(colors.dtype).reshape(bsz, -1, 3, 1)
    values = (gathered * bary).sum(2) * fragments.valid.reshape(bsz, -1, 1).to(colors.dtype)
    return values.view(bsz, height, width, k, channels)


# --------------------------------------------------------------------------- blending
def hard_blend(face_colors: torch.Tensor, fragments: Fragments) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-fragment colour and 0/1 coverage.

    Args:
        face_colors: ``(B, H, W, K, 3)`` from :func:`interpolate_colors`.
        fragments: the fragments.

    Returns:
        ``(rgb (B, H, W, 3), alpha (B, H, W))``: the nearest face's colour (0 where
        uncovered) and coverage in {0, 1}, in ``face_colors``' dtype.
    """
    return face_colors[..., 0, :], fragments.valid[..., 0].to(face_colors.dtype)


def soft_blend(face_colors: torch.Tensor, fragments: Fragments, sigma: float,
               gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """SoftRas aggregation of the K fragments per pixel (see the module docstring).

    Args:
        face_colors: ``(B, H, W, K, 3)`` from :func:`interpolate_colors`.
        fragments: the fragments (``dists`` px², ``zbuf`` mm).
        sigma: px², sharpness of ``p_k = sigmoid(-dists_k / sigma)``.
        gamma: mm, depth temperature of the colour weights ``p_k exp(-(z_k - z_min)/gamma)``.

    Returns:
        ``(rgb (B, H, W, 3), alpha (B, H, W))``: the face colour (weighted mean over
        fragments, 0 where no fragment) and the soft silhouette ``1 - prod_k(1 - p_k)``,
        in ``face_colors``' dtype.
    """
    dtype = face_colors.dtype
    valid = fragments.valid
    logits = -fragments.dists.to(dtype) / sigma
    prob = torch.sigmoid(logits) * valid.to(dtype)
    alpha = 1.0 - torch.prod(1.0 - prob, dim=-1)
    zbuf = fragments.zbuf.to(dtype)
    # Normalised weights w_k / sum_k w_k as a softmax of log w_k = log p_k - (z_k - z_min) / gamma:
    # exact, and stable where every p_k underflows.
    log_weights = torch.nn.functional.logsigmoid(logits) - zbuf / gamma
    log_weights = torch.where(valid, log_weights, torch.full_like(log_weights, _EMPTY_LOG_WEIGHT))
    weights = torch.softmax(log_weights, dim=-1) * valid.to(dtype)
    rgb = (weights.unsqueeze(-1) * face_colors).sum(dim=-2)
    return rgb, alpha


# --------------------------------------------------------------------------- backend
@functools.lru_cache(maxsize=None)
def _cuda_probe(device: str) -> str:
    """Rasterize one triangle on ``device``; returns '' on success, else the error text."""
    try:
        rasterize_meshes, meshes_cls = _import_pytorch3d()
        verts = torch.tensor([[[0.5, 0.5, 2.0], [-0.5, 0.5, 2.0], [0.0, -0.5, 2.0]]], device=device)
        faces = torch.tensor([[[0, 1, 2]]], device=device)
        rasterize_meshes(meshes_cls(verts=verts, faces=faces), image_size=8, faces_per_pixel=1)
        torch.cuda.synchronize(device)
    except (RuntimeError, ImportError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


@register_renderer("pytorch3d")
class PyTorch3DRenderer(Renderer):
    """Mesh rasterization with PyTorch3D, Gouraud colours, hard (default) or soft.

    Args:
        blur_radius: px, ≥ 0; > 0 turns soft rasterization on (see :class:`RasterSettings`).
        faces_per_pixel: triangles aggregated per pixel in soft mode (1 in hard mode).
        sigma: px², soft coverage sharpness; default derived from ``blur_radius``.
        gamma: mm, depth temperature of the soft colour blend (default 1 mm).
        bin_size: CUDA coarse-to-fine bin size (None: PyTorch3D's heuristic; CPU: naive).
        max_faces_per_bin: CUDA bin capacity ("auto", the default: sized from the triangles
            each call so that no bin overflows; None: PyTorch3D's ``max(10000, F / 5)``).
        cull_backfaces: drop back-facing triangles (default False).

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
                 cull_backfaces: bool = False) -> None:
        self.settings = RasterSettings(
            blur_radius=blur_radius, faces_per_pixel=faces_per_pixel, sigma=sigma, gamma=gamma,
            bin_size=bin_size, max_faces_per_bin=max_faces_per_bin, cull_backfaces=cull_backfaces,
        )
        #: Soft mode differentiates coverage w.r.t. vertex positions; hard mode does not.
        self.differentiable_geometry = self.settings.soft  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings})"

    @classmethod
    def availability(cls, device: torch.device | str | None = None) -> Availability:
        """Import check (CPU) plus, for a CUDA device, a one-triangle probe of the kernel."""
        try:
            _import_pytorch3d()
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
        error = _cuda_probe(str(dev))
        if error:
            return Availability(False, f"PyTorch3D's CUDA rasterizer failed ({error})",
                                "install a PyTorch3D build with CUDA support: " + PYTORCH3D_FIX)
        return Availability(True)

    # ------------------------------------------------------------------ pipeline
    def shade(self, mesh: ScreenMesh) -> tuple[torch.Tensor, torch.Tensor]:
        """Rasterize and blend.

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
        rgb, alpha = self.shade(mesh)
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
        rgb, alpha = self.shade(mesh)
        bg = self.background_for(mesh, background)
        _check_device("background", bg, mesh)
        mask = alpha.unsqueeze(1)
        image = rgb.permute(0, 3, 1, 2) * mask + bg * (1.0 - mask)
        return RenderResult(image=image, mask=mask)


def _check_device(name: str, tensor: torch.Tensor, mesh: ScreenMesh) -> None:
    """Raise :class:`InputError` unless ``tensor`` is on the mesh's device."""
    if tensor.device != mesh.colors.device:
        raise InputError(f"{name}: expected a tensor on {mesh.colors.device} (the mesh's device), got {tensor.device}")
