"""``mofa-bench train``: train a model-based face autoencoder from a YAML config."""

from __future__ import annotations

import argparse


def _cmd_train(args: argparse.Namespace) -> int:
    from mofa_bench.config import load_config
    from mofa_bench.training.trainer import Trainer

    config = load_config(args.config, args.set, renderer__name=args.renderer, device=args.device,
                         name=args.name, out_dir=args.out, optim__iterations=args.iterations,
                         encoder__name=args.encoder)
    trainer = Trainer(config)
    print(f"run directory: {trainer.run_dir}")
    print(f"face model: {trainer.face_model.summary()}")
    print(f"renderer: {config.renderer.name} · encoder: {config.encoder.name} · device: {trainer.device}")
    result = trainer.fit(resume=args.resume)
    if result.new_steps == 0:
        print(f"the run has already finished {result.steps} of {config.optim.iterations} steps; nothing to do "
              f"(metrics: {result.run_dir / 'metrics.csv'}; raise --iterations to continue it)")
        return 0
    print(f"finished {result.steps} steps; final loss {result.final_loss:.4f}")
    for name, value in result.validation.items():
        print(f"  validation {name}: {value:.4f}")
    if result.skipped:
        print(f"  {result.skipped} batches skipped (non-finite), see {result.run_dir / 'skipped.csv'}")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train an encoder against the analytic decoder and a renderer",
        description="Train a MoFA model-based face autoencoder. The run directory gets the resolved config, "
                    "versions, checkpoints (last/best), metrics CSVs, sample grids and loss curves.",
    )
    p.add_argument("--config", default=None, help="YAML config (default: built-in defaults)")
    p.add_argument("--renderer", default=None, help="override renderer.name (per_vertex, pytorch3d, nvdiffrast)")
    p.add_argument("--encoder", default=None, help="override encoder.name (alexnet, vgg16, resnet18, resnet50)")
    p.add_argument("--device", default=None, help="override device (auto, cpu, cuda)")
    p.add_argument("--iterations", type=int, default=None, help="override optim.iterations")
    p.add_argument("--name", default=None, help="run name (run directory = <out>/<name>)")
    p.add_argument("--out", default=None, help="parent folder of run directories (default: runs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set optim.lr=0.05 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run from its checkpoints/last.pt")
    p.set_defaults(func=_cmd_train)
