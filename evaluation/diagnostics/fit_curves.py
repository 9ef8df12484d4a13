"""Per-image optimisation curves: test error against Adam steps and seconds, per renderer, ± landmarks.

Input: a train config (CONFIG: a packaged config's name such as ``converge``, or a YAML
file) whose model, camera, synthetic data and loss define the test faces and the loss;
the first --size faces of its test split (or --faces START:STOP). For each renderer
(``per_vertex``, PyTorch3D hard, PyTorch3D soft with the suites' ``blur_radius=0.5,
faces_per_pixel=16``) and each landmark setting (the CPU learning protocol's two losses,
as ``mofa-bench diagnose signal`` takes them), every face's code is fitted from the mean
face (the zero code) by the fit baseline's Adam (``mofa_bench.methods.fit.fit_codes``: its
default per-part learning rates, the whole code free) minimising that training loss
through that renderer, --batch-size faces at a time (each face's code gets its own
image's gradient: the fit of a face does not depend on its batch). At the steps of --at
the codes are scored with ``evaluate_codes`` by the scoring renderer (``per_vertex``, the
same for every renderer, as validation scores every method): posed geometric error (mm),
model-space error (mm), photometric error and landmark error (px; measured with and
without the landmark loss). Step 0 is the mean face. Each point is the mean over the
faces with a percentile bootstrap 95 % interval. Seconds per image are a batch's wall
time of the fit up to that step (scoring excluded, one untimed warm-up step first) ÷ its
faces; on a shared CPU they include what else runs there.

Outputs: a printed table (each metric's mean per renderer × setting × step); --out, a
tidy CSV with one row per renderer × landmark setting × step × metric (``renderer,
landmarks, step, seconds_per_image, metric, mean, ci_low, ci_high, n_images``; metric
``loss`` is the fit's training loss, the mean of the batches' means, without an
interval) and beside it ``<stem>_images.csv``, one row per face × renderer × setting ×
step (the per-image errors it summarises); --append adds a call's faces to that file and
summarises them all, so a long measurement can run as several calls (--faces 0:16, then
--faces 16:32 --append, ...); --figure, a PNG: the errors against steps (top) and against
seconds per image (bottom, log scale, from the first step on), one colour per renderer
(:mod:`evaluation.results.colors`), solid with landmarks, dashed without, bands the intervals.
Runs on the CPU.

    mofa-bench diagnose fit-curves converge --size 64 \\
        --out reports/renderers/fit_curves.csv --figure reports/renderers/fit_curves.png
    mofa-bench diagnose fit-curves converge --faces 16:32 --renderers pytorch3d-soft \\
        --out reports/renderers/fit_curves.csv --append --figure reports/renderers/fit_curves.png
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Sequence

import torch

from evaluation.diagnostics.signal import (RENDERERS, add_common_arguments, renderer_decoders, setting_label,
                                           setting_loss)
from evaluation.diagnostics.stats import BOOTSTRAP_RESAMPLES, bootstrap_interval
from evaluation.results.colors import renderer_color
from mofa_bench.data.batch import FaceBatch
from mofa_bench.decoder import MoFADecoder
from mofa_bench.losses import LossWeights
from mofa_bench.methods.fit import fit_codes
from mofa_bench.scoring.protocol import evaluate_codes
from mofa_checks import InputError

__all__ = ["DEFAULT_AT", "METRICS", "RENDERERS", "add_arguments", "fit_curve", "plot", "run",
           "summarize", "take"]

#: The test errors of the curves, in panel order.
METRICS: tuple[str, ...] = ("geometric_mm", "geometric_model_mm", "photometric", "landmark_px")
#: Panel titles.
METRIC_TITLES: dict[str, str] = {"geometric_mm": "posed geometric error (mm)",
                                 "geometric_model_mm": "model-space error (mm)",
                                 "photometric": "photometric error", "landmark_px": "landmark error (px)"}
#: Steps scored unless told.
DEFAULT_AT: tuple[int, ...] = (0, 5, 10, 20, 50, 100)


def take(batch: FaceBatch, rows: slice) -> FaceBatch:
    """The faces ``rows`` of a batch (every per-face field sliced)."""
    return FaceBatch(**{f.name: (None if getattr(batch, f.name) is None else getattr(batch, f.name)[rows])
                        for f in dataclasses.fields(batch)})


def fit_curve(decoder: MoFADecoder, scorer: MoFADecoder, batch: FaceBatch, weights: LossWeights, landmarks: bool,
              at: Sequence[int] = DEFAULT_AT) -> list[dict]:
    """Fit ``batch``'s codes together through ``decoder`` and score each face at the steps ``at``.

    Args:
        decoder: the decoder whose renderer the loss goes through.
        scorer: the decoder that scores the codes (its renderer draws the photometric error).
        batch: synthetic test faces (images, true codes, landmarks, indices).
        weights: the loss of the setting (:func:`~evaluation.diagnostics.signal.setting_loss`).
        landmarks: whether the loss gets the batch's landmarks.
        at: steps to score (0: the start, the mean face); the fit runs ``max(at)`` steps.

    Returns:
        One row per face and scored step: ``{image, step, seconds_per_image, batch_loss,
        <metric>: value}`` for :data:`METRICS`; ``image`` is the face's test index,
        ``seconds_per_image`` the fit's wall time to that step (scoring excluded) ÷ the
        faces, ``batch_loss`` the fit's loss then (the batch mean). A fit whose loss turned
        non-finite stops there and has no rows after it.
    """
    at = sorted(set(at))
    if not at or at[0] < 0:
        raise InputError(f"--at: expected steps >= 0, got {at}")
    n = batch.images.shape[0]
    scored: list[tuple[int, float, torch.Tensor]] = []
    clock = {"began": 0.0, "scoring": 0.0}

    def on_step(step: int, code: torch.Tensor) -> None:
        if step in at:
            now = time.perf_counter()
            scored.append((step, now - clock["began"] - clock["scoring"], code.clone()))
            clock["scoring"] += time.perf_counter() - now

    targets = (batch.landmarks, batch.landmark_confidence) if landmarks else (None, None)
    clock["began"] = time.perf_counter()
    fit = fit_codes(decoder, batch.images, weights, at[-1], None, *targets, on_step=on_step)
    rows = []
    for step, seconds, code in scored:
        with torch.no_grad():
            metrics = evaluate_codes(scorer, code, batch)
        for i in range(n):
            rows.append({"image": int(batch.indices[i]), "step": step, "seconds_per_image": seconds / n,
                         "batch_loss": fit.losses[step], **{m: float(metrics[m][i]) for m in METRICS}})
    return rows


def warm_up(decoder: MoFADecoder, batch: FaceBatch, weights: LossWeights, landmarks: bool) -> None:
    """One Adam step on two faces, untimed: the first call through a renderer pays its set-up."""
    few = take(batch, slice(0, 2))
    targets = (few.landmarks, few.landmark_confidence) if landmarks else (None, None)
    fit_codes(decoder, few.images, weights, 1, None, *targets)


def summarize(images, resamples: int = BOOTSTRAP_RESAMPLES):
    """The tidy curves of per-image rows: per renderer × setting × step × metric, the mean over the
    faces with a bootstrap 95 % interval (``loss``: the mean of the batches' losses, no interval)."""
    import pandas as pd

    rows = []
    keys = ["renderer", "landmarks", "step"]
    for (renderer, landmarks, step), part in images.groupby(keys, sort=False):
        timing = {"renderer": renderer, "landmarks": bool(landmarks), "step": int(step),
                  "seconds_per_image": float(part["seconds_per_image"].mean())}
        for metric in METRICS:
            values = torch.tensor(part[metric].to_numpy(), dtype=torch.float64)
            if len(values) >= 2:
                low, high = (float(v) for v in bootstrap_interval(lambda x: x.mean(0), values, resamples=resamples))
            else:
                low = high = float("nan")
            rows.append({**timing, "metric": metric, "mean": float(values.mean()), "ci_low": low, "ci_high": high,
                         "n_images": len(values)})
        rows.append({**timing, "metric": "loss", "mean": float(part["batch_loss"].mean()), "ci_low": float("nan"),
                     "ci_high": float("nan"), "n_images": len(part)})
    return pd.DataFrame(rows)


def plot(frame, path: Path, title: str = "") -> Path:
    """Errors against steps (top row) and seconds per image (bottom row, log x), one panel per metric."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in METRICS if m in set(frame["metric"])]
    fig, axes = plt.subplots(2, len(metrics), figsize=(3.6 * len(metrics), 6.4), squeeze=False)
    legend = {}
    for (renderer, landmarks), part in frame.groupby(["renderer", "landmarks"], sort=False):
        style = {"color": renderer_color(renderer) or "tab:gray", "linestyle": "-" if landmarks else "--",
                 "marker": "o", "markersize": 3}
        for column, metric in enumerate(metrics):
            curve = part[part["metric"] == metric].sort_values("step")
            for row, x in enumerate(("step", "seconds_per_image")):
                ax = axes[row, column]
                shown = curve if x == "step" else curve[curve["step"] > 0]
                (line,) = ax.plot(shown[x], shown["mean"], **style)
                legend.setdefault((renderer, bool(landmarks)), line)
                ax.fill_between(shown[x], shown["ci_low"], shown["ci_high"], color=style["color"], alpha=0.12,
                                linewidth=0)
    for column, metric in enumerate(metrics):
        axes[0, column].set_title(METRIC_TITLES[metric], fontsize=10)
        axes[0, column].set_xlabel("Adam steps")
        axes[1, column].set_xlabel("seconds per image (log)")
        axes[1, column].set_xscale("log")
        for row in range(2):
            axes[row, column].grid(alpha=0.3)
    # Legend columns are renderers, rows the landmark settings (matplotlib fills column by column).
    known = [label for label, _, _ in RENDERERS.values()]
    keys = sorted(legend, key=lambda key: (known.index(key[0]) if key[0] in known else len(known), not key[1]))
    fig.legend([legend[key] for key in keys], [setting_label(*key) for key in keys], loc="lower center",
               ncol=len({renderer for renderer, _ in keys}), fontsize=8, frameon=False)
    fig.suptitle(title or "Per-image fit from the mean face", fontsize=11)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _face_range(text: str) -> tuple[int, int]:
    try:
        first, stop = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP, e.g. 0:64, got {text!r}") from None
    if not 0 <= first < stop:
        raise argparse.ArgumentTypeError(f"expected 0 <= START < STOP, got {text!r}")
    return first, stop


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofa-bench diagnose fit-curves``."""
    add_common_arguments(parser, size=None, size_help="the first N test faces (default: 64; or --faces)")
    parser.add_argument("--faces", type=_face_range, default=None, metavar="START:STOP",
                        help="test faces START to STOP-1 instead of the first --size (default: 0:64); to split "
                             "a long measurement into several calls with --append")
    parser.add_argument("--batch-size", type=int, default=16,
                        help="faces fitted together; seconds per image are a batch's time ÷ its faces "
                             "(default: %(default)s)")
    parser.add_argument("--at", type=int, nargs="+", default=list(DEFAULT_AT), metavar="STEP",
                        help="Adam steps at which the codes are scored; the fit runs to the last "
                             "(default: %(default)s)")
    parser.add_argument("--resamples", type=int, default=BOOTSTRAP_RESAMPLES,
                        help="bootstrap resamples of the intervals (default: %(default)s)")
    parser.add_argument("--out", default=None, metavar="CSV",
                        help="tidy CSV of the curves to write; the per-image rows go to <stem>_images.csv beside it")
    parser.add_argument("--append", action="store_true",
                        help="add to the per-image rows of an existing <stem>_images.csv (a face measured again "
                             "replaces its rows) and summarise them all (with --out)")
    parser.add_argument("--figure", default=None, metavar="PNG", help="PNG of the curves to write")


def run(args: argparse.Namespace) -> int:
    """``mofa-bench diagnose fit-curves``: fit, score, print and write the curves."""
    import pandas as pd

    from mofa_bench.output_paths import output_folder
    from mofa_bench.scoring.protocol import synthetic_test_batch
    from mofa_bench.scoring.validation import SCORING_RENDERER

    if args.append and not args.out:
        raise InputError("--append: adds to the <stem>_images.csv of --out; give --out")
    if args.faces and args.size is not None:
        raise InputError("--faces and --size: give one (--size N is --faces 0:N)")
    if min(args.at) < 0 or args.resamples < 1 or args.batch_size < 1:
        raise InputError("--at takes steps >= 0, --resamples and --batch-size numbers >= 1")
    for path, option in ((args.out, "--out"), (args.figure, "--figure")):
        if path:
            output_folder(Path(path).parent, option)
    first, stop = args.faces or (0, 64 if args.size is None else args.size)
    config, test_decoder, batch = synthetic_test_batch(args.config, stop, args.overrides)
    batch = take(batch, slice(first, stop))
    scorer = test_decoder.with_renderer(SCORING_RENDERER)
    setting = {"image_size": config.camera.image_size, "subdivisions": config.model.subdivisions}
    rows = []
    for landmarks in args.landmarks:
        weights = setting_loss(config.loss, landmarks)
        for name, decoder in renderer_decoders(test_decoder, args.renderers).items():
            warm_up(decoder, batch, weights, landmarks)
            began = time.perf_counter()
            for low in range(0, len(batch.images), args.batch_size):
                part = take(batch, slice(low, low + args.batch_size))
                rows += [{"renderer": name, "landmarks": landmarks, **row, **setting}
                         for row in fit_curve(decoder, scorer, part, weights, landmarks, args.at)]
            print(f"{setting_label(name, landmarks)}: faces {first}-{stop - 1}, {max(args.at)} steps, "
                  f"{time.perf_counter() - began:.0f} s with scoring", flush=True)
    images = pd.DataFrame(rows)
    images_path = Path(args.out).with_name(Path(args.out).stem + "_images.csv") if args.out else None
    if args.append and images_path.exists():
        images = pd.concat([pd.read_csv(images_path), images], ignore_index=True).drop_duplicates(
            ["renderer", "landmarks", "image", "step"], keep="last")
    frame = summarize(images, args.resamples)
    faces = images["image"].nunique()
    print(f"\n{faces} test faces of {args.config} ({setting['image_size']} px, level "
          f"{setting['subdivisions']}): mean test error of the fitted codes")
    table = frame[frame["metric"].isin(METRICS)].assign(
        setting=lambda f: [setting_label(r, bool(lm)) for r, lm in zip(f["renderer"], f["landmarks"])]
    ).pivot_table(index=["setting", "step"], columns="metric", values="mean", sort=False)[list(METRICS)]
    print(table.round(3).to_string())
    if args.out:
        images.to_csv(images_path, index=False)
        frame.to_csv(args.out, index=False)
        print(f"wrote {args.out}\nwrote {images_path}")
    if args.figure:
        plot(frame, Path(args.figure), f"Per-image Adam fit from the mean face: {faces} test faces of "
                                       f"{Path(args.config).stem}, {setting['image_size']} px")
        print(f"wrote {args.figure}")
    return 0
