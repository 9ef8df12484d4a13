"""Validation of an encoder + decoder on a dataset: the three paper metrics per sample.

- ``photometric``: mean RGB distance between the input image and the reconstruction,
  over the region the *reconstruction* covers (the rendered face's coverage mask).
- ``geometric_mm``: mean point-to-point distance (mm) of model-space vertices after
  translation and isotropic scale compensation, rotation not compensated (needs
  ground-truth vertices: synthetic data).
- ``landmark_px``: mean pixel distance over the 46 training landmarks (needs
  ground-truth or detected landmarks).
"""

from __future__ import annotations

from typing import Any

import torch

from evaluation.metrics import geometric_error, landmark_error, photometric_error
from mofa_bench.decoder import MoFADecoder


def evaluate_batch(encoder: torch.nn.Module, decoder: MoFADecoder, batch: Any) -> dict[str, torch.Tensor]:
    """Per-sample metrics ``{"photometric", "geometric_mm", "landmark_px"}`` → ``(B,)`` each.

    Metrics whose ground truth the batch lacks are omitted.
    """
    code = encoder(batch.images).float()
    formed = decoder.form(code)
    result = decoder.renderer.render(formed, batch.images)
    out = {"photometric": photometric_error(result.image, batch.images, result.mask)}
    if batch.vertices is not None:
        out["geometric_mm"] = geometric_error(formed.vertices, batch.vertices)
    if batch.landmarks is not None:
        subset = decoder.model.landmark_subset
        out["landmark_px"] = landmark_error(formed.landmarks_uv, batch.landmarks, subset=subset)
    return out


def validate(encoder: torch.nn.Module, decoder: MoFADecoder, dataset: Any, device: torch.device,
             batch_size: int = 16) -> dict[str, float]:
    """Mean of each metric over the whole ``dataset`` (NaNs, e.g. empty masks, ignored)."""
    sums: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            idx = torch.arange(start, min(start + batch_size, len(dataset)))
            batch = dataset.batch(idx).to(device)
            for name, values in evaluate_batch(encoder, decoder, batch).items():
                sums.setdefault(name, []).append(values.detach().cpu())
    return {name: float(torch.nanmean(torch.cat(values))) for name, values in sums.items()}
