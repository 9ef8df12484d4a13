"""Measure the photo pipeline on the photos that ship with scikit-image and on renders with ground truth.

Run: ``python tests/photos/bm_photos.py [--out CSV]``. Prints one table per measurement:

- detection rate of each detector on scikit-image's astronaut, its 100 ``lfw_subset`` faces
  (25 × 25 grey, upsampled to 200 px) and 24 renders of posed random codes of the default model;
- the landmarker's time per photo (median over repeats);
- its error on the renders against their projected landmarks (the only ground truth here):
  mean over the 68 points and over the 46 training points, px and normalised by the
  outer-eye-corner distance;
- the Haar box → crop constants implied by the landmark framing on the real photos;
- where dlib is installed: its detection rate, and MediaPipe's distance to dlib's 68-point
  predictor on the real photos (a second opinion where no annotation exists).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd
import torch
from PIL import Image


def skimage_photos() -> dict[str, np.ndarray]:
    """scikit-image's astronaut and its first 100 LFW faces (grey, upscaled to 200 px, as RGB)."""
    import skimage.data

    photos = {"astronaut": np.ascontiguousarray(skimage.data.astronaut())}
    for i, face in enumerate(skimage.data.lfw_subset()[:100]):
        big = Image.fromarray((face * 255).round().astype(np.uint8)).resize((200, 200), Image.Resampling.BICUBIC)
        photos[f"lfw_{i:03d}"] = np.repeat(np.asarray(big)[..., None], 3, axis=2)
    return photos


def _renders(count: int, size: int = 240):
    from mofa_bench import Camera, FaceModel, MoFADecoder
    from mofa_bench.sampling import CodePrior, sample_codes

    decoder = MoFADecoder(FaceModel.load("default", subdivisions=2), Camera(image_size=size))
    codes = sample_codes(count, CodePrior(yaw_deg=30.0), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        images, _ = decoder.render(codes, torch.full((count, 3, size, size), 0.5))
        landmarks = decoder.form(codes).landmarks_uv.double().numpy()
    rgb = (images.permute(0, 2, 3, 1).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return rgb, landmarks


def main() -> None:
    from mofa_bench.face_model.model import LANDMARKS_46
    from mofa_bench.photos import frame_from_landmarks68, get_detector, get_landmarker

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="also write the per-image rows as CSV")
    args = parser.parse_args()
    torch.set_num_threads(1)
    photos = skimage_photos()
    rgb, truth = _renders(args.renders)
    sets = {"astronaut": ["astronaut"], "lfw_subset": [k for k in photos if k.startswith("lfw")]}
    rows = []
    from mofa_bench.photos.detection import available_detectors

    has_dlib = available_detectors()["dlib"].available
    dlib_det = get_detector("dlib") if has_dlib else None
    dlib_lm = get_landmarker("dlib") if has_dlib else None
    with get_detector("mediapipe") as mp_det, get_detector("haar") as haar, get_landmarker() as lm:
        def timed(fn, image):
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                out = fn(image)
                times.append(time.perf_counter() - t0)
            return out, 1000 * float(np.median(times))

        items = [(name, group, photos[name], None) for group, names in sets.items() for name in names]
        items += [(f"render_{i:02d}", "renders", rgb[i], truth[i]) for i in range(len(rgb))]
        for name, group, image, ref in items:
            faces_mp, ms_det = timed(mp_det.detect, image)
            faces_haar, ms_haar = timed(haar.detect, image)
            marks, ms_lm = timed(lm.detect, image)
            row = dict(image=name, set=group, height=image.shape[0], width=image.shape[1],
                       mediapipe_found=bool(faces_mp), haar_found=bool(faces_haar), landmarks_found=bool(marks),
                       mediapipe_ms=ms_det, haar_ms=ms_haar, landmarker_ms=ms_lm)
            if marks and faces_haar:
                x, y, w, h = faces_haar[0].box
                x0, y0, side = frame_from_landmarks68(marks[0].ibug68)
                row.update(haar_scale=side / max(w, h), haar_shift=((y0 + side / 2) - (y + h / 2)) / max(w, h))
            if marks and ref is not None:
                err = np.linalg.norm(marks[0].ibug68 - ref, axis=1)
                iod = np.linalg.norm(ref[36] - ref[45])
                row.update(err68_px=err.mean(), err46_px=err[list(LANDMARKS_46)].mean(), err68_norm=err.mean() / iod,
                           err46_norm=err[list(LANDMARKS_46)].mean() / iod,
                           err_eyes_mouth_norm=err[[36, 39, 42, 45, 48, 54]].mean() / iod)
            if dlib_det is not None:
                faces_dlib, row["dlib_ms"] = timed(dlib_det.detect, image)
                row["dlib_found"] = bool(faces_dlib)
                dmarks, row["dlib_landmarker_ms"] = timed(dlib_lm.detect, image)
                if dmarks and ref is not None:
                    err = np.linalg.norm(dmarks[0].ibug68 - ref, axis=1)
                    row.update(dlib_err46_norm=err[list(LANDMARKS_46)].mean() / np.linalg.norm(ref[36] - ref[45]))
                if dmarks and marks:
                    # MediaPipe against dlib: the only second opinion on the real photos here
                    a, b = marks[0].ibug68, dmarks[0].ibug68
                    gap = np.linalg.norm(a - b, axis=1) / np.linalg.norm(b[36] - b[45])
                    row.update(mp_vs_dlib_46=gap[list(LANDMARKS_46)].mean(),
                               mp_vs_dlib_corners=gap[[36, 39, 42, 45, 48, 54]].mean(), mp_vs_dlib_jaw=gap[:17].mean())
            rows.append(row)
    frame = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s)")
    summary = frame.groupby("set").agg(
        images=("image", "count"), mediapipe_found=("mediapipe_found", "sum"), haar_found=("haar_found", "sum"),
        landmarks_found=("landmarks_found", "sum"), landmarker_ms=("landmarker_ms", "median"),
        mediapipe_ms=("mediapipe_ms", "median"), haar_ms=("haar_ms", "median"))
    print(summary.to_string())
    errors = frame.dropna(subset=["err68_px"]) if "err68_px" in frame else frame.iloc[:0]
    if len(errors):
        print("\nlandmark error on renders (mean over images):")
        print(errors[["err68_px", "err46_px", "err68_norm", "err46_norm", "err_eyes_mouth_norm"]].describe()
              .loc[["count", "mean", "50%", "max"]].to_string())
    if "mp_vs_dlib_46" in frame:
        print("\nMediaPipe vs dlib 68-point predictor (mean distance / dlib's outer-eye-corner distance):")
        columns = ["mp_vs_dlib_corners", "mp_vs_dlib_46", "mp_vs_dlib_jaw"]
        print(frame.dropna(subset=["mp_vs_dlib_46"]).groupby("set")[columns]
              .agg(["count", "median", "mean"]).to_string())
        print(frame.groupby("set")[["dlib_found", "dlib_ms", "dlib_landmarker_ms"]].agg(["sum", "median"]).to_string())
        if "dlib_err46_norm" in frame:
            summary = frame["dlib_err46_norm"].describe()[["count", "mean", "50%"]].round(3).to_dict()
            print("dlib error on renders (46 points, normalised):", summary)
    if "haar_scale" in frame:
        print("\nHaar box → landmark framing (side / box side, centre shift / box side):")
        print(frame.dropna(subset=["haar_scale"]).groupby("set")[["haar_scale", "haar_shift"]]
              .agg(["count", "median", "mean"]).to_string())
    if args.out:
        frame.to_csv(args.out, index=False)
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
