"""The trainer: trains any :class:`~mofa_bench.methods.base.Method` from a config.

One :class:`Trainer` owns a run directory::

    runs/<name>/
      config.yaml          resolved config (re-runnable with --config)
      environment.json     versions, device, git commit, seed
      metrics.csv          one row per logged training step (loss terms, samples/s)
      validation.csv       one row per validation (training time so far, the validator's metrics)
      checkpoints/         last.pt, best.pt, step_XXXXXXX.pt (every ``keep_every``)
      samples/             step_XXXXXXX.png: input | reconstruction | overlay
      figures/             loss_curve.png, validation_curve.png

The method (the one ``config.method`` names in :mod:`mofa_bench.methods`; MoFA by default) knows its loss; the trainer
owns the loop, the optimiser, checkpoints and logs. Optimisation follows the paper:
AdaDelta with lr 0.1 and 0.0005 for z-translation (a separate parameter group, see
:meth:`Method.parameter_groups`), batch 5; AdamW is available for modern runs.
Non-finite losses or gradients skip the batch (logged) and abort with
:class:`~mofa_bench.errors.TrainingDivergedError` after ``max_nonfinite`` in a row.
A run whose every step of a :meth:`Trainer.fit` call was skipped so stops with the same
error, however few steps it had.

``fit(resume=True)`` continues from ``checkpoints/last.pt`` exactly: the data order is a
pure function of the step and the RNG state is restored, so on the CPU a resumed run
ends bit-for-bit where an uninterrupted one does. The checkpoint's schema and content
hash are checked first (:mod:`mofa_bench.checkpoint`), and its config must match
the requested one except for :data:`RESUME_FREE_KEYS` (bookkeeping that does not change
what is learnt); ``allow_config_change=True`` resumes anyway and records each changed
key in ``config_changes.csv``. The CSV logs are cut back to the checkpoint's step, and a
run that restarts from step 0 (killed before its first checkpoint) starts them afresh.

Only one trainer at a time works in a run directory (:class:`~mofa_bench.training.lock.RunLock`,
held for the duration of :meth:`Trainer.fit`); a second one stops with
:class:`~mofa_bench.training.lock.RunDirectoryBusyError`.

Validation scores the method on the validation split with every protocol metric
(:func:`mofa_bench.scoring.validate`) unless the caller passes another ``validator``.

Started by ``torchrun`` with several processes, the trainer trains with
``DistributedDataParallel`` (:mod:`mofa_bench.training.distributed`): ``optim.batch_size``
is the global batch, each rank trains on its own slice of it, and rank 0 alone holds
the lock, validates and writes the run directory. ``capture`` and ``channels_last``
choose how the step's loss runs (:mod:`mofa_bench.training.capture`).
"""

from __future__ import annotations

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
from mofa_bench.data.splits import build_datasets
from mofa_bench.decoder import MoFADecoder
from mofa_bench.environment import environment_record, resolve_device
from mofa_bench.errors import ConfigError, TrainingDivergedError
from mofa_bench.progress import Progress
from mofa_bench.training import distributed as ddp
from mofa_bench.training.capture import build_step_capture
from mofa_bench.checkpoint import (check_trainer_state, load_checkpoint, remove_stale_temp_files,
                                            save_checkpoint)
from mofa_bench.training.lock import RunLock
from mofa_bench.methods.base import Method, MethodBuilder, NonFiniteBatch
from mofa_bench.methods.registry import method_builder as registry_builder
from mofa_bench.training.run_files import append_row, flatten, truncate_rows
from mofa_bench.scoring.validation import validate as protocol_validate
from mofa_bench.training.schedule import batch_indices, lr_factor
from renderers import get_renderer

#: ``validator(method, dataset, device) -> {metric: value}`` (lower is better for the
#: metric that picks ``best.pt``).
Validator = Callable[[Method, Any, torch.device], dict[str, float]]

#: Config keys (dotted, or a prefix ending in ``.``) a resumed run may change freely: where
#: the run lives, how long it runs, how often it logs and saves, how it is shown and
#: compiled. Any other difference from the checkpoint's config needs ``allow_config_change``.
RESUME_FREE_KEYS: tuple[str, ...] = (
    "name", "out_dir", "device", "progress", "optim.iterations", "log_every", "val_every", "sample_every",
    "checkpoint_every", "keep_every", "max_nonfinite", "num_val_images", "compile", "compile_decoder", "capture",
    "channels_last",
)
#: The CSV logs of a run directory (cut back to the checkpoint's step on resume).
LOG_FILES: tuple[str, ...] = ("metrics.csv", "validation.csv", "skipped.csv")


def config_differences(saved: dict[str, Any], requested: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ between a checkpoint's config and ``requested``.

    Both sides are compared as complete configs (defaults filled in on the saved side),
    ignoring :data:`RESUME_FREE_KEYS`.

    Returns:
        ``{dotted key: (saved value, requested value)}``, empty when they agree.
    """
    from mofa_bench.config import config_from_dict

    try:
        saved = config_to_dict(config_from_dict(saved, check_paths=False))
    except ConfigError:  # e.g. a data path that has moved: compare the stored values as they are
        pass
    old, new = flatten(saved), flatten(config_to_dict(requested))
    free = lambda key: any(key == k or key.startswith(k + ".") for k in RESUME_FREE_KEYS)  # noqa: E731
    missing = object()
    return {key: (old.get(key, missing), new.get(key, missing)) for key in sorted(old.keys() | new.keys())
            if not free(key) and old.get(key, missing) != new.get(key, missing)}


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
    """Builds the data a config names and trains a method on it.

    Args:
        config: the resolved config.
        run_dir: run directory (default ``<out_dir>/<name>``).
        validator: metric function run on the validation set; default
            :func:`~mofa_bench.scoring.validate` (every protocol metric); ``None``
            validates nothing (``best.pt`` then follows the training loss).
        method_builder: makes the method to train; default the registry's builder of
            ``config.method`` (:func:`~mofa_bench.methods.method_builder`).
    """

    def __init__(self, config: TrainConfig, run_dir: str | Path | None = None,
                 validator: Validator | None = protocol_validate, method_builder: MethodBuilder | None = None) -> None:
        self.config = config
        self.run_dir = Path(run_dir) if run_dir else Path(config.out_dir) / config.name
        self.dist, self.device = ddp.setup_distributed(resolve_device(config.device))
        self.rank_batch = ddp.per_rank_batch(config.optim.batch_size, self.dist.world_size)
        """Samples per rank and step (``optim.batch_size`` is the global batch)."""
        torch.manual_seed(config.seed)
        self.face_model = config.model.load().to(self.device, torch.float32)
        self.camera = config.camera.build()
        renderer = get_renderer(config.renderer.name, self.device, **config.renderer.options)
        self.decoder = MoFADecoder(self.face_model, self.camera, renderer=renderer)
        self.train_data, self.val_data = build_datasets(config.data, self.decoder, config.camera.image_size,
                                                         progress=config.progress and self.dist.is_main)
        self.method = (method_builder or registry_builder(config.method))(config, self.decoder).to(self.device)
        if not self.method.trains:
            raise ConfigError(f"method {config.method!r} has nothing to train: evaluate it directly "
                              f"(a suite, or `mofa-bench reconstruct --method {config.method}`)")
        self.optimizer = self._build_optimizer()
        self.capture = build_step_capture(self.method, config.capture, self.device, config.channels_last)
        self.loss_fn = self.capture.loss_fn
        """``batch -> terms`` of a step: the (captured) loss, through DDP with several ranks."""
        if self.dist.enabled:  # same weights everywhere (seeded above); a random stream per rank from here on
            self.loss_fn = ddp.wrap_for_ddp(self.method, self.capture.loss_fn, self.device)
            torch.manual_seed((config.seed * 1_000_003 + self.dist.rank + 1) % 2**63)
        self.validator = validator
        self.step = 0
        self.best: float = math.inf
        self.nonfinite_in_row = 0
        self.skipped_total = 0
        self.train_time_s = 0.0
        """Wall time spent in training steps so far, s (carried across resumes)."""
        self.order_seed = config.data.seed + 1_000_003 * config.seed
        """Seed of the training batches' order: the data's, varied by the run's ``seed``."""

    def _build_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config.optim
        groups = self.method.parameter_groups(cfg.lr, cfg.z_translation_lr)
        if cfg.optimizer == "adadelta":
            optimizer: torch.optim.Optimizer = torch.optim.Adadelta(groups, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                                                    foreach=True)
        else:
            optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        return optimizer

    def _apply_lr_schedule(self) -> None:
        """Set every group's rate to its base rate × :func:`lr_factor` of the current step."""
        cfg = self.config.optim
        factor = lr_factor(self.step, cfg.iterations, cfg.schedule, cfg.warmup_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor

    # ------------------------------------------------------------------ run directory
    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def _prepare_run_dir(self, resume: bool, allow_config_change: bool) -> dict[str, Any] | None:
        """Check and tidy the run directory (lock held); returns the checkpoint to resume, if any."""
        last = self.checkpoint_dir / "last.pt"
        if last.exists() and not resume:
            raise ConfigError(f"run directory {self.run_dir} already holds a run; pass --resume to continue it "
                              f"or choose another --name / --out")
        for sub in ("checkpoints", "samples", "figures"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(self.checkpoint_dir)
        remove_stale_temp_files(self.run_dir)
        state = None
        if resume and last.exists():
            state = load_checkpoint(last, self.device)
            check_trainer_state(state, last)
            changes = config_differences(state["config"], self.config)
            if changes and not allow_config_change:
                listed = "; ".join(f"{key}: {old!r} → {new!r}" for key, (old, new) in list(changes.items())[:6])
                more = f" (and {len(changes) - 6} more)" if len(changes) > 6 else ""
                raise ConfigError(f"--resume: the requested config differs from the one {last} was trained with: "
                                  f"{listed}{more}; resume with the run's {self.run_dir / 'config.yaml'}, or pass "
                                  f"--allow-config-change to continue under the new config (recorded in "
                                  f"config_changes.csv)")
            for key, (old, new) in changes.items():
                append_row(self.run_dir / "config_changes.csv", {
                    "step": int(state["step"]), "key": key, "checkpoint_value": repr(old),
                    "new_value": repr(new), "time": time.strftime("%Y-%m-%d %H:%M:%S")})
        if state is None:  # a fresh start: logs of an attempt killed before its first checkpoint go
            for name in LOG_FILES:
                (self.run_dir / name).unlink(missing_ok=True)
        save_config(self.config, self.run_dir / "config.yaml")
        record = {**environment_record(self.device), "seed": self.config.seed, "method": self.config.method,
                  "method_class": type(self.method).__name__, "face_model": self.face_model.summary(),
                  "renderer": self.config.renderer.name, "world_size": self.dist.world_size,
                  "batch_per_rank": self.rank_batch, **self.capture.describe()}
        (self.run_dir / "environment.json").write_text(json.dumps(record, indent=2))
        return state

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The trainer's state for a checkpoint (with several ranks a collective: every rank's RNG)."""
        state = {
            "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "best": self.best,
            "nonfinite_in_row": self.nonfinite_in_row,
            "skipped_total": self.skipped_total,
            "train_time_s": self.train_time_s,
            "rng_cpu": torch.get_rng_state(),
            "config": config_to_dict(self.config),
        }
        if self.dist.enabled:  # each rank's own streams (all-device CUDA states would touch every GPU)
            state["rng_ranks"] = ddp.gather_rng_states(self.device)
        elif torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any], source: str | Path = "the checkpoint") -> None:
        """Restore a :meth:`state_dict` (schema checked first).

        Raises:
            CheckpointError: the state lacks an entry or has one of the wrong type.
        """
        check_trainer_state(state, source)
        self.method.load_state_dict(state["method"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.best = float(state["best"])
        self.nonfinite_in_row = int(state["nonfinite_in_row"])
        self.skipped_total = int(state["skipped_total"])
        self.train_time_s = float(state.get("train_time_s", 0.0))
        if self.dist.enabled:
            ddp.restore_rng_state(state.get("rng_ranks"), self.device)
            return
        torch.set_rng_state(state["rng_cpu"])
        if "rng_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])

    def _save(self, is_best: bool) -> None:
        """Write the checkpoints of this step (every rank calls it; rank 0 writes)."""
        state = self.state_dict()
        ddp.run_on_main(lambda: self._write_checkpoints(state, is_best), shared=lambda _: None)

    def _write_checkpoints(self, state: dict[str, Any], is_best: bool) -> None:
        # last.pt goes last: a crash before it is written resumes from the previous one,
        # which repeats this step and so writes best.pt and step_*.pt again.
        if is_best:
            save_checkpoint(state, self.checkpoint_dir / "best.pt")
        if self.config.keep_every and self.step % self.config.keep_every == 0:
            save_checkpoint(state, self.checkpoint_dir / f"step_{self.step:07d}.pt")
        save_checkpoint(state, self.checkpoint_dir / "last.pt")

    # ------------------------------------------------------------------ one step
    def train_step(self, batch: FaceBatch) -> dict[str, float] | None:
        """One optimisation step; returns the loss terms, or ``None`` if the batch was skipped.

        With several ranks ``batch`` is this rank's slice, the returned terms are the
        ranks' means and a batch is skipped on every rank when any rank's is non-finite.
        """
        self.method.train()
        self.method.set_step(self.step, self.config.optim.iterations)
        self.capture.begin_step()
        why = ""
        try:
            terms = self.loss_fn(self.capture.prepare(batch))
        except NonFiniteBatch as err:
            terms, why = None, str(err)
        if terms is not None and not bool(torch.isfinite(terms["total"])):
            why = "non-finite loss"
        if not ddp.all_ranks_true(not why):
            return self._skip(why or "non-finite loss or code on another rank")
        total = terms["total"]
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        # One fused pass: the total gradient norm is finite iff every gradient is.
        max_norm = self.config.optim.grad_clip or math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.method.trainable_parameters(), max_norm, foreach=True)
        if not bool(torch.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            return self._skip("non-finite gradient")
        self._apply_lr_schedule()
        self.optimizer.step()
        self.nonfinite_in_row = 0
        return ddp.mean_over_ranks({name: float(value.detach()) for name, value in terms.items()})

    def _skip(self, why: str) -> None:
        self.nonfinite_in_row += 1
        self.skipped_total += 1
        if self.dist.is_main:
            append_row(self.run_dir / "skipped.csv", {"step": self.step, "reason": why})
        if self.nonfinite_in_row >= self.config.max_nonfinite:
            raise TrainingDivergedError(
                f"{self.nonfinite_in_row} batches in a row gave a {why} (last at step {self.step}); "
                f"training stopped. {self._last_good()}Try a lower optim.lr or optim.grad_clip."
            )
        return None

    def _last_good(self) -> str:
        """``The last good checkpoint is <path> (step N). `` when one was written, else says there is none."""
        last = self.checkpoint_dir / "last.pt"
        if not last.is_file():
            return "No checkpoint was written before it diverged. "
        try:
            step = f" (step {int(torch.load(last, map_location='cpu', weights_only=True)['step'])})"
        except Exception:  # noqa: BLE001 - the path alone still helps
            step = ""
        return f"The last good checkpoint is {last}{step}. "

    # ------------------------------------------------------------------ validation
    def validate(self) -> dict[str, float]:
        """Run the validator on the validation set (empty dict without validator or data)."""
        if self.validator is None or self.val_data is None:
            return {}
        self.method.eval()
        with torch.no_grad():
            return self.validator(self.method, self.val_data, self.device)

    def save_samples(self) -> Path | None:
        """Write ``samples/step_XXXXXXX.png``: rows of input | reconstruction | overlay."""
        from PIL import Image

        data = self.val_data if self.val_data is not None else self.train_data
        n = min(self.config.num_val_images, len(data))
        batch = data.batch(torch.arange(n)).to(self.device)
        self.method.eval()
        with torch.no_grad():
            rec = self.method.reconstruct(batch.images)
        tiles = comparison_tiles(batch.images, rec.image, rec.mask).flatten(0, 1)
        path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        Image.fromarray(tile_images(tiles.cpu(), columns=3)).save(path)
        return path

    # ------------------------------------------------------------------ the loop
    def fit(self, resume: bool = False, allow_config_change: bool = False) -> TrainResult:
        """Train for ``optim.iterations`` steps (continuing a run when ``resume``).

        Args:
            resume: continue from ``checkpoints/last.pt`` when it exists.
            allow_config_change: resume even where the config differs from the
                checkpoint's (each change is recorded in ``config_changes.csv``).

        Raises:
            RunDirectoryBusyError: another process is training in this run directory.
            ConfigError: an existing run without ``resume``, or a changed config.
            CheckpointError: ``last.pt`` is corrupted or not a trainer checkpoint.
            TrainingDivergedError: ``max_nonfinite`` skipped batches in a row, or every
                step of this call skipped.
        """
        lock = RunLock(self.run_dir)
        checkpoint: dict[str, Any] | None = None

        def start() -> bool:  # rank 0 only: the lock, the run directory's checks and tidying
            nonlocal checkpoint
            lock.acquire()
            checkpoint = self._prepare_run_dir(resume, allow_config_change)
            if checkpoint is not None:
                for name in ("metrics.csv", "validation.csv"):
                    truncate_rows(self.run_dir / name, int(checkpoint["step"]))
                truncate_rows(self.run_dir / "skipped.csv", int(checkpoint["step"]), inclusive=False)
            return checkpoint is not None

        try:
            resumed = ddp.run_on_main(start)
            if resumed and checkpoint is None:  # the other ranks read the checkpoint rank 0 checked
                checkpoint = load_checkpoint(self.checkpoint_dir / "last.pt", self.device)
            if checkpoint is not None:
                self.load_state_dict(checkpoint, self.checkpoint_dir / "last.pt")
            return self._fit()
        finally:
            lock.release()

    def _fit(self) -> TrainResult:
        cfg = self.config
        total_steps = cfg.optim.iterations
        bs = cfg.optim.batch_size
        size = len(self.train_data)
        last_terms: dict[str, float] = {}
        validation: dict[str, float] = {}
        first_step, good_steps = self.step, 0
        if self.step < total_steps and hasattr(self.train_data, "load"):
            self.train_data.load()  # a preloaded set is drawn here, outside the steps' timing
        if self.step == 0:
            validation = self._run_validation()
        main = self.dist.is_main
        bar = Progress(total_steps, f"train {cfg.name}", unit="step", show=cfg.progress and main, initial=self.step)
        window_start, window_samples = time.perf_counter(), 0
        started = time.perf_counter()
        while self.step < total_steps:
            indices = batch_indices(self.step, bs, size, self.order_seed)
            if self.dist.enabled:
                indices = ddp.rank_slice(indices, self.dist.rank, self.dist.world_size)
            step_start = time.perf_counter()
            batch = self.train_data.batch(indices).to(self.device)
            terms = self.train_step(batch)
            self.train_time_s += time.perf_counter() - step_start
            self.step += 1
            window_samples += bs
            if terms is not None:
                last_terms, good_steps = terms, good_steps + 1
            elif self.step == total_steps and good_steps == 0:
                raise TrainingDivergedError(
                    f"every one of the {self.step - first_step} training steps gave a non-finite loss or gradient "
                    f"(see {self.run_dir / 'skipped.csv'}); nothing was learnt. Check the data and face model, "
                    f"or try a lower optim.lr or optim.grad_clip.")
            if self.step % cfg.log_every == 0 or self.step == total_steps:
                elapsed = time.perf_counter() - window_start
                rate = window_samples / max(elapsed, 1e-9)
                loss_terms = {"loss": last_terms.get("total", math.nan),
                              **{k: v for k, v in last_terms.items() if k != "total"}}
                if main:
                    append_row(self.run_dir / "metrics.csv", {
                        "step": self.step, **loss_terms, "samples_per_s": rate,
                        "skipped": self.skipped_total, "time_s": time.perf_counter() - started,
                    })
                bar.set_postfix(loss=f"{loss_terms['loss']:.4f}", samples_s=f"{rate:.1f}")
                window_start, window_samples = time.perf_counter(), 0
            is_best = False
            if self.step % cfg.val_every == 0 or self.step == total_steps:
                validation = self._run_validation()
                score = validation.get(cfg.best_metric, last_terms.get("total", math.inf))
                if math.isfinite(score) and score < self.best:
                    self.best, is_best = score, True
            if self.step % cfg.sample_every == 0 or self.step == total_steps:
                ddp.run_on_main(self.save_samples, shared=lambda _: None)
            if self.step % cfg.checkpoint_every == 0 or self.step == total_steps or is_best:
                self._save(is_best)
            bar.update(1)
        bar.close()
        ddp.run_on_main(self.write_figures, shared=lambda _: None)
        return TrainResult(self.run_dir, self.step, last_terms.get("total", math.nan), validation, self.skipped_total,
                           new_steps=self.step - first_step)

    def _run_validation(self) -> dict[str, float]:
        """Validate and log on rank 0; every rank returns its metrics (the others wait)."""
        def run() -> dict[str, float]:
            metrics = self.validate()
            if metrics:
                append_row(self.run_dir / "validation.csv",
                           {"step": self.step, "train_time_s": self.train_time_s, **metrics})
            return metrics

        return ddp.run_on_main(run)

    def write_figures(self) -> list[Path]:
        """Loss and validation curves from the run's CSVs (see :mod:`mofa_bench.training.figures`)."""
        from mofa_bench.training.figures import plot_run_curves

        return plot_run_curves(self.run_dir)
