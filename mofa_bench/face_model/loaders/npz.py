"""The native ``.npz`` face-model format (plug in your own model).

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

"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from mofa_bench.errors import ModelFileError
from mofa_bench.face_model.loaders.common import build_model, existing_file, finalize
from mofa_bench.face_model.model import FaceModel

__all__ = ["NPZ_REQUIRED_KEYS", "load_npz"]

#: Keys every native ``.npz`` model must contain: FaceModel's arrays but the optional subset.
NPZ_REQUIRED_KEYS = tuple(name for name in FaceModel._TENSOR_FIELDS if name != "landmark_subset")

_NPZ_EXPECTED = (
    "expected a mofa-bench .npz model with mean_shape (N,3), shape_basis (N,3,S), "
    "expression_basis (N,3,E), mean_reflectance (N,3), reflectance_basis (N,3,R), "
    "triangles (F,3), landmark_indices (68,) [, landmark_subset, name]"
)


def load_npz(path: str | Path) -> FaceModel:
    """Read the native ``.npz`` format (table in the module docstring).

    Args:
        path: file written by :meth:`FaceModel.save_npz` or by hand with the same keys.

    Returns:
        The model (float32, 80 / 64 / 80 modes), ``metadata`` recording the source.
    """
    path = existing_file(Path(path), _NPZ_EXPECTED)
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
        value = arrays["name"]
        if value.dtype.kind not in "US" or value.size != 1:
            raise ModelFileError(f"{path}: key 'name' must be one string, got dtype {value.dtype} and shape "
                                 f"{value.shape}; {_NPZ_EXPECTED}")
        name = str(value.reshape(-1)[0])
    fields: dict[str, Any] = {key: arrays[key] for key in NPZ_REQUIRED_KEYS}
    if "landmark_subset" in arrays:
        fields["landmark_subset"] = arrays["landmark_subset"]
    model = build_model(path, _NPZ_EXPECTED, name=name,
                        metadata={"source": str(path), "format": "npz"}, **fields)
    return finalize(model, fix_orientation=True, orientation_log=logging.WARNING)
