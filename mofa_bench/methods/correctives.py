"""The multi-level face model's corrective level (Tewari et al., arXiv:1712.02859, Sec. 4).

On top of the 3DMM (the *base level*), a learned linear corrective space for geometry and
one for reflectance::

    V = A_s + E_s α + E_e δ + P_s F_s c_s          R = A_r + E_r β + P_r F_r c_r

``F_s`` ``(N, 3, K_s)`` (mm per unit coefficient) and ``F_r`` ``(N, 3, K_r)`` (albedo per
unit coefficient) are learned jointly with the encoder, which predicts the coefficients
``c_s``, ``c_r`` beside the code. ``P`` is the projection onto the orthogonal complement of
what the base level explains (:func:`~mofa_bench.data.out_of_span.model_span`: the 3DMM's
bases, the mean, and for geometry the rigid motions), with ``orthogonal`` on; off, ``P = I``.

Regularisers (:meth:`CorrectiveSpace.regularizers`), per sample, averaged over the batch:

- ``shape_magnitude``: ``(1/N) Σ_i ‖δ_i‖²`` of the geometry offset δ = P_s F_s c_s (mm²);
- ``shape_smoothness``: ``(1/E) Σ_(i,j)∈edges ‖δ_i − δ_j‖²`` (mm²);
- ``reflectance_magnitude`` and ``reflectance_smoothness``: the same for the albedo offset;
- ``coefficients``: ``Σ c²`` over both coefficient vectors (fixes the scale shared by F and c).

Departures from the paper, written down: the paper keeps correctives small and smooth with
magnitude and smoothness terms on the geometry and a sparsity/constancy prior on the final
reflectance, and leaves to the 3DMM what it can explain through the base level's own loss;
here the reflectance gets the same magnitude and smoothness terms as the geometry, and the
projection ``P`` removes the base level's span from the correctives outright (so the
3DMM's coefficients alone carry what it can explain). The corrective space is linear, as
in the paper's final model.
"""

from __future__ import annotations

import torch
from torch import nn

from mofa_bench.data.out_of_span import mesh_edges, model_span
from mofa_bench.errors import ConfigError
from mofa_bench.face_model.model import FaceModel
from mofa_checks import check_tensor

__all__ = ["REGULARIZERS", "CorrectiveSpace"]

#: The corrective level's regularisers, in order.
REGULARIZERS: tuple[str, ...] = ("shape_magnitude", "shape_smoothness", "reflectance_magnitude",
                                 "reflectance_smoothness", "coefficients")


def _orthonormal_basis(span: torch.Tensor) -> torch.Tensor:
    """``(3N, r)`` orthonormal columns spanning ``span``'s column space (rank-revealing)."""
    u, s, _ = torch.linalg.svd(span, full_matrices=False)
    keep = s > s.max() * span.shape[0] * torch.finfo(span.dtype).eps
    return u[:, keep]


class CorrectiveSpace(nn.Module):
    """Learned corrective bases for geometry and reflectance (module docstring).

    Args:
        model: the face model (mesh, and the span projected out).
        shape_size: K_s ≥ 0, the geometry corrective's size.
        reflectance_size: K_r ≥ 0, the reflectance corrective's size.
        orthogonal: project the base level's span out of the correctives.
        init_shape_mm: σ of the initial geometry basis entries, mm (small, not zero: with a
            zero basis and zero coefficients neither would get a gradient).
        init_reflectance: σ of the initial reflectance basis entries.
        seed: seed of the initial bases.

    Parameters:
        shape_basis: ``(N, 3, K_s)`` F_s, mm per unit coefficient.
        reflectance_basis: ``(N, 3, K_r)`` F_r.

    Buffers (not saved: rebuilt from the model): ``shape_span`` ``(3N, r_s)`` and
    ``reflectance_span`` ``(3N, r_r)`` orthonormal bases of the projected-out spans
    (``(3N, 0)`` without ``orthogonal``), ``edges`` ``(E, 2)`` int64.
    """

    def __init__(self, model: FaceModel, shape_size: int, reflectance_size: int, orthogonal: bool = True,
                 init_shape_mm: float = 0.05, init_reflectance: float = 2e-3, seed: int = 0) -> None:
        super().__init__()
        if min(shape_size, reflectance_size) < 0:
            raise ConfigError(f"corrective sizes must be >= 0, got shape {shape_size}, reflectance {reflectance_size}")
        n = model.num_vertices
        self.shape_size = int(shape_size)
        self.reflectance_size = int(reflectance_size)
        generator = torch.Generator().manual_seed(seed)
        self.shape_basis = nn.Parameter(init_shape_mm * torch.randn(n, 3, shape_size, generator=generator))
        self.reflectance_basis = nn.Parameter(init_reflectance * torch.randn(n, 3, reflectance_size,
                                                                             generator=generator))
        for kind in ("shape", "reflectance"):
            span = (_orthonormal_basis(model_span(model, kind)) if orthogonal
                    else torch.zeros(3 * n, 0, dtype=torch.float64))
            self.register_buffer(f"{kind}_span", span.float(), persistent=False)
        self.register_buffer("edges", mesh_edges(model.triangles), persistent=False)

    @property
    def size(self) -> int:
        """K_s + K_r, the number of coefficients the encoder predicts."""
        return self.shape_size + self.reflectance_size

    def bases(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The projected bases ``P_s F_s`` ``(N, 3, K_s)`` and ``P_r F_r`` ``(N, 3, K_r)``."""
        out = []
        for basis, span in ((self.shape_basis, self.shape_span), (self.reflectance_basis, self.reflectance_span)):
            flat = basis.reshape(-1, basis.shape[-1])
            span = span.to(flat.dtype)
            out.append((flat - span @ (span.T @ flat)).reshape(basis.shape))
        return out[0], out[1]

    def offsets(self, coefficients: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Geometry and albedo offsets of ``(B, K_s + K_r)`` coefficients.

        Returns:
            ``(B, N, 3)`` geometry offset (mm) and ``(B, N, 3)`` albedo offset.
        """
        check_tensor("coefficients", coefficients, f"B {self.size}", floating=True)
        shape, reflectance = self.bases()
        c_s, c_r = coefficients[:, :self.shape_size], coefficients[:, self.shape_size:]
        return torch.einsum("nck,bk->bnc", shape, c_s), torch.einsum("nck,bk->bnc", reflectance, c_r)

    def forward(self, coefficients: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`offsets` (so ``torch.func.functional_call`` can swap the bases in)."""
        return self.offsets(coefficients)

    def regularizers(self, coefficients: torch.Tensor, shape_offset: torch.Tensor,
                     reflectance_offset: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unweighted regularisers of :data:`REGULARIZERS` (scalars, batch means).

        Args:
            coefficients: ``(B, K_s + K_r)``.
            shape_offset: ``(B, N, 3)`` mm.
            reflectance_offset: ``(B, N, 3)``.
        """
        i, j = self.edges[:, 0], self.edges[:, 1]

        def magnitude(x: torch.Tensor) -> torch.Tensor:
            return x.pow(2).sum(-1).mean()

        def smoothness(x: torch.Tensor) -> torch.Tensor:
            return (x.index_select(1, i) - x.index_select(1, j)).pow(2).sum(-1).mean()

        return {"shape_magnitude": magnitude(shape_offset), "shape_smoothness": smoothness(shape_offset),
                "reflectance_magnitude": magnitude(reflectance_offset),
                "reflectance_smoothness": smoothness(reflectance_offset),
                "coefficients": coefficients.pow(2).sum(-1).mean()}
