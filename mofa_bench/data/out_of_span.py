"""The out-of-span synthetic protocol: faces from a richer generator than the decoder's 3DMM.

In the in-span protocol (:class:`~mofa_bench.data.synthetic.SyntheticFaces`) every face is
a code of the decoder's own model, so a model that adds anything to the 3DMM (the
multi-level model's correctives) has nothing to learn. Here each face is the 3DMM face of
its code **plus a held-out deformation** of its geometry and of its albedo::

    V = A_s + E_s α + E_e δ + H_s z_s          R = A_r + E_r β + H_r z_r

``H_s`` ``(N, 3, K_s)`` and ``H_r`` ``(N, 3, K_r)`` are :func:`held_out_modes`: random
fields on the mesh, smoothed by repeated one-ring averaging (so they look like shape and
skin-tone detail, not noise), with the span of the decoder's model projected out (for
geometry also the mean shape, i.e. scale, and the six rigid motions, which the pose and
the metrics' scale compensation absorb), then orthonormalised. No code of the decoder's
model can represent them: they are what a corrective space can learn. ``z_s``, ``z_r``
are N(0, 1) per sample, drawn from their own random stream
(:data:`DETAIL_STREAM`), so a face's code (and its background) is the same as in the
in-span protocol with the same seed; only the detail is added.

The modes depend on the mesh and :attr:`OutOfSpanConfig.seed` only, not on the data
seed: training, validation and test faces share one held-out space.

Ground truth: a batch's ``vertices`` are the deformed model-space vertices (what
``geometric_model_mm`` and, posed by the true code, ``geometric_mm`` score against);
``codes`` are the 3DMM part (they cannot hold the detail), ``landmarks`` the deformed
landmark vertices' pixels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from mofa_bench.data.synthetic import SyntheticFaces, sample_seed
from mofa_bench.errors import InputError
from mofa_bench.face_model.model import FaceModel
from mofa_bench.formation import FormedFace

__all__ = ["DETAIL_STREAM", "OutOfSpanConfig", "OutOfSpanFaces", "held_out_modes", "mesh_edges", "model_span",
           "neighbour_average"]

#: Random stream of a sample's held-out detail coefficients (codes use stream 0,
#: backgrounds 1: :mod:`mofa_bench.data.synthetic`).
DETAIL_STREAM = 2
#: Streams of :func:`sample_seed` that seed the held-out modes' random fields.
_MODE_STREAMS = {"shape": 7, "reflectance": 8}


@dataclass(frozen=True)
class OutOfSpanConfig:
    """The held-out detail the out-of-span protocol adds (``data.out_of_span``).

    Attributes:
        shape_modes: K_s, number of held-out geometry modes (0: none).
        shape_std_mm: RMS over vertices of a face's held-out displacement, mm (expected value).
        reflectance_modes: K_r, number of held-out albedo modes (0: none).
        reflectance_std: RMS over vertices of a face's held-out albedo change (RGB units, per
            vertex the Euclidean norm over the three channels).
        smoothing: one-ring averaging passes that smooth the random fields (more: broader detail).
        seed: seed of the held-out modes (the same space for every split).

    The protocol is on when either mode count is > 0 (the default, all zero, is in-span).
    """

    shape_modes: int = 0
    shape_std_mm: float = 2.0
    reflectance_modes: int = 0
    reflectance_std: float = 0.05
    smoothing: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("shape_modes", "reflectance_modes", "smoothing", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"{name}: expected an integer >= 0, got {value!r}")
        for name in ("shape_std_mm", "reflectance_std"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InputError(f"{name}: expected a finite number >= 0, got {value!r}")

    @property
    def enabled(self) -> bool:
        """Whether any held-out detail is added."""
        return self.shape_modes > 0 or self.reflectance_modes > 0


def mesh_edges(triangles: torch.Tensor) -> torch.Tensor:
    """``(E, 2)`` int64 the mesh's undirected edges, each once (``i < j``), on the CPU."""
    tri = triangles.detach().cpu().long()
    pairs = torch.cat([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    return torch.unique(torch.sort(pairs, dim=1).values, dim=0)


def neighbour_average(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Each vertex's value replaced by the mean of its one-ring neighbours' values.

    Args:
        values: ``(N, C)`` per-vertex values.
        edges: ``(E, 2)`` int64 undirected edges (:func:`mesh_edges`), on ``values``' device.

    Returns:
        ``(N, C)``; a vertex on no edge keeps its value.
    """
    source = torch.cat([edges[:, 0], edges[:, 1]])
    neighbour = torch.cat([edges[:, 1], edges[:, 0]])
    total = torch.zeros_like(values).index_add_(0, source, values.index_select(0, neighbour))
    count = torch.zeros(values.shape[0], dtype=values.dtype, device=values.device)
    count.index_add_(0, source, torch.ones_like(source, dtype=values.dtype))
    lonely = count == 0
    total[lonely] = values[lonely]
    return total / count.clamp(min=1).unsqueeze(1)


def model_span(model: FaceModel, kind: str) -> torch.Tensor:
    """``(3N, m)`` float64 CPU columns spanning what the model (with pose) explains of ``kind``.

    ``"shape"``: the identity and expression bases, the mean shape (a scale change) and the
    six rigid motions (three translations, three infinitesimal rotations about the mean
    shape's centroid); ``"reflectance"``: the reflectance basis, the mean albedo and the
    three constant colours (a light colour's change). Columns are not orthonormalised.
    """
    if kind == "shape":
        mean = model.mean_shape.detach().double().cpu()
        n = mean.shape[0]
        centred = mean - mean.mean(0)
        rigid = [torch.zeros(n, 3, dtype=torch.float64).index_fill_(1, torch.tensor([axis]), 1.0) for axis in range(3)]
        for axis in range(3):  # infinitesimal rotation about each axis: e_axis × v
            unit = torch.zeros(3, dtype=torch.float64)
            unit[axis] = 1.0
            rigid.append(torch.linalg.cross(unit.expand_as(centred), centred, dim=-1))
        columns = [mean.reshape(-1, 1), *(r.reshape(-1, 1) for r in rigid),
                   model.shape_basis.detach().double().cpu().reshape(3 * n, -1),
                   model.expression_basis.detach().double().cpu().reshape(3 * n, -1)]
    else:
        mean = model.mean_reflectance.detach().double().cpu()
        n = mean.shape[0]
        constant = [torch.zeros(n, 3, dtype=torch.float64).index_fill_(1, torch.tensor([c]), 1.0) for c in range(3)]
        columns = [mean.reshape(-1, 1), *(c.reshape(-1, 1) for c in constant),
                   model.reflectance_basis.detach().double().cpu().reshape(3 * n, -1)]
    return torch.cat(columns, dim=1)


def held_out_modes(model: FaceModel, count: int, kind: str, smoothing: int = 20, seed: int = 0) -> torch.Tensor:
    """Orthonormal smooth fields on the mesh, outside the span of the model (see the module).

    Args:
        model: the decoder's face model (mesh and bases).
        count: K, number of modes.
        kind: ``"shape"`` (orthogonal to the shape and expression bases, the mean shape and
            the rigid motions) or ``"reflectance"`` (to the reflectance basis, the mean
            albedo and constant colours).
        smoothing: one-ring averaging passes applied to the random fields.
        seed: seed of the random fields.

    Returns:
        ``(N, 3, K)`` float64 on the CPU, columns orthonormal in R^{3N} (unit norm).

    Raises:
        InputError: an unknown kind, or more modes than the complement of the span holds.
    """
    if kind not in ("shape", "reflectance"):
        raise InputError(f"kind: expected 'shape' or 'reflectance', got {kind!r}")
    n = model.num_vertices
    span = model_span(model, kind)
    if count + span.shape[1] > 3 * n:
        raise InputError(f"out_of_span: {count} {kind} modes do not fit beside the model's {span.shape[1]} "
                         f"columns on a {n}-vertex mesh")
    q, _ = torch.linalg.qr(span)
    generator = torch.Generator().manual_seed(sample_seed(seed, 0, _MODE_STREAMS[kind]))
    fields = torch.randn(n, 3 * count, generator=generator, dtype=torch.float64)
    edges = mesh_edges(model.triangles)
    for _ in range(smoothing):
        fields = neighbour_average(fields, edges)
    fields = fields.reshape(n, 3, count).reshape(3 * n, count)
    for _ in range(2):  # twice: one pass leaves round-off of the span's size
        fields = fields - q @ (q.T @ fields)
    modes, _ = torch.linalg.qr(fields)
    return modes.reshape(n, 3, count)


class OutOfSpanFaces(SyntheticFaces):
    """:class:`~mofa_bench.data.synthetic.SyntheticFaces` plus held-out detail (module docstring).

    Args:
        decoder, size, seed, prior, backgrounds, start, generator: as :class:`SyntheticFaces`
            (``generator="counter"`` draws the held-out coefficients with the counter-based
            generator too, in stream :data:`DETAIL_STREAM`).
        detail: the held-out detail (:class:`OutOfSpanConfig`).

    Attributes:
        shape_modes: ``(N, 3, K_s)`` held-out displacement per unit coefficient, mm, in the
            decoder model's dtype and device.
        reflectance_modes: ``(N, 3, K_r)`` held-out albedo change per unit coefficient.
    """

    def __init__(self, decoder: Any, size: int, seed: int = 0, prior: Any = None, backgrounds: Any = None,
                 start: int = 0, detail: OutOfSpanConfig = OutOfSpanConfig(), generator: str = "cpu") -> None:
        super().__init__(decoder, size, seed, prior, backgrounds, start, generator)
        self.detail = detail
        model = decoder.model
        n = model.num_vertices

        def scaled(count: int, kind: str, std: float) -> torch.Tensor:
            if count == 0:
                return torch.zeros(n, 3, 0, dtype=model.dtype, device=model.device)
            modes = held_out_modes(model, count, kind, detail.smoothing, detail.seed)
            return (modes * (std * math.sqrt(n / count))).to(device=model.device, dtype=model.dtype)

        self.shape_modes = scaled(detail.shape_modes, "shape", detail.shape_std_mm)
        self.reflectance_modes = scaled(detail.reflectance_modes, "reflectance", detail.reflectance_std)

    def detail_coefficients(self, indices: torch.Tensor) -> torch.Tensor:
        """``(B, K_s + K_r)`` float32 N(0, 1) held-out coefficients of samples (CPU), each a
        pure function of ``(seed, start + index)`` (``generator="counter"``: on :attr:`device`)."""
        k = self.detail.shape_modes + self.detail.reflectance_modes
        if self.generator == "counter":
            return self.counter_stream(indices, DETAIL_STREAM).normal(k)
        rows = [torch.randn(1, k, generator=self._generator(int(i), DETAIL_STREAM)) for i in indices.tolist()]
        return torch.cat(rows)

    def form(self, codes: torch.Tensor, indices: torch.Tensor) -> FormedFace:
        """The samples' 3DMM faces with their held-out geometry and albedo added."""
        z = self.detail_coefficients(indices).to(device=codes.device, dtype=codes.dtype)
        k_s = self.detail.shape_modes
        base = self.decoder.form(codes)
        vertices = base.vertices + torch.einsum("nck,bk->bnc", self.shape_modes, z[:, :k_s])
        reflectance = base.reflectance + torch.einsum("nck,bk->bnc", self.reflectance_modes, z[:, k_s:])
        return self.decoder.form_geometry(vertices, reflectance, codes)

    def describe(self) -> dict[str, Any]:
        """:meth:`SyntheticFaces.describe` with the held-out detail (``out_of_span``)."""
        return {**super().describe(), "out_of_span": asdict(self.detail)}
