"""A trained encoder's real-data errors on a prepared folder, beside the mean face's.

Run: ``python tests/photos/bm_real_data.py RUN_DIR_OR_CHECKPOINT PREPARED_DIR``.

For every face of a folder written by ``mofa-bench prepare`` (crops resized to the run's
image size): the landmark error of the 46 training landmarks against the prepared
(detected) landmarks, confidence-weighted, in px of the run's crops, scaled to 240 px, and
normalised by the detected outer-eye-corner distance; and the photometric error (mean RGB
distance over the samples the run's renderer compares, channels in [0, 1]). The zero code
(the mean face, every encoder's first prediction) is scored the same way.
"""

from __future__ import annotations

import argparse

import torch

from mofa_bench.code_vector import CODE_DIM
from mofa_bench.data.prepared import PreparedFaces
from mofa_bench.reconstruct import load_trained_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a run directory or checkpoint of mofa-bench train")
    parser.add_argument("prepared", help="a folder written by mofa-bench prepare")
    args = parser.parse_args()
    model = load_trained_model(args.checkpoint, "cpu")
    size = model.image_size
    data = PreparedFaces(args.prepared, size)
    batch = data.batch(torch.arange(len(data)))
    subset = model.decoder.model.landmark_subset
    target, confidence = batch.landmarks[:, subset], batch.landmark_confidence[:, subset]
    eyes = (batch.landmarks[:, 36] - batch.landmarks[:, 45]).norm(dim=-1)
    with torch.no_grad():
        codes = {"encoder": model.encode(batch.images).float(), "mean face": torch.zeros(len(data), CODE_DIM)}
        for name, code in codes.items():
            formed = model.decoder.form(code)
            error = ((formed.landmarks_uv[:, subset] - target).norm(dim=-1) * confidence).sum(1) / confidence.sum(1)
            samples = model.decoder.photometric_samples(formed, batch.images)
            distance = (samples.predicted - samples.observed).norm(dim=-1)
            photo = (distance * samples.weights).sum(1) / samples.weights.sum(1).clamp_min(1e-9)
            print(f"{name:<10} {len(data)} faces: landmark {error.mean():.2f} px at {size} px "
                  f"({error.mean() * 240 / size:.1f} px at 240), normalised {(error / eyes).mean():.3f}; "
                  f"photometric {photo.mean():.3f}")


if __name__ == "__main__":
    main()
