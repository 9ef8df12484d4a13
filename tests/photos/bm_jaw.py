"""Measure the jaw on the visible outline (mofa_bench.photos.contour) against the fixed-vertex jaw.

Run: ``python tests/photos/bm_jaw.py [--calibrate] [--renders N] [--render-seed S] [--out CSV]`` (dlib for the
photos: ``pip install dlib-bin face-recognition-models``). Prints:

- on scikit-image's photos (astronaut; ``lfw_subset`` faces, 25 px grey upsampled to 200):
  MediaPipe's 68 points against dlib's 68-point predictor (trained on iBUG 300-W), NME
  normalised by dlib's outer-eye-corner distance, all 68 / jaw (0-16) / inner 51, with
  the fixed mesh vertices ("fixed"), the outline jaw from the mesh alone ("contour") and
  moved onto the photo's visible edge ("edges", what the landmarker gives); LFW faces 0-49
  calibrate the contour's constants, so faces 50-99 and the astronaut are the test;
- on renders of the default model with yaw up to ±45° (the true outline known: the
  boundary of the rendered face), each jaw point's distance to that outline, px and in
  outer-eye-corner distances, from MediaPipe's detected mesh (``fixed``, ``contour``,
  ``edges``) and (``true_*``) from the rendered mesh's own 468 vertices (the rule without
  detection error); ``--render-seed`` draws other renders (11: the set the edge search
  was developed on; e.g. 23 is held out);
- with ``--calibrate``: the :data:`~mofa_bench.photos.contour.JAW_FRACTIONS` and
  :data:`~mofa_bench.photos.contour.JAW_OUTSET` the calibration faces imply.
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
import pandas as pd
import torch
from bm_photos import skimage_photos


def _nme(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points - reference, axis=1) / np.linalg.norm(reference[36] - reference[45])


def photo_rows(meshes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """Per photo and variant: NME against dlib (all 68, jaw, inner 51)."""
    from mofa_bench.photos.landmarks68 import mesh_landmarks

    rows = []
    for name, (mesh, dlib68, image) in meshes.items():
        split = "calibration" if name.startswith("lfw") and int(name[4:]) < 50 else "test"
        for variant, contour, rgb in (("fixed", False, None), ("contour", True, None), ("edges", True, image)):
            err = _nme(mesh_landmarks(mesh, None, contour, rgb).ibug68, dlib68)
            rows.append(dict(image=name, split=split, variant=variant, all68=err.mean(), jaw=err[:17].mean(),
                             inner51=err[17:].mean()))
    return pd.DataFrame(rows)


def calibrate(meshes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
              ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """JAW_FRACTIONS and JAW_OUTSET from the calibration faces (medians, left/right averaged)."""
    from mofa_bench.photos import contour as C
    from mofa_bench.photos.landmarks68 import point_confidence, vertex_facing

    names = [n for n in meshes if n.startswith("lfw") and int(n[4:]) < 50]
    where: list[list[float]] = [[] for _ in range(17)]
    for name in names:
        mesh, ref, _ = meshes[name]
        pts = mesh[:468, :2]
        conf = point_confidence(mesh)
        for side, jaw in ((0, range(0, 9)), (1, range(16, 7, -1))):
            poly, _ = C._outline(pts, conf, C.JAW_CHAINS[side], pts.mean(0))
            seg = np.diff(poly, axis=0)
            arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(seg, axis=1))])
            for j in jaw:
                t = np.clip(np.einsum("kc,kc->k", ref[j] - poly[:-1], seg) / np.einsum("kc,kc->k", seg, seg), 0, 1)
                near = poly[:-1] + t[:, None] * seg
                k = int(np.argmin(np.linalg.norm(near - ref[j], axis=1)))
                where[j].append((arc[k] + t[k] * np.linalg.norm(seg[k])) / arc[-1])
    med = np.array([np.median(w) for w in where])
    fractions = tuple(float(v) for v in np.round((med[:9] + med[16:7:-1]) / 2, 3)[:8]) + (1.0,)
    radial: list[list[float]] = [[] for _ in range(17)]
    for name in names:
        mesh, ref, _ = meshes[name]
        pts = mesh[:468, :2]
        jaw, _, _ = C.contour_landmarks(mesh, point_confidence(mesh), vertex_facing(mesh), fractions, (0.0,) * 9)
        scale = np.linalg.norm(pts[33] - pts[263])
        for j in range(17):
            out = (jaw[j] - pts.mean(0)) / np.linalg.norm(jaw[j] - pts.mean(0))
            radial[j].append(float((ref[j] - jaw[j]) @ out / scale))
    med = np.array([np.median(r) for r in radial])
    return fractions, tuple(float(v) for v in np.round((med[:9] + med[16:7:-1]) / 2, 3))


def render_rows(count: int, size: int = 240, seed: int = 11) -> pd.DataFrame:
    """Jaw points' distance to the rendered face's outline on posed renders (yaw ±45°)."""
    from scipy import ndimage

    from mofa_bench import Camera, FaceModel, MoFADecoder
    from mofa_bench.photos import get_landmarker
    from mofa_bench.photos.landmarks68 import mesh_landmarks
    from mofa_bench.sampling import CodePrior, sample_codes

    decoder = MoFADecoder(FaceModel.load("default", subdivisions=2), Camera(image_size=size))
    codes = sample_codes(count, CodePrior(yaw_deg=45.0, pitch_deg=10.0, roll_deg=10.0),
                         generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        images, masks = decoder.render(codes.float(), torch.full((count, 3, size, size), 0.5))
        formed = decoder.form(codes.float())
    # the rendered mesh's own 468 MediaPipe vertices (px, and camera depth): the contour rule without detection error
    true_meshes = torch.cat([formed.uv[:, :468], formed.verts_cam[:, :468, 2:]], dim=2).double().numpy()
    rgb = (images.permute(0, 2, 3, 1).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    rows = []
    with get_landmarker("mediapipe") as landmarker:
        for i in range(count):
            inside = masks[i, 0].numpy() > 0.5
            edge = inside & ~ndimage.binary_erosion(inside)
            ys, xs = np.nonzero(edge)
            outline = np.stack([xs + 0.5, ys + 0.5], 1)
            found = landmarker.detect(rgb[i])
            if not found:
                rows.append(dict(image=i, yaw_deg=float(np.degrees(float(codes[i, 225]))), found=False))
                continue
            mesh = found[0].mesh
            scale = np.linalg.norm(mesh[33, :2] - mesh[263, :2])
            row = dict(image=i, yaw_deg=float(np.degrees(float(codes[i, 225]))), found=True)
            for variant, contour, source, image in (("fixed", False, mesh, None), ("contour", True, mesh, None),
                                                    ("edges", True, mesh, rgb[i]),
                                                    ("true_fixed", False, true_meshes[i], None),
                                                    ("true_contour", True, true_meshes[i], None)):
                jaw = mesh_landmarks(source, None, contour, image).ibug68[:17]
                dist = np.linalg.norm(jaw[:, None] - outline[None], axis=2).min(1)
                row[f"{variant}_jaw_px"] = dist.mean()
                row[f"{variant}_jaw_norm"] = dist.mean() / scale
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    from mofa_bench.photos import get_landmarker

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true", help="print the constants the calibration faces imply")
    parser.add_argument("--renders", type=int, default=24)
    parser.add_argument("--render-seed", type=int, default=11, help="codes of the renders (11: the development set)")
    parser.add_argument("--out", default=None, help="write the per-photo rows as CSV")
    args = parser.parse_args()
    torch.set_num_threads(1)
    meshes = {}
    with get_landmarker("mediapipe", contour=False) as mp, get_landmarker("dlib") as dlib:
        for name, image in skimage_photos().items():
            a, b = mp.detect(image), dlib.detect(image)
            if a and b:
                meshes[name] = (a[0].mesh, b[0].ibug68, image)
    print(f"machine: {platform.processor() or platform.machine()}; {len(meshes)} photos with both landmarkers")
    frame = photo_rows(meshes)
    pd.set_option("display.width", 200)
    table = frame.assign(set=np.where(frame["image"] == "astronaut", "astronaut", frame["split"]))
    print(table.groupby(["set", "variant"])[["all68", "jaw", "inner51"]].mean().round(4).to_string())
    if args.calibrate:
        fractions, outset = calibrate(meshes)
        print(f"JAW_FRACTIONS = {fractions}\nJAW_OUTSET = {outset}")
    if args.renders:
        renders = render_rows(args.renders, seed=args.render_seed)
        found = renders[renders["found"]]
        print(f"renders: {len(found)} of {len(renders)} with landmarks; jaw distance to the true outline:")
        columns = ["fixed_jaw_px", "contour_jaw_px", "edges_jaw_px", "true_fixed_jaw_px", "true_contour_jaw_px"]
        print(found[columns + ["fixed_jaw_norm", "contour_jaw_norm", "edges_jaw_norm"]].mean().round(4).to_string())
        turned = found[found["yaw_deg"].abs() > 20]
        print(f"  |yaw| > 20° ({len(turned)}):", turned[columns].mean().round(3).to_dict())
    if args.out:
        frame.to_csv(args.out, index=False)
        if args.renders:
            renders.to_csv(args.out.replace(".csv", "_renders.csv"), index=False)


if __name__ == "__main__":
    main()
