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

Formats
-------
* native ``.npz`` (:mod:`.npz`, :func:`load_npz`; the keys are listed there);
* Basel Face Model 2009 ``.mat`` with optional expressions (:mod:`.bfm2009`,
  :func:`load_bfm2009`);
* Basel Face Model 2017 / 2019 ``.h5`` (:mod:`.bfm2017`, :func:`load_bfm2017`);
* landmark index files for the Basel models (:mod:`.landmark_file`).

:func:`load_face_model` (:mod:`.dispatch`) picks one by name or suffix; shared validation
lives in :mod:`.common`.
"""

from __future__ import annotations

from mofa_bench.face_model.loaders.bfm2009 import EXP_PCA_BIN_VERTICES, load_bfm2009, read_exp_pca_bin
from mofa_bench.face_model.loaders.bfm2017 import load_bfm2017
from mofa_bench.face_model.loaders.common import ORIENTATION_FLIP_THRESHOLD
from mofa_bench.face_model.loaders.dispatch import load_face_model
from mofa_bench.face_model.loaders.landmark_file import read_landmark_indices
from mofa_bench.face_model.loaders.npz import NPZ_REQUIRED_KEYS, load_npz

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
