"""iBUG-68 landmark vertex indices for file models that do not store them.

Neither Basel file stores iBUG-68 vertex indices. Pass ``landmarks_path``: a ``.npy`` or
text file with 68 integer, 0-based vertex indices into the file's own vertex list (for
BFM 2009 this is the 53490-vertex numbering of ``01_MorphableModel.mat``; indices are
re-mapped when the model is restricted to the expression vertices). Without it the
landmark indices are a placeholder, vertex 0 repeated 68 times, with a logged warning and
``metadata["landmarks"] = "missing"``: such a model trains without the landmark loss
(``w_land = 0``) but its landmark error is meaningless.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from mofa_bench.errors import ModelFileError
from mofa_bench.face_model.loaders.common import existing_file, integer_valued, read_index_array

__all__ = ["landmarks_or_placeholder", "read_landmark_indices"]

logger = logging.getLogger(__name__)


def read_landmark_indices(path: str | Path, num_vertices: int) -> np.ndarray:
    """Read 68 0-based vertex indices from a ``.npy`` or whitespace/comma text file.

    Args:
        path: the file.
        num_vertices: N; every index must lie in ``[0, N)``.

    Returns:
        ``(68,)`` int64 indices.
    """
    expected = f"expected 68 integer, 0-based vertex indices in [0, {num_vertices})"
    path = existing_file(Path(path), expected)
    raw = read_index_array(path, expected)
    if raw.size != 68 or not integer_valued(raw):
        raise ModelFileError(f"{path}: got {raw.size} values of dtype {raw.dtype}; {expected}")
    indices = raw.astype(np.int64)
    if indices.min() < 0 or indices.max() >= num_vertices:
        raise ModelFileError(
            f"{path}: indices span [{int(indices.min())}, {int(indices.max())}]; {expected}"
        )
    return indices


def landmarks_or_placeholder(path: Path, landmarks_path: str | Path | None, n: int,
                             metadata: dict[str, Any]) -> np.ndarray:
    """``(68,)`` indices from ``landmarks_path``, or the vertex-0 placeholder with a warning.

    Records the choice in ``metadata["landmarks"]`` (the path or ``"missing"``).
    """
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
