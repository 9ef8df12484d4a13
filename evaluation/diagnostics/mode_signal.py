"""Which face modes a run has learnt, and whether its training loss points at the truth for them.

Input: a training run on synthetic faces (its directory or a checkpoint); its test faces
are the first --size of the test split its config draws. For each of the first --modes
identity (α) and expression (δ) modes, on those faces:

- ``learnt``: the correlation, over the faces, of the run's predicted code entry with the
  true one (0: the mode is not learnt; 1: learnt up to scale);
- ``photo_signal`` and ``landmark_signal``: the correlation of the per-image gradient of the
  photometric (landmark) term at the run's codes, through the run's renderer, negated, with
  the error left in that entry (true − predicted). Near 1 the term tells each image which
  way its code should move; near 0 it says nothing about the mode (NaN: the gradient is
  the same on every face, e.g. zero);
- ``photo_grad`` and ``landmark_grad``: the mean size of those gradients (the weighted terms,
  per image), to compare with the prior's ``2 · reg`` per unit of code.

A mode with a strong signal but little ``learnt`` is one the loss asks for and the encoder
does not deliver; a mode without signal cannot be learnt from that loss at all. With
--reference (another run, e.g. the supervised bound's) the reference's ``learnt`` is listed
beside, and a second table gives the run's test errors with one code part at a time taken
from the reference or set to zero: where the gap between the two runs lies.

Outputs: --out, a CSV with one row per mode; --swap-out (with --reference), a CSV with one
row per swapped part. Both tables are printed as Markdown. Runs on the CPU.

    mofa-bench diagnose mode-signal runs/learning_cpu/runs/mofa-per_vertex-resnet18-land1-s0 \\
        --reference runs/learning_cpu/runs/code_regression-per_vertex-resnet18-land1-s0 \\
        --out reports/fig10/mode_signal.csv --swap-out reports/fig10/mode_swap.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from evaluation.diagnostics.stats import correlation
from evaluation.results.report import Column, markdown_table
from mofa_bench.code_vector import CODE_SLICES, part_entries
from mofa_bench.decoder import MoFADecoder
from mofa_bench.losses import LossWeights
from mofa_bench.methods.fit import code_loss
from mofa_bench.reconstruct import TrainedModel, load_trained_model
from mofa_bench.scoring.protocol import evaluate_codes, synthetic_test_batch
from mofa_checks import InputError

#: The loss terms whose gradients are compared with the error.
TERMS = ("photo", "landmark")
#: The test errors of the swap table.
METRICS = ("geometric_mm", "geometric_model_mm", "photometric", "landmark_px")
#: The parts swapped ("jaw_open": the first expression mode alone).
SWAPPED = ("alpha", "delta", "jaw_open", "beta", "rotation", "translation", "gamma")


def term_gradients(decoder: MoFADecoder, code: torch.Tensor, batch, weights: LossWeights) -> dict[str, torch.Tensor]:
    """Per-image gradients ``(B, 257)`` of the weighted photometric and landmark terms at ``code``.

    Each term is a batch mean; it is multiplied by B so that every image's code receives
    the gradient of its own term. A term the loss leaves out (weight 0, e.g. the landmark
    term of a run trained without landmarks) has a zero gradient.
    """
    code = code.detach().clone().requires_grad_(True)
    scale = {"photo": weights.photo, "landmark": weights.landmark}
    grads = {}
    with torch.enable_grad():
        terms = code_loss(decoder, code, batch.images, weights, batch.landmarks, batch.landmark_confidence)
        for name in TERMS:
            term = scale[name] * code.shape[0] * terms[name]
            grad = None
            if term.requires_grad:
                (grad,) = torch.autograd.grad(term, code, retain_graph=True, allow_unused=True)
            grads[name] = torch.zeros_like(code) if grad is None else grad
    return grads


def encode_all(model: TrainedModel, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """``(B, 257)`` codes of ``(B, 3, H, W)`` images, in chunks."""
    with torch.no_grad():
        return torch.cat([model.encode(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def mode_rows(code: torch.Tensor, true: torch.Tensor, grads: dict[str, torch.Tensor], modes: int,
              reference: torch.Tensor | None = None) -> list[dict]:
    """One row per mode of the first ``modes`` identity and expression modes (module docstring).

    Args:
        code: ``(B, 257)`` predicted codes; true: ``(B, 257)`` ground truth.
        grads: ``{term: (B, 257)}`` per-image gradients at ``code``.
        reference: ``(B, 257)`` another run's codes, or None.
    """
    learnt = correlation(code, true)
    error = true - code
    signal = {name: correlation(-grad, error) for name, grad in grads.items()}
    reference_learnt = correlation(reference, true) if reference is not None else None
    rows = []
    for part in ("alpha", "delta"):
        part_slice = CODE_SLICES[part]
        for mode in range(min(modes, part_slice.stop - part_slice.start)):
            j = part_slice.start + mode
            row = {"part": part, "mode": mode, "learnt": float(learnt[j])}
            if reference_learnt is not None:
                row["reference_learnt"] = float(reference_learnt[j])
            for name in TERMS:
                row[f"{name}_signal"] = float(signal[name][j])
                row[f"{name}_grad"] = float(grads[name][:, j].abs().mean())
            rows.append(row)
    return rows


def swap_rows(decoder: MoFADecoder, code: torch.Tensor, reference: torch.Tensor, batch) -> list[dict]:
    """Mean test errors of ``code`` as is, and with each part from ``reference`` or at zero.

    Args:
        decoder: the decoder the errors are measured with (its renderer draws the
            photometric error).
        code, reference: ``(B, 257)`` codes of the run and of the reference run.
        batch: the test faces (their true codes, images and landmarks).

    Returns:
        Rows ``{"codes", "part", <metric>: mean}``: the run, the reference, then per part of
        :data:`SWAPPED` the run with that part from the reference and with it at zero.
    """
    def row(name: str, part: str, codes: torch.Tensor) -> dict:
        with torch.no_grad():
            metrics = evaluate_codes(decoder, codes, batch)
        return {"codes": name, "part": part, **{m: float(metrics[m].mean()) for m in METRICS}}

    rows = [row("run", "", code), row("reference", "", reference)]
    for part in SWAPPED:
        index = part_entries(part)
        swapped, zeroed = code.clone(), code.clone()
        swapped[:, index] = reference[:, index]
        zeroed[:, index] = 0.0
        rows += [row("run, part from the reference", part, swapped), row("run, part at zero", part, zeroed)]
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofa-bench diagnose mode-signal``."""
    parser.add_argument("run", metavar="RUN", help="a training run directory or checkpoint (synthetic data)")
    parser.add_argument("--reference", default=None, metavar="RUN",
                        help="another run to list the learnt correlation of, and to swap code parts from")
    parser.add_argument("--size", type=int, default=None, help="test faces (default: the run's data.test_size)")
    parser.add_argument("--modes", type=int, default=10, help="first modes of each part (default: %(default)s)")
    parser.add_argument("--out", default=None, metavar="CSV", help="CSV of the modes to write")
    parser.add_argument("--swap-out", default=None, metavar="CSV",
                        help="CSV of the part swaps to write (with --reference)")


def run(args: argparse.Namespace) -> int:
    """``mofa-bench diagnose mode-signal``: print (and write) the tables of the module docstring."""
    import pandas as pd

    from mofa_bench.output_paths import output_folder

    if args.swap_out and not args.reference:
        raise InputError("--swap-out: the part swaps need --reference")
    for path, option in ((args.out, "--out"), (args.swap_out, "--swap-out")):
        if path:
            output_folder(Path(path).parent, option)
    model = load_trained_model(args.run, "cpu")
    config, _, batch = synthetic_test_batch(str(Path(model.checkpoint).parents[1] / "config.yaml"), args.size)
    code = encode_all(model, batch.images)
    reference = encode_all(load_trained_model(args.reference, "cpu"), batch.images) if args.reference else None
    rows = mode_rows(code, batch.codes.to(code.dtype), term_gradients(model.decoder, code, batch, config.loss),
                     args.modes, reference)
    if args.out:
        pd.DataFrame(rows).to_csv(args.out, index=False)
    print(f"{batch.images.shape[0]} test faces; prior gradient 2·reg = {2 * config.loss.reg:.3g} per unit of code "
          f"at the start, {2 * config.loss.reg * config.loss.reg_final:.3g} at the end")
    columns = [Column("part", "part"), Column("mode", "mode"), Column("learnt", "learnt", ".2f")]
    if reference is not None:
        columns.append(Column("reference_learnt", "reference learnt", ".2f"))
    for name in TERMS:
        columns += [Column(f"{name}_signal", f"{name} signal", ".2f"), Column(f"{name}_grad", f"{name} |grad|", ".1e")]
    print(markdown_table(rows, columns))
    if reference is not None:
        swaps = swap_rows(model.decoder, code, reference, batch)
        if args.swap_out:
            pd.DataFrame(swaps).to_csv(args.swap_out, index=False)
        print(markdown_table(swaps, [Column("codes", "codes"), Column("part", "part")]
                             + [Column(m, m, ".3f") for m in METRICS]))
    for path in (args.out, args.swap_out):
        if path:
            print(f"wrote {path}")
    return 0
