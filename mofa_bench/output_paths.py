"""Checks of the output paths a user names (``--out``), made before any work is done.

Each check either returns a path that can be written or raises
:class:`~mofa_bench.errors.InputError` with one line naming the option and the cause: a
file where a folder is wanted (or the reverse), a folder that cannot be created or
written, an image file name without a format Pillow can write.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mofa_bench.errors import InputError

__all__ = ["DEFAULT_IMAGE_SUFFIX", "image_output_file", "output_folder"]

#: Suffix added to an image output named without one.
DEFAULT_IMAGE_SUFFIX = ".png"


def output_folder(path: str | Path, what: str = "--out") -> Path:
    """Create ``path`` (with its parents) and make sure files can be written into it.

    Args:
        path: the folder.
        what: how messages name it (the option, e.g. ``"--out"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InputError: ``path`` (or a parent) is a file, or the folder cannot be created or
            written (permissions, read-only file system).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what}: {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{what}: cannot create folder {path} ({err.strerror or err})") from err
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise InputError(f"{what}: cannot write into {path} ({err.strerror or err})") from err
    return path


def image_output_file(path: str | Path, what: str = "--out") -> Path:
    """An image file to write: its folder checked by :func:`output_folder`, its format known.

    A name without a suffix gets :data:`DEFAULT_IMAGE_SUFFIX` (``sheet`` → ``sheet.png``).

    Raises:
        InputError: ``path`` is a folder, its suffix is not a format Pillow writes, or its
            folder cannot be written.
    """
    from PIL import Image

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what}: {path} is a folder; give an image file name such as {path / 'image.png'}")
    if not path.suffix:
        path = path.with_name(path.name + DEFAULT_IMAGE_SUFFIX)
    Image.init()
    if path.suffix.lower() not in Image.registered_extensions():
        raise InputError(f"{what}: {path.suffix!r} is not an image format Pillow can write; use .png or .jpg")
    output_folder(path.parent, what)
    return path
