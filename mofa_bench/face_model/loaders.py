"""Load face models: the built-in default, the native ``.npz`` and the Basel Face Models.

Every loader returns a :class:`~mofa_bench.face_model.model.FaceModel` in the project's
conventions: float32 arrays, millimetres, reflectance in [0, 1], bases pre-scaled by their
standard deviations (``E = PC · diag(σ)``, so α, β, δ ~ N(0, I) under the prior), 0-based
triangles and landmark indices, and exactly 80 identity / 64 expression / 80 reflectance
modes (``model.truncated(80, 64, 80)``: leading modes kept, missing ones padded with zero
modes).

Triangle orientation
--------------------
``FaceModel`` requires triangles counter-clockwise seen from outside. File loaders check
this with one cheap global test: the area-weighted face normals are dotted with the offset
of each triangle from the mesh centroid (for a closed mesh this sum is three times the
enclosed volume; for a face mask, a shell bulging towards the viewer, it is positive when
the normals point out of the face). When the normalised sum is clearly negative
(below ``-0.05``) the winding of every triangle is reversed and
``metadata["triangles_flipped"]`` is set to ``True``; near-zero values (flat or
ambiguous meshes) leave the triangles untouched. The built-in default model is returned
as its builder made it.

Native ``.npz`` format (plug in your own model)
-----------------------------------------------
An uncompressed or compressed NumPy archive (``np.savez`` / ``np.savez_compressed``;
:meth:`FaceModel.save_npz` writes it and :func:`load_npz` reads it back unchanged) with:

===================== =============== ====================================================
key                   shape           meaning
===================== =============== ====================================================
``mean_shape``        ``(N, 3)``      mean geometry, mm
``shape_basis``       ``(N, 3, S)``   identity basis, scaled by σ (mm per unit α)
``expression_basis``  ``(N, 3, E)``   expression basis, scaled by σ (mm per unit δ)
``mean_reflectance``  ``(N, 3)``      mean albedo, linear RGB in [0, 1]
``reflectance_basis`` ``(N, 3, R)``   albedo basis, scaled by σ
``triangles``         ``(F, 3)``      integer, 0-based, counter-clockwise from outside
``landmark_indices``  ``(68,)``       integer, 0-based vertex of each iBUG-68 landmark
``landmark_subset``   ``(L,)``        optional; positions into the 68 used by the
                                      landmark loss (default: the paper's 46)
``name``              scalar string   optional; default: the file stem
===================== =============== ====================================================

S, E and R may be any size; they are truncated or zero-padded to 80 / 64 / 80. The model
frame is x to image right, y up, z towards the viewer (see :mod:`.model`). Object arrays
(pickles) are refused.

Basel Face Model 2009 (``01_MorphableModel.mat``)
-------------------------------------------------
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

Basel Face Model 2017 / 2019 (``.h5``)
--------------------------------------
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

Landmarks of the Basel models
-----------------------------
Neither Basel file stores iBUG-68 vertex indices. Pass ``landmarks_path``: a ``.npy`` or
text file with 68 integer, 0-based vertex indices into the file's own vertex list (for
BFM 2009 this is the 53490-vertex numbering of ``01_MorphableModel.mat``; indices are
re-mapped when the model is restricted to the expression vertices). Without it the
landmark indices are a placeholder, vertex 0 repeated 68 times, with a logged warning and
``metadata["landmarks"] = "missing"``: such a model trains without the landmark loss
(``w_land = 0``) but its landmark error is meaningless.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from mofa_bench.errors import InputError, ModelFileError
from mofa_bench.face_model.model import (
    N_EXPRESSION,
    N_REFLECTANCE,
    N_SHAPE,
    FaceModel,
)

__all__ = [
    "load_face_model",
    "load_npz",
    "load_bfm2009",
    "load_bfm2017",
    "read_exp_pca_bin",
    "read_landmark_indices",
    "NPZ_REQUIRED_KEYS",
    "ORIENTATION_FLIP_THRESHOLD",
    "EXP_PCA_BIN_VERTICES",
]

logger = logging.getLogger(__name__)

#: Keys every native ``.npz`` model must contain: FaceModel's arrays but the optional subset.
NPZ_REQUIRED_KEYS = tuple(name for name in FaceModel._TENSOR_FIELDS if name != "landmark_subset")
#: Normalised orientation score below which triangle winding is reversed (see module doc).
ORIENTATION_FLIP_THRESHOLD = -0.05
#: Vertex count of the released ``Exp_Pca.bin`` (the hard-coded value in Deep3DFaceRecon).
EXP_PCA_BIN_VERTICES = 53215

_NPZ_EXPECTED = (
    "expected a mofa-bench .npz model with mean_shape (N,3), shape_basis (N,3,S), "
    "expression_basis (N,3,E), mean_reflectance (N,3), reflectance_basis (N,3,R), "
    "triangles (F,3), landmark_indices (68,) [, landmark_subset, name]"
)
_BFM2009_VARIABLES = ("shapeMU", "shapePC", "shapeEV", "texMU", "texPC", "texEV", "tl")
_BFM2009_EXPECTED = (
    "expected a Basel Face Model 2009 file with " + ", ".join(_BFM2009_VARIABLES)
)
_BFM2017_EXPECTED = (
    "expected a Basel Face Model 2017/2019 .h5 file with shape/model/{mean,pcaBasis,"
    "pcaVariance}, color/model/{mean,pcaBasis,pcaVariance}, [expression/model/...] and "
    "shape/representer/cells"
)
_EXP_BIN_EXPECTED = (
    "expected an Exp_Pca.bin expression basis: int32 K, then float32 expMU (3M) and "
    "expPC (K x 3M)"
)
_UM_PER_MM = 1000.0


# ---------------------------------------------------------------------------- dispatch
def load_face_model(source: str | Path = "default", **kwargs: Any) -> FaceModel:
    """Load a face model by name or path.

    Args:
        source: ``"default"`` for the built-in model
            (:func:`mofa_bench.face_model.default_model.build_default_model`), or a path
            whose suffix selects the format: ``.npz`` (native, :func:`load_npz`), ``.mat``
            (Basel Face Model 2009, :func:`load_bfm2009`) or ``.h5`` / ``.hdf5`` (Basel Face
            Model 2017/2019, :func:`load_bfm2017`); the suffix is matched case-insensitively.
        **kwargs: options of the selected loader (for ``"default"``: of
            ``build_default_model``).

    Returns:
        A float32 :class:`FaceModel` with 80 / 64 / 80 modes.

    Raises:
        ModelFileError: unknown suffix, missing or unreadable file, missing variables or
            wrong array shapes; the message names the file and what was expected.
        InputError: an option the selected loader does not accept.
    """
    if isinstance(source, str) and source == "default":
        from mofa_bench.face_model.default_model import build_default_model

        return _finalize(build_default_model(**kwargs), fix_orientation=False)
    path = Path(source).expanduser()
    loaders: dict[str, Callable[..., FaceModel]] = {
        ".npz": load_npz,
        ".mat": load_bfm2009,
        ".h5": load_bfm2017,
        ".hdf5": load_bfm2017,
    }
    suffix = path.suffix.lower()
    if suffix not in loaders:
        raise ModelFileError(
            f"{path}: unknown face-model format {path.suffix or '(no suffix)'!r}; expected "
            "'default', a native .npz, a Basel Face Model 2009 .mat or a BFM 2017/2019 .h5"
        )
    loader = loaders[suffix]
    try:
        inspect.signature(loader).bind(path, **kwargs)
    except TypeError:
        accepted = [
            name for name, p in inspect.signature(loader).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        ]
        unknown = sorted(set(kwargs) - set(accepted))
        raise InputError(
            f"load_face_model: option(s) {unknown} are not accepted for {suffix} files "
            f"({path}); accepted: {accepted or 'none'}"
        ) from None
    return loader(path, **kwargs)


# ---------------------------------------------------------------------------- native
def load_npz(path: str | Path) -> FaceModel:
    """Read the native ``.npz`` format (table in the module docstring).

    Args:
        path: file written by :meth:`FaceModel.save_npz` or by hand with the same keys.

    Returns:
        The model (float32, 80 / 64 / 80 modes), ``metadata`` recording the source.
    """
    path = _existing_file(Path(path), _NPZ_EXPECTED)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as exc:  # zipfile / pickle / OS errors all mean "unreadable"
        raise ModelFileError(f"{path}: cannot read as a NumPy .npz archive ({exc}); {_NPZ_EXPECTED}") from exc
    missing = [key for key in NPZ_REQUIRED_KEYS if key not in arrays]
    if missing:
        raise ModelFileError(f"{path}: missing key(s) {missing}; {_NPZ_EXPECTED}")
    for key in NPZ_REQUIRED_KEYS + ("landmark_subset",):
        if key in arrays and not (np.issubdtype(arrays[key].dtype, np.number)):
            raise ModelFileError(f"{path}: key {key!r} has non-numeric dtype {arrays[key].dtype}; {_NPZ_EXPECTED}")
    name = path.stem
    if "name" in arrays:
        name = str(arrays["name"].reshape(-1)[0]) if arrays["name"].size else name
    fields: dict[str, Any] = {key: arrays[key] for key in NPZ_REQUIRED_KEYS}
    if "landmark_subset" in arrays:
        fields["landmark_subset"] = arrays["landmark_subset"]
    model = _build(path, _NPZ_EXPECTED, name=name,
                   metadata={"source": str(path), "format": "npz"}, **fields)
    return _finalize(model, fix_orientation=True, orientation_log=logging.WARNING)


# ---------------------------------------------------------------------------- BFM 2009
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
    path = _existing_file(Path(path), _BFM2009_EXPECTED)
    data = _loadmat(path, _BFM2009_EXPECTED)
    missing = [v for v in _BFM2009_VARIABLES if v not in data]
    if missing:
        raise ModelFileError(
            f"{path}: missing variable {', '.join(repr(v) for v in missing)}; {_BFM2009_EXPECTED}"
        )
    shape_mu = _column(path, data, "shapeMU", _BFM2009_EXPECTED)
    if shape_mu.size == 0 or shape_mu.size % 3:
        raise ModelFileError(
            f"{path}: variable 'shapeMU' has {shape_mu.size} entries, expected 3N "
            f"(interleaved x y z); {_BFM2009_EXPECTED}"
        )
    n = shape_mu.size // 3
    shape_pc = _matrix(path, data, "shapePC", 3 * n, _BFM2009_EXPECTED)
    shape_ev = _column(path, data, "shapeEV", _BFM2009_EXPECTED, size=shape_pc.shape[1])
    tex_mu = _column(path, data, "texMU", _BFM2009_EXPECTED, size=3 * n)
    tex_pc = _matrix(path, data, "texPC", 3 * n, _BFM2009_EXPECTED)
    tex_ev = _column(path, data, "texEV", _BFM2009_EXPECTED, size=tex_pc.shape[1])
    triangles = _triangles(path, data["tl"], n, one_based=True, what="variable 'tl'",
                           expected=_BFM2009_EXPECTED)

    metadata: dict[str, Any] = {
        "source": str(path),
        "format": "bfm2009",
        "units": "converted µm -> mm (/1000); texture /255",
    }
    mean_shape = shape_mu.reshape(n, 3) / _UM_PER_MM
    shape_basis = _scaled_basis(shape_pc, shape_ev, N_SHAPE) / _UM_PER_MM
    mean_reflectance = tex_mu.reshape(n, 3) / 255.0
    reflectance_basis = _scaled_basis(tex_pc, tex_ev, N_REFLECTANCE) / 255.0

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

    landmarks = _landmarks(path, landmarks_path, n, metadata)
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

    model = _build(
        path, _BFM2009_EXPECTED,
        mean_shape=mean_shape, shape_basis=shape_basis, expression_basis=expression_basis,
        mean_reflectance=mean_reflectance, reflectance_basis=reflectance_basis,
        triangles=triangles, landmark_indices=landmarks, name="bfm2009", metadata=metadata,
    )
    return _finalize(model, fix_orientation=True, orientation_log=logging.INFO)


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
    path = _existing_file(Path(path), _EXP_BIN_EXPECTED)
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
            std_path = _existing_file(std_path, f"expected {k} standard deviations, one per line")
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
    basis = _pad_modes(basis.reshape(m, 3, use), N_EXPRESSION)

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
    index_path = _existing_file(index_path, expected)
    if index_path.suffix.lower() == ".mat":
        data = _loadmat(index_path, expected)
        if "trimIndex" not in data:
            raise ModelFileError(f"{index_path}: missing variable 'trimIndex'; {expected}")
        raw = np.asarray(data["trimIndex"]).reshape(-1)
        offset = 1
    else:
        raw = _read_index_array(index_path, expected)
        offset = 0
    if raw.size != m or not _integer_valued(raw):
        raise ModelFileError(f"{index_path}: got {raw.size} values; {expected}")
    keep = raw.astype(np.int64) - offset
    if keep.min() < 0 or keep.max() >= n:
        raise ModelFileError(
            f"{index_path}: indices span [{int(raw.min())}, {int(raw.max())}]; {expected}"
        )
    return keep


# ---------------------------------------------------------------------------- BFM 2017
def load_bfm2017(path: str | Path, *, landmarks_path: str | Path | None = None) -> FaceModel:
    """Read a Basel Face Model 2017 / 2019 statismo ``.h5`` file (see the module docstring).

    Args:
        path: e.g. ``model2017-1_bfm_nomouth.h5`` or ``model2019_fullHead.h5``.
        landmarks_path: ``.npy`` / text file of 68 0-based vertex indices into the file's
            vertices.

    Returns:
        The model (float32, mm, 80 / 64 / 80 modes), ``name`` = the file stem.
    """
    path = _existing_file(Path(path), _BFM2017_EXPECTED)
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
    triangles = _triangles(path, cells, n, one_based=False,
                           what="dataset 'shape/representer/cells'", expected=_BFM2017_EXPECTED)

    mean_shape = shape_mean.reshape(n, 3)
    shape_basis = _scaled_basis(_unit_columns(path, "shape", shape_pc),
                                np.sqrt(np.clip(shape_var, 0.0, None)), N_SHAPE)
    if color_mean.max() > 1.5:
        logger.warning("%s: colour mean exceeds 1.5; treating colour as 0..255 and dividing by 255", path)
        color_mean, color_pc = color_mean / 255.0, color_pc / 255.0
        metadata["color_units"] = "0..255 -> [0, 1]"
    mean_reflectance = color_mean.reshape(n, 3)
    reflectance_basis = _scaled_basis(_unit_columns(path, "color", color_pc),
                                      np.sqrt(np.clip(color_var, 0.0, None)), N_REFLECTANCE)
    if expression is None:
        logger.warning("%s: no 'expression' model; the expression basis is all zeros", path)
        metadata["expression"] = "missing"
        expression_basis = np.zeros((n, 3, N_EXPRESSION))
    else:
        exp_mean, exp_pc, exp_var = expression
        expression_basis = _scaled_basis(_unit_columns(path, "expression", exp_pc),
                                         np.sqrt(np.clip(exp_var, 0.0, None)), N_EXPRESSION)
        mean_shape = mean_shape + exp_mean.reshape(n, 3)
        metadata["expression_mean_added_max_mm"] = float(np.abs(exp_mean).max()) if exp_mean.size else 0.0
    landmarks = _landmarks(path, landmarks_path, n, metadata)
    model = _build(
        path, _BFM2017_EXPECTED,
        mean_shape=mean_shape, shape_basis=shape_basis, expression_basis=expression_basis,
        mean_reflectance=mean_reflectance, reflectance_basis=reflectance_basis,
        triangles=triangles, landmark_indices=landmarks, name=path.stem, metadata=metadata,
    )
    return _finalize(model, fix_orientation=True, orientation_log=logging.INFO)


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


# ---------------------------------------------------------------------------- landmarks
def read_landmark_indices(path: str | Path, num_vertices: int) -> np.ndarray:
    """Read 68 0-based vertex indices from a ``.npy`` or whitespace/comma text file.

    Args:
        path: the file.
        num_vertices: N; every index must lie in ``[0, N)``.

    Returns:
        ``(68,)`` int64 indices.
    """
    expected = f"expected 68 integer, 0-based vertex indices in [0, {num_vertices})"
    path = _existing_file(Path(path), expected)
    raw = _read_index_array(path, expected)
    if raw.size != 68 or not _integer_valued(raw):
        raise ModelFileError(f"{path}: got {raw.size} values of dtype {raw.dtype}; {expected}")
    indices = raw.astype(np.int64)
    if indices.min() < 0 or indices.max() >= num_vertices:
        raise ModelFileError(
            f"{path}: indices span [{int(indices.min())}, {int(indices.max())}]; {expected}"
        )
    return indices


def _landmarks(path: Path, landmarks_path: str | Path | None, n: int,
               metadata: dict[str, Any]) -> np.ndarray:
    if landmarks_path is not None:
        metadata["landmarks"] = str(landmarks_path)
        return read_landmark_indices(landmarks_path, n)
    logger.warning(
        "%s: no landmarks_path given; the file has no iBUG-68 landmark vertices, so the "
        "landmark indices are a placeholder (vertex 0). Train with w_land = 0 or pass "
        "landmarks_path (68 0-based vertex indices).", path,
    )
    metadata["landmarks"] = "missing"
    return np.zeros(68, dtype=np.int64)


def _read_index_array(path: Path, expected: str) -> np.ndarray:
    try:
        if path.suffix.lower() == ".npy":
            return np.asarray(np.load(path, allow_pickle=False)).reshape(-1)
        text = path.read_text().replace(",", " ")
        return np.asarray([float(tok) for tok in text.split()]).reshape(-1)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: cannot read ({exc}); {expected}") from exc


def _integer_valued(values: np.ndarray) -> bool:
    if np.issubdtype(values.dtype, np.integer):
        return True
    if not np.issubdtype(values.dtype, np.floating):
        return False
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


# ---------------------------------------------------------------------------- helpers
def _existing_file(path: Path, expected: str) -> Path:
    if not path.exists():
        raise ModelFileError(f"{path}: no such file; {expected}")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a regular file; {expected}")
    return path


def _loadmat(path: Path, expected: str) -> dict[str, Any]:
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


def _column(path: Path, data: dict[str, Any], name: str, expected: str,
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


def _matrix(path: Path, data: dict[str, Any], name: str, rows: int, expected: str) -> np.ndarray:
    value = np.asarray(data[name])
    if value.ndim != 2 or value.shape[0] != rows or value.shape[1] == 0 \
            or not np.issubdtype(value.dtype, np.number):
        raise ModelFileError(
            f"{path}: variable '{name}' has shape {value.shape}, expected ({rows}, K); {expected}"
        )
    return value


def _triangles(path: Path, value: Any, n: int, *, one_based: bool, what: str,
               expected: str) -> np.ndarray:
    """``(F, 3)`` int64 0-based triangles, validated against ``n`` vertices."""
    tri = np.asarray(value)
    if tri.ndim == 2 and tri.shape[0] == 3 and tri.shape[1] != 3:
        tri = tri.T
    if tri.ndim != 2 or tri.shape[1] != 3 or tri.shape[0] == 0 or not _integer_valued(tri):
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


def _scaled_basis(pc: np.ndarray, std: np.ndarray, keep: int) -> np.ndarray:
    """``(3N, K)`` interleaved components times σ → ``(N, 3, min(K, keep))`` float64."""
    k = min(pc.shape[1], keep)
    scaled = np.asarray(pc[:, :k], dtype=np.float64) * np.asarray(std[:k], dtype=np.float64)
    return scaled.reshape(-1, 3, k)


def _pad_modes(basis: np.ndarray, k: int) -> np.ndarray:
    if basis.shape[-1] >= k:
        return basis[..., :k]
    pad = np.zeros(basis.shape[:-1] + (k - basis.shape[-1],), dtype=basis.dtype)
    return np.concatenate([basis, pad], axis=-1)


def _build(path: Path, expected: str, *, name: str, metadata: dict[str, Any],
           **arrays: np.ndarray) -> FaceModel:
    """Construct a FaceModel, turning shape/dtype/index errors into ModelFileError."""
    tensors = {}
    for key, value in arrays.items():
        value = np.asarray(value)
        if np.issubdtype(value.dtype, np.floating):
            tensors[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        else:
            tensors[key] = torch.from_numpy(np.ascontiguousarray(value))
    try:
        return FaceModel(name=name, metadata=metadata, **tensors)
    except InputError as exc:
        raise ModelFileError(f"{path}: {exc}; {expected}") from exc


def _orientation_score(vertices: np.ndarray, triangles: np.ndarray) -> float:
    """Normalised ``Σ_f n_f · (c_f − c)`` in [-1, 1]; positive when normals point outwards."""
    v = np.asarray(vertices, dtype=np.float64)
    a, b, c = v[triangles[:, 0]], v[triangles[:, 1]], v[triangles[:, 2]]
    normals = np.cross(b - a, c - a)
    offsets = (a + b + c) / 3.0 - v.mean(axis=0)
    total = float(np.einsum("fi,fi->", normals, offsets))
    scale = float(np.sum(np.linalg.norm(normals, axis=1) * np.linalg.norm(offsets, axis=1)))
    return total / scale if scale > 0 else 0.0


def _finalize(model: FaceModel, *, fix_orientation: bool,
              orientation_log: int = logging.INFO) -> FaceModel:
    """float32, 80 / 64 / 80 modes and (for files) outward-facing triangle winding."""
    model = model.to(dtype=torch.float32).truncated(N_SHAPE, N_EXPRESSION, N_REFLECTANCE)
    if fix_orientation:
        tri = model.triangles.cpu().numpy()
        score = _orientation_score(model.mean_shape.detach().cpu().numpy(), tri)
        model.metadata["orientation_score"] = score
        if score < ORIENTATION_FLIP_THRESHOLD:
            logger.log(orientation_log, "%s: triangles wind clockwise seen from outside "
                       "(score %.3f); reversing them", model.metadata.get("source", model.name), score)
            model.triangles = model.triangles[:, [0, 2, 1]].contiguous()
            model.metadata["triangles_flipped"] = True
        else:
            model.metadata["triangles_flipped"] = False
    return model
