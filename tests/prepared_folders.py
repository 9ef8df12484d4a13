"""Prepared folders made directly (crops + manifest), without running a face detector.

:func:`write_prepared_folder` writes what ``mofa-bench prepare`` would for photos that are
already face crops: each image is its own crop (box ``(0, 0, S)``), its landmarks are
given. Renders of the tiny model with their projected landmarks make a "real" set whose
landmark error is known.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def write_prepared_folder(out: Path, images: torch.Tensor, landmarks: torch.Tensor,
                          confidence: torch.Tensor | None = None, skipped: int = 0) -> Path:
    """Write ``crops/face_XXX.png`` and ``manifest.parquet`` for ``(B, 3, S, S)`` images.

    Args:
        out: the folder to create.
        images: ``(B, 3, S, S)`` RGB in [0, 1].
        landmarks: ``(B, 68, 2)`` px in the crops (iBUG-68 order).
        confidence: ``(B, 68)`` per-point confidence (ones when ``None``).
        skipped: extra manifest rows of skipped files (no crop), as prepare writes.
    """
    import pandas as pd
    from PIL import Image

    from mofa_bench.photos.prepare import MANIFEST, MANIFEST_COLUMNS

    out = Path(out)
    (out / "crops").mkdir(parents=True, exist_ok=True)
    size = int(images.shape[-1])
    confidence = torch.ones(landmarks.shape[:2]) if confidence is None else confidence
    rows = []
    for i, image in enumerate(images):
        crop = f"crops/face_{i:03d}.png"
        pixels = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        Image.fromarray(np.ascontiguousarray(pixels)).save(out / crop)
        rows.append({"source": f"face_{i:03d}.png", "status": "ok", "reason": "", "crop": crop, "crop_x0": 0,
                     "crop_y0": 0, "crop_side": size, "crop_size": size, "image_width": size,
                     "image_height": size, "detector": "given", "score": 1.0, "faces": 1, "framed_by": "landmarks",
                     "landmarks_68": landmarks[i].double().tolist(),
                     "landmark_confidence": confidence[i].double().tolist(), "reference_points": []})
    for j in range(skipped):
        rows.append({"source": f"bad_{j}.jpg", "status": "skipped", "reason": "no face found", "crop": "",
                     "landmarks_68": [], "landmark_confidence": [], "reference_points": []})
    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    for name in ("crop_x0", "crop_y0", "crop_side", "crop_size", "image_width", "image_height", "faces"):
        frame[name] = frame[name].astype("Int64")
    frame["score"] = frame["score"].astype("float64")
    frame.to_parquet(out / MANIFEST, index=False)
    return out


def rendered_prepared_folder(out: Path, model_path: Path, count: int = 4, image_size: int = 64,
                             seed: int = 7) -> Path:
    """A prepared folder of ``count`` renders of the model at ``model_path`` (random codes,
    grey background), each with its projected landmarks as the detected ones."""
    from mofa_bench import Camera, FaceModel, MoFADecoder
    from mofa_bench.sampling import CodePrior, sample_codes

    model = FaceModel.load(str(model_path)).to("cpu", torch.float32)
    decoder = MoFADecoder(model, Camera(image_size=image_size))
    codes = sample_codes(count, CodePrior(), generator=torch.Generator().manual_seed(seed)).to(torch.float32)
    with torch.no_grad():
        images, _ = decoder.render(codes, torch.full((count, 3, image_size, image_size), 0.5))
        landmarks = decoder.form(codes).landmarks_uv
    return write_prepared_folder(out, images, landmarks)
