"""Identity basis of the default model: named regional variations, then smooth fields."""

from __future__ import annotations

from typing import Any

import numpy as np

from mofa_bench.face_model.default_model.orthogonalise import orthogonalise
from mofa_bench.face_model.default_model.regions import (
    CHIN,
    NOSE_BRIDGE_TOP,
    NOSE_TIP,
    Face,
    gaussian,
    segment_distance,
    smoothstep,
)
from mofa_bench.face_model.model import N_SHAPE

__all__ = ["IDENTITY_MODE_NAMES", "build_identity_basis"]

#: Names of the leading identity modes (after them: Laplacian-eigenfunction fields).
IDENTITY_MODE_NAMES: tuple[str, ...] = (
    "face_width",
    "face_height",
    "face_depth",
    "nose_protrusion",
    "eye_spacing",
    "mouth_width",
    "chin_height",
    "cheek_fullness",
    "brow_ridge",
    "jaw_width",
)
#: Names of the leading expression modes; positive δ does what the name says, negative
#: the opposite (frown for smile, eye wide open for blink, ...). "right"/"left" are the

# Per-vertex RMS (mm) of identity mode k: _ID_SIGMA0 / (1 + k / _SIGMA_DECAY).
_ID_SIGMA0 = 1.5
_SIGMA_DECAY = 4.0


def build_identity_basis(face: Face, reg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(N, 3, 80)`` identity basis, its per-vertex RMS σ ``(80,)`` in mm and mode names."""
    v, n = face.v, face.normals
    centre = v.mean(axis=0)
    r = v - centre
    ones = np.ones(face.n)
    zeros = np.zeros(face.n)

    def vec(fx: np.ndarray, fy: np.ndarray, fz: np.ndarray) -> np.ndarray:
        return np.stack([fx, fy, fz], axis=1)

    rigid = [vec(ones, zeros, zeros), vec(zeros, ones, zeros), vec(zeros, zeros, ones)]
    for axis in range(3):
        omega = np.zeros(3)
        omega[axis] = 1.0
        rigid.append(np.cross(omega, r))

    nose = np.exp(-0.5 * (segment_distance(v, face.at(NOSE_BRIDGE_TOP), face.at(NOSE_TIP)) / 12.0) ** 2)
    eyes_r = 1.0 - smoothstep(reg["eye_right"] / 12.0)
    eyes_l = 1.0 - smoothstep(reg["eye_left"] / 12.0)
    mouth = 1.0 - smoothstep(reg["lips"] / 10.0)
    chin = reg["jaw"] * gaussian(v, face.at(CHIN), 25.0)
    cheeks = gaussian(v, reg["cheek_right"], 18.0) + gaussian(v, reg["cheek_left"], 18.0)
    brows = (1.0 - smoothstep(reg["brow_right"] / 10.0)) + (1.0 - smoothstep(reg["brow_left"] / 10.0))
    half_mouth = max(abs(reg["corner_left"][0]), 1.0)
    named = [
        vec(r[:, 0], zeros, zeros),                              # face_width
        vec(zeros, r[:, 1], zeros),                              # face_height
        vec(zeros, zeros, r[:, 2]),                              # face_depth
        vec(zeros, zeros, nose),                                 # nose_protrusion
        vec(eyes_l - eyes_r, zeros, zeros),                      # eye_spacing
        vec(mouth * v[:, 0] / half_mouth, zeros, zeros),         # mouth_width
        vec(zeros, -chin, zeros),                                # chin_height
        cheeks[:, None] * n,                                     # cheek_fullness
        brows[:, None] * n,                                      # brow_ridge
        vec(reg["jaw"] * v[:, 0] / half_mouth, zeros, zeros),    # jaw_width
    ]
    fields, names = [], list(IDENTITY_MODE_NAMES)
    for j in range(1, face.phi.shape[1]):
        phi = face.phi[:, j] / np.abs(face.phi[:, j]).max()
        fields += [phi[:, None] * n, vec(phi, zeros, zeros), vec(zeros, phi, zeros)]
        names += [f"laplace{j}_normal", f"laplace{j}_x", f"laplace{j}_y"]
    q, _, kept = orthogonalise(rigid + named + fields, len(rigid) + N_SHAPE, "identity")
    if kept[: len(rigid) + len(named)] != list(range(len(rigid) + len(named))):
        raise RuntimeError("default model: a named identity mode is linearly dependent on earlier ones")
    q = q[:, len(rigid):]
    sigma = _ID_SIGMA0 / (1.0 + np.arange(N_SHAPE) / _SIGMA_DECAY)
    basis = q * (np.sqrt(face.n) * sigma)[None, :]
    return basis.reshape(face.n, 3, N_SHAPE), sigma, [names[k - len(rigid)] for k in kept[len(rigid):]]

