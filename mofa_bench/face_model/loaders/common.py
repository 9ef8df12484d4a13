"""Validation and conversion helpers shared by the face-model file loaders.

Each helper names the file and what was expected when it raises
:class:`~mofa_bench.errors.ModelFileError`. :func:`finalize` brings every loaded model to
the project's conventions (float32, 80 / 64 / 80 modes, outward triangle winding; see
:mod:`mofa_bench.face_model.loaders`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mofa_bench.errors import InputError, ModelFileError
from mofa_bench.face_model.model import N_EXPRESSION, N_REFLECTANCE, N_SHAPE, FaceModel

__all__ = [
    "ORIENTATION_FLIP_THRESHOLD",
    "build_model",
    "checked_triangles",
    "existing_file",
    "finalize",
    "integer_valued",
    "load_mat",
    "mat_matrix",
    "mat_vector",
    "orientation_score",
    "pad_modes",
    "read_index_array",
    "scaled_basis",
]

logger = logging.getLogger(__name__)

#: Normalised orientation score below which triangle winding is reversed (see :func:`finalize`).
ORIENTATION_FLIP_THRESHOLD = -0.05


def read_index_array(path: Path, expected: str) -> np.ndarray:
    """Flat ``(K,)`` numbers from a ``.npy`` or a whitespace/comma separated text file."""
    try:
        if path.suffix.lower() == ".npy":
            return np.asarray(np.load(path, allow_pickle=False)).reshape(-1)
        text = path.read_text().replace(",", " ")
        return np.asarray([float(tok) for tok in text.split()]).reshape(-1)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: cannot read ({exc}); {expected}") from exc


def integer_valued(values: np.ndarray) -> bool:
    """Whether every value is a finite whole number (integer dtype, or float with no fraction)."""
    if np.issubdtype(values.dtype, np.integer):
        return True
    if not np.issubdtype(values.dtype, np.floating):
        return False
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def existing_file(path: Path, expected: str) -> Path:
    """``path`` if it is a regular file; otherwise a ModelFileError naming ``expected``."""
    if not path.exists():
        raise ModelFileError(f"{path}: no such file; {expected}")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a regular file; {expected}")
    return path


def load_mat(path: Path, expected: str) -> dict[str, Any]:
    """Variables of a MATLAB v5/v7 ``.mat`` file (:func:`scipy.io.loadmat`)."""
    from scipy.io import loadmat

    try:
        return loadmat(path)
    except NotImplementedError as exc:
        raise ModelFileError(
            f"{path}: MATLAB v7.3 (HDF5) files are not supported ({exc}); re-save it with "
            f"save(..., '-v7'); {expected}"
        ) from exc
    except Exception as exc:  # scipy raises ValueError/TypeError/OSError on bad files
        raise ModelFileError(f"{path}: cannot read as a MATLAB .mat file ({exc}); {expected}") from exc


def mat_vector(path: Path, data: dict[str, Any], name: str, expected: str,
               size: int | None = None) -> np.ndarray:
    """A MATLAB vector (``(k, 1)`` or ``(1, k)``) as float64 ``(k,)``."""
    value = np.asarray(data[name])
    if value.ndim > 2 or (value.ndim == 2 and 1 not in value.shape) or not np.issubdtype(value.dtype, np.number):
        raise ModelFileError(
            f"{path}: variable '{name}' has shape {value.shape} and dtype {value.dtype}, "
            f"expected a numeric vector; {expected}"
        )
    value = value.astype(np.float64).reshape(-1)
    if size is not None and value.size != size:
        raise ModelFileError(
            f"{path}: variable '{name}' has {value.size} entries, expected {size}; {expected}"
        )
    return value


def mat_matrix(path: Path, data: dict[str, Any], name: str, rows: int, expected: str) -> np.ndarray:
    """A numeric ``(rows, K)`` MATLAB matrix, K ≥ 1, as stored."""
    value = np.asarray(data[name])
    if value.ndim != 2 or value.shape[0] != rows or value.shape[1] == 0 \
            or not np.issubdtype(value.dtype, np.number):
        raise ModelFileError(
            f"{path}: variable '{name}' has shape {value.shape}, expected ({rows}, K); {expected}"
        )
    return value


def checked_triangles(path: Path, value: Any, n: int, *, one_based: bool, what: str,
                      expected: str) -> np.ndarray:
    """``(F, 3)`` int64 0-based triangles, validated against ``n`` vertices."""
    tri = np.asarray(value)
    if tri.ndim == 2 and tri.shape[0] == 3 and tri.shape[1] != 3:
        tri = tri.T
    if tri.ndim != 2 or tri.shape[1] != 3 or tri.shape[0] == 0 or not integer_valued(tri):
        raise ModelFileError(
            f"{path}: {what} has shape {tri.shape} and dtype {tri.dtype}, expected integer "
            f"triangles (F, 3); {expected}"
        )
    tri = tri.astype(np.int64)
    low, high = (1, n) if one_based else (0, n - 1)
    if tri.min() < low or tri.max() > high:
        base = "1-based" if one_based else "0-based"
        raise ModelFileError(
            f"{path}: {what} spans [{int(tri.min())}, {int(tri.max())}], expected {base} "
            f"indices in [{low}, {high}]; {expected}"
        )
    return tri - 1 if one_based else tri


def scaled_basis(pc: np.ndarray, std: np.ndarray, keep: int) -> np.ndarray:
    """``(3N, K)`` interleaved components times σ → ``(N, 3, min(K, keep))`` float64."""
    k = min(pc.shape[1], keep)
    scaled = np.asarray(pc[:, :k], dtype=np.float64) * np.asarray(std[:k], dtype=np.float64)
    return scaled.reshape(-1, 3, k)


def pad_modes(basis: np.ndarray, k: int) -> np.ndarray:
    """``(N, 3, K')`` → ``(N, 3, k)``: leading modes kept, missing ones zero."""
    if basis.shape[-1] >= k:
        return basis[..., :k]
    pad = np.zeros(basis.shape[:-1] + (k - basis.shape[-1],), dtype=basis.dtype)
    return np.concatenate([basis, pad], axis=-1)


def build_model(path: Path, expected: str, *, name: str, metadata: dict[str, Any],
                **arrays: np.ndarray) -> FaceModel:
    """Construct a FaceModel, turning shape/dtype/index errors into ModelFileError.

    Every array must be non-empty and, once cast to float32, finite; ``name`` must be a
    non-empty string. Each refusal names the file and the array.
    """
    if not isinstance(name, str) or not name.strip():
        raise ModelFileError(f"{path}: the model name must be a non-empty string, got {name!r}; {expected}")
    tensors = {}
    for key, value in arrays.items():
        value = np.asarray(value)
        if value.size == 0:
            raise ModelFileError(f"{path}: array {key!r} is empty (shape {value.shape}); {expected}")
        if np.issubdtype(value.dtype, np.floating):
            value = np.ascontiguousarray(value, dtype=np.float32)
            bad = int(value.size - np.count_nonzero(np.isfinite(value)))
            if bad:
                raise ModelFileError(f"{path}: array {key!r} has {bad} NaN or infinite value(s) (as float32); "
                                     f"{expected}")
            tensors[key] = torch.from_numpy(value)
        else:
            tensors[key] = torch.from_numpy(np.ascontiguousarray(value))
    try:
        return FaceModel(name=name, metadata=metadata, **tensors)
    except InputError as exc:
        raise ModelFileError(f"{path}: {exc}; {expected}") from exc


def orientation_score(vertices: np.ndarray, triangles: np.ndarray) -> float:
    """Normalised ``Σ_f n_f · (c_f − c)`` in [-1, 1]; positive when normals point outwards."""
    v = np.asarray(vertices, dtype=np.float64)
    a, b, c = v[triangles[:, 0]], v[triangles[:, 1]], v[triangles[:, 2]]
    normals = np.cross(b - a, c - a)
    offsets = (a + b + c) / 3.0 - v.mean(axis=0)
    total = float(np.einsum("fi,fi->", normals, offsets))
    scale = float(np.sum(np.linalg.norm(normals, axis=1) * np.linalg.norm(offsets, axis=1)))
    return total / scale if scale > 0 else 0.0


def finalize(model: FaceModel, *, fix_orientation: bool,
             orientation_log: int = logging.INFO) -> FaceModel:
    """float32, 80 / 64 / 80 modes and (for files) outward-facing triangle winding."""
    model = model.to(dtype=torch.float32).truncated(N_SHAPE, N_EXPRESSION, N_REFLECTANCE)
    if fix_orientation:
        tri = model.triangles.cpu().numpy()
        score = orientation_score(model.mean_shape.detach().cpu().numpy(), tri)
        model.metadata["orientation_score"] = score
        if score < ORIENTATION_FLIP_THRESHOLD:
            logger.log(orientation_log, "%s: triangles wind clockwise seen from outside "
                       "(score %.3f); reversing them", model.metadata.get("source", model.name), score)
            model.triangles = model.triangles[:, [0, 2, 1]].contiguous()
            model.metadata["triangles_flipped"] = True
        else:
            model.metadata["triangles_flipped"] = False
    return model
