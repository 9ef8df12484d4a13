"""Training: config → run directory with checkpoints, metrics and figures."""

from mofa_bench.checkpoint import load_checkpoint, save_checkpoint
from mofa_bench.training.trainer import Trainer, TrainResult

__all__ = ["Trainer", "TrainResult", "load_checkpoint", "save_checkpoint"]
