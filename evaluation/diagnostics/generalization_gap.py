"""How much better a trained run does on faces it trained on than on faces it never saw.

Input: a training run on synthetic faces (its directory or a checkpoint). Scores its
checkpoint on the first --size faces of its own training split and on the first --size
of its validation split (the protocol's errors: photometric, posed and model-space
geometric, landmarks), each beside the mean face's (the zero code) on the same faces. Two
sets of a few dozen faces differ in how hard they are, so the comparison is the change
against the mean face: a larger drop on the training faces than on the unseen ones says
the encoder has learnt its training faces rather than faces.

Outputs: a printed Markdown table with one row per split (train, val) and coder (run,
mean face): each error and its change against the mean face in %; --out writes the same
rows as CSV.

    mofa-bench diagnose generalization-gap runs/learning_cpu/runs/mofa-per_vertex-resnet18-land1-s0 \\
        --size 64 --out reports/fig10/generalization_gap.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from evaluation.results.report import Column, markdown_table
from mofa_bench.data.splits import synthetic_split
from mofa_bench.errors import ConfigError
from mofa_bench.reconstruct import TrainedModel, load_trained_model
from mofa_bench.scoring.protocol import evaluate_codes

METRICS = ("photometric", "geometric_mm", "geometric_model_mm", "landmark_px")


def split_scores(model: TrainedModel, split: str, size: int, batch_size: int = 32) -> dict[str, dict[str, float]]:
    """Mean errors on the first ``size`` faces of the run config's ``split``.

    Returns:
        ``{"run": {metric: value}, "mean face": {metric: value}}``: the encoder's codes and
        the zero code on the same faces.

    Raises:
        ConfigError: the run did not train on synthetic faces.
    """
    config = model.config
    if config.data.kind != "synthetic":
        raise ConfigError(f"{model.checkpoint}: data.kind is {config.data.kind!r}; the gap needs synthetic "
                          f"faces with known codes")
    data = synthetic_split(model.decoder.with_renderer(config.data.synthetic_renderer), config.data, split)
    totals: dict[str, dict[str, list[torch.Tensor]]] = {coder: {m: [] for m in METRICS}
                                                        for coder in ("run", "mean face")}
    count = min(size, len(data))
    with torch.no_grad():
        for first in range(0, count, batch_size):
            batch = data.batch(torch.arange(first, min(first + batch_size, count))).to(model.device)
            code = model.encode(batch.images)
            for coder, codes in (("run", code), ("mean face", torch.zeros_like(code))):
                scores = evaluate_codes(model.decoder, codes, batch)
                for name in METRICS:
                    totals[coder][name].append(scores[name].float().cpu())
    return {coder: {name: float(torch.cat(values).mean()) for name, values in parts.items()}
            for coder, parts in totals.items()}


def gap_rows(model: TrainedModel, size: int) -> list[dict]:
    """Rows ``{split, coder, metric…, <metric>_change_pct}`` for the train and val splits."""
    rows = []
    for split in ("train", "val"):
        scores = split_scores(model, split, size)
        start = scores["mean face"]
        for coder, values in scores.items():
            rows.append({"split": split, "coder": coder, **values,
                         **{f"{m}_change_pct": 100.0 * (values[m] / start[m] - 1.0) for m in METRICS}})
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofa-bench diagnose generalization-gap``."""
    parser.add_argument("run", metavar="RUN", help="a training run directory or checkpoint (synthetic data)")
    parser.add_argument("--size", type=int, default=64, help="faces per split (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="device to score on: cpu or cuda[:i] (default: %(default)s)")
    parser.add_argument("--out", default=None, metavar="CSV", help="CSV to write")


def run(args: argparse.Namespace) -> int:
    """``mofa-bench diagnose generalization-gap``: print (and write) the rows of :func:`gap_rows`."""
    import pandas as pd

    from mofa_bench.output_paths import output_folder

    if args.out:
        output_folder(Path(args.out).parent, "--out")
    model = load_trained_model(args.run, args.device)
    rows = gap_rows(model, args.size)
    if args.out:
        pd.DataFrame(rows).to_csv(args.out, index=False)
    print(f"{model.checkpoint} (step {model.step}), first {args.size} faces of each split")
    columns = [Column("split", "split"), Column("coder", "coder")] + [
        column for m in METRICS for column in (Column(m, m, ".3f"), Column(f"{m}_change_pct", "Δ %", "+.1f"))]
    print(markdown_table(rows, columns))
    if args.out:
        print(f"wrote {args.out}")
    return 0
