"""The one photo reader: a file → RGB pixels, or the one-line reason it cannot serve.

``mofa-bench prepare`` (:func:`mofa_bench.photos.faces.read_photo_array`), ``mofa-bench
reconstruct`` and ``data.kind: images`` (:class:`~mofa_bench.data.images.ImageFolder`) all
read photos through :func:`open_photo`, so a file is taken or refused for the same reason
everywhere, and greyscale follows one rule.

What is read: any format Pillow opens (JPEG, PNG, PPM/PGM/PBM, BMP, TIFF, WebP, GIF, …;
:func:`image_suffixes`); EXIF orientation applied; alpha dropped; 16-bit images scaled by
1/65535; an animated GIF or multi-page TIFF gives its first frame (noted). Photos whose
longer side exceeds ``max_side`` are downscaled while they are read.

Greyscale (:data:`GREY_RULES`): a grey file mode, or three identical channels, is
``"convert"`` (default): replicated to R, G and B with a note, because a grey photo cannot
constrain the colour of reflectance and illumination; or ``"skip"``: refused with the
reason.

Refusals are :class:`PhotoReadError` (a :class:`~mofa_bench.errors.DatasetError`) with a
:attr:`~PhotoReadError.kind` and a path-free :attr:`~PhotoReadError.reason` (what a
manifest row or a CSV line says).
"""

from __future__ import annotations

import errno
import math
import os
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from mofa_bench.errors import DatasetError, InputError

__all__ = [
    "BLANK_STD",
    "GREY_RULES",
    "MAX_IMAGE_SIDE",
    "MIN_IMAGE_SIDE",
    "NOT_IMAGE",
    "Photo",
    "PhotoReadError",
    "image_suffixes",
    "open_photo",
    "path_problem",
]

#: Photos whose longer side exceeds this many pixels are downscaled while they are read
#: (JPEG: decoded at a reduced scale; other formats: reduced by an integer factor).
MAX_IMAGE_SIDE: int = 4096
#: Photos with a side shorter than this many pixels are refused.
MIN_IMAGE_SIDE: int = 8
#: An image whose per-channel pixel standard deviation stays below this everywhere is
#: refused as blank (a flat colour, all black, all white).
BLANK_STD: float = 1.0 / 255.0
#: What to do with a greyscale photo: replicate it to RGB with a note, or refuse it.
GREY_RULES: tuple[str, ...] = ("convert", "skip")
#: The reason a file that is no image is refused with.
NOT_IMAGE = "not an image (no format Pillow reads)"
#: The note a converted grey photo carries.
GREY_NOTE = "greyscale image converted to RGB (reflectance and light colours are unconstrained by it)"

_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
#: Pillow formats registered for opening that need an external handler (never photos here).
_STUB_FORMATS = {"BUFR", "GRIB", "HDF5", "MPEG", "WMF", "EPS"}


class PhotoReadError(DatasetError):
    """A file cannot serve as a photo.

    Attributes:
        path: the file.
        kind: ``"missing"``, ``"not_regular"``, ``"not_image"``, ``"unreadable"``,
            ``"too_large"``, ``"too_small"``, ``"bad_values"``, ``"blank"`` or ``"grey"``.
        reason: the one-line reason without the path (the message is ``"<path>: <reason>"``).
    """

    def __init__(self, path: str | Path, kind: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class Photo:
    """A photo as read.

    Attributes:
        pixels: ``(H, W, 3)`` RGB: uint8 for 8-bit files, float32 in [0, 1] otherwise.
        scale: factor from source pixels to these pixels (1.0 unless downscaled).
        source_size: ``(width, height)`` of the file, px.
        grey: the file was greyscale (its three channels are equal here).
        notes: one-line notes on what reading changed (grey converted, values rescaled,
            first frame taken, downscaled).
    """

    pixels: np.ndarray
    scale: float
    source_size: tuple[int, int]
    grey: bool
    notes: tuple[str, ...]

    def rgb8(self) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB (float pixels rounded)."""
        if self.pixels.dtype == np.uint8:
            return self.pixels
        return np.ascontiguousarray((self.pixels * 255.0 + 0.5).astype(np.uint8))

    def tensor(self) -> torch.Tensor:
        """``(3, H, W)`` float32 RGB in [0, 1]."""
        pixels = torch.from_numpy(self.pixels).permute(2, 0, 1)
        return (pixels.float() / 255.0 if self.pixels.dtype == np.uint8 else pixels.float()).contiguous()


@lru_cache(maxsize=1)
def image_suffixes() -> tuple[str, ...]:
    """Lower-case file suffixes of every format this Pillow opens (``.jpg``, ``.ppm``, ``.webp``, …)."""
    from PIL import Image

    Image.init()
    return tuple(sorted(ext for ext, fmt in Image.registered_extensions().items()
                        if fmt in Image.OPEN and fmt not in _STUB_FORMATS))


def path_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file or folder (``None`` when it can); never opens it."""
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "symbolic link loop"
        if err.errno == errno.ENOENT:
            return "dangling symbolic link" if path.is_symlink() else "no such file or folder"
        return f"cannot be read ({err.strerror or err})"
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
        return None
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
    return f"not a regular file ({kind})"


def _check_file(path: Path) -> None:
    problem = path_problem(path)
    if problem is not None:
        kind = "missing" if problem in ("no such file or folder", "dangling symbolic link") else "not_regular"
        raise PhotoReadError(path, kind, problem)
    if path.is_dir():
        raise PhotoReadError(path, "not_regular", "not a regular file (a folder)")


def _decode(path: Path, max_side: int | None, max_pixels: int | None) -> tuple[np.ndarray, str, float, tuple[int, int],
                                                                                list[str]]:
    """Pillow decode: ``(array, mode, scale, (W, H), notes)``; raises :class:`PhotoReadError`."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    notes: list[str] = []
    try:
        with Image.open(path) as img:
            width, height = img.size
            if max_pixels is not None and width * height > max_pixels:
                raise PhotoReadError(path, "too_large", f"image too large ({width} × {height} px > "
                                                        f"{max_pixels / 1e6:.0f} MP)")
            if min(width, height) < MIN_IMAGE_SIDE:
                raise PhotoReadError(path, "too_small", f"image too small ({width} × {height} px; each side must "
                                                        f"be at least {MIN_IMAGE_SIDE} px)")
            frames = int(getattr(img, "n_frames", 1) or 1)
            if frames > 1:
                notes.append(f"{frames} frames: the first is used")
            if max_side is not None and max(width, height) > max_side and img.format == "JPEG":
                factor = max(width, height) / max_side  # draft decodes at 1/2, 1/4 or 1/8, never below the request
                img.draft(img.mode, (math.ceil(width / factor), math.ceil(height / factor)))
            orientation = img.getexif().get(0x0112)
            img.load()
            if max_side is not None and max(img.size) > max_side:
                if img.mode not in ("L", "LA", "RGB", "RGBA", "I", "F", "I;16", "RGBX", "RGBa", "La"):
                    img = img.convert("RGBA" if "A" in img.mode or img.mode == "P" else "RGB")
                img = img.reduce(math.ceil(max(img.size) / max_side))
            scale = img.size[0] / width
            if scale != 1.0:
                notes.append(f"downscaled by {scale:.3g} while reading")
            if orientation:
                exif = Image.Exif()
                exif[0x0112] = orientation
                img.info["exif"] = exif.tobytes()
                img = ImageOps.exif_transpose(img)
            mode = img.mode
            if mode in ("P", "PA"):
                img = img.convert("RGBA")
                mode = img.mode
            elif mode not in _GREY_MODES and mode not in ("RGB", "RGBA", "RGBX", "RGBa"):
                img = img.convert("RGB")
                mode = img.mode
            array = np.asarray(img)
    except PhotoReadError:
        raise
    except UnidentifiedImageError as exc:
        if path.suffix.lower() in image_suffixes():
            raise PhotoReadError(path, "unreadable", f"unreadable image (not a valid {path.suffix.lower()} "
                                                     "file)") from exc
        raise PhotoReadError(path, "not_image", NOT_IMAGE) from exc
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise PhotoReadError(path, "unreadable", f"unreadable image ({type(exc).__name__}: {exc})") from exc
    return array, mode, scale, (width, height), notes


def _to_unit(path: Path, array: np.ndarray, notes: list[str]) -> np.ndarray:
    """uint8 stays uint8; other dtypes → float32 in [0, 1] (rescalings noted)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(array.dtype, np.integer):
        low, peak = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if low < 0 or peak > 65535:
            notes.append(f"integer image with values in [{low}, {peak}]; mapped linearly to [0, 1]")
            return ((array.astype(np.float64) - low) / max(peak - low, 1)).astype(np.float32)
        return (array.astype(np.float64) / 65535.0).astype(np.float32)
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise PhotoReadError(path, "bad_values", "floating-point image has NaN or infinite values")
    low, peak = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if low < 0.0:
        notes.append(f"floating-point image with values in [{low:g}, {peak:g}]; mapped linearly to [0, 1]")
        return (array - low) / max(peak - low, 1e-12)
    if peak > 1.0:
        divisor = 255.0 if peak <= 255.0 else 65535.0 if peak <= 65535.0 else peak
        notes.append(f"floating-point image with values up to {peak:g}; divided by {divisor:g}")
        return np.clip(array / divisor, 0.0, 1.0)
    return array


def open_photo(path: str | Path, max_side: int | None = MAX_IMAGE_SIDE, *, grey: str = "convert",
               max_pixels: int | None = None) -> Photo:
    """Read a photo (see the module docstring).

    Args:
        path: the file.
        max_side: longer side above which the photo is downscaled while reading, px;
            ``None`` keeps the native size.
        grey: ``"convert"`` or ``"skip"`` (:data:`GREY_RULES`).
        max_pixels: refuse photos with more pixels than this (checked from the header,
            before decoding); ``None``: no limit.

    Returns:
        the :class:`Photo`.

    Raises:
        PhotoReadError: missing, not a regular file, not an image, unreadable or
            truncated, too large or too small, non-finite values, blank, or grey with
            ``grey="skip"`` (its ``kind`` and ``reason`` say which).
        InputError: an unknown ``grey`` rule.
    """
    if grey not in GREY_RULES:
        raise InputError(f"grey: expected one of {', '.join(GREY_RULES)}, got {grey!r}")
    path = Path(path)
    _check_file(path)
    array, mode, scale, size, notes = _decode(path, max_side, max_pixels)
    array = _to_unit(path, array, notes)
    if array.ndim == 2:
        array = array[..., None]
    if mode in ("LA", "La"):
        array = array[..., :1]
    array = array[..., :3] if array.shape[-1] >= 3 else np.repeat(array[..., :1], 3, axis=-1)
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:  # a view of Pillow's buffer
        array = array.copy()
    unit = 255.0 if array.dtype == np.uint8 else 1.0
    spread = float(array.reshape(-1, 3).std(axis=0).max()) / unit
    if spread < BLANK_STD:
        raise PhotoReadError(path, "blank", f"blank image (one flat colour: pixel standard deviation "
                                            f"{spread:.2g} < 1/255)")
    is_grey = mode in _GREY_MODES or (np.array_equal(array[..., 0], array[..., 1])
                                      and np.array_equal(array[..., 1], array[..., 2]))
    if is_grey:
        if grey == "skip":
            raise PhotoReadError(path, "grey", "greyscale image (skipped: it cannot constrain reflectance and "
                                               "light colour)")
        notes.insert(0, GREY_NOTE)
    return Photo(pixels=array, scale=scale, source_size=size, grey=is_grey, notes=tuple(notes))
