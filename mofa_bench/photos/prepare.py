"""``mofa-bench prepare folder|csv``: photos → framed face crops, landmarks and a Parquet manifest.

Sources: every photo under a folder (:func:`prepare_folder`), or the photos a CSV lists,
optionally with a box per row that picks the face (:func:`prepare_csv`).

Output folder layout:

- ``crops/<source>.png``: the ``size × size`` crop of each photo's face (framed by
  :mod:`~mofa_bench.photos.framing`), subfolders mirrored.
- ``manifest.parquet``: one row per photo, face found or file skipped, with the columns of
  :data:`MANIFEST_COLUMNS`: ``source`` (path relative to the input folder, or as the CSV
  lists it), ``status``
  (``"ok"`` or ``"skipped"``), ``reason`` (why skipped; ``""`` when ok), ``crop``
  (crop path relative to the output folder), ``crop_x0``, ``crop_y0``, ``crop_side``
  (the crop box in source px), ``crop_size`` (crop px), ``image_width``,
  ``image_height``, ``detector``, ``score`` (detector confidence), ``faces`` (faces the
  detector found), ``framed_by``, ``landmarks_68`` (68 × 2 source px, project pixel
  convention; empty without landmarks), ``landmark_confidence`` (68 values in [0, 1]) and
  ``reference_points`` (a dataset's own annotation in source px, K × 2: 68 iBUG points for
  300-VW, CelebA's 5; empty when there is none) and ``note`` (what reading changed, e.g.
  a greyscale photo converted to RGB; ``""`` when nothing).
  Last, ``file_size``, ``file_mtime_ns`` and ``file_sha256``: the photo's file when it was
  prepared (:mod:`~mofa_bench.photos.prepare_state`).
- ``prepare.json``: the settings; a rerun with other settings is refused.

Resuming: a rerun reads the manifest and processes the photos without a row and those
whose file changed since (size or time, unless the content hash is the recorded one; the
photos redone are logged by name). The manifest is rewritten (atomically) every
``save_every`` photos and at the end, so an interrupted run loses at most that many
photos' work. An output folder inside the input folder is never read as input. An
unreadable ``prepare.json`` is rebuilt when the manifest agrees with the settings asked
for; an unreadable manifest is refused with the fix. Every file of a folder gets a row:
one that cannot be used (not an image, unreadable, truncated, blank, too large, grey with
``allow_grey=False``, face-less, face tiny or cut off; a dangling link or a FIFO) gets a
``skipped`` row with the reason and never stops the run. Photos are read by the project's
one reader (:mod:`mofa_bench.photos.reader`: any format Pillow opens; greyscale converted
to RGB with a note by default).

:class:`PreparedFaces` reads a prepared folder back as a dataset of crops with their
landmarks in crop pixels.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from mofa_bench.errors import DatasetError, InputError
from mofa_bench.photos.faces import MAX_PIXELS, FacePipeline, PhotoSkipped
from mofa_bench.photos.reader import PhotoReadError, image_suffixes, open_photo
from mofa_bench.photos.framing import crop_square
from mofa_bench.photos.prepare_state import (FINGERPRINT_COLUMNS, MANIFEST, SETTINGS, check_settings, fingerprint,
                                             is_output, outputs_under, resume_plan, unreadable_manifest)

__all__ = ["IMAGE_SUFFIXES", "MANIFEST_COLUMNS", "PhotoItem", "PrepareSettings", "list_photos",
           "prepare_csv",
           "prepare_folder", "prepare_photos", "read_manifest"]

#: File suffixes of the formats Pillow opens (any case); :func:`list_photos` lists every
#: file whatever its suffix, and the reader says which are no images.
IMAGE_SUFFIXES: tuple[str, ...] = image_suffixes()
#: The manifest's columns, in order.
MANIFEST_COLUMNS: tuple[str, ...] = (
    "source", "status", "reason", "crop", "crop_x0", "crop_y0", "crop_side", "crop_size", "image_width",
    "image_height", "detector", "score", "faces", "framed_by", "landmarks_68", "landmark_confidence",
    "reference_points", "note", *FINGERPRINT_COLUMNS)


@dataclass(frozen=True)
class PrepareSettings:
    """What a prepared folder was made with (stored as ``prepare.json``).

    Attributes:
        size: crop side, px.
        detector: face detector name.
        landmarker: landmarker name, or ``None``.
        min_face: smallest accepted face box side, px.
        max_outside: largest fraction of the face box outside the photo.
        allow_grey: keep grey photos, replicated to RGB with a note (the default);
            ``False`` skips them.
        max_pixels: larger photos are skipped.
    """

    size: int = 240
    detector: str = "mediapipe"
    landmarker: str | None = "mediapipe"
    min_face: float = 32.0
    max_outside: float = 0.25
    allow_grey: bool = True
    max_pixels: int = MAX_PIXELS

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 16:
            raise InputError(f"size: expected an int ≥ 16 px, got {self.size!r}")
        if self.max_pixels <= 0:
            raise InputError(f"max_pixels: expected > 0, got {self.max_pixels}")


def list_photos(folder: Path, recursive: bool = True) -> list[Path]:
    """Every entry under ``folder`` but folders, sorted by relative path.

    Files of any suffix are listed (the reader skips non-images with that reason), and so
    are dangling links, FIFOs and other non-regular entries (skipped as such): every file
    gets a manifest row.
    """
    pattern = "**/*" if recursive else "*"
    return sorted((p for p in folder.glob(pattern) if not p.is_dir()),
                  key=lambda p: p.relative_to(folder).as_posix())


Near = tuple[float, float, float, float]


@dataclass(frozen=True)
class PhotoItem:
    """One photo to prepare.

    Attributes:
        path: the image file.
        source: its manifest key (unique within a prepared folder).
        near: optional ``(x, y, w, h)`` source-px box: the face overlapping it most is taken.
        reference: optional ``(K, 2)`` source-px points the dataset annotates (stored as
            ``reference_points``).
    """

    path: Path
    source: str
    near: Near | None = None
    reference: tuple[tuple[float, float], ...] | None = None


def _row(source: str, status: str, reason: str = "", **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {name: None for name in MANIFEST_COLUMNS}
    row.update(source=source, status=status, reason=reason, landmarks_68=[], landmark_confidence=[],
               reference_points=[], note="")
    row.update(values)
    return row


# One pipeline per process (MediaPipe graphs are not shared between processes).
_PIPELINE: FacePipeline | None = None


def _close_pipeline() -> None:
    global _PIPELINE
    if _PIPELINE is not None:
        _PIPELINE.close()
        _PIPELINE = None


def _init_worker(settings: dict[str, Any], worker: bool = True) -> None:
    global _PIPELINE
    s = PrepareSettings(**settings)
    _PIPELINE = FacePipeline(s.detector, s.landmarker, min_side=s.min_face, max_outside=s.max_outside)
    if worker:
        # Close MediaPipe's graphs while the worker's threads still run (an atexit hook comes
        # after the thread pools it needs have shut down).
        from multiprocessing import util

        util.Finalize(None, _close_pipeline, exitpriority=100)


def _crop_name(source: str) -> Path:
    """``crops/<source without suffix>[_k].png``: made relative (no root, no ``..``); ``#k`` → ``_k``."""
    base, _, k = source.partition("#")
    parts = [part.replace("..", "__") for part in Path(base).parts if part not in ("/", "\\")]
    stem = Path(*parts).with_suffix("") if parts else Path("photo")
    return Path("crops", stem.parent, stem.name + (f"_{k}" if k else "") + ".png")


def _process(job: tuple[PhotoItem, str, dict[str, Any]]) -> dict[str, Any]:
    """Prepare one photo: ``(item, out_dir, settings)`` → its manifest row (with the file's fingerprint)."""
    before = fingerprint(job[0].path)
    row = _prepare_one(*job)
    row.update(before)
    row["reference_points"] = [list(map(float, p)) for p in job[0].reference] if job[0].reference else []
    return row


def _read(path: Path, settings: PrepareSettings) -> tuple[np.ndarray, str]:
    """``((H, W, 3) uint8 RGB at native size, note)`` of one photo, through the one reader.

    Raises:
        PhotoSkipped: the reader's reason (not an image, unreadable, blank, grey with
            ``allow_grey=False``, …).
    """
    try:
        photo = open_photo(path, None, grey="convert" if settings.allow_grey else "skip",
                           max_pixels=settings.max_pixels)
    except PhotoReadError as exc:
        raise PhotoSkipped(exc.reason) from exc
    return photo.rgb8(), "; ".join(photo.notes)


def _prepare_one(item: PhotoItem, out_dir: str, settings: dict[str, Any]) -> dict[str, Any]:
    path, source, near = item.path, item.source, item.near
    s = PrepareSettings(**settings)
    if _PIPELINE is None:
        raise RuntimeError("prepare: the face pipeline of this process was not initialised")
    try:
        rgb, note = _read(Path(path), s)
    except PhotoSkipped as exc:
        return _row(source, "skipped", str(exc))
    height, width = rgb.shape[:2]
    try:
        face = _PIPELINE.find(rgb, near=near)
    except PhotoSkipped as exc:
        return _row(source, "skipped", str(exc), image_width=width, image_height=height, detector=s.detector,
                    note=note)
    crop_rel = _crop_name(source)
    target = Path(out_dir) / crop_rel
    target.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    tmp = target.with_name(target.name + ".tmp")
    Image.fromarray(crop_square(rgb, face.box, s.size)).save(tmp, format="PNG")
    os.replace(tmp, target)
    lm = face.landmarks
    return _row(source, "ok", crop=crop_rel.as_posix(), crop_x0=face.box[0], crop_y0=face.box[1],
                crop_side=face.box[2], crop_size=s.size, image_width=width, image_height=height,
                detector=s.detector, score=float(face.detection.score), faces=face.candidates,
                framed_by=face.framed_by,
                landmarks_68=[] if lm is None else lm.ibug68.astype(np.float64).tolist(),
                landmark_confidence=[] if lm is None else lm.confidence.astype(np.float64).tolist(), note=note)


def _frame(rows: list[dict[str, Any]]):
    import pandas as pd

    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    for name in ("crop_x0", "crop_y0", "crop_side", "crop_size", "image_width", "image_height", "faces",
                 "file_size", "file_mtime_ns"):
        frame[name] = frame[name].astype("Int64")
    frame["score"] = frame["score"].astype("float64")
    frame["note"] = frame["note"].fillna("").astype(str)  # manifests written before the column
    return frame


def _write_manifest(out: Path, rows: list[dict[str, Any]]) -> None:
    frame = _frame(rows)
    tmp = out / (MANIFEST + ".tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, out / MANIFEST)


def read_manifest(out: str | Path):
    """The manifest of a prepared folder as a pandas DataFrame (raises DatasetError naming the file)."""
    import pandas as pd

    path = Path(out) / MANIFEST
    if not path.is_file():
        raise DatasetError(f"{path}: no manifest (run `mofa-bench prepare folder PHOTOS --out {out}` first)")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises its own error types
        raise DatasetError(f"{path}: unreadable manifest ({type(exc).__name__}: {exc})") from exc


def _run_jobs(jobs: list[tuple[Any, ...]], settings: dict[str, Any],
              workers: int) -> Iterator[dict[str, Any]]:
    if not jobs:
        return
    if workers <= 1:
        _init_worker(settings, worker=False)
        try:
            for job in jobs:
                yield _process(job)
        finally:
            _close_pipeline()
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(settings,)) as pool:
        yield from pool.map(_process, jobs, chunksize=4)


def prepare_photos(items: Sequence[PhotoItem], out: str | Path,
                   settings: PrepareSettings = PrepareSettings(), *, workers: int = 1, save_every: int = 50,
                   progress: bool = True, limit: int | None = None):
    """Prepare a list of photos (see the module docstring).

    Args:
        items: the photos (:class:`PhotoItem`).
        out: output folder (created; an existing one is resumed).
        settings: crop size, detector, landmarker and the skip limits.
        workers: processes (each loads its own detector; 1 runs in this process).
        save_every: rewrite the manifest after this many photos.
        progress: show a tqdm progress bar.
        limit: process at most this many new photos (for trials).

    Returns:
        the full manifest (earlier rows and new ones) as a pandas DataFrame.

    Raises:
        InputError: ``out`` was prepared with other settings, or two items share a source.
        DetectorUnavailableError: the detector or landmarker cannot run here.
    """
    from tqdm import tqdm

    out = Path(out)
    sources = [item.source for item in items]
    if len(set(sources)) != len(sources):
        raise InputError("prepare: two photos have the same source name")
    out.mkdir(parents=True, exist_ok=True)
    rows = _earlier_rows(out)
    check_settings(out, settings, rows)
    todo, rows = resume_plan(items, rows, out)
    if limit is not None:
        todo = todo[: max(0, int(limit))]
    options = asdict(settings)
    jobs = [(item, str(out), options) for item in todo]
    bar = tqdm(total=len(jobs), desc="prepare", unit="photo", disable=not progress or not jobs)
    try:
        for k, row in enumerate(_run_jobs(jobs, options, workers), 1):
            rows.append(row)
            bar.update(1)
            if k % max(1, save_every) == 0:
                _write_manifest(out, rows)
    finally:
        bar.close()
        _write_manifest(out, rows)
    return _frame(rows)


def _earlier_rows(out: Path) -> list[dict[str, Any]]:
    """The rows of ``out``'s manifest (none without one).

    Raises:
        DatasetError: the manifest is unreadable, naming the fix.
    """
    if not (out / MANIFEST).is_file():
        return []
    try:
        rows = read_manifest(out).to_dict("records")
        for row in rows:
            for key in ("landmarks_68", "landmark_confidence", "reference_points"):
                row[key] = [list(map(float, p)) if np.ndim(p) else float(p) for p in row[key]]
    except DatasetError as err:
        raise unreadable_manifest(err, out) from None
    except (KeyError, TypeError, ValueError) as err:
        raise unreadable_manifest(DatasetError(f"{out / MANIFEST}: unreadable manifest ({type(err).__name__}: "
                                               f"{err})"), out) from None
    return rows


def prepare_folder(folder: str | Path, out: str | Path, settings: PrepareSettings = PrepareSettings(), *,
                   recursive: bool = True, **options: Any):
    """Prepare every photo of a folder; ``source`` is the path relative to it.

    What ``prepare`` writes into ``out`` is never listed when ``out`` is (inside) ``folder``.

    ``options`` are :func:`prepare_photos`'s (``workers``, ``save_every``, ``progress``, ``limit``).

    Raises:
        DatasetError: the folder is missing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "photo folder does not exist" if not folder.exists() else "not a folder"
        raise DatasetError(f"{folder}: {what}")
    outputs = outputs_under(folder, Path(out))
    items = [PhotoItem(p, p.relative_to(folder).as_posix()) for p in list_photos(folder, recursive)
             if not (outputs and is_output(p, outputs, Path(out)))]
    return prepare_photos(items, out, settings, **options)


def prepare_csv(table: str | Path, out: str | Path, settings: PrepareSettings = PrepareSettings(), **options: Any):
    """Prepare the photos a CSV lists.

    Columns: ``path`` (required; relative paths are taken from the CSV's folder) and
    optionally ``x``, ``y``, ``w``, ``h``: a box (source px) choosing the face that
    overlaps it most. A photo listed several times (several faces) gets sources
    ``path#1``, ``path#2``, ...; otherwise its source is ``path`` as written.

    Raises:
        DatasetError: the CSV is missing, unreadable, or lacks the ``path`` column (names it).
    """
    import pandas as pd

    table = Path(table)
    try:
        frame = pd.read_csv(table)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{table}: cannot read the CSV of photos ({exc})") from exc
    if "path" not in frame.columns:
        raise DatasetError(f"{table}: no 'path' column (columns: {', '.join(map(str, frame.columns))})")
    box_columns = [c for c in ("x", "y", "w", "h") if c in frame.columns]
    if box_columns and len(box_columns) != 4:
        raise DatasetError(f"{table}: a face box needs all of x, y, w, h (found {', '.join(box_columns)})")
    counts = frame["path"].astype(str).value_counts()
    seen: dict[str, int] = {}
    items = []
    for _, row in frame.iterrows():
        name = str(row["path"])
        path = Path(name) if Path(name).is_absolute() else table.parent / name
        seen[name] = seen.get(name, 0) + 1
        source = f"{name}#{seen[name]}" if counts[name] > 1 else name
        near = None
        if box_columns and not any(pd.isna(row[c]) for c in box_columns):
            near = tuple(float(row[c]) for c in ("x", "y", "w", "h"))
        items.append(PhotoItem(path, source, near))
    return prepare_photos(items, out, settings, **options)
