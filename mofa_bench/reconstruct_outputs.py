"""What :func:`mofa_bench.reconstruct.reconstruct` measures and draws per photo besides the mesh.

- :func:`encode_crops`: crops → codes, handing a predictor that uses landmarks
  (``uses_landmarks``, e.g. :class:`~mofa_bench.reconstruct_fit.LandmarkFit`) the detected
  points, their confidences and the face regions.
- :class:`LandmarkRecord`: the reconstruction's 68 projected points in photo pixels, the
  detected ones, and their distance (px and NME).
- :func:`overlay_picture`: crop | reconstruction | overlay at ≥ 256 px per tile, with the
  detected points (green) and the reconstruction's (red) drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from mofa_bench.photos.framing import CropBox

__all__ = ["OVERLAY_MIN_SIDE", "LandmarkRecord", "encode_crops", "landmark_record", "overlay_picture"]

#: Smallest side of each tile of the overlay picture, px.
OVERLAY_MIN_SIDE: int = 256
#: iBUG-68 outer eye corners (the NME's normaliser).
_OUTER_EYE_CORNERS = (36, 45)


def encode_crops(model: Any, images: torch.Tensor, framed: Sequence[Any]) -> torch.Tensor:
    """Codes of a batch of crops; a predictor with ``uses_landmarks`` also gets what was detected.

    Args:
        model: the code predictor (``encode``).
        images: ``(B, 3, S, S)`` crops on the predictor's device.
        framed: per crop, its :class:`~mofa_bench.photos.faces.FramedCrop` or ``None``
            (cropped without landmarks: zero confidences and the whole crop as region).

    Returns:
        ``(B, 257)`` codes.
    """
    if not getattr(model, "uses_landmarks", False):
        return model.encode(images)
    batch, size = images.shape[0], images.shape[-1]
    landmarks = torch.zeros(batch, 68, 2)
    confidence = torch.zeros(batch, 68)
    region = torch.ones(batch, 1, size, size)
    for row, item in enumerate(framed):
        if item is not None and item.landmarks is not None:
            landmarks[row] = torch.from_numpy(item.landmarks).float()
            confidence[row] = torch.from_numpy(item.confidence).float()
            if item.region is not None:
                region[row, 0] = torch.from_numpy(item.region)
    return model.encode(images, landmarks, confidence, region)


@dataclass(frozen=True)
class LandmarkRecord:
    """One photo's 2-D landmarks.

    Attributes:
        projected: ``(68, 2)`` the reconstruction's iBUG-68 points, photo px.
        detected: ``(68, 2)`` the detected points, photo px, or ``None``.
        error_px: mean distance projected ↔ detected over the 68, photo px (NaN without detection).
        nme: ``error_px`` over the detected outer-eye-corner distance (NaN without detection).
    """

    projected: np.ndarray
    detected: np.ndarray | None
    error_px: float
    nme: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``landmarks_68``, ``detected_68`` (or ``None``), ``landmark_error_px``, ``landmark_nme``."""
        return {"landmarks_68": np.round(self.projected, 3).tolist(),
                "detected_68": None if self.detected is None else np.round(self.detected, 3).tolist(),
                "landmark_error_px": None if np.isnan(self.error_px) else round(self.error_px, 4),
                "landmark_nme": None if np.isnan(self.nme) else round(self.nme, 5)}


def _to_photo(points: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    x0, y0, side = box
    return np.asarray(points, dtype=np.float64) * (side / size) + np.array([x0, y0], dtype=np.float64)


def landmark_record(projected: torch.Tensor | np.ndarray, box: CropBox, size: int,
                    detected: np.ndarray | None) -> LandmarkRecord:
    """The landmarks of one photo in its own pixels.

    Args:
        projected: ``(68, 2)`` the reconstruction's points in crop px.
        box: the crop box ``(x0, y0, side)`` in photo px.
        size: crop side S, px.
        detected: ``(68, 2)`` detected points in crop px, or ``None``.
    """
    if isinstance(projected, torch.Tensor):
        projected = projected.detach().cpu().double().numpy()
    points = _to_photo(projected, box, size)
    if detected is None:
        return LandmarkRecord(points, None, float("nan"), float("nan"))
    truth = _to_photo(detected, box, size)
    error = float(np.linalg.norm(points - truth, axis=1).mean())
    a, b = _OUTER_EYE_CORNERS
    return LandmarkRecord(points, truth, error, error / max(float(np.linalg.norm(truth[a] - truth[b])), 1e-9))


def overlay_picture(tiles: torch.Tensor, projected: np.ndarray | None, detected: np.ndarray | None,
                    min_side: int = OVERLAY_MIN_SIDE, pad: int = 2) -> np.ndarray:
    """crop | reconstruction on grey | overlay, each tile at least ``min_side`` px, points drawn.

    Args:
        tiles: ``(3, 3, S, S)`` the three tiles in [0, 1]
            (:func:`~mofa_bench.contact_sheet.comparison_tiles`' row).
        projected: ``(68, 2)`` the reconstruction's points in crop px (red on the
            reconstruction and the overlay), or ``None``.
        detected: ``(68, 2)`` detected points in crop px (green on the crop and the
            overlay), or ``None``.
        min_side: smallest tile side, px (tiles smaller than that are enlarged).
        pad: white border between tiles, px.

    Returns:
        ``(T + 2·pad, 3·T + 4·pad, 3)`` uint8 RGB, T = max(S, ``min_side``).
    """
    from PIL import Image, ImageDraw

    size = tiles.shape[-1]
    side = max(size, int(min_side))
    scale = side / size
    radius = max(1.5, side / 160)
    sheet = Image.new("RGB", (3 * side + 4 * pad, side + 2 * pad), (255, 255, 255))
    arrays = (tiles.detach().clamp(0, 1).permute(0, 2, 3, 1).cpu().float().numpy() * 255 + 0.5).astype(np.uint8)
    marks = {0: [(detected, (40, 220, 60))], 1: [(projected, (235, 40, 40))],
             2: [(detected, (40, 220, 60)), (projected, (235, 40, 40))]}
    for k in range(3):
        tile = Image.fromarray(arrays[k]).resize((side, side), Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(tile)
        for points, colour in marks[k]:
            if points is None:
                continue
            for x, y in np.asarray(points, dtype=np.float64) * scale - 0.5:  # PIL: pixel j centred at j
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
        sheet.paste(tile, (pad + k * (side + pad), pad))
    return np.asarray(sheet)
