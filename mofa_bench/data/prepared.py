"""A folder of real photos prepared by ``mofa-bench prepare``, read back as a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mofa_bench.data.batch import FaceBatch
from mofa_bench.data.synthetic import check_indices
from mofa_bench.errors import DatasetError
from mofa_bench.photos.framing import landmarks_to_crop
from mofa_bench.photos.prepare import MANIFEST, read_manifest


class PreparedFaces:
    """Face crops of a prepared folder with their landmarks (a dataset with ``len`` and ``batch``).

    Args:
        path: a folder written by :func:`~mofa_bench.photos.prepare.prepare_folder`
            (``mofa-bench prepare``).
        image_size: crop side to return (resized when it differs from the stored crops);
            ``None`` keeps the stored size.

    Raises:
        DatasetError: no manifest, or no usable face in it.
    """

    def __init__(self, path: str | Path, image_size: int | None = None) -> None:
        self.path = Path(path)
        frame = read_manifest(self.path)
        self.manifest = frame[frame["status"] == "ok"].reset_index(drop=True)
        if self.manifest.empty:
            raise DatasetError(f"{self.path / MANIFEST}: no prepared faces (every photo was skipped)")
        stored = int(self.manifest["crop_size"].iloc[0])
        self.image_size = int(image_size) if image_size is not None else stored

    def __len__(self) -> int:
        return len(self.manifest)

    def __repr__(self) -> str:
        return f"PreparedFaces({str(self.path)!r}, {len(self)} faces, {self.image_size} px)"

    def landmarks(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``((68, 2) crop px, (68,) confidence)`` of face ``index`` (zeros without landmarks)."""
        row = self.manifest.iloc[int(index)]
        points = np.asarray([np.asarray(p, dtype=np.float64) for p in row["landmarks_68"]]).reshape(-1, 2)
        if len(points) != 68:
            return np.zeros((68, 2)), np.zeros(68)
        box = (int(row["crop_x0"]), int(row["crop_y0"]), int(row["crop_side"]))
        return landmarks_to_crop(points, box, self.image_size), np.asarray(row["landmark_confidence"], dtype=np.float64)

    def image(self, index: int):
        """``(3, S, S)`` float32 crop in [0, 1]."""
        from PIL import Image

        row = self.manifest.iloc[int(index)]
        path = self.path / row["crop"]
        try:
            with Image.open(path) as img:
                img = img.convert("RGB")
                if img.size != (self.image_size, self.image_size):
                    img = img.resize((self.image_size, self.image_size), Image.Resampling.BICUBIC)
                array = np.asarray(img, dtype=np.float32) / 255.0
        except OSError as exc:
            raise DatasetError(f"{path}: unreadable crop ({exc}); rerun `mofa-bench prepare`") from exc
        return torch.from_numpy(array).permute(2, 0, 1).contiguous()

    def batch(self, indices: Any):
        """Crops and landmarks of faces ``indices``: a :class:`~mofa_bench.data.batch.FaceBatch`.

        Returns:
            ``images`` ``(B, 3, S, S)`` float32 in [0, 1], ``landmarks`` ``(B, 68, 2)`` crop px,
            ``landmark_confidence`` ``(B, 68)``, ``indices`` ``(B,)`` int64.
        """
        indices = check_indices(indices, len(self))
        pairs = [self.landmarks(int(i)) for i in indices]
        return FaceBatch(images=torch.stack([self.image(int(i)) for i in indices]), indices=indices,
                         landmarks=torch.tensor(np.stack([p for p, _ in pairs]), dtype=torch.float32),
                         landmark_confidence=torch.tensor(np.stack([c for _, c in pairs]), dtype=torch.float32))
