"""The MoFA trainer: encoder → code → image formation → renderer → loss, end to end.

One :class:`Trainer` owns a run directory::

    runs/<name>/
      config.yaml          resolved config (re-runnable with --config)
      environment.json     versions, device, git commit, seed
      metrics.csv          one row per logged training step (loss terms, samples/s)
      validation.csv       one row per validation (geometric mm, photometric, landmark px)
      checkpoints/         last.pt, best.pt, step_XXXXXXX.pt (every ``keep_every``)
      samples/             step_XXXXXXX.png: input | reconstruction | overlay
      figures/             loss_curve.png, validation_curve.png

Optimisation follows the paper: AdaDelta with lr 0.1 and 0.0005 for z-translation
(the head's z-translation row is a separate parameter group, see
:func:`mofa_bench.encoders.parameter_groups`), batch 5; AdamW is available for modern
runs. Non-finite losses or gradients skip the batch (logged) and abort with
:class:`~mofa_bench.errors.TrainingDivergedError` after ``max_nonfinite`` in a row.
``fit(resume=True)`` continues from ``checkpoints/last.pt`` exactly: the data order is a
pure function of the step and the RNG state is restored, so on the CPU a resumed run
ends bit-for-bit where an uninterrupted one does.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from mofa_bench.config import TrainConfig, config_to_dict, save_config
from mofa_bench.contact_sheet import comparison_tiles, tile_images
from mofa_bench.data.batch import FaceBatch
from mofa_bench.decoder import MoFADecoder
from mofa_bench.encoders import build_encoder, parameter_groups
from mofa_bench.environment import environment_record, resolve_device
from mofa_bench.errors import ConfigError, TrainingDivergedError
from mofa_bench.losses import mofa_loss
from mofa_bench.training.checkpoint import load_checkpoint, save_checkpoint
from mofa_bench.training.schedule import batch_indices
from renderers import get_renderer

#: ``validator(encoder, decoder, dataset, device) -> {metric: value}``.
Validator = Callable[[torch.nn.Module, MoFADecoder, Any, torch.device], dict[str, float]]

#: Global index of the first synthetic validation sample (training uses [0, train_size)).
VALIDATION_START = 1_000_000_000



@dataclass
class TrainResult:
    """Summary of a finished :meth:`Trainer.fit`."""

    run_dir: Path
    steps: int
    final_loss: float
    validation: dict[str, float] = field(default_factory=dict)
    skipped: int = 0
    new_steps: int = 0
    """Steps run by this call (0 when a resumed run had already finished)."""


class Trainer:
    """Builds everything a config names and trains it.

    Args:
        config: the resolved config.
        run_dir: run directory (default ``<out_dir>/<name>``).
        validator: metric function run on the validation set (default: the
            ``evaluation`` package's geometric / photometric / landmark validator).
    """

    def __init__(self, config: TrainConfig, run_dir: str | Path | None = None,
                 validator: Validator | None = None) -> None:
        self.config = config
        self.run_dir = Path(run_dir) if run_dir else Path(config.out_dir) / config.name
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.face_model = config.model.load().to(self.device, torch.float32)
        self.camera = config.camera.build()
        renderer = get_renderer(config.renderer.name, self.device, **config.renderer.options)
        self.decoder = MoFADecoder(self.face_model, self.camera, renderer=renderer)
        self.train_data, self.val_data = self._build_data()
        self.encoder = build_encoder(config.encoder.name, config.encoder.pretrained,
                                     image_size=config.camera.image_size).to(self.device)
        self.optimizer = self._build_optimizer()
        self.loss_weights = config.loss
        if validator is None:
            from evaluation.validation import validate as validator
        self.validator = validator
        self.step = 0
        self.best: float = math.inf
        self.nonfinite_in_row = 0
        self.skipped_total = 0
        self._encoder_forward = self.encoder
        if config.compile and self.device.type == "cuda":
            self._encoder_forward = torch.compile(self.encoder)
        self._loss_path = torch.compile(self._loss_terms) if config.compile_decoder else self._loss_terms

    # ------------------------------------------------------------------ building
    def _build_data(self) -> tuple[Any, Any]:
        cfg = self.config.data
        if cfg.kind == "synthetic":
            from mofa_bench.data.backgrounds import BackgroundConfig
            from mofa_bench.data.synthetic import SyntheticFaces

            render_decoder = MoFADecoder(self.face_model, self.camera,
                                         renderer=get_renderer(cfg.render_renderer, self.device))
            prior = cfg.prior
            backgrounds = BackgroundConfig(**cfg.backgrounds)
            train = SyntheticFaces(render_decoder, cfg.train_size, seed=cfg.seed, prior=prior, backgrounds=backgrounds)
            # Validation samples start at a fixed global index, so runs with different
            # training sizes are validated on the same faces.
            val = SyntheticFaces(render_decoder, cfg.val_size, seed=cfg.seed, prior=prior, backgrounds=backgrounds,
                                 start=VALIDATION_START)
            return train, val
        if cfg.kind == "sharded":
            from mofa_bench.data.synthetic import ShardedFaces

            train = ShardedFaces(cfg.path)
            return train, ShardedFaces(cfg.val_path) if cfg.val_path else None
        from mofa_bench.data.images import ImageFolder

        size = self.config.camera.image_size
        train = ImageFolder(cfg.path, size)
        return train, ImageFolder(cfg.val_path, size) if cfg.val_path else None

    def _build_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config.optim
        groups = parameter_groups(self.encoder, cfg.lr, cfg.z_translation_lr)
        if cfg.optimizer == "adadelta":
            return torch.optim.Adadelta(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)

    # ------------------------------------------------------------------ run directory
    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def _prepare_run_dir(self, resume: bool) -> None:
        last = self.checkpoint_dir / "last.pt"
        if last.exists() and not resume:
            raise ConfigError(f"run directory {self.run_dir} already holds a run; pass --resume to continue it "
                              f"or choose another --name / --out")
        for sub in ("checkpoints", "samples", "figures"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.run_dir / "config.yaml")
        record = {**environment_record(self.device), "seed": self.config.seed,
                  "face_model": self.face_model.summary(), "renderer": self.config.renderer.name}
        (self.run_dir / "environment.json").write_text(json.dumps(record, indent=2))

    def _append_csv(self, name: str, row: dict[str, Any]) -> None:
        path = self.run_dir / name
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def _truncate_csv(self, name: str, max_step: int) -> None:
        """Drop rows logged after the checkpoint we resume from."""
        path = self.run_dir / name
        if not path.exists():
            return
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows:
            return
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(r for r in rows if int(r["step"]) <= max_step)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        state = {
            "encoder": self.encoder.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "best": self.best,
            "nonfinite_in_row": self.nonfinite_in_row,
            "skipped_total": self.skipped_total,
            "rng_cpu": torch.get_rng_state(),
            "config": config_to_dict(self.config),
        }
        if torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.encoder.load_state_dict(state["encoder"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.best = float(state["best"])
        self.nonfinite_in_row = int(state["nonfinite_in_row"])
        self.skipped_total = int(state["skipped_total"])
        torch.set_rng_state(state["rng_cpu"])
        if "rng_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])

    def _save(self, is_best: bool) -> None:
        state = self.state_dict()
        save_checkpoint(state, self.checkpoint_dir / "last.pt")
        if is_best:
            save_checkpoint(state, self.checkpoint_dir / "best.pt")
        if self.config.keep_every and self.step % self.config.keep_every == 0:
            save_checkpoint(state, self.checkpoint_dir / f"step_{self.step:07d}.pt")

    # ------------------------------------------------------------------ one step
    def train_step(self, batch: FaceBatch) -> dict[str, float] | None:
        """One optimisation step; returns the loss terms, or ``None`` if the batch was skipped."""
        self.encoder.train()
        images = batch.images
        use_amp = self.config.amp and self.device.type == "cuda"
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=use_amp):
            code = self._encoder_forward(images)
        code = code.float()
        if not bool(torch.isfinite(code).all()):
            return self._skip("non-finite code")
        subset = self.face_model.landmark_subset
        target = batch.landmarks[:, subset] if batch.landmarks is not None else None
        confidence = batch.landmark_confidence[:, subset] if batch.landmark_confidence is not None else None
        terms = self._loss_path(code, images, target, confidence)
        total = terms["total"]
        if not bool(torch.isfinite(total)):
            return self._skip("non-finite loss")
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        # One fused pass: the total gradient norm is finite iff every gradient is.
        max_norm = self.config.optim.grad_clip or math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.encoder.parameters(), max_norm, foreach=True)
        if not bool(torch.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            return self._skip("non-finite gradient")
        self.optimizer.step()
        self.nonfinite_in_row = 0
        return {name: float(value.detach()) for name, value in terms.items()}

    def _loss_terms(self, code: torch.Tensor, images: torch.Tensor, landmarks: torch.Tensor | None,
                    confidence: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The loss path: image formation, photometric samples and the MoFA loss terms.

        Args:
            code: ``(B, 257)`` float32 codes.
            images: ``(B, 3, H, W)`` input images.
            landmarks: ``(B, L, 2)`` target landmarks (px) of the model's landmark subset, or None.
            confidence: ``(B, L)`` their confidences, or None.

        Returns:
            The named loss terms and ``"total"`` (:func:`~mofa_bench.losses.mofa_loss`).
        """
        formed = self.decoder.form(code)
        samples = self.decoder.photometric_samples(formed, images)
        landmarks_uv = formed.landmarks_uv[:, self.face_model.landmark_subset]
        return mofa_loss(code, samples, self.loss_weights, landmarks_uv, landmarks, confidence)

    def _skip(self, why: str) -> None:
        self.nonfinite_in_row += 1
        self.skipped_total += 1
        self._append_csv("skipped.csv", {"step": self.step, "reason": why})
        if self.nonfinite_in_row >= self.config.max_nonfinite:
            raise TrainingDivergedError(
                f"{self.nonfinite_in_row} batches in a row gave a {why} (last at step {self.step}); "
                f"training stopped. The last good checkpoint is {self.checkpoint_dir / 'last.pt'}. "
                f"Try a lower optim.lr or optim.grad_clip."
            )
        return None

    # ------------------------------------------------------------------ validation
    def validate(self) -> dict[str, float]:
        """Run the validator on the validation set (empty dict when there is none)."""
        if self.val_data is None:
            return {}
        self.encoder.eval()
        with torch.no_grad():
            return self.validator(self.encoder, self.decoder, self.val_data, self.device)

    def save_samples(self) -> Path | None:
        """Write ``samples/step_XXXXXXX.png``: rows of input | reconstruction | overlay."""
        from PIL import Image

        data = self.val_data if self.val_data is not None else self.train_data
        n = min(self.config.num_val_images, len(data))
        batch = data.batch(torch.arange(n)).to(self.device)
        self.encoder.eval()
        with torch.no_grad():
            code = self.encoder(batch.images).float()
            face, mask = self.decoder.render(code)
        tiles = comparison_tiles(batch.images, face, mask).flatten(0, 1)
        path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        Image.fromarray(tile_images(tiles.cpu(), columns=3)).save(path)
        return path

    # ------------------------------------------------------------------ the loop
    def fit(self, resume: bool = False) -> TrainResult:
        """Train for ``optim.iterations`` steps (continuing a run when ``resume``)."""
        from tqdm.auto import tqdm

        self._prepare_run_dir(resume)
        if resume:
            last = self.checkpoint_dir / "last.pt"
            if last.exists():
                self.load_state_dict(load_checkpoint(last, self.device))
                self._truncate_csv("metrics.csv", self.step)
                self._truncate_csv("validation.csv", self.step)
        cfg = self.config
        total_steps = cfg.optim.iterations
        bs = cfg.optim.batch_size
        size = len(self.train_data)
        last_terms: dict[str, float] = {}
        validation: dict[str, float] = {}
        first_step = self.step
        if self.step == 0:
            validation = self._run_validation()
        bar = tqdm(total=total_steps, initial=self.step, disable=not cfg.progress, desc=f"train {cfg.name}",
                   unit="step", dynamic_ncols=True)
        window_start, window_samples = time.perf_counter(), 0
        started = time.perf_counter()
        while self.step < total_steps:
            indices = batch_indices(self.step, bs, size, cfg.data.seed)
            batch = self.train_data.batch(indices).to(self.device)
            terms = self.train_step(batch)
            self.step += 1
            window_samples += bs
            if terms is not None:
                last_terms = terms
            if self.step % cfg.log_every == 0 or self.step == total_steps:
                elapsed = time.perf_counter() - window_start
                rate = window_samples / max(elapsed, 1e-9)
                self._append_csv("metrics.csv", {
                    "step": self.step, "loss": last_terms.get("total", math.nan),
                    "photo": last_terms.get("photo", math.nan), "landmark": last_terms.get("landmark", math.nan),
                    "reg": last_terms.get("reg", math.nan), "samples_per_s": rate,
                    "skipped": self.skipped_total, "time_s": time.perf_counter() - started,
                })
                bar.set_postfix(loss=f"{last_terms.get('total', math.nan):.4f}", samples_s=f"{rate:.1f}")
                window_start, window_samples = time.perf_counter(), 0
            is_best = False
            if self.step % cfg.val_every == 0 or self.step == total_steps:
                validation = self._run_validation()
                score = validation.get("photometric", last_terms.get("total", math.inf))
                if math.isfinite(score) and score < self.best:
                    self.best, is_best = score, True
            if self.step % cfg.sample_every == 0 or self.step == total_steps:
                self.save_samples()
            if self.step % cfg.checkpoint_every == 0 or self.step == total_steps or is_best:
                self._save(is_best)
            bar.update(1)
        bar.close()
        self.write_figures()
        return TrainResult(self.run_dir, self.step, last_terms.get("total", math.nan), validation, self.skipped_total,
                           new_steps=self.step - first_step)

    def _run_validation(self) -> dict[str, float]:
        metrics = self.validate()
        if metrics:
            self._append_csv("validation.csv", {"step": self.step, **metrics})
        return metrics

    def write_figures(self) -> list[Path]:
        """Loss and validation curves from the run's CSVs (see :mod:`mofa_bench.training.figures`)."""
        from mofa_bench.training.figures import plot_run_curves

        return plot_run_curves(self.run_dir)
