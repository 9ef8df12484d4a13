"""Square face crops framed the way the model sees its own faces.

One rule frames every crop, from three points of the face: the centres of the two eyes
``r`` (the subject's right eye, image left) and ``l``, and the mouth centre ``m``. With
``e = (r + l) / 2``, ``d_eyes = |l − r|`` and ``d_mouth = |m − e|``:

- centre ``c = e + CENTRE_ALONG · (m − e)`` (on the eye–mouth axis, so it follows a
  tilted head);
- side ``S = SIDE_PER_EYES · max(d_eyes, d_mouth / MOUTH_PER_EYES)`` (the larger of the two
  measures, so a turned head (short ``d_eyes``) or a nodding one (short ``d_mouth``) still
  gets a crop sized by its face, not by its foreshortening).

The three constants are those of the default face model's zero code seen by the default
camera (f = 2.5·W, head 600 mm away): its projected landmarks put through the rule give
the whole image, ``(0, 0, W)``. :meth:`FramingRule.from_decoder` derives them for any
face model and camera. A crop framed by the rule therefore shows a real face at the size
and place where the encoder's first prediction (the zero code) draws it.

The points come from 68 iBUG landmarks (eye centres = mean of each eye's six points,
mouth centre = mean of the two mouth corners 48 and 54) or from MediaPipe's detector
keypoints (eyes and mouth centre), see :func:`frame_from_landmarks68` and
:func:`frame_from_keypoints`. Detectors with a box only (Haar) fall back to
:func:`frame_from_box`.

Boxes are ``(x0, y0, side)`` in source pixels (project convention: origin at the image's
top-left corner, x right, y down), integers, and may reach outside the photo; the crop then
repeats the border pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from mofa_bench.errors import InputError

if TYPE_CHECKING:
    from mofa_bench.decoder import MoFADecoder
    from mofa_bench.photos.detection import FaceDetection

__all__ = [
    "DEFAULT_FRAMING",
    "HAAR_BOX_SCALE",
    "HAAR_BOX_SHIFT",
    "KEYPOINT_FRAMING",
    "CropBox",
    "FramingRule",
    "crop_square",
    "frame_from_box",
    "frame_from_keypoints",
    "frame_from_landmarks68",
    "framing_points68",
    "landmarks_to_crop",
]

CropBox = tuple[int, int, int]
"""A square crop ``(x0, y0, side)`` in source pixels (may reach outside the photo)."""

#: Crop side over the Haar box side, and the crop centre's downward shift in box sides,
#: so that the Haar box frames a real face like the landmark rule does: medians over the
#: 76 real photos here where both found the face (scikit-image's astronaut: 1.63 and 0.04;
#: 75 of its ``lfw_subset`` faces: 1.59 and 0.047; ``tests/photos/bm_photos.py``). On renders
#: of the model, whose faces have no hair or ears, Haar's box is relatively smaller (1.85).
HAAR_BOX_SCALE: float = 1.59
HAAR_BOX_SHIFT: float = 0.047


@dataclass(frozen=True)
class FramingRule:
    """The framing rule's constants (see the module docstring).

    Attributes:
        centre_along: position of the crop centre on the eye-centre → mouth-centre axis
            (0 at the eyes, 1 at the mouth).
        side_per_eyes: crop side over the distance between the eye centres.
        mouth_per_eyes: eye-to-mouth over eye-to-eye distance of the reference face.
    """

    centre_along: float = 0.37396
    side_per_eyes: float = 3.54196
    mouth_per_eyes: float = 1.10183

    def __post_init__(self) -> None:
        for name in ("side_per_eyes", "mouth_per_eyes"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise InputError(f"FramingRule.{name}: expected a finite number > 0, got {value!r}")

    @classmethod
    def from_points(cls, right_eye: Sequence[float], left_eye: Sequence[float], mouth: Sequence[float],
                    box: tuple[float, float, float]) -> "FramingRule":
        """The rule that maps these three points (px) to ``box`` ``(x0, y0, side)``.

        Only the box's side and its centre's position along the eye–mouth axis are used.
        """
        r, l, m = (np.asarray(p, dtype=np.float64) for p in (right_eye, left_eye, mouth))
        e = (r + l) / 2.0
        d_eyes = float(np.linalg.norm(l - r))
        axis = m - e
        d_mouth = float(np.linalg.norm(axis))
        if d_eyes <= 0 or d_mouth <= 0:
            raise InputError("FramingRule.from_points: the eye and mouth points must be distinct")
        centre = np.array([box[0] + box[2] / 2.0, box[1] + box[2] / 2.0])
        along = float(np.dot(centre - e, axis) / d_mouth**2)
        return cls(centre_along=along, side_per_eyes=float(box[2]) / d_eyes, mouth_per_eyes=d_mouth / d_eyes)

    @classmethod
    def from_decoder(cls, decoder: "MoFADecoder") -> "FramingRule":
        """The rule under which ``decoder``'s zero code fills its whole image.

        Args:
            decoder: any :class:`~mofa_bench.decoder.MoFADecoder` (its face model's
                landmarks and its camera are used).
        """
        import torch

        from mofa_bench.code_vector import CODE_DIM

        model = decoder.model
        with torch.no_grad():
            code = torch.zeros(1, CODE_DIM, device=model.mean_shape.device, dtype=model.mean_shape.dtype)
            landmarks = decoder.form(code).landmarks_uv[0].double().cpu().numpy()
        width = decoder.camera.image_size
        width = width[1] if isinstance(width, (tuple, list)) else width
        return cls.from_points(*framing_points68(landmarks), box=(0.0, 0.0, float(width)))

    def box(self, right_eye: Sequence[float], left_eye: Sequence[float], mouth: Sequence[float]) -> CropBox:
        """The crop box ``(x0, y0, side)`` of a face with these eye and mouth centres (px)."""
        r, l, m = (np.asarray(p, dtype=np.float64).reshape(2) for p in (right_eye, left_eye, mouth))
        if not (np.isfinite(r).all() and np.isfinite(l).all() and np.isfinite(m).all()):
            raise InputError("framing points: expected finite eye and mouth positions")
        e = (r + l) / 2.0
        d_eyes = float(np.linalg.norm(l - r))
        d_mouth = float(np.linalg.norm(m - e))
        side = self.side_per_eyes * max(d_eyes, d_mouth / self.mouth_per_eyes)
        if side <= 0:
            raise InputError("framing points: the eye and mouth points coincide")
        centre = e + self.centre_along * (m - e)
        side_px = max(1, int(round(side)))
        return (int(round(centre[0] - side_px / 2.0)), int(round(centre[1] - side_px / 2.0)), side_px)


#: The rule for the default face model and camera (pinned by a test against the zero code).
DEFAULT_FRAMING = FramingRule()
#: The rule for MediaPipe's detector keypoints (its eye points lie further apart than the
#: means of the iBUG eye contours): calibrated so that the keypoints it finds on a render of
#: the zero code frame the whole render (subdivision levels 1 and 3, 240 and 320 px).
KEYPOINT_FRAMING = FramingRule(centre_along=0.375, side_per_eyes=3.10, mouth_per_eyes=1.075)


def framing_points68(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(right eye centre, left eye centre, mouth centre)`` of 68 iBUG landmarks.

    Args:
        landmarks: ``(68, 2)`` px.

    Returns:
        three ``(2,)`` float64 points: means of 36–41 and 42–47, and of 48 and 54.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2):
        raise InputError(f"landmarks: expected shape (68, 2), got {points.shape}")
    return points[36:42].mean(0), points[42:48].mean(0), (points[48] + points[54]) / 2.0


def frame_from_landmarks68(landmarks: np.ndarray, rule: FramingRule = DEFAULT_FRAMING) -> CropBox:
    """Crop box of a face from its ``(68, 2)`` iBUG landmarks (px)."""
    return rule.box(*framing_points68(landmarks))


def frame_from_keypoints(detection: "FaceDetection", rule: FramingRule = KEYPOINT_FRAMING) -> CropBox:
    """Crop box from MediaPipe detector keypoints (right eye, left eye, -, mouth centre, ...).

    Raises:
        InputError: the detection has no (or too few) keypoints.
    """
    kps = detection.keypoints
    if kps is None or len(kps) < 4:
        raise InputError(f"detection from {detection.detector or 'a detector'!r} has no eye and mouth keypoints")
    return rule.box(kps[0], kps[1], kps[3])


def frame_from_box(box: Sequence[float], scale: float = HAAR_BOX_SCALE, shift: float = HAAR_BOX_SHIFT) -> CropBox:
    """Crop box from a detection box ``(x, y, w, h)``: side ``scale·b``, centre ``shift·b`` below the box centre.

    ``b`` is the box's larger side. The defaults fit OpenCV's frontal Haar cascade.
    """
    x, y, w, h = (float(v) for v in box)
    b = max(w, h)
    if not b > 0:
        raise InputError(f"box: expected a positive size, got {tuple(box)!r}")
    side = max(1, int(round(scale * b)))
    cx, cy = x + w / 2.0, y + h / 2.0 + shift * b
    return (int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side)


def crop_square(rgb: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Cut a square out of a photo and resize it.

    Args:
        rgb: ``(H, W, 3)`` uint8.
        box: ``(x0, y0, side)`` source px; parts outside the photo repeat its border pixels.
        size: output side, px.

    Returns:
        ``(size, size, 3)`` uint8 (Pillow's antialiased bicubic resampling).
    """
    from PIL import Image

    x0, y0, side = (int(v) for v in box)
    if side <= 0 or size <= 0:
        raise InputError(f"crop: expected positive side and size, got box {tuple(box)!r} and size {size}")
    height, width = rgb.shape[:2]
    xs = np.clip(np.arange(x0, x0 + side), 0, width - 1)
    ys = np.clip(np.arange(y0, y0 + side), 0, height - 1)
    # Only the rows/columns needed are gathered, so a small box of a huge photo stays cheap.
    patch = np.ascontiguousarray(rgb[ys][:, xs])
    if side == size:
        return patch
    return np.asarray(Image.fromarray(patch).resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0))


def landmarks_to_crop(points: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Map ``(..., 2)`` source-pixel points into the pixels of a ``size``-px crop of ``box``."""
    x0, y0, side = box
    return (np.asarray(points, dtype=np.float64) - np.array([x0, y0], dtype=np.float64)) * (size / side)
