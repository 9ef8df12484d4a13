"""The inputs and output names of :func:`mofa_bench.reconstruct.reconstruct`.

Inputs: files named on the command line or found in folders (every file of a folder: the
reader, :mod:`mofa_bench.photos.reader`, says which are no images); whatever cannot be read
as a file (a missing path, a FIFO, a symbolic-link loop, a dangling link) is set aside with
the reason instead of stopping the run. Output names: one stem per photo such that no output
replaces a photo being read or another photo's outputs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from mofa_bench.errors import DatasetError
from mofa_bench.photos.reader import image_suffixes, path_problem

__all__ = ["find_images", "output_names", "output_stems", "path_problem", "scan_inputs"]  # path_problem: photos.reader

logger = logging.getLogger(__name__)


def scan_inputs(inputs: Sequence[str | Path], recursive: bool = False) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The files named directly or found in folders, and the inputs skipped with why.

    A named path that is missing, a FIFO, socket or device, a symbolic-link loop or
    unreadable is skipped (not an error), and so is every dangling link or non-regular
    file met in a folder scan. Folders give every regular file, sorted, whatever its
    suffix (a non-image is then skipped by the reader with that reason, so every file is
    accounted for). A file named twice is read once.

    Returns:
        ``(files, skipped)``: the files to read, in order, and ``(path, message)`` per
        input left out.
    """
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)

    for item in inputs:
        path = Path(item)
        problem = path_problem(path)
        if problem is not None:
            skipped.append((path, f"{path}: {problem}"))
            logger.warning("skipped %s: %s", path, problem)
            continue
        if not path.is_dir():
            add(path)
            continue
        for entry in sorted(path.glob("**/*" if recursive else "*")):
            problem = path_problem(entry)
            if problem is None and entry.is_dir():
                continue
            if problem is not None:
                skipped.append((entry, f"{entry}: {problem}"))
                logger.warning("skipped %s: %s", entry, problem)
            else:
                add(entry)
    return files, skipped


def find_images(inputs: Sequence[str | Path], recursive: bool = False) -> list[Path]:
    """Image files named directly or found in the given folders (:func:`scan_inputs`).

    Files found in folders are kept when their suffix is a format Pillow reads
    (:func:`~mofa_bench.photos.reader.image_suffixes`); named files are kept as named.

    Raises:
        DatasetError: an input cannot be read (missing, FIFO, link loop), or nothing
            was found.
    """
    files, skipped = scan_inputs(inputs, recursive)
    named = [message for path, message in skipped if str(path) in {str(Path(i)) for i in inputs}]
    if named:
        raise DatasetError(named[0])
    given = {str(Path(i)) for i in inputs}
    files = [f for f in files if str(f) in given or f.suffix.lower() in image_suffixes()]
    if not files:
        raise DatasetError(f"no images (files of a format Pillow reads) in {', '.join(str(i) for i in inputs)}")
    return files


def output_names(stem: str, formats: Sequence[str]) -> list[str]:
    """File names :func:`~mofa_bench.reconstruct.reconstruct` writes for one photo written as ``stem``."""
    return [f"{stem}.{fmt}" for fmt in formats] + [f"{stem}_overlay.png", f"{stem}_code.npz", f"{stem}_code.json"]


def output_stems(files: Sequence[Path], out: Path, formats: Sequence[str]) -> list[tuple[str, str]]:
    """Per photo, the stem its outputs are named after, and a note when it is not its own.

    The first photo with a stem keeps it; a later one sharing it gets its suffix
    (``a.jpg``, ``a.png`` → ``a``, ``a_png``) or, with the same suffix (``x/a.png``,
    ``y/a.png``), a number (``a_2``). A stem whose outputs would replace a photo being read,
    or another photo's outputs, gets ``_2``, ``_3``, …. Names are compared
    case-insensitively (as on macOS and Windows).
    """
    out = out.resolve()
    protected = {str(f.resolve()).casefold() for f in files}
    protected.add(str(out / "reconstructions.csv").casefold())
    suffixes: dict[str, set[str]] = {}
    taken: set[str] = set()
    result = []
    for file in files:
        base = file.stem
        reasons = []
        earlier = suffixes.setdefault(base.casefold(), set())
        if earlier:
            reasons.append(f"another photo has the stem {file.stem!r}")
            if file.suffix and file.suffix.lower() not in earlier:
                base = f"{file.stem}_{file.suffix.lstrip('.').lower()}"
        earlier.add(file.suffix.lower())
        stem, n = base, 1
        while True:
            names = {str(out / name).casefold() for name in output_names(stem, formats)}
            if not names & (protected | taken):
                break
            if names & protected and "it would overwrite an input photo" not in reasons:
                reasons.append("it would overwrite an input photo")
            if names & taken and "another photo's outputs have that name" not in reasons:
                reasons.append("another photo's outputs have that name")
            n += 1
            stem = f"{base}_{n}"
        taken |= names
        note = f"outputs named {stem} ({'; '.join(reasons)})" if stem != file.stem else ""
        if note:
            logger.warning("%s: %s", file, note)
        result.append((stem, note))
    return result
