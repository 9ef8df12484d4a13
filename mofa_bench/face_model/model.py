"""The linear face model: geometry, reflectance, topology and landmarks.

Geometry V = A_s + E_s α + E_e δ and reflectance R = A_r + E_r β (MoFA, Tewari et al.
2017, Eq. 1-2). Bases are stored pre-scaled by their standard deviations, so a code
α, β, δ ~ N(0, I) is a sample from the prior and ``Eᵀ E = diag(σ²)`` holds for a basis
built from orthonormal modes.

Units: millimetres for positions; reflectance is linear RGB albedo in [0, 1].
Frame (model space): x to the subject's left as seen by a frontal camera (image right),
y up, z out of the face towards the viewer; the head is roughly centred at the origin.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from mofa_bench.errors import InputError
from mofa_bench.geometry import vertex_normals
from mofa_checks import check_tensor

#: Number of identity (shape) coefficients α.
N_SHAPE = 80
#: Number of expression coefficients δ.
N_EXPRESSION = 64
#: Number of reflectance coefficients β.
N_REFLECTANCE = 80
#: The 46 landmarks of the 68-point iBUG scheme used for training in the paper: the 17
#: jaw-line contour points are left out (their model vertices slide with pose) as are
#: 5 more (the two inner-mouth corners 60/64 and the nose-bridge top 27, and the outer
#: brow ends 17/26), leaving brows, nose, eyes and mouth. 0-based indices into the 68.
LANDMARKS_46 = tuple(
    i for i in range(68) if i >= 17 and i not in (17, 26, 27, 60, 64)
)


#: The function behind :meth:`FaceModel.load`; :func:`register_loader` sets it.
_loader: Callable[..., "FaceModel"] | None = None


def register_loader(loader: Callable[..., "FaceModel"]) -> None:
    """Set the function that :meth:`FaceModel.load` calls.

    ``mofa_bench.face_model`` registers
    :func:`mofa_bench.face_model.loaders.load_face_model` when it is imported, which
    happens before this module can be used; the loaders import this module, so this module
    does not import them.

    Args:
        loader: called as ``loader(source, **kwargs)``; returns a :class:`FaceModel`.
    """
    global _loader
    _loader = loader


def _blend(mean: torch.Tensor | None, basis: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
    """``mean + basis · coefficients`` for a batch, as one matrix product (``F.linear``).

    Args:
        mean: ``(N, 3)`` or None (no offset).
        basis: ``(N, 3, K)``.
        coefficients: ``(B, K)``.

    Returns:
        ``(B, 3N)``, vertex-major (view as ``(B, N, 3)``). The basis is used as a
        ``(3N, K)`` weight matrix in place (no copy), the layout of a linear layer's
        weight, for which the matrix libraries are tuned; the einsum this replaces ran as
        a batched product whose kernel took ≈0.9 ms per basis in the H200 profile at
        batch 64 and 28,881 vertices.
    """
    weight = basis.reshape(-1, basis.shape[-1])
    return F.linear(coefficients, weight, None if mean is None else mean.reshape(-1))


@dataclass
class FaceModel:
    """A linear 3D morphable face model: means, σ-scaled bases, triangles and landmarks.

    All arrays are torch tensors on one device; floating ones share one dtype.

    Attributes:
        mean_shape: ``(N, 3)`` mean geometry A_s, mm.
        shape_basis: ``(N, 3, 80)`` identity basis E_s, scaled by σ (mm per unit α).
        expression_basis: ``(N, 3, 64)`` expression basis E_e, scaled by σ (mm per unit δ).
        mean_reflectance: ``(N, 3)`` mean albedo A_r, RGB in [0, 1].
        reflectance_basis: ``(N, 3, 80)`` albedo basis E_r, scaled by σ.
        triangles: ``(F, 3)`` int64 vertex indices, counter-clockwise seen from outside
            (normals point out of the face).
        landmark_indices: ``(68,)`` int64 vertex index of each iBUG-68 landmark.
        landmark_subset: ``(46,)`` int64 positions into the 68 used for the landmark loss.
        name: short identifier (``"default"``, ``"bfm2009"``, ...).
        metadata: free-form provenance (source, licence, build parameters).
    """

    mean_shape: torch.Tensor
    shape_basis: torch.Tensor
    expression_basis: torch.Tensor
    mean_reflectance: torch.Tensor
    reflectance_basis: torch.Tensor
    triangles: torch.Tensor
    landmark_indices: torch.Tensor
    landmark_subset: torch.Tensor = field(
        default_factory=lambda: torch.tensor(LANDMARKS_46, dtype=torch.int64)
    )
    name: str = "custom"
    metadata: dict[str, Any] = field(default_factory=dict)

    _TENSOR_FIELDS = (
        "mean_shape",
        "shape_basis",
        "expression_basis",
        "mean_reflectance",
        "reflectance_basis",
        "triangles",
        "landmark_indices",
        "landmark_subset",
    )

    def __post_init__(self) -> None:
        dims: dict[str, int] = {}
        check_tensor("mean_shape", self.mean_shape, "N 3", dims, floating=True)
        check_tensor("shape_basis", self.shape_basis, "N 3 S", dims, floating=True)
        check_tensor("expression_basis", self.expression_basis, "N 3 E", dims, floating=True)
        check_tensor("mean_reflectance", self.mean_reflectance, "N 3", dims, floating=True)
        check_tensor("reflectance_basis", self.reflectance_basis, "N 3 R", dims, floating=True)
        check_tensor("triangles", self.triangles, "F 3", dims, integer=True)
        check_tensor("landmark_indices", self.landmark_indices, "68", integer=True)
        check_tensor("landmark_subset", self.landmark_subset, "L", integer=True)
        n = dims["N"]
        if int(self.triangles.min()) < 0 or int(self.triangles.max()) >= n:
            raise InputError(f"triangles: indices must lie in [0, {n}), got range "
                             f"[{int(self.triangles.min())}, {int(self.triangles.max())}]")
        if int(self.landmark_indices.min()) < 0 or int(self.landmark_indices.max()) >= n:
            raise InputError(f"landmark_indices: indices must lie in [0, {n})")
        if int(self.landmark_subset.min()) < 0 or int(self.landmark_subset.max()) >= 68:
            raise InputError("landmark_subset: positions must lie in [0, 68)")
        self.triangles = self.triangles.long()
        self.landmark_indices = self.landmark_indices.long()
        self.landmark_subset = self.landmark_subset.long()

    # ------------------------------------------------------------------ sizes
    @property
    def num_vertices(self) -> int:
        """N, the number of vertices."""
        return int(self.mean_shape.shape[0])

    @property
    def num_triangles(self) -> int:
        """F, the number of triangles."""
        return int(self.triangles.shape[0])

    @property
    def device(self) -> torch.device:
        return self.mean_shape.device

    @property
    def dtype(self) -> torch.dtype:
        return self.mean_shape.dtype

    # ------------------------------------------------------------------ evaluation
    def vertices(self, alpha: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """Geometry V = A_s + E_s α + E_e δ.

        Args:
            alpha: ``(B, S)`` identity coefficients (S = shape_basis.shape[-1]).
            delta: ``(B, E)`` expression coefficients.

        Returns:
            ``(B, N, 3)`` model-space vertices, mm.
        """
        check_tensor("alpha", alpha, f"B {self.shape_basis.shape[-1]}", floating=True)
        check_tensor("delta", delta, f"B {self.expression_basis.shape[-1]}", floating=True)
        return (_blend(self.mean_shape, self.shape_basis, alpha)
                + _blend(None, self.expression_basis, delta)).view(alpha.shape[0], -1, 3)

    def reflectance(self, beta: torch.Tensor) -> torch.Tensor:
        """Per-vertex albedo R = A_r + E_r β.

        Args:
            beta: ``(B, R)`` reflectance coefficients.

        Returns:
            ``(B, N, 3)`` linear RGB albedo (not clamped).
        """
        check_tensor("beta", beta, f"B {self.reflectance_basis.shape[-1]}", floating=True)
        return _blend(self.mean_reflectance, self.reflectance_basis, beta).view(beta.shape[0], -1, 3)

    def normals(self, vertices: torch.Tensor) -> torch.Tensor:
        """One-ring, area-weighted unit vertex normals of ``(B, N, 3)`` vertices → ``(B, N, 3)``."""
        return vertex_normals(vertices, self.triangles)

    @property
    def landmark_vertices(self) -> torch.Tensor:
        """``(68, 3)`` mean-shape positions of the iBUG-68 landmarks, mm."""
        return self.mean_shape[self.landmark_indices]

    # ------------------------------------------------------------------ moves
    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "FaceModel":
        """Return a copy on ``device`` with floating arrays cast to ``dtype``."""
        changes = {}
        for name in self._TENSOR_FIELDS:
            value = getattr(self, name)
            if value.dtype.is_floating_point:
                changes[name] = value.to(device=device, dtype=dtype)
            else:
                changes[name] = value.to(device=device)
        return replace(self, **changes)

    def truncated(self, n_shape: int = N_SHAPE, n_expression: int = N_EXPRESSION,
                  n_reflectance: int = N_REFLECTANCE) -> "FaceModel":
        """Keep the leading basis vectors; pad with zero modes if the model has fewer."""

        def fit(basis: torch.Tensor, k: int) -> torch.Tensor:
            if basis.shape[-1] >= k:
                return basis[..., :k].contiguous()
            pad = basis.new_zeros(*basis.shape[:-1], k - basis.shape[-1])
            return torch.cat([basis, pad], dim=-1)

        return replace(
            self,
            shape_basis=fit(self.shape_basis, n_shape),
            expression_basis=fit(self.expression_basis, n_expression),
            reflectance_basis=fit(self.reflectance_basis, n_reflectance),
        )

    # ------------------------------------------------------------------ I/O
    def to_numpy_dict(self) -> dict[str, np.ndarray]:
        """Arrays for the native ``.npz`` format (see :mod:`mofa_bench.face_model.loaders.npz`)."""
        out = {name: getattr(self, name).detach().cpu().numpy() for name in self._TENSOR_FIELDS}
        out["name"] = np.array(self.name)
        return out

    def save_npz(self, path: str | Path) -> Path:
        """Write the native ``.npz`` format; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **self.to_numpy_dict())
        return path

    def export_mesh(self, path: str | Path, vertices: torch.Tensor | None = None,
                    colors: torch.Tensor | None = None) -> Path:
        """Write a coloured mesh (``.obj`` or ``.ply``, by suffix) with trimesh.

        Args:
            path: output file; the suffix selects the format.
            vertices: ``(N, 3)`` positions in mm (default: the mean shape).
            colors: ``(N, 3)`` RGB in [0, 1] (default: the mean reflectance).
        """
        import trimesh

        path = Path(path)
        if path.suffix.lower() not in (".obj", ".ply"):
            raise InputError(f"export_mesh: unsupported mesh format {path.suffix!r}; use .obj or .ply")
        vertices = self.mean_shape if vertices is None else vertices
        colors = self.mean_reflectance if colors is None else colors
        check_tensor("vertices", vertices, f"{self.num_vertices} 3", floating=True)
        check_tensor("colors", colors, f"{self.num_vertices} 3", floating=True)
        rgba = np.concatenate(
            [np.clip(colors.detach().cpu().double().numpy(), 0.0, 1.0) * 255.0,
             np.full((self.num_vertices, 1), 255.0)], axis=1
        ).round().astype(np.uint8)
        mesh = trimesh.Trimesh(
            vertices=vertices.detach().cpu().double().numpy(),
            faces=self.triangles.cpu().numpy(),
            vertex_colors=rgba,
            process=False,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        mesh.export(path)
        return path

    @classmethod
    def load(cls, source: str | Path = "default", **kwargs: Any) -> "FaceModel":
        """Load a face model.

        Args:
            source: ``"default"`` (built-in MediaPipe-based model), or a path to a native
                ``.npz``, a Basel Face Model 2009 ``.mat`` or a BFM 2017/2019 ``.h5``.
            **kwargs: forwarded to the loader (e.g. ``subdivisions`` for the default
                model, ``expression_path`` for BFM 2009).

        Raises:
            InputError: ``source`` is not a string or path, or an option the loader does not take.
            ModelFileError: as :func:`~mofa_bench.face_model.loaders.dispatch.load_face_model`.
        """
        if not isinstance(source, (str, Path)):
            from mofa_checks import InputError

            raise InputError(f"FaceModel.load: source: expected 'default' or a path, got {type(source).__name__}")
        if _loader is None:
            raise RuntimeError("FaceModel.load: no loader registered; import mofa_bench.face_model")
        return _loader(source, **kwargs)

    def summary(self) -> str:
        """One line: name, vertex and triangle counts, basis sizes."""
        return (
            f"{self.name}: {self.num_vertices} vertices, {self.num_triangles} triangles, "
            f"{self.shape_basis.shape[-1]} shape / {self.expression_basis.shape[-1]} expression / "
            f"{self.reflectance_basis.shape[-1]} reflectance modes"
        )

