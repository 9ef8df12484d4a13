"""The batch every dataset yields and the trainer consumes."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass(frozen=True)
class FaceBatch:
    """A batch of face images with whatever ground truth the source has.

    Attributes:
        images: ``(B, 3, H, W)`` RGB in [0, 1].
        codes: ``(B, 257)`` ground-truth codes (synthetic data) or ``None``.
        vertices: ``(B, N, 3)`` ground-truth model-space geometry, mm, or ``None``.
        landmarks: ``(B, 68, 2)`` landmark pixel positions (iBUG-68 order) or ``None``.
        landmark_confidence: ``(B, 68)`` in [0, 1] or ``None``.
        masks: ``(B, 1, H, W)`` ground-truth face coverage or ``None``.
        indices: ``(B,)`` int64 sample indices within the dataset.
    """

    images: torch.Tensor
    indices: torch.Tensor
    codes: torch.Tensor | None = None
    vertices: torch.Tensor | None = None
    landmarks: torch.Tensor | None = None
    landmark_confidence: torch.Tensor | None = None
    masks: torch.Tensor | None = None

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "FaceBatch":
        """Move every tensor to ``device`` (floating ones also to ``dtype``)."""
        changes = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                cast = dtype if (dtype is not None and value.dtype.is_floating_point) else None
                changes[f.name] = value.to(device=device, dtype=cast)
        return replace(self, **changes)

    @property
    def batch_size(self) -> int:
        return int(self.images.shape[0])

    @staticmethod
    def collate(items: list["FaceBatch"]) -> "FaceBatch":
        """Concatenate batches along dim 0 (fields missing in any item become ``None``)."""
        out = {}
        for f in fields(FaceBatch):
            values = [getattr(item, f.name) for item in items]
            out[f.name] = None if any(v is None for v in values) else torch.cat(values, 0)
        return FaceBatch(**out)
