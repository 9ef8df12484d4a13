"""The Basel Face Model 2017 / 2019 statismo ``.h5`` files.

Statismo HDF5 files (``model2017-1_bfm_nomouth.h5``, ``model2019_fullHead.h5``, ...),
read with the optional dependency h5py. For each of ``shape``, ``color`` and
``expression``: ``<part>/model/mean (3N,)``, ``<part>/model/pcaBasis (3N, K)`` with
orthonormal columns (a ``(K, 3N)`` copy is accepted; a square matrix is read as
``(3N, K)``) and ``<part>/model/pcaVariance (K,)``; only the leading 80 / 64 / 80
components are read; the topology is
``shape/representer/cells`` (``(3, F)``, 0-based; ``(F, 3)`` is accepted too) and
``shape/representer/points`` (``(3, N)`` or ``(N, 3)``, used only to check N). Geometry is
in millimetres and colour in [0, 1] already (a colour mean above 1.5 is taken to be
0..255 and divided by 255, with a warning). Bases are scaled by ``sqrt(pcaVariance)``;
columns whose norm is not 1 (to 1e-3) are normalised first, with a warning. The
expression model's mean (the average expression offset) is added to the mean shape, as
scalismo-faces does when it combines the two models; a file without an ``expression``
group gets a zero expression basis (warning).

Landmarks: see :mod:`mofa_bench.face_model.loaders.landmark_file`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from mofa_bench.errors import ModelFileError
from mofa_bench.face_model.loaders.common import build_model, checked_triangles, existing_file, finalize, scaled_basis
from mofa_bench.face_model.loaders.landmark_file import landmarks_or_placeholder
from mofa_bench.face_model.model import N_EXPRESSION, N_REFLECTANCE, N_SHAPE, FaceModel

__all__ = ["load_bfm2017"]

logger = logging.getLogger(__name__)

_BFM2017_EXPECTED = (
    "expected a Basel Face Model 2017/2019 .h5 file with shape/model/{mean,pcaBasis,"
    "pcaVariance}, color/model/{mean,pcaBasis,pcaVariance}, [expression/model/...] and "
    "shape/representer/cells"
)


def load_bfm2017(path: str | Path, *, landmarks_path: str | Path | None = None) -> FaceModel:
    """Read a Basel Face Model 2017 / 2019 statismo ``.h5`` file (see the module docstring).

    Args:
        path: e.g. ``model2017-1_bfm_nomouth.h5`` or ``model2019_fullHead.h5``.
        landmarks_path: ``.npy`` / text file of 68 0-based vertex indices into the file's
            vertices.

    Returns:
        The model (float32, mm, 80 / 64 / 80 modes), ``name`` = the file stem.
    """
    path = existing_file(Path(path), _BFM2017_EXPECTED)
    try:
        import h5py
    except ImportError as exc:
        raise ModelFileError(
            f"{path}: reading Basel Face Model 2017/2019 .h5 files needs h5py; install it with "
            "`pip install h5py` (or `pip install 'mofa-bench[bfm]'`)"
        ) from exc
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot open as HDF5 ({exc}); {_BFM2017_EXPECTED}") from exc
    metadata: dict[str, Any] = {"source": str(path), "format": "bfm2017", "units": "mm"}
    with handle:
        shape_mean, shape_pc, shape_var = _h5_pca(path, handle, "shape", required=True, keep=N_SHAPE)
        n = shape_mean.size // 3
        color_mean, color_pc, color_var = _h5_pca(path, handle, "color", required=True, keep=N_REFLECTANCE, n=n)
        expression = _h5_pca(path, handle, "expression", required=False, keep=N_EXPRESSION, n=n)
        cells = None
        for key in ("shape/representer/cells", "representer/cells"):
            if key in handle:
                cells = np.asarray(handle[key])
                break
        if cells is None:
            raise ModelFileError(f"{path}: missing dataset 'shape/representer/cells'; {_BFM2017_EXPECTED}")
        if "shape/representer/points" in handle:
            points = np.asarray(handle["shape/representer/points"])
            if points.ndim != 2 or 3 not in points.shape or points.size != 3 * n:
                raise ModelFileError(
                    f"{path}: 'shape/representer/points' has shape {points.shape}, expected "
                    f"(3, {n}) or ({n}, 3) to match shape/model/mean; {_BFM2017_EXPECTED}"
                )

    if cells.ndim == 2 and cells.shape[0] == 3 and cells.shape[1] != 3:
        cells = cells.T
    triangles = checked_triangles(path, cells, n, one_based=False,
                                  what="dataset 'shape/representer/cells'", expected=_BFM2017_EXPECTED)

    mean_shape = shape_mean.reshape(n, 3)
    shape_basis = scaled_basis(_unit_columns(path, "shape", shape_pc),
                               np.sqrt(np.clip(shape_var, 0.0, None)), N_SHAPE)
    if color_mean.max() > 1.5:
        logger.warning("%s: colour mean exceeds 1.5; treating colour as 0..255 and dividing by 255", path)
        color_mean, color_pc = color_mean / 255.0, color_pc / 255.0
        metadata["color_units"] = "0..255 -> [0, 1]"
    mean_reflectance = color_mean.reshape(n, 3)
    reflectance_basis = scaled_basis(_unit_columns(path, "color", color_pc),
                                     np.sqrt(np.clip(color_var, 0.0, None)), N_REFLECTANCE)
    if expression is None:
        logger.warning("%s: no 'expression' model; the expression basis is all zeros", path)
        metadata["expression"] = "missing"
        expression_basis = np.zeros((n, 3, N_EXPRESSION))
    else:
        exp_mean, exp_pc, exp_var = expression
        expression_basis = scaled_basis(_unit_columns(path, "expression", exp_pc),
                                        np.sqrt(np.clip(exp_var, 0.0, None)), N_EXPRESSION)
        mean_shape = mean_shape + exp_mean.reshape(n, 3)
        metadata["expression_mean_added_max_mm"] = float(np.abs(exp_mean).max()) if exp_mean.size else 0.0
    landmarks = landmarks_or_placeholder(path, landmarks_path, n, metadata)
    model = build_model(
        path, _BFM2017_EXPECTED,
        mean_shape=mean_shape, shape_basis=shape_basis, expression_basis=expression_basis,
        mean_reflectance=mean_reflectance, reflectance_basis=reflectance_basis,
        triangles=triangles, landmark_indices=landmarks, name=path.stem, metadata=metadata,
    )
    return finalize(model, fix_orientation=True, orientation_log=logging.INFO)


def _h5_pca(path: Path, handle: Any, part: str, *, required: bool, keep: int,
            n: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(mean (3N,), basis (3N, k), variance (k,))`` of one statismo PCA model, k ≤ keep.

    Only the leading ``keep`` components are read from disk.
    """
    keys = [f"{part}/model/{name}" for name in ("mean", "pcaBasis", "pcaVariance")]
    missing = [key for key in keys if key not in handle]
    if missing:
        if not required and len(missing) == 3:
            return None
        raise ModelFileError(f"{path}: missing dataset(s) {missing}; {_BFM2017_EXPECTED}")
    try:
        mean = np.asarray(handle[keys[0]], dtype=np.float64).reshape(-1)
        basis_ds = handle[keys[1]]
        variance = np.asarray(handle[keys[2]], dtype=np.float64).reshape(-1)
        basis_shape = tuple(basis_ds.shape)
        if mean.size == 0 or mean.size % 3 or (n is not None and mean.size != 3 * n):
            want = f"3N = {3 * n}" if n is not None else "3N"
            raise ModelFileError(
                f"{path}: '{keys[0]}' has {mean.size} entries, expected {want}; {_BFM2017_EXPECTED}"
            )
        if len(basis_shape) != 2 or mean.size not in basis_shape:
            raise ModelFileError(
                f"{path}: '{keys[1]}' has shape {basis_shape}, expected ({mean.size}, K); "
                f"{_BFM2017_EXPECTED}"
            )
        transposed = basis_shape[0] != mean.size
        k_total = basis_shape[0] if transposed else basis_shape[1]
        if variance.size != k_total:
            raise ModelFileError(
                f"{path}: '{keys[2]}' has {variance.size} entries for {k_total} components "
                f"in '{keys[1]}'; {_BFM2017_EXPECTED}"
            )
        k = min(k_total, keep)
        if transposed:
            basis = np.asarray(basis_ds[:k, :], dtype=np.float64).T
        else:
            basis = np.asarray(basis_ds[:, :k], dtype=np.float64)
    except ModelFileError:
        raise
    except (TypeError, ValueError, OSError) as exc:
        raise ModelFileError(f"{path}: cannot read '{part}/model' ({exc}); {_BFM2017_EXPECTED}") from exc
    return mean, basis, variance[:k]


def _unit_columns(path: Path, part: str, basis: np.ndarray) -> np.ndarray:
    """Normalise columns that are not unit length (statismo bases should already be)."""
    norms = np.linalg.norm(basis, axis=0)
    off = (np.abs(norms - 1.0) > 1e-3) & (norms > 0)
    if off.any():
        logger.warning("%s: %d '%s' pcaBasis columns are not unit length; normalising them",
                       path, int(off.sum()), part)
        basis = basis.copy()
        basis[:, off] /= norms[off]
    return basis
