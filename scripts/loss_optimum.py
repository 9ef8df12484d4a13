"""What the training loss itself can recover of the face, for a choice of regulariser weights.

Fits identity, expression and reflectance (α, δ, β) per test image by minimising the MoFA
loss of a config (photometric + landmark + regulariser), with the pose and light held at
their true values and the face codes starting at zero (the mean face). The result is the
best an encoder trained with that loss could predict for the face on those images: if the
per-image optimum misses a target, no amount of training reaches it. Run it for several
regulariser weights to see how much of the face each weight lets the loss recover.

    python scripts/loss_optimum.py configs/train_converge.yaml --size 32 \\
        --weights 2.9e-2:1.0 2.9e-2:0.1 2.9e-3:1.0 --out reports/fig10/loss_optimum.csv

``--weights`` takes ``reg:reg_beta`` pairs (``loss.reg`` and its relative reflectance weight
``loss.reg_beta``; the relative expression weight stays the config's). Writes a CSV (one row
per setting, the first with the face codes at zero: photometric, geometric_model_mm,
landmark_px means over the faces, and the final loss) and prints it as a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from mofa_bench.methods.fit import code_loss
from mofa_bench.scoring.protocol import evaluate_codes, synthetic_test_batch
from evaluation.results.report import Column, markdown_table
from mofa_bench.decoder import MoFADecoder
from mofa_bench.losses import LossWeights

#: Code entries fitted: α, δ and β (the first 224); pose and light (the rest) stay true.
FACE_ENTRIES = 224
METRICS = ("photometric", "geometric_model_mm", "landmark_px")


def fit_face_codes(decoder: MoFADecoder, batch, weights: LossWeights, steps: int = 200,
                   lr: float = 0.05) -> tuple[torch.Tensor, float]:
    """Per-image Adam fit of α, δ, β with the batch's true pose and light.

    Args:
        decoder: the analytic decoder.
        batch: a synthetic :class:`~mofa_bench.data.batch.FaceBatch` (images, codes, landmarks).
        weights: the loss weights.
        steps: Adam steps.
        lr: Adam's rate, in prior standard deviations per step.

    Returns:
        ``(B, 257)`` codes (fitted face, true pose and light) and the final mean loss.
    """
    pose_light = batch.codes[:, FACE_ENTRIES:]
    face = torch.zeros(batch.codes.shape[0], FACE_ENTRIES, dtype=batch.codes.dtype, requires_grad=True)
    optimizer = torch.optim.Adam([face], lr=lr)
    loss = torch.tensor(float("nan"))
    with torch.enable_grad():
        for _ in range(steps):
            code = torch.cat([face, pose_light], dim=1)
            loss = code_loss(decoder, code, batch.images, weights, batch.landmarks, batch.landmark_confidence)["total"]
            optimizer.zero_grad(set_to_none=True)
            (loss * code.shape[0]).backward()  # summed: each image's code gets its own gradient
            optimizer.step()
    return torch.cat([face.detach(), pose_light], dim=1), float(loss.detach())


def parse_weights(text: str) -> tuple[float, float]:
    """``"reg:reg_beta"`` → the two floats."""
    try:
        reg, reg_beta = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected reg:reg_beta, e.g. 2.9e-2:0.1, got {text!r}") from None
    return reg, reg_beta


def main() -> None:
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="train config whose model, camera, data and loss are used")
    parser.add_argument("--size", type=int, default=32, help="test faces (default 32)")
    parser.add_argument("--steps", type=int, default=200, help="Adam steps per setting (default 200)")
    parser.add_argument("--weights", type=parse_weights, nargs="+", default=None,
                        help="reg:reg_beta pairs (default: the config's)")
    parser.add_argument("--out", default=None, help="CSV to write")
    args = parser.parse_args()
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
        code, loss = fit_face_codes(decoder, batch, weights, args.steps)
        rows.append(row("fitted", code, reg=reg, reg_beta=reg_beta, loss=loss))
    frame = pd.DataFrame(rows)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.out, index=False)
    print(f"{batch.images.shape[0]} test faces of {args.config}; landmark weight {config.loss.landmark:g}, "
          f"relative expression weight {config.loss.reg_delta:g}, {args.steps} Adam steps")
    columns = [Column("face codes", "face codes"), Column("reg", "reg", ".2g"), Column("reg_beta", "reg_beta", ".2g")]
    columns += [Column(m, m, ".3f") for m in METRICS]
    print(markdown_table(rows, columns))


if __name__ == "__main__":
    main()
