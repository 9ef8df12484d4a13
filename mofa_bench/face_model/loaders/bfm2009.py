"""The Basel Face Model 2009 (``01_MorphableModel.mat``) with optional Guo et al. expressions.

A MATLAB v5/v7 file (read with :func:`scipy.io.loadmat`) holding, for N = 53490 vertices
in interleaved ``x y z x y z ...`` order: ``shapeMU (3N, 1)`` in micrometres,
``shapePC (3N, 199)``, ``shapeEV (199, 1)`` (standard deviations, despite the name),
``texMU (3N, 1)`` in 0..255, ``texPC (3N, 199)``, ``texEV (199, 1)`` and ``tl (F, 3)``,
1-based. Geometry is divided by 1000 (µm → mm), colour by 255. These are the same
conversions Deep3DFaceRecon's ``util/load_mats.py::transferBFM09`` applies (it divides
geometry by 1e5, i.e. µm → dm, multiplies each PC by its ``EV`` and leaves ``texMU`` in
0..255).

The 2009 model has no expressions. :func:`load_bfm2009` optionally adds the expression
basis of Guo et al. (https://github.com/Juyong/3DFace) used by Deep3DFaceRecon and 3DDFA:

* ``Exp_Pca.bin`` — little-endian binary: one int32 ``K`` (the number of components, 79
  in the released file), then ``3 M`` float32 ``expMU``, then ``K × 3 M`` float32
  ``expPC`` stored component after component (so ``reshape(K, 3M).T`` gives the
  ``(3M, K)`` matrix, rows in ``x y z`` vertex order). ``M`` is not stored; it is derived
  from the file size (53215 for the released file, the value Deep3DFaceRecon hard-codes;
  see :func:`read_exp_pca_bin`).
  ``expMU`` is read but not used, exactly as in Deep3DFaceRecon.
* ``std_exp.txt`` — ``K`` standard deviations, one per line (``np.loadtxt``). The basis
  is ``expPC · diag(std)`` in the same units as ``shapePC · diag(shapeEV)``
  (Deep3DFaceRecon divides both by 1e5), so it is divided by 1000 to give millimetres.
  The file is looked for next to ``Exp_Pca.bin`` unless ``expression_std_path`` or
  ``exp_std`` is given. Without any standard deviations the components are used unscaled
  (σ = 1, a logged warning, ``metadata["expression_std"] = "missing"``): shapes are right
  but the N(0, I) prior on δ is not.
* ``BFM_exp_idx.mat`` — the expression basis covers M = 53215 of the 53490 BFM vertices.
  Its variable ``trimIndex`` holds, for each expression vertex, the 1-based BFM vertex
  it belongs to (Deep3DFaceRecon ships this file). When M ≠ N this map is required
  (``expression_index_path``; looked for next to ``Exp_Pca.bin`` and next to the ``.mat``
  file), and the returned model is restricted to those M vertices in expression order,
  keeping only triangles whose three corners survive; this is the 53215-vertex topology
  3DDFA uses. ``metadata["source_vertex_indices"]`` holds, for every returned vertex, its
  0-based index in ``01_MorphableModel.mat``. A ``.npy`` or text file with 0-based
  indices is accepted instead of the ``.mat``.

Without ``expression_path`` the expression basis is all zeros (a logged warning,
``metadata["expression"] = "missing"``).

Landmarks: see :mod:`mofa_bench.face_model.loaders.landmark_file`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mofa_bench.errors import ModelFileError
from mofa_bench.face_model.loaders.common import (
    build_model,
    checked_triangles,
    existing_file,
    finalize,
    integer_valued,
    load_mat,
    mat_matrix,
    mat_vector,
    pad_modes,
    read_index_array,
    scaled_basis,
)
from mofa_bench.face_model.loaders.landmark_file import landmarks_or_placeholder
from mofa_bench.face_model.model import N_EXPRESSION, N_REFLECTANCE, N_SHAPE, FaceModel

__all__ = ["EXP_PCA_BIN_VERTICES", "load_bfm2009", "read_exp_pca_bin"]

logger = logging.getLogger(__name__)

#: Vertex count of the released ``Exp_Pca.bin`` (the hard-coded value in Deep3DFaceRecon).
EXP_PCA_BIN_VERTICES = 53215

_BFM2009_VARIABLES = ("shapeMU", "shapePC", "shapeEV", "texMU", "texPC", "texEV", "tl")
_BFM2009_EXPECTED = (
    "expected a Basel Face Model 2009 file with " + ", ".join(_BFM2009_VARIABLES)
)
_EXP_BIN_EXPECTED = (
    "expected an Exp_Pca.bin expression basis: int32 K, then float32 expMU (3M) and "
    "expPC (K x 3M)"
)
_UM_PER_MM = 1000.0


def load_bfm2009(
    path: str | Path,
    *,
    expression_path: str | Path | None = None,
    expression_std_path: str | Path | None = None,
    exp_std: Sequence[float] | np.ndarray | None = None,
    expression_index_path: str | Path | None = None,
    landmarks_path: str | Path | None = None,
) -> FaceModel:
    """Read the Basel Face Model 2009 ``01_MorphableModel.mat`` (see the module docstring).

    Args:
        path: ``01_MorphableModel.mat``.
        expression_path: optional ``Exp_Pca.bin`` (Guo et al. expression basis).
        expression_std_path: ``std_exp.txt`` with one standard deviation per expression
            component; default: ``std_exp.txt`` next to ``expression_path`` if present.
        exp_std: the standard deviations themselves (overrides ``expression_std_path``).
        expression_index_path: ``BFM_exp_idx.mat`` (variable ``trimIndex``, 1-based) or a
            ``.npy`` / text file of 0-based indices mapping expression vertices to BFM
            vertices; default: ``BFM_exp_idx.mat`` next to ``expression_path`` or next to
            ``path``. Only needed when the expression basis has fewer vertices.
        landmarks_path: ``.npy`` / text file of 68 0-based vertex indices into the 53490
            vertices of ``path``.

    Returns:
        The model (float32, mm, 80 / 64 / 80 modes), ``name="bfm2009"``.
    """
    path = existing_file(Path(path), _BFM2009_EXPECTED)
    data = load_mat(path, _BFM2009_EXPECTED)
    missing = [v for v in _BFM2009_VARIABLES if v not in data]
    if missing:
        raise ModelFileError(
            f"{path}: missing variable {', '.join(repr(v) for v in missing)}; {_BFM2009_EXPECTED}"
        )
    shape_mu = mat_vector(path, data, "shapeMU", _BFM2009_EXPECTED)
    if shape_mu.size == 0 or shape_mu.size % 3:
        raise ModelFileError(
            f"{path}: variable 'shapeMU' has {shape_mu.size} entries, expected 3N "
            f"(interleaved x y z); {_BFM2009_EXPECTED}"
        )
    n = shape_mu.size // 3
    shape_pc = mat_matrix(path, data, "shapePC", 3 * n, _BFM2009_EXPECTED)
    shape_ev = mat_vector(path, data, "shapeEV", _BFM2009_EXPECTED, size=shape_pc.shape[1])
    tex_mu = mat_vector(path, data, "texMU", _BFM2009_EXPECTED, size=3 * n)
    tex_pc = mat_matrix(path, data, "texPC", 3 * n, _BFM2009_EXPECTED)
    tex_ev = mat_vector(path, data, "texEV", _BFM2009_EXPECTED, size=tex_pc.shape[1])
    triangles = checked_triangles(path, data["tl"], n, one_based=True, what="variable 'tl'",
                                  expected=_BFM2009_EXPECTED)

    metadata: dict[str, Any] = {
        "source": str(path),
        "format": "bfm2009",
        "units": "converted µm -> mm (/1000); texture /255",
    }
    mean_shape = shape_mu.reshape(n, 3) / _UM_PER_MM
    shape_basis = scaled_basis(shape_pc, shape_ev, N_SHAPE) / _UM_PER_MM
    mean_reflectance = tex_mu.reshape(n, 3) / 255.0
    reflectance_basis = scaled_basis(tex_pc, tex_ev, N_REFLECTANCE) / 255.0

    keep = None
    if expression_path is not None:
        expression_basis, keep = _bfm2009_expression(
            path, n, Path(expression_path), expression_std_path, exp_std,
            expression_index_path, metadata,
        )
    else:
        logger.warning(
            "%s: no expression_path given; the BFM 2009 expression basis is all zeros. "
            "Pass expression_path='Exp_Pca.bin' (Guo et al.) for expressions.", path,
        )
        metadata["expression"] = "missing"
        expression_basis = np.zeros((n, 3, N_EXPRESSION))

    landmarks = landmarks_or_placeholder(path, landmarks_path, n, metadata)
    if keep is not None:
        new_index = np.full(n, -1, dtype=np.int64)
        new_index[keep] = np.arange(keep.size)
        mean_shape, shape_basis = mean_shape[keep], shape_basis[keep]
        mean_reflectance, reflectance_basis = mean_reflectance[keep], reflectance_basis[keep]
        remapped = new_index[triangles]
        triangles = remapped[(remapped >= 0).all(axis=1)]
        if metadata.get("landmarks") != "missing":
            if (new_index[landmarks] < 0).any():
                dropped = landmarks[new_index[landmarks] < 0].tolist()
                raise ModelFileError(
                    f"{landmarks_path}: landmark vertices {dropped} are not covered by the "
                    f"expression basis (see {metadata['expression_index_source']}); "
                    "expected landmarks on the face region"
                )
            landmarks = new_index[landmarks]
        else:
            landmarks = np.zeros(68, dtype=np.int64)
        metadata["source_vertex_indices"] = keep
        if triangles.shape[0] == 0:
            raise ModelFileError(
                f"{path}: no triangle survives restricting the mesh to the expression "
                f"vertices of {metadata['expression_index_source']}; expected a vertex map "
                "into this model"
            )

    model = build_model(
        path, _BFM2009_EXPECTED,
        mean_shape=mean_shape, shape_basis=shape_basis, expression_basis=expression_basis,
        mean_reflectance=mean_reflectance, reflectance_basis=reflectance_basis,
        triangles=triangles, landmark_indices=landmarks, name="bfm2009", metadata=metadata,
    )
    return finalize(model, fix_orientation=True, orientation_log=logging.INFO)


def read_exp_pca_bin(path: str | Path, num_vertices: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read Guo et al.'s ``Exp_Pca.bin`` (layout in the module docstring).

    The vertex count M is not stored in the file. Unless ``num_vertices`` is given it is
    derived from the file size; a file whose size fits no M exactly but is large enough
    for the released model's M = 53215 is read with that M (as Deep3DFaceRecon does) and
    the trailing bytes are ignored with a warning.

    Args:
        path: the binary file.
        num_vertices: M, to override the size-based inference.

    Returns:
        ``(exp_mu, exp_pc)``: ``(3M,)`` mean and ``(3M, K)`` components, float32, in the
        file's units (those of BFM 2009 ``shapePC · diag(shapeEV)``), rows ``x y z`` per
        vertex.
    """
    path = existing_file(Path(path), _EXP_BIN_EXPECTED)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read ({exc}); {_EXP_BIN_EXPECTED}") from exc
    if len(raw) < 4:
        raise ModelFileError(f"{path}: file has {len(raw)} bytes, too short; {_EXP_BIN_EXPECTED}")
    k = int(np.frombuffer(raw[:4], dtype="<i4")[0])
    payload = len(raw) - 4
    if k <= 0:
        raise ModelFileError(f"{path}: header says K={k} components; {_EXP_BIN_EXPECTED}")
    per_vertex = 4 * 3 * (k + 1)
    if num_vertices is not None:
        m = int(num_vertices)
    elif payload > 0 and payload % per_vertex == 0:
        m = payload // per_vertex
    elif payload >= per_vertex * EXP_PCA_BIN_VERTICES:
        m = EXP_PCA_BIN_VERTICES
        logger.warning("%s: %d bytes beyond K=%d components of M=%d vertices are ignored",
                       path, payload - per_vertex * m, k, m)
    else:
        raise ModelFileError(
            f"{path}: header says K={k} components but the remaining {payload} bytes are not "
            f"3M·(K+1) float32 values for any vertex count M; {_EXP_BIN_EXPECTED}"
        )
    if m <= 0 or payload < per_vertex * m:
        raise ModelFileError(
            f"{path}: {payload} bytes after the header, fewer than the {per_vertex * m} needed "
            f"for K={k} components of M={m} vertices; {_EXP_BIN_EXPECTED}"
        )
    values = np.frombuffer(raw, dtype="<f4", offset=4, count=3 * m * (k + 1))
    exp_mu = values[:3 * m].copy()
    exp_pc = values[3 * m:].reshape(k, 3 * m).T.copy()
    return exp_mu, exp_pc


def _bfm2009_expression(
    path: Path,
    n: int,
    expression_path: Path,
    expression_std_path: str | Path | None,
    exp_std: Sequence[float] | np.ndarray | None,
    expression_index_path: str | Path | None,
    metadata: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray | None]:
    """Expression basis ``(N or M, 3, 64)`` in mm for BFM 2009, and the kept BFM vertices."""
    _, exp_pc = read_exp_pca_bin(expression_path)
    k = exp_pc.shape[1]
    m = exp_pc.shape[0] // 3
    metadata["expression"] = str(expression_path)

    if exp_std is not None:
        std = np.asarray(exp_std, dtype=np.float64).reshape(-1)
        source = "exp_std argument"
    else:
        std_path = Path(expression_std_path) if expression_std_path is not None else None
        if std_path is None and (expression_path.parent / "std_exp.txt").is_file():
            std_path = expression_path.parent / "std_exp.txt"
        if std_path is not None:
            std_path = existing_file(std_path, f"expected {k} standard deviations, one per line")
            try:
                std = np.loadtxt(std_path, dtype=np.float64).reshape(-1)
            except ValueError as exc:
                raise ModelFileError(
                    f"{std_path}: cannot parse ({exc}); expected {k} standard deviations, one per line"
                ) from exc
            source = str(std_path)
        else:
            logger.warning(
                "%s: no expression standard deviations (std_exp.txt / exp_std); using the "
                "components unscaled (sigma = 1), so delta ~ N(0, I) is not the model prior.",
                expression_path,
            )
            std = np.ones(k)
            source = "missing"
    if std.size < min(k, N_EXPRESSION):
        raise ModelFileError(
            f"{source}: {std.size} expression standard deviations for {k} components in "
            f"{expression_path}; expected at least {min(k, N_EXPRESSION)}"
        )
    metadata["expression_std"] = source
    use = min(k, N_EXPRESSION, std.size)
    basis = (exp_pc[:, :use].astype(np.float64) * std[:use]) / _UM_PER_MM
    basis = pad_modes(basis.reshape(m, 3, use), N_EXPRESSION)

    if m == n:
        return basis, None
    index_path = _find_expression_index(path, expression_path, expression_index_path)
    if index_path is None:
        raise ModelFileError(
            f"{expression_path}: the expression basis has {m} vertices but {path} has {n}; "
            "expected the vertex map BFM_exp_idx.mat (variable 'trimIndex', shipped with "
            "Deep3DFaceRecon) next to either file or as expression_index_path"
        )
    keep = _read_vertex_map(index_path, m, n)
    metadata["expression_index_source"] = str(index_path)
    return basis, keep


def _find_expression_index(path: Path, expression_path: Path,
                           expression_index_path: str | Path | None) -> Path | None:
    if expression_index_path is not None:
        return Path(expression_index_path)
    for folder in (expression_path.parent, path.parent):
        candidate = folder / "BFM_exp_idx.mat"
        if candidate.is_file():
            return candidate
    return None


def _read_vertex_map(index_path: Path, m: int, n: int) -> np.ndarray:
    """0-based ``(M,)`` BFM vertex index of each expression vertex."""
    expected = (
        f"expected {m} vertex indices into the {n} BFM vertices ('trimIndex' in a .mat, "
        "1-based; or a .npy / text file, 0-based)"
    )
    index_path = existing_file(index_path, expected)
    if index_path.suffix.lower() == ".mat":
        data = load_mat(index_path, expected)
        if "trimIndex" not in data:
            raise ModelFileError(f"{index_path}: missing variable 'trimIndex'; {expected}")
        raw = np.asarray(data["trimIndex"]).reshape(-1)
        offset = 1
    else:
        raw = read_index_array(index_path, expected)
        offset = 0
    if raw.size != m or not integer_valued(raw):
        raise ModelFileError(f"{index_path}: got {raw.size} values; {expected}")
    keep = raw.astype(np.int64) - offset
    if keep.min() < 0 or keep.max() >= n:
        raise ModelFileError(
            f"{index_path}: indices span [{int(raw.min())}, {int(raw.max())}]; {expected}"
        )
    return keep
