"""Validation of a trained method on a dataset: the protocol's metrics, averaged.

:func:`validate` is the trainer's validator (``Trainer(config, validator=validate)``): it
asks the method for its reconstructions and scores them with
:func:`mofa_bench.scoring.protocol.evaluate_codes`, every method's codes drawn by one renderer
(:data:`SCORING_RENDERER`) — every metric whose ground truth the data has,
and the per-code-part diagnostics on synthetic data. A method without codes (e.g. a
convolutional autoencoder) gets the photometric error only.
"""

from __future__ import annotations

from typing import Any

import torch

from mofa_bench.scoring.code_parts import CODE_PARTS, summarize_code_part_errors
from mofa_bench.scoring.metrics import photometric_error
from mofa_bench.scoring.protocol import evaluate_codes
from mofa_bench.methods.base import Method, code_decoder


#: The renderer that draws every method's codes for the photometric error, whatever the
#: method trained through: the same hard z-buffer image for every renderer, so a
#: renderer's own drawing (soft coverage, antialiasing) does not change its score.
SCORING_RENDERER = "per_vertex"


def evaluate_batch(method: Method, batch: Any) -> dict[str, torch.Tensor]:
    """Per-sample metrics ``{name: (B,)}`` of the method's reconstruction of one batch.

    A method with codes is scored by :func:`~mofa_bench.scoring.protocol.evaluate_codes`, its
    codes drawn by :data:`SCORING_RENDERER`; a method
    without codes by the photometric error of its own images over their mask.
    """
    rec = method.reconstruct(batch.images)
    decoder = code_decoder(method)
    if rec.code is None or decoder is None:
        drawn = rec.image + (1 - rec.mask) * batch.images
        return {"photometric": photometric_error(drawn, batch.images, rec.mask)}
    scorer = decoder.with_renderer(SCORING_RENDERER)
    rendered = (rec.image, rec.mask) if scorer is decoder else None
    return evaluate_codes(scorer, rec.code, batch, rendered=rendered, formed=rec.formed)


def summarize(per_sample: dict[str, torch.Tensor]) -> dict[str, float]:
    """Dataset numbers from concatenated per-sample metrics.

    Errors are averaged with ``nanmean`` (an empty reconstruction gives NaN); the
    code-part diagnostics are reduced by :func:`~mofa_bench.scoring.code_parts.summarize_code_part_errors`.
    """
    part_keys = {f"{p}_{s}" for p in CODE_PARTS for s in ("cos", "rms", "rms_zero")}
    out = {name: float(torch.nanmean(values)) for name, values in per_sample.items() if name not in part_keys}
    if part_keys <= per_sample.keys():
        out.update(summarize_code_part_errors({k: per_sample[k] for k in part_keys}))
    return out


def validate(method: Method, dataset: Any, device: torch.device, batch_size: int = 16) -> dict[str, float]:
    """Every protocol metric of ``method`` over the whole ``dataset`` (see :func:`summarize`)."""
    collected: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            idx = torch.arange(start, min(start + batch_size, len(dataset)))
            batch = dataset.batch(idx).to(device)
            for name, values in evaluate_batch(method, batch).items():
                collected.setdefault(name, []).append(values.detach().cpu())
    return summarize({name: torch.cat(values) for name, values in collected.items()})
