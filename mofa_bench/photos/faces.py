"""Photo → one framed face: read the file, detect, pick a face, find its landmarks, frame it.

:class:`FacePipeline` is what ``mofa-bench prepare`` (and anything else cropping real
photos) runs per photo: the detector (:mod:`~mofa_bench.photos.detection`) finds faces,
:func:`~mofa_bench.photos.selection.select_face` picks one or gives the reason to skip the
photo, the landmarker (:mod:`~mofa_bench.photos.landmarks68`) measures that face in a
square twice its box (a detection where it finds no face is taken as false and the photo
skipped), and the crop is framed from the landmarks
(:func:`~mofa_bench.photos.framing.frame_from_landmarks68`); without a landmarker, from the
detector's keypoints, or from its box (Haar).

:func:`read_photo_array` reads a file as uint8 RGB through the project's one reader
(:func:`~mofa_bench.photos.reader.open_photo`) and raises :class:`PhotoSkipped` with its
one-line reason for files that cannot serve: not an image, unreadable or truncated, larger
than a pixel limit (checked from the header, before decoding), blank, or grey (with
``grey="skip"``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mofa_bench.photos.reader import PhotoReadError, open_photo
from mofa_bench.errors import DatasetError, InputError, MofaBenchError
from mofa_bench.photos.face_region import face_region_mask
from mofa_bench.photos.detection import (
    DEFAULT_DETECTOR,
    FaceDetection,
    FaceDetector,
    box_iou,
    get_detector,
)
from mofa_bench.photos.selection import select_face
from mofa_bench.photos.framing import (
    DEFAULT_FRAMING,
    CropBox,
    FramingRule,
    crop_square,
    frame_from_box,
    frame_from_keypoints,
    frame_from_landmarks68,
    landmarks_to_crop,
)
from mofa_bench.photos.landmarks68 import FaceLandmarks, MediaPipeLandmarker, get_landmarker

__all__ = ["MAX_PIXELS", "FacePipeline", "FramedCrop", "FramedFace", "PhotoFramer", "PhotoSkipped",
           "read_photo_array"]

#: Photos with more pixels than this are skipped as "too large" (Pillow's own
#: decompression-bomb limit is ≈ 179 MP).
MAX_PIXELS: int = 50_000_000


class PhotoSkipped(MofaBenchError):
    """A photo cannot be used; the message is the one-line reason written to the manifest."""


def read_photo_array(path: str | Path, max_pixels: int = MAX_PIXELS, grey: str = "convert") -> np.ndarray:
    """Read a photo as ``(H, W, 3)`` uint8 RGB at its native size through the project's one reader.

    :func:`~mofa_bench.photos.reader.open_photo` reads it (any format Pillow opens,
    EXIF orientation applied, alpha dropped; a grey photo is replicated to RGB, or with
    ``grey="skip"`` refused).

    Raises:
        PhotoSkipped: the reader's one-line reason: missing, not an image, unreadable or
            truncated, more than ``max_pixels`` pixels, blank (one flat colour), grey with
            ``grey="skip"``.
    """
    try:
        return open_photo(path, None, grey=grey, max_pixels=max_pixels).rgb8()
    except PhotoReadError as exc:
        raise PhotoSkipped(exc.reason) from exc


@dataclass(frozen=True)
class FramedFace:
    """One face, framed.

    Attributes:
        box: crop ``(x0, y0, side)`` in source px.
        detection: the detector's face.
        landmarks: its landmarks (source px), or ``None`` without a landmarker.
        framed_by: ``"landmarks"``, ``"keypoints"`` or ``"box"``: what the box came from.
        candidates: number of faces the detector found in the photo.
    """

    box: CropBox
    detection: FaceDetection
    landmarks: FaceLandmarks | None
    framed_by: str
    candidates: int


#: Past this roll (degrees) the landmarker sees the face turned upright first.
UPRIGHT_ROLL_DEG: float = 20.0


def _upright_angles(detection: FaceDetection) -> list[float]:
    """View angles for the landmarker: 0, and the detection's roll (from its eye keypoints) if large, larger first."""
    keypoints = detection.keypoints
    if keypoints is None or len(keypoints) < 2:
        return [0.0]
    dx, dy = keypoints[1] - keypoints[0]  # the subject's right eye (image left) → left eye
    roll = float(np.degrees(np.arctan2(dy, dx)))
    return [roll, 0.0] if abs(roll) > UPRIGHT_ROLL_DEG else [0.0, roll] if abs(roll) > 5.0 else [0.0]


class FacePipeline:
    """Detector + face choice + landmarker + framing rule (see the module docstring).

    Use as a context manager (MediaPipe objects must be closed before interpreter exit).

    Args:
        detector: detector name (``"mediapipe"``, ``"haar"``).
        landmarker: landmarker name, or ``None`` to frame from the detection alone.
        rule: the framing rule for landmarks.
        min_side: smallest face box side accepted, px.
        max_outside: largest fraction of the face box outside the photo.

    Raises:
        DetectorUnavailableError: the detector or landmarker cannot run here.
    """

    def __init__(self, detector: str = DEFAULT_DETECTOR, landmarker: str | None = "mediapipe",
                 rule: FramingRule = DEFAULT_FRAMING, min_side: float = 32.0, max_outside: float = 0.25) -> None:
        if min_side <= 0 or not 0.0 <= max_outside < 1.0:
            raise InputError(f"FacePipeline: expected min_side > 0 and max_outside in [0, 1), "
                             f"got {min_side} and {max_outside}")
        self.detector: FaceDetector = get_detector(detector)
        try:
            self.landmarker: MediaPipeLandmarker | None = get_landmarker(landmarker) if landmarker else None
        except Exception:
            self.detector.close()
            raise
        self.rule = rule
        self.min_side = float(min_side)
        self.max_outside = float(max_outside)

    def find(self, rgb: np.ndarray, near: tuple[float, float, float, float] | None = None) -> FramedFace:
        """The framed face of a photo.

        Args:
            rgb: ``(H, W, 3)`` uint8.
            near: optional ``(x, y, w, h)`` box: take the face overlapping it most.

        Raises:
            PhotoSkipped: no face, or the chosen face is tiny or cut off (the reason).
        """
        detections = self.detector.detect(rgb)
        chosen = select_face(detections, rgb.shape[:2], near=near, min_side=self.min_side,
                             max_outside=self.max_outside)
        if chosen.detection is None:
            raise PhotoSkipped(chosen.reason)
        det = chosen.detection
        landmarks = None
        if self.landmarker is not None:
            # the chosen face first, then the others the same rule accepts, in its order
            others = [d for d in detections if d is not det and select_face(
                [d], rgb.shape[:2], near=near, min_side=self.min_side, max_outside=self.max_outside).detection]
            others.sort(key=(lambda d: -box_iou(d.box, near)) if near is not None else (lambda d: -d.area))
            for candidate in [det] + others:
                landmarks = self._landmarks(rgb, candidate)
                if landmarks is not None:
                    det = candidate
                    break
            if landmarks is None:
                score = f"score {det.score:.2f}; " if np.isfinite(det.score) else ""
                extra = f" (nor at the {len(others)} other detected face{'s' * (len(others) > 1)})" if others else ""
                raise PhotoSkipped(f"the landmarker found no face where the detector did{extra} ({score}a false "
                                   "detection, or a face too turned or blurred)")
        if landmarks is not None:
            box, framed_by = frame_from_landmarks68(landmarks.ibug68, self.rule), "landmarks"
        elif det.keypoints is not None and len(det.keypoints) >= 4:
            box, framed_by = frame_from_keypoints(det), "keypoints"
        else:
            box, framed_by = frame_from_box(det.box), "box"
        return FramedFace(box=box, detection=det, landmarks=landmarks, framed_by=framed_by,
                          candidates=chosen.candidates)

    def _landmarks(self, rgb: np.ndarray, det: FaceDetection) -> FaceLandmarks | None:
        """The landmarker's face in a square twice ``det``'s box (turned upright if rolled), or ``None``."""
        x, y, w, h = det.box
        side = 2.0 * max(w, h)
        region = (int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2)), int(round(side)))
        for angle in _upright_angles(det):
            found = self.landmarker.detect(rgb, region=region, angle=angle)
            if found:
                return found[0]
        return None

    def close(self) -> None:
        self.detector.close()
        if self.landmarker is not None:
            self.landmarker.close()

    def __enter__(self) -> "FacePipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class FramedCrop:
    """One photo's face crop and what was detected in it (:meth:`PhotoFramer.frame`).

    Attributes:
        crop: ``(3, S, S)`` float32 RGB in [0, 1].
        box: ``(x0, y0, side)`` crop box in the image's pixels.
        landmarks: ``(68, 2)`` float64 iBUG-68 points in crop px, or ``None`` (no face
            found and the centre square taken, or no landmarker).
        confidence: ``(68,)`` float64 in [0, 1], or ``None``.
        region: ``(S, S)`` float32 face-region mask
            (:func:`~mofa_bench.photos.face_region.face_region_mask`), or ``None``.
    """

    crop: torch.Tensor
    box: CropBox
    landmarks: np.ndarray | None = None
    confidence: np.ndarray | None = None
    region: np.ndarray | None = None


class PhotoFramer:
    """Square crops of photo tensors, framed by a :class:`FacePipeline` (``reconstruct`` uses it).

    Args:
        detector: detector name.
        landmarker: landmarker name, or ``None`` (frame from the detection).

    Raises:
        DetectorUnavailableError: the detector or landmarker cannot run here.
    """

    def __init__(self, detector: str = DEFAULT_DETECTOR, landmarker: str | None = "mediapipe") -> None:
        self.pipeline = FacePipeline(detector, landmarker)

    def frame(self, image: torch.Tensor, size: int, *, allow_no_face: bool = False,
              source: str | Path | None = None) -> "FramedCrop":
        """The framed face crop of one photo, with its landmarks and face region in crop pixels.

        Args:
            image: ``(3, H, W)`` float RGB in [0, 1].
            size: crop side S, px.
            allow_no_face: use the centre square, with a warning giving the reason, when the
                photo has no usable face (the result then has no landmarks).
            source: file name for messages.

        Raises:
            DatasetError: no usable face (the reason) and ``allow_no_face`` is false.
        """
        if image.ndim != 3 or image.shape[0] != 3:
            raise InputError(f"image: expected shape (3, H, W), got {tuple(image.shape)}")
        rgb = (image.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        name = str(source) if source is not None else "image"
        landmarks = None
        try:
            found = self.pipeline.find(np.ascontiguousarray(rgb))
            box, landmarks = found.box, found.landmarks
        except PhotoSkipped as exc:
            if not allow_no_face:
                raise DatasetError(f"{name}: {exc}") from exc
            warnings.warn(f"{name}: {exc}; using the centre square", UserWarning, stacklevel=2)
            height, width = rgb.shape[:2]
            side = min(height, width)
            box = ((width - side) // 2, (height - side) // 2, side)
        crop = torch.from_numpy(crop_square(rgb, box, size).astype(np.float32) / 255.0).permute(2, 0, 1)
        if landmarks is None:
            return FramedCrop(crop.contiguous(), box)
        outline = landmarks.mesh[:468, :2] if landmarks.mesh is not None else landmarks.ibug68
        return FramedCrop(crop.contiguous(), box, landmarks_to_crop(landmarks.ibug68, box, size),
                          landmarks.confidence.copy(), face_region_mask(landmarks_to_crop(outline, box, size), size))

    def crop(self, image: torch.Tensor, size: int, *, allow_no_face: bool = False,
             source: str | Path | None = None) -> tuple[torch.Tensor, CropBox]:
        """The framed face crop of one photo (:meth:`frame` without the landmarks).

        Returns:
            ``((3, S, S) float32 crop in [0, 1], (x0, y0, side) box in the image's pixels)``.

        Raises:
            DatasetError: no usable face (the reason) and ``allow_no_face`` is false.
        """
        framed = self.frame(image, size, allow_no_face=allow_no_face, source=source)
        return framed.crop, framed.box

    def close(self) -> None:
        self.pipeline.close()

    def __enter__(self) -> "PhotoFramer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
