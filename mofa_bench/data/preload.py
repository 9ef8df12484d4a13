"""A dataset rendered once and held in memory (``data.preload: true``).

Drawing a synthetic batch on the fly (codes, backgrounds, image formation, rendering)
costs about a quarter of a CPU training step at 64 px. :class:`PreloadedFaces` draws every
sample of a dataset once, when training starts, and keeps what it reads: the
images and masks as uint8 (as :class:`~mofa_bench.data.synthetic.ShardedFaces` stores
them: 4 bytes per pixel, 16 KiB per 64 px sample), the codes, landmarks and their
confidences. Per-sample geometry is not kept: training reads none, and validation draws
its own split. A run resumed at its last step (a suite scoring a finished run) never draws it.

Example:
    >>> train = PreloadedFaces(SyntheticFaces(decoder, 20_000))
    >>> batch = train.batch(torch.arange(16))   # renders the 20k samples once, then a FaceBatch
"""

from __future__ import annotations

from typing import Any

import torch

from mofa_bench.data.batch import FaceBatch
from mofa_bench.data.synthetic import check_indices, stored_fields
from mofa_bench.errors import InputError
from mofa_bench.progress import Progress

__all__ = ["PreloadedFaces"]

#: The fields a preloaded dataset holds.
_HELD = ("images", "masks", "codes", "landmarks", "landmark_confidence")


class PreloadedFaces:
    """Every sample of ``dataset``, drawn once (on first use) and held in CPU memory.

    Args:
        dataset: any dataset with ``__len__`` and ``batch(indices) -> FaceBatch`` whose
            batches have images (and, where the source has them, codes, landmarks,
            confidences and masks).
        chunk_size: samples drawn at once while loading.
        progress: show a progress bar while loading.
        description: the progress bar's label.

    Raises:
        InputError: ``chunk_size`` is not positive.
    """

    def __init__(self, dataset: Any, chunk_size: int = 64, progress: bool = True,
                 description: str = "preloading training data") -> None:
        if chunk_size <= 0:
            raise InputError(f"chunk_size: expected a positive number of samples, got {chunk_size}")
        self.source = dataset
        self.chunk_size = chunk_size
        self.progress = progress
        self.description = description
        self._tensors: dict[str, torch.Tensor | None] | None = None

    @property
    def tensors(self) -> dict[str, torch.Tensor | None]:
        """The held samples, drawn on first access: ``images`` ``(n, 3, H, W)`` and ``masks``
        ``(n, 1, H, W)`` uint8, ``codes`` ``(n, 257)``, ``landmarks`` ``(n, 68, 2)`` px and
        ``landmark_confidence`` ``(n, 68)`` float32 (``None`` where the source has none)."""
        if self._tensors is None:
            self._tensors = self._draw()
        return self._tensors

    def _draw(self) -> dict[str, torch.Tensor | None]:
        size = len(self.source)
        parts: dict[str, list[torch.Tensor | None]] = {key: [] for key in _HELD}
        with Progress(size, self.description, unit="img", show=self.progress) as bar:
            for first in range(0, size, self.chunk_size):
                last = min(first + self.chunk_size, size)
                for key, value in stored_fields(self.source.batch(torch.arange(first, last)), _HELD).items():
                    parts[key].append(value)
                bar.update(last - first)
        return {key: None if any(v is None for v in values) else torch.cat(values)  # type: ignore[arg-type]
                for key, values in parts.items()}

    def load(self) -> None:
        """Draw the samples now, if they are not drawn yet (a trainer does so before timing its steps)."""
        _ = self.tensors

    @property
    def loaded(self) -> bool:
        """Whether the samples have been drawn."""
        return self._tensors is not None

    def __len__(self) -> int:
        return len(self.source)

    def __repr__(self) -> str:
        return f"PreloadedFaces({self.source!r})"

    @property
    def nbytes(self) -> int:
        """Memory held, bytes."""
        return sum(t.numel() * t.element_size() for t in self.tensors.values() if t is not None)

    def batch(self, indices: torch.Tensor) -> FaceBatch:
        """The held samples at ``indices``.

        Args:
            indices: ``(B,)`` integer dataset-local indices in ``[0, len)``.

        Returns:
            :class:`FaceBatch` on the CPU: ``images`` ``(B, 3, H, W)`` float32 in [0, 1]
            (quantised to 1/255), ``masks`` ``(B, 1, H, W)``, ``codes``, ``landmarks``,
            ``landmark_confidence`` as the source gave them (or ``None``),
            ``vertices=None``, ``indices`` ``(B,)`` int64.

        Raises:
            InputError: indices not a 1-D integer tensor or out of range.
        """
        indices = check_indices(indices, len(self))

        def take(key: str) -> torch.Tensor | None:
            value = self.tensors[key]
            return None if value is None else value[indices]

        masks = take("masks")
        return FaceBatch(
            images=take("images").float() / 255.0,  # type: ignore[union-attr]
            indices=indices,
            codes=take("codes"),
            landmarks=take("landmarks"),
            landmark_confidence=take("landmark_confidence"),
            masks=None if masks is None else masks.float() / 255.0,
        )
