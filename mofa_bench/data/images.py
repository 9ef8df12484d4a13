"""Real photographs: loading, face crops and a folder dataset.

Crops follow the paper (square crops around OpenCV Haar-cascade face detections), sized
so that a real face fills the crop like the synthetic renders do. The margin was set by
matching the mean face of the default model rendered with the default camera (f = 2.5·W,
head 600 mm away) — inter-ocular distance 0.28·S and eyes 0.38·S below the top of an
S-px image, the face mask ~62 % of the width and ~80 % of the height — to the frontal Haar
box of OpenCV's ``haarcascade_frontalface_default.xml``, whose eye centres lie ≈ 0.47·b
apart and ≈ 0.38·b below the top of a box of side b (measured with OpenCV's eye cascade
on scikit-image's ``astronaut`` photo). Hence the crop side is
:data:`CROP_SCALE` · b = 1.7·b and its centre lies :data:`CROP_SHIFT` · b = 0.07·b below
the box centre (the full face, chin and forehead included, fits). Crop regions reaching
outside the photo are padded by repeating the border pixels. :class:`ImageFolder` prefers
the landmark-framed crops of :mod:`mofa_bench.photos` where MediaPipe runs (see there).

Detectors (argument ``detector``):

- ``"auto"``: the Haar cascade when OpenCV (< 5; OpenCV 5 dropped the cascade
  classifier) is importable, otherwise the centre square with a warning naming
  ``pip install opencv-python-headless``.
- ``"haar"``: the Haar cascade; raises :class:`DatasetError` when OpenCV is missing.
- ``"none"``: the centre square (for photos that are already face crops).
- a callable ``(H, W, 3) uint8 numpy RGB → sequence of (x, y, w, h) boxes`` (px).
"""

from __future__ import annotations

import logging
import warnings
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from mofa_bench.data.batch import FaceBatch
from mofa_bench.photos.reader import (  # noqa: F401  (BLANK_STD, MIN_IMAGE_SIDE: this module's names before)
    BLANK_STD,
    GREY_RULES,
    MAX_IMAGE_SIDE,
    MIN_IMAGE_SIDE,
    PhotoReadError,
    image_suffixes,
    open_photo,
)
from mofa_bench.data.synthetic import check_indices
from mofa_bench.errors import DatasetError, InputError
from mofa_checks import check_tensor

__all__ = [
    "CROP_SCALE",
    "CROP_SHIFT",
    "IMAGE_EXTENSIONS",
    "CropBox",
    "ImageFolder",
    "crop_face",
    "detect_faces",
    "face_detector_available",
    "load_image",
    "read_photo",
]

#: File suffixes :class:`ImageFolder` picks up (case-insensitive): every format Pillow
#: opens (:func:`~mofa_bench.photos.reader.image_suffixes`). A GIF gives its first frame.
IMAGE_EXTENSIONS: tuple[str, ...] = image_suffixes()
#: Side of the square crop relative to the side of the Haar detection box.
CROP_SCALE: float = 1.7
#: Downward shift of the crop centre from the box centre, in box sides.
CROP_SHIFT: float = 0.07

_INSTALL_HINT = "pip install opencv-python-headless"

Detector = Union[str, Callable[[np.ndarray], Sequence[Sequence[float]]]]
CropBox = tuple[int, int, int]
"""A square crop region ``(x0, y0, side)`` in pixels of the source image (may reach outside it)."""

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- loading
def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of a ``(3, h, w)`` image to ``(3, H, W)``."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    out = F.interpolate(image.unsqueeze(0), size=size, mode="bilinear", antialias=True, align_corners=False)
    return out[0].clamp(0.0, 1.0)


def _centre_box(height: int, width: int) -> CropBox:
    side = min(height, width)
    return ((width - side) // 2, (height - side) // 2, side)


def read_photo(path: str | Path, max_side: int | None = MAX_IMAGE_SIDE, *,
               grey: str = "convert") -> tuple[torch.Tensor, float]:
    """Read a photo as an RGB float tensor at most ``max_side`` px on its longer side.

    The project's one reader (:func:`~mofa_bench.photos.reader.open_photo`: any format
    Pillow opens, EXIF orientation applied, alpha dropped, 16-bit and float images scaled
    to [0, 1]); each note on what reading changed (a greyscale photo replicated to RGB,
    values rescaled, the first frame of an animation taken) is issued as a ``UserWarning``.

    Args:
        path: image file.
        max_side: longer side above which the photo is downscaled while reading;
            ``None`` keeps the native size.
        grey: ``"convert"`` (replicate to RGB, with a warning) or ``"skip"`` (refuse).

    Returns:
        ``(image, scale)``: ``(3, H, W)`` float32 RGB in [0, 1], and the factor from source
        pixels to its pixels (1.0 unless downscaled; e.g. 0.25 for a 16000-px-wide photo).

    Raises:
        DatasetError: the file is missing, not a regular file,
            not an image or unreadable (names it), a side is shorter than
            :data:`MIN_IMAGE_SIDE`, a value is non-finite, the image is blank (every
            channel's pixel standard deviation below 1/255), or grey with ``grey="skip"``.
    """
    try:
        photo = open_photo(path, max_side, grey=grey)
    except PhotoReadError as err:
        raise DatasetError(str(err)) from err
    for note in photo.notes:
        if not note.startswith("downscaled"):
            warnings.warn(f"{path}: {note}", UserWarning, stacklevel=2)
    return photo.tensor(), photo.scale


def load_image(path: str | Path, image_size: int | tuple[int, int] | None = None, *,
               grey: str = "convert") -> torch.Tensor:
    """Read a photo as an RGB float tensor (:func:`read_photo`), optionally resized.

    Args:
        path: image file (anything Pillow reads).
        image_size: ``None`` keeps the size as read (photos longer than
            :data:`MAX_IMAGE_SIDE` px are downscaled); an int ``S`` takes the centre square
            and resizes it to ``S × S``; ``(H, W)`` resizes to exactly that size.
        grey: ``"convert"`` or ``"skip"`` (see :func:`read_photo`).

    Returns:
        ``(3, H, W)`` float32 RGB in [0, 1].

    Raises:
        DatasetError: as :func:`read_photo`.
        InputError: a non-positive ``image_size``.
    """
    image, _ = read_photo(path, grey=grey)
    if image_size is None:
        return image
    if isinstance(image_size, int):
        if image_size <= 0:
            raise InputError(f"image_size: expected a positive size, got {image_size}")
        x0, y0, side = _centre_box(*image.shape[-2:])
        return _resize(image[:, y0:y0 + side, x0:x0 + side], (image_size, image_size))
    height, width = (int(v) for v in image_size)
    if height <= 0 or width <= 0:
        raise InputError(f"image_size: expected positive (H, W), got {image_size!r}")
    return _resize(image, (height, width))


# ---------------------------------------------------------------------------- detection
@lru_cache(maxsize=1)
def _haar_status() -> tuple[Any, str]:
    """``(cascade classifier or None, reason it is unavailable)``."""
    try:
        import cv2
    except ImportError:
        return None, f"OpenCV is not installed ({_INSTALL_HINT})"
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        return None, (f"OpenCV {getattr(cv2, '__version__', '?')} has no Haar cascade classifier "
                      "(removed in OpenCV 5; pip install 'opencv-python-headless>=4.8,<5')")
    xml = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(xml))
    if cascade.empty():
        return None, f"OpenCV could not load {xml} (reinstall: {_INSTALL_HINT})"
    return cascade, ""


def face_detector_available() -> bool:
    """Whether the Haar-cascade face detector can run here."""
    return _haar_status()[0] is not None


def _haar_boxes(rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Haar-cascade face boxes ``(x, y, w, h)`` in pixels of an ``(H, W, 3)`` uint8 image."""
    cascade, reason = _haar_status()
    if cascade is None:
        raise DatasetError(f"face detector 'haar' is unavailable: {reason}")
    import cv2

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, 800.0 / max(grey.shape))
    if scale < 1.0:
        grey = cv2.resize(grey, (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale))),
                          interpolation=cv2.INTER_AREA)
    grey = cv2.equalizeHist(grey)
    min_side = max(24, min(grey.shape) // 10)
    boxes = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    return [tuple(float(v) / scale for v in box) for box in np.asarray(boxes).reshape(-1, 4)]


def _to_uint8_hwc(image: torch.Tensor) -> np.ndarray:
    return (image.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def detect_faces(image: torch.Tensor, detector: Detector = "haar") -> list[tuple[float, float, float, float]]:
    """Face boxes in an image, largest first.

    Args:
        image: ``(3, H, W)`` RGB in [0, 1].
        detector: ``"haar"`` or a callable (see the module docstring).

    Returns:
        ``(x, y, w, h)`` boxes in pixels (top-left corner origin), sorted by area.

    Raises:
        DatasetError: ``"haar"`` requested but OpenCV is unavailable.
    """
    check_tensor("image", image, "3 H W", floating=True)
    rgb = _to_uint8_hwc(image)
    if callable(detector):
        boxes = [tuple(float(v) for v in box) for box in detector(rgb)]
    elif detector == "haar":
        boxes = _haar_boxes(rgb)
    else:
        raise InputError(f"detector: expected 'haar' or a callable, got {detector!r}")
    return sorted(boxes, key=lambda b: -b[2] * b[3])


def _crop_square(image: torch.Tensor, box: CropBox, image_size: int) -> torch.Tensor:
    """Cut ``box`` out of ``(3, H, W)`` (border-replicated outside) and resize to ``S × S``."""
    x0, y0, side = box
    _, height, width = image.shape
    pad = (max(0, -x0), max(0, x0 + side - width), max(0, -y0), max(0, y0 + side - height))
    if any(pad):
        image = F.pad(image.unsqueeze(0), pad, mode="replicate")[0]
        x0, y0 = x0 + pad[0], y0 + pad[2]
    return _resize(image[:, y0:y0 + side, x0:x0 + side], (image_size, image_size))


def crop_face(image: torch.Tensor, image_size: int, detector: Detector = "auto", *,
              allow_no_face: bool = False, source: str | Path | None = None,
              return_box: bool = False) -> torch.Tensor | tuple[torch.Tensor, CropBox]:
    """Square crop around the largest face, resized to ``image_size``.

    The crop side is :data:`CROP_SCALE` times the detection box side, centred
    :data:`CROP_SHIFT` box sides below the box centre (see the module docstring).

    Args:
        image: ``(3, H, W)`` RGB in [0, 1].
        image_size: output side S in pixels.
        detector: ``"auto"``, ``"haar"``, ``"none"`` or a callable (module docstring).
        allow_no_face: when the detector finds no face, warn and use the centre square
            instead of raising.
        source: file name used in messages.
        return_box: also return the crop region.

    Returns:
        ``(3, S, S)`` float RGB in [0, 1]; with ``return_box`` also the
        :data:`CropBox` ``(x0, y0, side)`` in source pixels.

    Raises:
        DatasetError: a detector ran and found no face (and ``allow_no_face`` is false),
            or ``"haar"`` was requested without OpenCV.
        InputError: bad image shape, size or detector name.
    """
    check_tensor("image", image, "3 H W", floating=True)
    if not isinstance(image_size, int) or image_size <= 0:
        raise InputError(f"image_size: expected a positive int, got {image_size!r}")
    _, height, width = image.shape
    name = str(source) if source is not None else "image"
    box = None
    run = detector
    if detector == "auto":
        cascade, reason = _haar_status()
        if cascade is None:
            warnings.warn(f"no face detector available ({reason}); using the centre square of each photo. "
                          f"Install OpenCV for Haar-cascade face crops: {_INSTALL_HINT}", UserWarning, stacklevel=2)
            run = "none"
        else:
            run = "haar"
    if run == "none":
        box = _centre_box(height, width)
    elif run == "haar" or callable(run):
        boxes = detect_faces(image, run)
        if boxes:
            x, y, w, h = boxes[0]
            b = max(w, h)
            side = max(1, round(CROP_SCALE * b))
            cx, cy = x + w / 2.0, y + h / 2.0 + CROP_SHIFT * b
            box = (round(cx - side / 2.0), round(cy - side / 2.0), side)
        elif allow_no_face:
            warnings.warn(f"no face found in {name}; using the centre square", UserWarning, stacklevel=2)
            box = _centre_box(height, width)
        else:
            raise DatasetError(f"no face found in {name}")
    else:
        raise InputError(f"detector: expected 'auto', 'haar', 'none' or a callable, got {detector!r}")
    crop = _crop_square(image, box, image_size)
    return (crop, box) if return_box else crop


# ---------------------------------------------------------------------------- dataset
_FALLBACK_LOGGED: set[str] = set()


def _folder_framing(detector: Detector) -> str:
    """How :class:`ImageFolder` crops with ``detector``: ``"landmarks"`` or ``"box"``.

    ``"auto"`` without MediaPipe logs why (once per process) and crops by the Haar box.
    """
    if callable(detector) or detector in ("haar", "none"):
        return "box"
    if detector in ("mediapipe", "dlib"):
        return "landmarks"
    if detector != "auto":
        raise InputError(f"detector: expected 'auto', 'mediapipe', 'dlib', 'haar', 'none' or a callable, "
                         f"got {detector!r}")
    from mofa_bench.photos.detection import mediapipe_availability

    state = mediapipe_availability()
    if state.available:
        return "landmarks"
    if state.reason not in _FALLBACK_LOGGED:
        _FALLBACK_LOGGED.add(state.reason)
        logger.warning("ImageFolder: MediaPipe is unavailable (%s); photos are cropped around Haar-cascade boxes "
                       "(%.1f × the box), not framed from landmarks like `mofa-bench prepare` crops. Fix: %s",
                       state.reason, CROP_SCALE, state.fix)
    return "box"


def _is_grey(path: Path) -> bool:
    """Whether the reader refuses ``path`` as greyscale (read small; other refusals are left to the first read)."""
    try:
        open_photo(path, 256, grey="skip")
    except PhotoReadError as exc:
        return exc.kind == "grey"
    return False


class ImageFolder:
    """Face crops of the photos in a folder (no ground truth).

    Files with the suffixes in :data:`IMAGE_EXTENSIONS` (any case) are taken in sorted
    order of their path relative to the folder. Photos are loaded and cropped lazily; the
    most recent crops are cached, and every photo's crop box is remembered, so the face
    detector runs once per photo.

    Crops: with ``"auto"`` where MediaPipe runs, and with ``"mediapipe"`` or ``"dlib"``,
    each photo is cropped as ``mofa-bench prepare`` and ``mofa-bench reconstruct`` crop
    it (:class:`~mofa_bench.photos.faces.PhotoFramer`: detection, landmarks, and the box
    framed from them the way the zero code fills its image). ``"auto"`` without MediaPipe
    falls back to the Haar crops of :func:`crop_face` (1.7 × the detection box) and logs
    the reason once per process. The MediaPipe graph is created at the first crop and
    closed when the folder is garbage-collected or at interpreter exit.

    Args:
        path: the folder.
        image_size: crop side S in pixels (the encoder's input size, 240 in the paper).
        detector: ``"auto"``, ``"mediapipe"``, ``"dlib"``, ``"haar"``, ``"none"`` or a
            callable (see :func:`crop_face`).
        allow_no_face: use the centre square (with a warning) for photos without a
            detected face instead of raising.
        recursive: also search subfolders.
        cache_size: number of crops kept in memory.
        grey: greyscale photos are ``"convert"``-ed to RGB with a warning (default) or
            ``"skip"``-ped: left out of :attr:`files` when the folder is opened (every
            photo is read once to tell; :attr:`skipped_grey` names them, and a warning
            counts them).

    Raises:
        DatasetError: the folder is missing or holds no images (or only grey ones with
            ``grey="skip"``).
    """

    def __init__(self, path: str | Path, image_size: int = 240, detector: Detector = "auto",
                 allow_no_face: bool = False, recursive: bool = False, cache_size: int = 128,
                 grey: str = "convert") -> None:
        path = Path(path)
        if not path.is_dir():
            raise DatasetError(f"{path}: image folder does not exist" if not path.exists()
                               else f"{path}: not a folder")
        if not isinstance(image_size, int) or image_size <= 0:
            raise InputError(f"image_size: expected a positive int, got {image_size!r}")
        if grey not in GREY_RULES:
            raise InputError(f"grey: expected one of {', '.join(GREY_RULES)}, got {grey!r}")
        pattern = "**/*" if recursive else "*"
        candidates = [p for p in path.glob(pattern) if p.suffix.lower() in IMAGE_EXTENSIONS]
        files = [p for p in candidates if p.is_file()]
        left_out = sorted(str(p.relative_to(path)) for p in candidates if not p.is_file() and not p.is_dir())
        if left_out:
            warnings.warn(f"{path}: {len(left_out)} entr{'y' if len(left_out) == 1 else 'ies'} with an image "
                          f"suffix left out (dangling links, FIFOs or other non-regular files): "
                          f"{', '.join(left_out[:5])}{' …' if len(left_out) > 5 else ''}", UserWarning, stacklevel=2)
        if not files:
            raise DatasetError(f"{path}: no images (no file with a suffix of a format Pillow reads) in this folder")
        self.path = path
        self.files: list[Path] = sorted(files, key=lambda p: p.relative_to(path).as_posix())
        self.skipped_grey: list[Path] = []
        """Greyscale photos left out with ``grey="skip"``."""
        if grey == "skip":
            grey_files = {p for p in self.files if _is_grey(p)}
            self.skipped_grey = [p for p in self.files if p in grey_files]
            self.files = [p for p in self.files if p not in grey_files]
            if self.skipped_grey:
                names = [str(p.relative_to(path)) for p in self.skipped_grey]
                warnings.warn(f"{path}: {len(names)} greyscale photo{'s' * (len(names) > 1)} left out (grey: skip): "
                              f"{', '.join(names[:5])}{' …' if len(names) > 5 else ''}", UserWarning, stacklevel=2)
            if not self.files:
                raise DatasetError(f"{path}: every photo in this folder is greyscale ({len(self.skipped_grey)}), "
                                   f"and grey photos are skipped (grey: skip)")
        self.image_size = image_size
        self.detector = detector
        self.allow_no_face = allow_no_face
        self.cache_size = max(0, int(cache_size))
        self.grey = grey
        self._cache: OrderedDict[int, tuple[torch.Tensor, CropBox]] = OrderedDict()
        self._boxes: dict[int, CropBox] = {}
        self.framing = _folder_framing(detector)
        """``"landmarks"`` (the photos pipeline frames the crops) or ``"box"`` (:func:`crop_face`)."""
        self._framer: Any = None

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return f"ImageFolder({str(self.path)!r}, images={len(self)}, image_size={self.image_size})"

    def _crop(self, index: int) -> tuple[torch.Tensor, CropBox]:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        file = self.files[index]
        image = load_image(file, grey=self.grey)
        if index in self._boxes:
            box = self._boxes[index]
            result = (_crop_square(image, box, self.image_size), box)
        elif self.framing == "landmarks":
            result = self._photo_framer().crop(image, self.image_size, allow_no_face=self.allow_no_face, source=file)
            self._boxes[index] = result[1]
        else:
            result = crop_face(image, self.image_size, self.detector, allow_no_face=self.allow_no_face,
                               source=file, return_box=True)
            self._boxes[index] = result[1]
        if self.cache_size:
            self._cache[index] = result
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result

    def _photo_framer(self) -> Any:
        """The :class:`~mofa_bench.photos.faces.PhotoFramer`, created at the first crop."""
        if self._framer is None:
            import weakref

            from mofa_bench.photos.detection import mediapipe_availability
            from mofa_bench.photos.faces import PhotoFramer

            name = "mediapipe" if self.detector == "auto" else str(self.detector)
            self._framer = PhotoFramer(name, "mediapipe" if mediapipe_availability().available else None)
            weakref.finalize(self, self._framer.close)
        return self._framer

    def image(self, index: int) -> torch.Tensor:
        """``(3, S, S)`` face crop of photo ``index``."""
        return self._crop(int(index))[0]

    def crop_box(self, index: int) -> CropBox:
        """Crop region ``(x0, y0, side)`` of photo ``index`` in its own pixels."""
        return self._crop(int(index))[1]

    def batch(self, indices: torch.Tensor) -> FaceBatch:
        """Face crops of the photos at ``indices``.

        Args:
            indices: ``(B,)`` integer indices in ``[0, len)``.

        Returns:
            :class:`FaceBatch` on the CPU with ``images`` ``(B, 3, S, S)`` float32 in
            [0, 1] and ``indices`` ``(B,)`` int64; no ground truth (codes, vertices,
            landmarks and masks are ``None``).

        Raises:
            InputError: indices not a 1-D integer tensor or out of range.
            DatasetError: a photo is unreadable, blank or (unless ``allow_no_face``) has
                no detectable face; the message names the file.
        """
        indices = check_indices(indices, len(self))
        images = torch.stack([self.image(int(i)) for i in indices])
        return FaceBatch(images=images, indices=indices)
