"""Public face datasets as lists of photos for ``mofa-bench prepare`` (their own layouts, their annotations).

Each adapter turns a dataset folder into :class:`~mofa_bench.photos.prepare.PhotoItem`\\ s:
which file, its manifest key, the box that names the annotated face (so a photo with
several people is cropped around the right one) and the dataset's own landmarks, kept in
the manifest as ``reference_points`` (source px) for measuring the landmark detector.

- **CelebA** (:func:`celeba_items`): images in ``img_celeba/`` (in the wild) with
  ``list_bbox_celeba.txt`` (``image_id x_1 y_1 width height``), or ``img_align_celeba/``
  with ``list_landmarks_align_celeba.txt`` (5 points: left eye, right eye, nose, left and
  right mouth corner, "left" = image left); for ``img_celeba/`` the 5 points of
  ``list_landmarks_celeba.txt`` are used when present. The annotation files may sit
  anywhere under the root (``Anno/`` in the official archive). Both lists start with a count
  line and a header line.
- **LFW** (:func:`lfw_items`): ``<Name>/<Name>_NNNN.jpg``; LFW images are centred on the
  named person's face, so the box is the central 40 % of the image.
- **300-VW** (:func:`vw300_items`): ``<video id>/vid.avi`` (or ``.mp4``) with
  ``<video id>/annot/NNNNNN.pts`` (68 iBUG points, 1-based frame numbers); annotated frames
  are written as PNGs (every ``every``-th one) and their box is the annotation's bounding
  box. Frames already written are reused, so a rerun decodes nothing new.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mofa_bench.errors import DatasetError
from mofa_bench.photos.prepare import PhotoItem

__all__ = ["celeba_items", "lfw_items", "read_celeba_list", "read_pts", "vw300_items"]


def read_celeba_list(path: Path) -> dict[str, list[float]]:
    """A CelebA annotation list (count line, header line, ``image_id v1 v2 ...`` rows) as ``{image_id: values}``.

    Raises:
        DatasetError: unreadable file or a malformed row (names the file and line).
    """
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the CelebA list ({exc})") from exc
    out: dict[str, list[float]] = {}
    for number, line in enumerate(lines[2:], 3):
        parts = line.split()
        if not parts:
            continue
        try:
            out[parts[0]] = [float(v) for v in parts[1:]]
        except ValueError as exc:
            raise DatasetError(f"{path}:{number}: expected 'image_id' and numbers, got {line!r}") from exc
    return out


def _find(root: Path, name: str) -> Path | None:
    direct = root / name
    if direct.exists():
        return direct
    return next(iter(sorted(root.rglob(name))), None)


def _box_around(points: np.ndarray, scale: float = 2.0) -> tuple[float, float, float, float]:
    """A square ``(x, y, w, h)`` box ``scale`` times the points' larger extent, centred on their mean."""
    centre = points.mean(0)
    side = scale * float(max(np.ptp(points[:, 0]), np.ptp(points[:, 1]), 1.0))
    return (float(centre[0] - side / 2), float(centre[1] - side / 2), side, side)


def celeba_items(root: str | Path, aligned: bool = False) -> list[PhotoItem]:
    """CelebA's photos (see the module docstring); ``aligned`` takes ``img_align_celeba``.

    Raises:
        DatasetError: the image folder or the annotation list is missing.
    """
    root = Path(root)
    folder = _find(root, "img_align_celeba" if aligned else "img_celeba")
    if folder is None or not folder.is_dir():
        raise DatasetError(f"{root}: no {'img_align_celeba' if aligned else 'img_celeba'} folder (CelebA layout)")
    landmarks_file = _find(root, "list_landmarks_align_celeba.txt" if aligned else "list_landmarks_celeba.txt")
    boxes_file = None if aligned else _find(root, "list_bbox_celeba.txt")
    if landmarks_file is None and boxes_file is None:
        raise DatasetError(f"{root}: no CelebA annotation list (list_bbox_celeba.txt or list_landmarks_*celeba.txt)")
    landmarks = read_celeba_list(landmarks_file) if landmarks_file else {}
    boxes = read_celeba_list(boxes_file) if boxes_file else {}
    items = []
    for image_id in sorted(set(landmarks) | set(boxes)):
        points = np.asarray(landmarks[image_id]).reshape(-1, 2) if image_id in landmarks else None
        if image_id in boxes and len(boxes[image_id]) == 4:
            near = tuple(boxes[image_id])
        elif points is not None:
            near = _box_around(points)
        else:
            raise DatasetError(f"{boxes_file}: image {image_id}: expected 4 box values, got {boxes[image_id]}")
        reference = tuple(map(tuple, points.tolist())) if points is not None else None
        items.append(PhotoItem(folder / image_id, image_id, near, reference))  # type: ignore[arg-type]
    return items


def lfw_items(root: str | Path) -> list[PhotoItem]:
    """LFW's photos (``<Name>/<Name>_NNNN.jpg`` under ``root``), each with the central face box.

    Raises:
        DatasetError: no LFW photos under ``root``.
    """
    from PIL import Image

    root = Path(root)
    files = sorted(p for p in root.glob("*/*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise DatasetError(f"{root}: no LFW photos (<Name>/<Name>_NNNN.jpg)")
    items = []
    for path in files:
        try:
            with Image.open(path) as img:
                width, height = img.size
        except OSError:
            width = height = 250            # LFW's size; the unreadable file is reported by prepare
        side = 0.4 * min(width, height)
        near = ((width - side) / 2, (height - side) / 2, side, side)
        items.append(PhotoItem(path, path.relative_to(root).as_posix(), near))
    return items


def read_pts(path: Path) -> np.ndarray:
    """An iBUG ``.pts`` file (``version``, ``n_points``, ``{``, ``x y`` lines, ``}``) as ``(N, 2)`` float64.

    Raises:
        DatasetError: malformed file (names it).
    """
    try:
        text = path.read_text()
        body = text[text.index("{") + 1: text.index("}")]
        points = np.asarray([[float(v) for v in line.split()] for line in body.splitlines() if line.strip()])
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not an iBUG .pts file ({exc})") from exc
    if points.ndim != 2 or points.shape[1] != 2:
        raise DatasetError(f"{path}: expected 'x y' lines, got an array of shape {points.shape}")
    return points


def vw300_items(root: str | Path, frames_dir: str | Path, every: int = 1) -> list[PhotoItem]:
    """300-VW's annotated frames (written to ``frames_dir/<video id>/NNNNNN.png``).

    The annotations are taken as they are in the pixel convention of the frames (300-VW
    gives no sub-pixel convention).

    Args:
        root: the folder holding one folder per video.
        frames_dir: where the frames are written.
        every: keep every ``every``-th annotated frame.

    Raises:
        DatasetError: no videos, a video that cannot be decoded, or OpenCV missing.
    """
    try:
        import cv2
    except ImportError as exc:
        raise DatasetError("300-VW videos need OpenCV: pip install 'opencv-python-headless<4.12'") from exc
    from PIL import Image

    root, frames_dir = Path(root), Path(frames_dir)
    videos = sorted(p for p in root.glob("*/vid.*") if p.suffix.lower() in (".avi", ".mp4"))
    if not videos:
        raise DatasetError(f"{root}: no 300-VW videos (<video id>/vid.avi or vid.mp4)")
    items = []
    for video in videos:
        name = video.parent.name
        annotations = {int(p.stem): p for p in sorted((video.parent / "annot").glob("*.pts"))}
        wanted = sorted(annotations)[:: max(1, int(every))]
        targets = {k: frames_dir / name / f"{k:06d}.png" for k in wanted}
        missing = [k for k in wanted if not targets[k].is_file()]
        if missing:
            targets[missing[0]].parent.mkdir(parents=True, exist_ok=True)
            capture = cv2.VideoCapture(str(video))
            if not capture.isOpened():
                raise DatasetError(f"{video}: OpenCV cannot open the video")
            number, last = 0, max(missing)
            todo = set(missing)
            while number < last:
                ok, frame = capture.read()
                if not ok:
                    break
                number += 1
                if number in todo:
                    Image.fromarray(frame[..., ::-1]).save(targets[number])
            capture.release()
        for k in wanted:
            points = read_pts(annotations[k])
            items.append(PhotoItem(targets[k], f"{name}/{k:06d}", _box_around(points, 1.2),
                                   tuple(map(tuple, points.tolist()))))  # type: ignore[arg-type]
    return items
