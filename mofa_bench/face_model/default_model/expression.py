"""Expression basis of the default model: named, designed fields, then local polynomials."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from mofa_bench.face_model.default_model.orthogonalise import orthogonalise
from mofa_bench.face_model.default_model.regions import CHIN, Face, gaussian, smoothstep
from mofa_bench.face_model.model import N_EXPRESSION

__all__ = ["EXPRESSION_MODE_NAMES", "build_expression_basis", "expression_fields"]

#: subject's (right = image left = x < 0); the sideways modes move towards +x.
EXPRESSION_MODE_NAMES: tuple[str, ...] = (
    "jaw_open",
    "smile_left",
    "smile_right",
    "lip_pucker",
    "lip_stretch",
    "upper_lip_raise",
    "lower_lip_depress",
    "mouth_sideways",
    "blink_left",
    "blink_right",
    "squint_left",
    "squint_right",
    "brow_raise_left",
    "brow_raise_right",
    "brow_lower",
    "cheek_puff",
    "nose_wrinkle",
    "jaw_sideways",
    "jaw_forward",
)


def expression_fields(face: Face, reg: dict[str, Any]) -> list[np.ndarray]:
    """The named expression fields (mm at δ = 1), in :data:`EXPRESSION_MODE_NAMES` order."""
    v, x, y = face.v, face.x, face.y
    jaw = reg["jaw"]
    pivot = reg["jaw_pivot"]
    arm = v - pivot
    chin_arm = face.at(CHIN) - pivot
    ex, ey = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    # Rotation about the x axis through the pivot, sized so the chin moves 15 mm.
    theta = 15.0 / np.linalg.norm(np.cross(ex, chin_arm))
    jaw_open = jaw[:, None] * theta * np.cross(ex, arm)
    # Rotation about the y axis so the chin moves 6 mm towards +x.
    phi = 6.0 / abs(chin_arm[2])
    jaw_side = jaw[:, None] * phi * np.cross(ey, arm) * np.sign(np.cross(ey, chin_arm)[0])
    jaw_forward = jaw[:, None] * np.array([0.0, 0.0, 4.0])

    lips = 1.0 - smoothstep((reg["lips"] + 1.0) / 7.0)
    mouth_wide = 1.0 - smoothstep(reg["lips"] / 20.0)
    mc = reg["mouth_centre"]
    smiles = []
    for tag, sign in (("left", 1.0), ("right", -1.0)):
        w = gaussian(v, reg[f"corner_{tag}"], 14.0) * smoothstep((sign * x + 4.0) / 8.0)
        smiles.append(w[:, None] * np.array([3.0 * sign, 5.0, -2.0]))
    pucker = lips[:, None] * np.stack([-0.3 * (x - mc[0]), -0.1 * (y - mc[1]), np.full_like(x, 5.0)], axis=1)
    stretch = mouth_wide[:, None] * np.stack([0.18 * (x - mc[0]), np.zeros_like(x), np.full_like(x, -1.5)], axis=1)
    upper = (1.0 - smoothstep(reg["upper_lip"] / 8.0)) * (1.0 - jaw)
    lower = (1.0 - smoothstep(reg["lower_lip"] / 8.0)) * jaw
    upper_raise = upper[:, None] * np.array([0.0, 3.0, 1.0])
    lower_depress = lower[:, None] * np.array([0.0, -3.0, 0.5])
    sideways = (1.0 - smoothstep(reg["lips"] / 15.0))[:, None] * np.array([4.0, 0.0, 0.0])

    blinks, squints, raises = [], [], []
    for tag in ("left", "right"):
        y_up, y_lo = reg[f"eye_upper_{tag}"], reg[f"eye_lower_{tag}"]
        gap = np.maximum(y_up - y_lo, 0.0)
        inside = np.clip((y - y_lo) / np.maximum(gap, 1e-6), 0.0, 1.0)
        above = 1.0 - smoothstep((y - y_up) / 10.0)
        w_blink = np.where(y >= y_up, above, inside) * (gap > 1e-6)
        blinks.append(np.stack([np.zeros_like(x), -0.6 * gap * w_blink, np.zeros_like(x)], axis=1))
        x0, x1 = reg[f"eye_xrange_{tag}"]
        lat = smoothstep((x - (x0 - 6.0)) / 6.0) * smoothstep(((x1 + 6.0) - x) / 6.0)
        below = 1.0 - smoothstep((y_lo - y) / 12.0)
        lid = 1.0 - smoothstep((y - y_lo) / np.maximum(gap, 4.0))
        w_sq = np.where(y <= y_lo, below, lid) * lat
        squints.append(w_sq[:, None] * np.array([0.0, 2.5, 0.5]))
        centre = reg[f"eye_centre_{tag}"]
        w_brow = (1.0 - smoothstep(reg[f"brow_{tag}"] / 28.0)) * smoothstep((y - (centre[1] + 3.0)) / 10.0)
        raises.append(w_brow[:, None] * np.array([0.0, 6.0, 0.0]))

    lower_brow = np.zeros_like(v)
    puff = np.zeros(face.n)
    wrinkle = np.zeros(face.n)
    for tag, sign in (("left", 1.0), ("right", -1.0)):
        centre = reg[f"eye_centre_{tag}"]
        w = gaussian(v, reg[f"inner_brow_{tag}"], 12.0) * smoothstep((y - (centre[1] + 3.0)) / 8.0)
        lower_brow += w[:, None] * np.array([-2.0 * sign, -4.0, 0.8])
        puff += gaussian(v, reg[f"cheek_{tag}"], 15.0)
        wrinkle += gaussian(v, reg[f"alar_{tag}"], 9.0)
    cheek_puff = 5.0 * puff[:, None] * face.normals
    nose_wrinkle = np.minimum(wrinkle, 1.0)[:, None] * np.array([0.0, 3.0, 0.5])

    fields = [
        jaw_open, smiles[0], smiles[1], pucker, stretch, upper_raise, lower_depress, sideways,
        blinks[0], blinks[1], squints[0], squints[1], raises[0], raises[1], lower_brow,
        cheek_puff, nose_wrinkle, jaw_side, jaw_forward,
    ]
    return fields


def build_expression_basis(face: Face, reg: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
    """``(N, 3, 64)`` expression basis (named fields first) and all 64 mode names."""
    v, x, y = face.v, face.x, face.y
    named = expression_fields(face, reg)
    masks: list[tuple[str, np.ndarray, np.ndarray, float]] = [
        ("jaw", reg["jaw"] * gaussian(v, face.at(CHIN), 40.0), face.at(CHIN), 30.0),
        ("mouth", 1.0 - smoothstep(reg["lips"] / 15.0), reg["mouth_centre"], 25.0),
    ]
    for tag in ("left", "right"):
        masks.append((f"eye_{tag}", 1.0 - smoothstep(reg[f"eye_{tag}"] / 10.0), reg[f"eye_centre_{tag}"], 15.0))
    for tag in ("left", "right"):
        masks.append((f"brow_{tag}", 1.0 - smoothstep(reg[f"brow_{tag}"] / 12.0), reg[f"brow_centre_{tag}"], 20.0))
    for tag in ("left", "right"):
        masks.append((f"cheek_{tag}", gaussian(v, reg[f"cheek_{tag}"], 18.0), reg[f"cheek_{tag}"], 20.0))
    patterns: list[tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], int]] = [
        (lambda u, w: u, 2), (lambda u, w: w, 2), (lambda u, w: np.ones_like(u), 0),
        (lambda u, w: u, 1), (lambda u, w: w, 0), (lambda u, w: u * w, 2),
        (lambda u, w: u * u - w * w, 1), (lambda u, w: u * w, 0), (lambda u, w: u * u + w * w, 2),
    ]
    extra, extra_names = [], []
    for p, (pattern, axis) in enumerate(patterns):
        for tag, mask, centre, radius in masks:
            u = (x - centre[0]) / radius
            w = (y - centre[1]) / radius
            scalar = mask * pattern(u, w)
            peak = np.abs(scalar).max()
            if peak == 0.0:
                continue
            field = np.zeros_like(v)
            field[:, axis] = 2.0 * 0.85 ** p * scalar / peak
            extra.append(field)
            extra_names.append(f"{tag}_{p}")
    candidates = named + extra
    q, lengths, kept = orthogonalise(candidates, N_EXPRESSION, "expression")
    if kept[: len(named)] != list(range(len(named))):
        raise RuntimeError("default model: a named expression mode is linearly dependent on earlier ones")
    names = list(EXPRESSION_MODE_NAMES) + [extra_names[k - len(named)] for k in kept[len(named):]]
    basis = q * lengths[None, :]
    return basis.reshape(face.n, 3, N_EXPRESSION), names
