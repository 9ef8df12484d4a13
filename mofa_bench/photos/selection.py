"""Which detected face a photo's crop is made from (:func:`select_face`), or why the photo is skipped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mofa_bench.photos.detection import FaceDetection, box_iou
from mofa_checks import InputError

__all__ = ["Selection", "select_face"]

@dataclass(frozen=True)
class Selection:
    """The face :func:`select_face` chose, or why none was.

    Attributes:
        detection: the chosen face, or ``None`` when the photo is skipped.
        reason: ``""`` when a face was chosen, else a one-line reason (no face, tiny,
            cut off, none near the given box).
        candidates: number of faces the detector found.
    """

    detection: FaceDetection | None
    reason: str = ""
    candidates: int = 0


def select_face(detections: Sequence[FaceDetection], image_size: tuple[int, int], *,
                near: Sequence[float] | None = None, min_side: float = 32.0,
                max_outside: float = 0.25) -> Selection:
    """Pick the face to crop from a photo's detections.

    Rule: with ``near`` (an ``(x, y, w, h)`` box, e.g. a dataset's annotation), the
    detection with the largest intersection-over-union with it (none overlapping: skipped);
    otherwise the largest box. The chosen face is then checked: its shorter box side must
    be at least ``min_side`` px ("tiny" otherwise) and at most ``max_outside`` of its box
    area may lie outside the image ("cut off" otherwise). Smaller faces are never chosen
    instead of a rejected larger one: the photo is skipped with the reason.

    Args:
        detections: the detector's faces.
        image_size: ``(H, W)`` of the photo, px.
        near: optional ``(x, y, w, h)`` box in source pixels.
        min_side: smallest accepted face, px (box side).
        max_outside: largest accepted fraction of the box outside the image.

    Returns:
        :class:`Selection` with the face or the reason the photo is skipped.
    """
    height, width = (int(v) for v in image_size)
    count = len(detections)
    if not detections:
        return Selection(None, "no face detected", 0)
    if near is not None:
        if len(near) != 4 or near[2] <= 0 or near[3] <= 0:
            raise InputError(f"near: expected an (x, y, w, h) box with positive size, got {tuple(near)!r}")
        overlaps = [box_iou(d.box, near) for d in detections]
        best = int(np.argmax(overlaps))
        if overlaps[best] <= 0.0:
            return Selection(None, f"none of the {count} detected faces overlaps the given box", count)
        chosen = detections[best]
    else:
        chosen = max(detections, key=lambda d: d.area)
    if chosen.side < min_side:
        return Selection(None, f"face too small ({chosen.side:.0f} px < {min_side:.0f} px)", count)
    x, y, w, h = chosen.box
    inside_w = max(0.0, min(x + w, width) - max(x, 0.0))
    inside_h = max(0.0, min(y + h, height) - max(y, 0.0))
    outside = 1.0 - inside_w * inside_h / max(w * h, 1e-9)
    if outside > max_outside:
        return Selection(None, f"face cut off by the image border ({100 * outside:.0f} % of its box outside)", count)
    return Selection(chosen, "", count)
