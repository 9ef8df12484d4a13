"""What the training loss itself can recover of the face, for a choice of regulariser weights.

Input: a train config (CONFIG: a packaged config's name such as ``converge``, or a YAML
file) whose model, camera, synthetic data and loss define the test faces and the loss.
Fits identity, expression and reflectance (α, δ, β) per test image by minimising the MoFA
loss of the config (photometric + landmark + regulariser) with the fit baseline's Adam
(``mofa_bench.methods.fit.fit_codes``), the pose and light held at their true values
and the face codes starting at zero (the mean face). The result is the best an encoder
trained with that loss could predict for the face on those images: if the per-image
optimum misses a target, no amount of training reaches it. Give several --weights to see
how much of the face each regulariser weight lets the loss recover.

--weights takes ``reg:reg_beta`` pairs (``loss.reg`` and its relative reflectance weight
``loss.reg_beta``; the relative expression weight stays the config's).

Outputs: a printed Markdown table and, with --out, a CSV: one row per setting, the first
with the face codes at zero; the photometric, geometric_model_mm and landmark_px means
over the faces, and each fit's final loss. Runs on the CPU.

    mofa-bench diagnose loss-optimum converge --size 32 \\
        --weights 2.9e-2:1.0 2.9e-2:0.1 2.9e-3:1.0 --out reports/fig10/loss_optimum.csv
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from evaluation.results.report import Column, markdown_table
from mofa_bench.code_vector import CODE_SLICES
from mofa_bench.decoder import MoFADecoder
from mofa_bench.losses import LossWeights
from mofa_bench.methods.fit import FitResult, fit_codes
from mofa_bench.scoring.protocol import evaluate_codes, synthetic_test_batch

#: The code parts fitted, α, δ and β: the first 224 entries.
FACE_PARTS = ("alpha", "delta", "beta")
FACE_ENTRIES = CODE_SLICES["beta"].stop
#: The parts held at their true values, named as :func:`~mofa_bench.methods.fit.fit_codes` names them.
POSE_AND_LIGHT = ("rotation", "translation", "z_translation", "gamma")
METRICS = ("photometric", "geometric_model_mm", "landmark_px")


def fit_face_codes(decoder: MoFADecoder, batch, weights: LossWeights, steps: int = 200,
                   lr: float = 0.05) -> FitResult:
    """Per-image Adam fit of α, δ, β with the batch's true pose and light (the fit baseline's loop).

    Args:
        decoder: the analytic decoder.
        batch: a synthetic :class:`~mofa_bench.data.batch.FaceBatch` (images, codes, landmarks).
        weights: the loss weights.
        steps: Adam steps.
        lr: Adam's rate, in prior standard deviations per step.

    Returns:
        The fit: ``code`` ``(B, 257)`` (fitted face, true pose and light) and ``losses``,
        the mean loss before each step and after the last.
    """
    start = batch.codes.clone()
    start[:, :FACE_ENTRIES] = 0
    return fit_codes(decoder, batch.images, weights, steps, lr={part: lr for part in FACE_PARTS},
                     landmarks=batch.landmarks, confidence=batch.landmark_confidence, start=start,
                     fixed=POSE_AND_LIGHT)


def parse_weights(text: str) -> tuple[float, float]:
    """``"reg:reg_beta"`` → the two floats."""
    try:
        reg, reg_beta = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected reg:reg_beta, e.g. 2.9e-2:0.1, got {text!r}") from None
    return reg, reg_beta


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofa-bench diagnose loss-optimum``."""
    parser.add_argument("config", metavar="CONFIG",
                        help="train config: a packaged config's name (e.g. converge) or a YAML file")
    parser.add_argument("--size", type=int, default=32, help="test faces (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=200, help="Adam steps per setting (default: %(default)s)")
    parser.add_argument("--weights", type=parse_weights, nargs="+", default=None, metavar="REG:REG_BETA",
                        help="regulariser weights to fit with, e.g. 2.9e-2:0.1 (default: the config's)")
    parser.add_argument("--out", default=None, metavar="CSV", help="CSV to write")


def run(args: argparse.Namespace) -> int:
    """``mofa-bench diagnose loss-optimum``: print (and write) one row per setting."""
    import pandas as pd

    from mofa_bench.output_paths import output_folder

    if args.out:
        output_folder(Path(args.out).parent, "--out")
    config, decoder, batch = synthetic_test_batch(args.config, args.size)
    settings = args.weights or [(config.loss.reg, config.loss.reg_beta)]

    def row(name: str, code: torch.Tensor, **extra: float) -> dict:
        with torch.no_grad():
            metrics = evaluate_codes(decoder, code, batch)
        return {"face codes": name, **extra, **{m: float(metrics[m].mean()) for m in METRICS}}

    start = batch.codes.clone()
    start[:, :FACE_ENTRIES] = 0
    rows = [row("zero (true pose and light)", start)]
    for reg, reg_beta in settings:
        weights = dataclasses.replace(config.loss, reg=reg, reg_beta=reg_beta)
        fit = fit_face_codes(decoder, batch, weights, args.steps)
        rows.append(row("fitted", fit.code, reg=reg, reg_beta=reg_beta, loss=fit.losses[-1]))
    if args.out:
        pd.DataFrame(rows).to_csv(args.out, index=False)
    print(f"{batch.images.shape[0]} test faces of {args.config}; landmark weight {config.loss.landmark:g}, "
          f"relative expression weight {config.loss.reg_delta:g}, {args.steps} Adam steps")
    columns = [Column("face codes", "face codes"), Column("reg", "reg", ".2g"), Column("reg_beta", "reg_beta", ".2g")]
    columns += [Column(m, m, ".3f") for m in METRICS]
    print(markdown_table(rows, columns))
    if args.out:
        print(f"wrote {args.out}")
    return 0
