"""A method on real photos: the suite's ``real_test``, a folder written by ``mofa-bench prepare``.

Real photos have no ground-truth face, so they are scored against what ``prepare``
measured on them (as the paper scores real data against detected landmarks):

- ``real_landmark_px``: mean 2D distance (px, in the run's ``camera.image_size`` crops)
  of the model's 46 training landmarks to the detected ones, each point weighted by its
  detection confidence (:func:`mofa_bench.scoring.metrics.landmark_error`);
- ``real_landmark_nme``: the same divided by the detected outer-eye-corner distance
  (iBUG 36–45);
- ``real_photometric``: mean RGB distance between the crop and the reconstruction over
  the region the reconstruction covers (channels in [0, 1]), as ``photometric`` on the
  synthetic test set.

The landmark errors need a face code; a method without one (the conv autoencoder) gets
``real_photometric`` only. Faces whose landmarks were not measured (``prepare
--landmarker none``) count for the photometric error only. The first ``limit`` faces of
the folder's manifest (status ``ok``, in manifest order) are used, the same for every run.

:func:`evaluate_real_set` writes ``real_metrics.csv`` into the run directory (one row per
face: ``index``, ``source`` and every ``real_*`` value) and returns the means with their
95 % bootstrap intervals (:func:`evaluation.suite.evaluate.bootstrap_ci`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from evaluation.suite.evaluate import EVAL_BATCH, Scores, bootstrap_ci
from evaluation.suite.spec import RealTest
from mofa_bench.scoring.validation import evaluate_batch, summarize
from mofa_bench.config import TrainConfig
from mofa_bench.data.prepared import PreparedFaces
from mofa_bench.methods.base import Method

__all__ = ["REAL_METRICS", "evaluate_real_set"]

#: ``{protocol metric: real-data column}`` of the metrics kept on real photos.
REAL_METRICS: dict[str, str] = {"landmark_px": "real_landmark_px", "landmark_nme": "real_landmark_nme",
                                "photometric": "real_photometric"}


def evaluate_real_set(method: Method, device: torch.device, config: TrainConfig, real_test: RealTest,
                      run_dir: str | Path) -> Scores:
    """Score ``method`` on the prepared faces of ``real_test`` and write ``real_metrics.csv``.

    Args:
        method: the trained (or training-free) method, on ``device``.
        device: where the method runs.
        config: the run's config (``camera.image_size``: the crops are resized to it).
        real_test: the suite's ``real_test`` (folder and face limit).
        run_dir: the run directory.

    Returns:
        :class:`~evaluation.suite.evaluate.Scores` with the ``real_*`` metrics (module
        docstring); ``inference_ms_per_image`` is NaN (timed on the synthetic test set).

    Raises:
        DatasetError: the folder has no manifest or no usable face.
    """
    import pandas as pd

    data = PreparedFaces(real_test.path, config.camera.image_size)
    count = len(data) if real_test.limit is None else min(real_test.limit, len(data))
    per_sample: dict[str, list[torch.Tensor]] = {}
    method.eval()
    with torch.no_grad():
        for start in range(0, count, EVAL_BATCH):
            batch = data.batch(torch.arange(start, min(start + EVAL_BATCH, count))).to(device)
            for name, values in evaluate_batch(method, batch).items():
                if name in REAL_METRICS:
                    per_sample.setdefault(REAL_METRICS[name], []).append(values.detach().double().cpu())
    values = {name: torch.cat(parts) for name, parts in per_sample.items()}
    frame = pd.DataFrame({"index": range(count), "source": data.manifest["source"].iloc[:count].tolist(),
                          **{name: v.numpy() for name, v in values.items()}})
    frame.to_csv(Path(run_dir) / "real_metrics.csv", index=False)
    return Scores(summary=summarize(values), ci=bootstrap_ci(values), size=count,
                  inference_ms_per_image=float("nan"))
