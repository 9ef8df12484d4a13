"""Landmark error of mean face / fit / encoder against the detected points, through ``reconstruct``.

Run: ``python tests/photos/bm_fit_landmarks.py [--photos N] [--checkpoint RUN] [--out CSV]``.
Photos: scikit-image's astronaut, ``camera`` and the first N ``lfw_subset`` faces (25 px
grey, upsampled to 200 px), cropped by ``reconstruct``'s MediaPipe pipeline at the default
config's 240 px. Rows per photo: the NME (mean distance over the 68 points / the detected
outer-eye-corner distance) and px error of

- ``mean``: the zero code (the mean face, frontal, centred);
- ``fit_colour``: the per-image fit on colour only (what ``reconstruct --method fit`` did
  before it used the landmarks);
- ``fit``: ``reconstruct --method fit`` now (:class:`~mofa_bench.reconstruct_fit.LandmarkFit`:
  detected landmarks with their confidences, photometric term in the face region);
- ``fit_no_region``: the same without the face-region mask;
- ``encoder``: a trained encoder (``--checkpoint``), when given.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image


def _photos(folder: Path, count: int) -> list[Path]:
    import skimage.data

    paths = []
    for name, image in (("astronaut", skimage.data.astronaut()), ("camera", skimage.data.camera())):
        paths.append(folder / f"{name}.png")
        Image.fromarray(image).save(paths[-1])
    for i, face in enumerate(skimage.data.lfw_subset()[:count]):
        paths.append(folder / f"lfw_{i:03d}.png")
        Image.fromarray((face * 255).round().astype(np.uint8)).resize((200, 200), Image.Resampling.BICUBIC).save(
            paths[-1])
    return paths


def main() -> None:
    from mofa_bench.code_vector import CODE_DIM
    from mofa_bench.config import load_config
    from mofa_bench.reconstruct import CodeModel, build_decoder, load_trained_model, reconstruct
    from mofa_bench.reconstruct_fit import build_landmark_fit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10, help="lfw_subset faces besides astronaut and camera")
    parser.add_argument("--steps", type=int, default=100, help="Adam steps of the fits")
    parser.add_argument("--checkpoint", default=None, help="a trained run to score its encoder too")
    parser.add_argument("--variants", default=None, help="comma-separated subset of the variants to run")
    parser.add_argument("--out", default=None, help="write the per-photo rows as CSV")
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device("cpu")
    config = load_config(None)
    config = dataclasses.replace(config, method="fit", method_options={"steps": args.steps})
    decoder = build_decoder(config, device)
    colour = dataclasses.replace(config, loss=dataclasses.replace(config.loss, landmark=0.0))
    models = {
        "mean": CodeModel(lambda images: torch.zeros(images.shape[0], CODE_DIM), decoder, config.camera.image_size,
                          device),
        "fit_colour": build_landmark_fit(colour, decoder, use_region=False),
        "fit": build_landmark_fit(config, decoder),
        "fit_no_region": build_landmark_fit(config, decoder, use_region=False),
    }
    models["fit_colour"].fit.loss_weights = colour.loss  # no landmark term at all
    if args.checkpoint:
        models["encoder"] = load_trained_model(args.checkpoint, "cpu")
    if args.variants:
        models = {name: models[name] for name in args.variants.split(",")}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        photos = _photos(Path(tmp), args.photos)
        for name, model in models.items():
            for result in reconstruct(model, photos, Path(tmp) / name, detector="mediapipe", batch_size=1,
                                      mesh_formats=["ply"], progress=False):
                record = result.landmarks
                rows.append(dict(photo=result.source.stem, variant=name, status=result.status,
                                 nme=np.nan if record is None else record.nme,
                                 error_px=np.nan if record is None else record.error_px))
    frame = pd.DataFrame(rows)
    table = frame.pivot_table(index="photo", columns="variant", values="nme")
    pd.set_option("display.width", 200)
    print(f"machine: {platform.processor() or platform.machine()}, 1 torch thread; {args.steps} Adam steps, "
          f"{config.camera.image_size} px crops; NME against the detected 68 points")
    print(table.round(4).to_string())
    print("mean over photos:", table.mean().round(4).to_dict())
    for name in table.columns.drop("mean", errors="ignore"):
        if "mean" in table:
            print(f"{name} nearer than the mean face on {int((table[name] < table['mean']).sum())} of {len(table)} photos")
    if args.out:
        frame.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
