"""Reflectance of the default model: mean albedo and a colour basis along three axes."""

from __future__ import annotations

from typing import Any

import numpy as np

from mofa_bench.face_model.default_model.orthogonalise import orthogonalise
from mofa_bench.face_model.default_model.regions import Face, gaussian, smoothstep
from mofa_bench.face_model.model import N_REFLECTANCE

__all__ = ["BROW_RGB", "EYE_RGB", "LIP_RGB", "SKIN_RGB", "build_reflectance"]

#: Skin, lip, brow and eye-region albedo of the mean reflectance (linear RGB).
SKIN_RGB = (0.70, 0.52, 0.42)
LIP_RGB = (0.62, 0.32, 0.30)
BROW_RGB = (0.30, 0.22, 0.17)
EYE_RGB = (0.60, 0.54, 0.50)
# Per-vertex RMS colour change (norm of the RGB change) of the global tone mode, of the
# first eigenfunction tone mode, and the relative strength of the three colour axes.
_REFL_SIGMA0 = 0.10
_REFL_SIGMA1 = 0.04
_REFL_AXIS_SCALE = (1.0, 0.5, 0.3)


def build_reflectance(face: Face, reg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Mean albedo ``(N, 3)``, basis ``(N, 3, 80)``, per-vertex RMS σ ``(80,)`` and mode names.

    Every candidate field (a scalar field times a colour axis) gets a target σ (per-vertex
    RMS colour change): global changes first, then regional ones (lips, brows, cheeks,
    eye sockets) and Laplacian eigenfunctions, the chromatic axes weaker than the tone
    axis. Candidates are orthogonalised in decreasing-σ order, so σ decreases with k.
    """
    v = face.v
    skin = np.array(SKIN_RGB)
    lips = 1.0 - smoothstep((reg["lips"] + 1.5) / 3.0)
    brows = 0.85 * ((1.0 - smoothstep((reg["brow_right"] + 1.0) / 3.0))
                    + (1.0 - smoothstep((reg["brow_left"] + 1.0) / 3.0)))
    eyes = (1.0 - smoothstep((reg["eye_right"] + 0.5) / 1.5)) + (1.0 - smoothstep((reg["eye_left"] + 0.5) / 1.5))
    sockets = (1.0 - smoothstep(reg["eye_right"] / 10.0)) + (1.0 - smoothstep(reg["eye_left"] / 10.0))
    cheeks = gaussian(v, reg["cheek_right"], 16.0) + gaussian(v, reg["cheek_left"], 16.0)
    mean = np.tile(skin, (face.n, 1))
    mean = mean + cheeks[:, None] * np.array([0.03, -0.01, -0.01])
    mean = mean * (1.0 - 0.08 * sockets[:, None])
    for weight, colour in ((lips, LIP_RGB), (brows, BROW_RGB), (eyes, EYE_RGB)):
        w = np.clip(weight, 0.0, 1.0)[:, None]
        mean = (1.0 - w) * mean + w * np.array(colour)

    tone = skin / np.linalg.norm(skin)
    red = np.array([2.0, -1.0, -1.0])
    red = red - (red @ tone) * tone
    red = red / np.linalg.norm(red)
    yellow = np.cross(tone, red)
    axes = (("tone", tone, 1.0), ("redness", red, _REFL_AXIS_SCALE[1]), ("yellow_blue", yellow, _REFL_AXIS_SCALE[2]))
    ones = np.ones(face.n)
    # (name, scalar field, colour axis, per-vertex RMS colour change σ over the mesh)
    plan: list[tuple[str, np.ndarray, np.ndarray, float]] = [
        (name, ones, axis, _REFL_SIGMA0 * scale) for name, axis, scale in axes
    ]
    brows = np.clip(brows, 0.0, 1.0)
    for name, field, axis, local in (
        ("lip_redness", lips, red, 0.10), ("lip_tone", lips, tone, 0.12),
        ("brow_tone", brows, tone, 0.15), ("cheek_redness", cheeks, red, 0.06),
        ("eye_tone", sockets, tone, 0.08),
    ):
        plan.append((name, field, axis, local * float(np.sqrt(np.mean(field ** 2)))))
    for j in range(1, face.phi.shape[1]):
        phi = face.phi[:, j] / np.abs(face.phi[:, j]).max()
        for name, axis, scale in axes:
            plan.append((f"{name}_{j}", phi, axis, _REFL_SIGMA1 * scale / (1.0 + (j - 1) / 3.0)))
    plan.sort(key=lambda item: -item[3])  # stable: ties keep their order
    q, _, kept = orthogonalise([f[:, None] * a[None, :] for _, f, a, _ in plan], N_REFLECTANCE, "reflectance")
    sigma = np.array([plan[k][3] for k in kept])
    names = [plan[k][0] for k in kept]
    basis = q * (np.sqrt(face.n) * sigma)[None, :]
    return mean, basis.reshape(face.n, 3, N_REFLECTANCE), sigma, names
