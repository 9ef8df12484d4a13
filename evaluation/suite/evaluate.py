"""A method on the suite's test split: per-image metrics, bootstrap intervals, timing, files.

The test split is :func:`mofa_bench.data.splits.synthetic_split` ``"test"`` of the run's
``data`` section with ``data.seed`` = the suite's test seed, drawn by the analytic decoder
of the run's face model and camera with the ``data.synthetic_renderer`` backend: the same
faces for every run of a suite that shares model, camera and data settings.

:func:`evaluate_test_set` writes into the run directory:

- ``test_metrics.csv``: one row per test image, ``index`` (within the split) and every
  per-sample metric of :func:`mofa_bench.scoring.validation.evaluate_batch`;
- ``test_reconstructions.pt``: ``{"image": (K, 3, H, W), "mask": (K, 1, H, W)}`` float32
  on the CPU, the reconstruction over black and its coverage for the first K test images
  (:func:`drawn_reconstruction`: a method's codes drawn as the photometric error draws them);
- ``vertex_error_mm.npy``: ``(N,)`` float32, the mean posed per-vertex distance (mm,
  :func:`mofa_bench.scoring.protocol.vertex_errors`) over the test set, for methods with codes.

Numbers: each metric's test value is :func:`mofa_bench.scoring.validation.summarize` of the
per-image values (as in validation), its 95 % interval the percentile bootstrap of that
value over test images (:func:`bootstrap_ci`: 1000 resamples from a fixed seed, so every
run of a given test size uses the same resamples). Inference time is the wall time of
``method.reconstruct`` over the test set in batches of :data:`EVAL_BATCH` (synchronised
on CUDA), after one untimed call on the first K images, in ms per image.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluation.bench.measure import synchronize
from mofa_bench.scoring.protocol import vertex_errors
from mofa_bench.scoring.validation import SCORING_RENDERER, evaluate_batch, summarize
from mofa_bench.config import TrainConfig
from mofa_bench.data.splits import synthetic_split
from mofa_bench.decoder import MoFADecoder
from mofa_bench.methods.base import Method, Reconstruction, code_decoder
from mofa_bench.progress import Progress

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "EVAL_BATCH",
    "Scores",
    "bootstrap_ci",
    "draw_test_inputs",
    "draw_test_split",
    "evaluate_test_set",
]

#: Test images per evaluation batch.
EVAL_BATCH = 16
#: Bootstrap resamples of the test images, and the seed they are drawn from.
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Scores:
    """What a run scored on the test split.

    Attributes:
        summary: ``{metric: value}`` (:func:`mofa_bench.scoring.validation.summarize`).
        ci: ``{metric: (low, high)}`` 95 % bootstrap interval of each value.
        size: number of test images.
        inference_ms_per_image: wall time of ``reconstruct`` per test image, ms.
    """

    summary: dict[str, float]
    ci: dict[str, tuple[float, float]]
    size: int
    inference_ms_per_image: float


def draw_test_split(model_decoder: MoFADecoder, config: TrainConfig, test_seed: int) -> Any:
    """The suite's test split for a run (a :class:`~mofa_bench.data.synthetic.SyntheticFaces`).

    Args:
        model_decoder: a decoder with the run's face model and camera (its renderer is not used).
        config: the run's config (``data``: size, prior, backgrounds, drawing renderer).
        test_seed: ``data.seed`` of the test split.
    """
    drawer = model_decoder.with_renderer(config.data.synthetic_renderer)
    return synthetic_split(drawer, dataclasses.replace(config.data, seed=test_seed), "test")


def draw_test_inputs(config: TrainConfig, test_seed: int, count: int) -> dict[str, torch.Tensor]:
    """The first ``count`` test images of a config, drawn on the CPU (the suite's ``inputs.pt``).

    Returns:
        ``{"images": (K, 3, H, W) float32 in [0, 1], "indices": (K,) int64}``, K = min(count, test size).
    """
    decoder = MoFADecoder(config.model.load().to("cpu", torch.float32), config.camera.build())
    data = draw_test_split(decoder, config, test_seed)
    batch = data.batch(torch.arange(min(count, len(data))))
    return {"images": batch.images.float().cpu(), "indices": batch.indices.cpu()}


def bootstrap_ci(per_sample: dict[str, torch.Tensor], resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED, level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of every :func:`~mofa_bench.scoring.validation.summarize` value.

    Args:
        per_sample: ``{metric: (n,)}`` per-image values.
        resamples: number of resamples of the n images (with replacement).
        seed: seed of the resampled indices (equal seeds and n give equal resamples).
        level: coverage of the interval.

    Returns:
        ``{metric: (low, high)}`` for every key :func:`summarize` returns (NaN when a
        metric is NaN in every resample).
    """
    n = len(next(iter(per_sample.values())))
    draws = torch.randint(n, (resamples, n), generator=torch.Generator().manual_seed(seed))
    stats: dict[str, list[float]] = {}
    for idx in draws:
        for name, value in summarize({k: v[idx] for k, v in per_sample.items()}).items():
            stats.setdefault(name, []).append(value)
    tail = (1.0 - level) / 2.0
    out = {}
    for name, values in stats.items():
        finite = np.asarray(values, dtype=np.float64)
        finite = finite[~np.isnan(finite)]
        out[name] = ((float(np.quantile(finite, tail)), float(np.quantile(finite, 1.0 - tail)))
                     if finite.size else (math.nan, math.nan))
    return out


def drawn_reconstruction(method: Method, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(image over black (B, 3, H, W), coverage (B, 1, H, W))`` of the method's reconstruction of ``images``.

    A method with codes has them drawn by :data:`~mofa_bench.scoring.validation.SCORING_RENDERER`,
    the hard z-buffer the photometric error scores, whatever it trained through: a soft
    rasterizer's own drawing leaves its coverage below 1 inside the face (a blur of a
    quarter pixel with 8 faces per pixel: 47 % of the face's pixels under 0.9 on the default
    model at 64 px), and the input showing through those gaps would look like a speckle
    on the face that the codes do not have. A method without codes shows its own image.
    """
    rec = method.reconstruct(images)
    decoder = code_decoder(method)
    if rec.code is None or decoder is None:
        return rec.image, rec.mask
    return decoder.with_renderer(SCORING_RENDERER).render(rec.code)


class _TimedMethod:
    """A method seen through ``reconstruct``: each call timed, the last reconstruction kept.

    Passed to :func:`mofa_bench.scoring.validation.evaluate_batch` in place of the method (it reads
    ``reconstruct`` and the ``decoder`` attribute only).
    """

    def __init__(self, method: Method, device: torch.device) -> None:
        self.method = method
        self.decoder = getattr(method, "decoder", None)
        self.device = device
        self.seconds = 0.0
        self.last: Reconstruction | None = None

    def reconstruct(self, images: torch.Tensor) -> Reconstruction:
        synchronize(self.device)
        start = time.perf_counter()
        rec = self.method.reconstruct(images)
        synchronize(self.device)
        self.seconds += time.perf_counter() - start
        self.last = rec
        return rec


def evaluate_test_set(method: Method, model_decoder: MoFADecoder, config: TrainConfig, test_seed: int,
                      samples: int, run_dir: str | Path) -> Scores:
    """Score ``method`` on the test split and write the run's test files (module docstring).

    Args:
        method: the trained (or training-free) method, on ``model_decoder``'s device.
        model_decoder: a decoder with the run's face model and camera.
        config: the run's config.
        test_seed: ``data.seed`` of the test split.
        samples: K, the test images whose reconstructions are kept.
        run_dir: the run directory.
    """
    run_dir = Path(run_dir)
    device = model_decoder.model.device
    data = draw_test_split(model_decoder, config, test_seed)
    method.eval()
    timed = _TimedMethod(method, device)
    decoder = code_decoder(method)
    per_sample: dict[str, list[torch.Tensor]] = {}
    indices: list[torch.Tensor] = []
    vertex_sum: torch.Tensor | None = None
    with torch.no_grad():
        first = data.batch(torch.arange(min(samples, len(data)))).to(device)
        image, mask = drawn_reconstruction(method, first.images)
        torch.save({"image": image.detach().float().cpu(), "mask": mask.detach().float().cpu()},
                   run_dir / "test_reconstructions.pt")
        counter = Progress(len(data), "testing", unit="img", show=False)
        for start in range(0, len(data), EVAL_BATCH):
            batch = data.batch(torch.arange(start, min(start + EVAL_BATCH, len(data)))).to(device)
            for name, values in evaluate_batch(timed, batch).items():  # type: ignore[arg-type]
                per_sample.setdefault(name, []).append(values.detach().float().cpu())
            indices.append(batch.indices.cpu())
            code = timed.last.code if timed.last is not None else None
            if code is not None and decoder is not None and batch.codes is not None:
                errors = vertex_errors(decoder, code, batch.codes.to(code.dtype), timed.last.formed,
                                       batch.vertices).double().sum(0).cpu()
                vertex_sum = errors if vertex_sum is None else vertex_sum + errors
            counter.update(len(batch.indices))
    values = {name: torch.cat(parts) for name, parts in per_sample.items()}
    _write_metrics(run_dir / "test_metrics.csv", torch.cat(indices), values)
    if vertex_sum is not None:
        np.save(run_dir / "vertex_error_mm.npy", (vertex_sum / len(data)).numpy().astype(np.float32))
    return Scores(summary=summarize(values), ci=bootstrap_ci(values), size=len(data),
                      inference_ms_per_image=1000.0 * timed.seconds / len(data))


def _write_metrics(path: Path, indices: torch.Tensor, values: dict[str, torch.Tensor]) -> None:
    import pandas as pd

    frame = pd.DataFrame({"index": indices.numpy(), **{name: v.numpy() for name, v in values.items()}})
    frame.to_csv(path, index=False)
