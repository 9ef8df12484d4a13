"""What each target of the synthetic study needs: the test errors of partly true codes.

Input: a train config (CONFIG: a packaged config's name such as ``converge``, or a YAML
file) whose model, camera and synthetic data define the test faces. Scores codes that take
some parts from the ground truth and leave the rest at zero (the mean face) on that test
split, so one can read which code parts a target needs: e.g. the posed geometric error
with the true rotation alone, or the photometric error with the true pose and light but
the mean reflectance.

Outputs: a printed Markdown table and, with --out, a CSV: one row per set of true parts,
the photometric, geometric_mm, geometric_model_mm and landmark_px means over the test
faces. Runs on the CPU.

    mofa-bench diagnose partial-truth converge --out reports/fig10/partial_truth.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from evaluation.results.report import Column, markdown_table
from mofa_bench.code_vector import part_entries
from mofa_bench.scoring.protocol import evaluate_codes, synthetic_test_batch

#: Rows: a name and the parts taken from the truth ("jaw_open" = the first expression mode only).
ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("mean face (nothing true)", ()),
    ("rotation", ("rotation",)),
    ("pose (rotation, translation)", ("rotation", "translation")),
    ("pose + light", ("rotation", "translation", "gamma")),
    ("jaw_open", ("jaw_open",)),
    ("expression", ("delta",)),
    ("identity", ("alpha",)),
    ("pose + jaw_open", ("rotation", "translation", "jaw_open")),
    ("pose + expression", ("rotation", "translation", "delta")),
    ("pose + light + reflectance", ("rotation", "translation", "gamma", "beta")),
    ("pose + light + expression + reflectance", ("rotation", "translation", "gamma", "delta", "beta")),
    ("everything", ("alpha", "delta", "beta", "rotation", "translation", "gamma")),
)
METRICS = ("photometric", "geometric_mm", "geometric_model_mm", "landmark_px")


def partly_true(true: torch.Tensor, parts: tuple[str, ...]) -> torch.Tensor:
    """``(B, 257)`` codes equal to ``true`` on ``parts`` and zero elsewhere."""
    code = torch.zeros_like(true)
    for part in parts:
        index = part_entries(part)
        code[:, index] = true[:, index]
    return code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofa-bench diagnose partial-truth``."""
    parser.add_argument("config", metavar="CONFIG",
                        help="train config: a packaged config's name (e.g. converge) or a YAML file")
    parser.add_argument("--size", type=int, default=None, help="test faces (default: the config's data.test_size)")
    parser.add_argument("--out", default=None, metavar="CSV", help="CSV to write")


def run(args: argparse.Namespace) -> int:
    """``mofa-bench diagnose partial-truth``: print (and write) one row per entry of :data:`ROWS`."""
    import pandas as pd

    from mofa_bench.output_paths import output_folder

    if args.out:
        output_folder(Path(args.out).parent, "--out")
    config, decoder, batch = synthetic_test_batch(args.config, args.size)
    rows = []
    with torch.no_grad():
        for name, parts in ROWS:
            metrics = evaluate_codes(decoder, partly_true(batch.codes, parts), batch)
            rows.append({"true parts": name, **{m: float(metrics[m].mean()) for m in METRICS}})
    if args.out:
        pd.DataFrame(rows).to_csv(args.out, index=False)
    print(f"{batch.images.shape[0]} test faces of {args.config} (data.seed {config.data.seed})")
    columns = [Column("true parts", "true parts")] + [Column(m, m, ".3f") for m in METRICS]
    print(markdown_table(rows, columns))
    if args.out:
        print(f"wrote {args.out}")
    return 0
