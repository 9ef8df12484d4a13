"""How much better a trained run does on faces it trained on than on faces it never saw.

Scores a run's checkpoint on the first N faces of its own synthetic training split and on
the first N of its validation split (the protocol's errors: photometric, posed and
model-space geometric, landmarks). A gap says the encoder has learnt its training faces
rather than faces: more distinct training images (``data.train_size``) close it.

    python scripts/generalization_gap.py runs/learning_cpu/runs/mofa-per_vertex-resnet18-land1-s0 --size 64

Prints one row per split; ``--out`` writes them as CSV.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from evaluation.protocol import evaluate_codes
from evaluation.results.report import Column, markdown_table
from mofa_bench.data.splits import synthetic_split
from mofa_bench.errors import ConfigError
from mofa_bench.reconstruct import TrainedModel, load_trained_model

METRICS = ("photometric", "geometric_mm", "geometric_model_mm", "landmark_px")


def split_scores(model: TrainedModel, split: str, size: int, batch_size: int = 32) -> dict[str, float]:
    """Mean errors of ``model`` on the first ``size`` faces of its config's ``split``.

    Raises:
        ConfigError: the run did not train on synthetic faces.
    """
    config = model.config
    if config.data.kind != "synthetic":
        raise ConfigError(f"{model.checkpoint}: data.kind is {config.data.kind!r}; the gap needs synthetic "
                          f"faces with known codes")
    data = synthetic_split(model.decoder.with_renderer(config.data.synthetic_renderer), config.data, split)
    totals: dict[str, list[torch.Tensor]] = {m: [] for m in METRICS}
    count = min(size, len(data))
    with torch.no_grad():
        for first in range(0, count, batch_size):
            batch = data.batch(torch.arange(first, min(first + batch_size, count))).to(model.device)
            scores = evaluate_codes(model.decoder, model.encode(batch.images), batch)
            for name in METRICS:
                totals[name].append(scores[name].float().cpu())
    return {name: float(torch.cat(values).mean()) for name, values in totals.items()}


def main() -> None:
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run directory or checkpoint")
    parser.add_argument("--size", type=int, default=64, help="faces per split (default 64)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="CSV to write")
    args = parser.parse_args()
    model = load_trained_model(args.run, args.device)
    rows = [{"split": split, **split_scores(model, split, args.size)} for split in ("train", "val")]
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(args.out, index=False)
    print(f"{model.checkpoint} (step {model.step}), first {args.size} faces of each split")
    print(markdown_table(rows, [Column("split", "split")] + [Column(m, m, ".3f") for m in METRICS]))


if __name__ == "__main__":
    main()
