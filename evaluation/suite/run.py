"""One run of a suite: train (stage by stage), score on the test split, record everything.

:func:`run_task` fills ``<out>/runs/<run_id>/``:

- ``cell.json`` (:meth:`Cell.record <evaluation.suite.expand.Cell.record>`) and
  ``status.json`` (``{"status": "running"|"ok"|"error", "error", "started", "finished"}``,
  ISO 8601 UTC, replaced atomically);
- the :class:`~mofa_bench.training.trainer.Trainer`'s files (``config.yaml``,
  ``environment.json``, ``metrics.csv``, ``validation.csv``, ``checkpoints/``, ``samples/``,
  ``figures/``); a stage before the last trains in ``stage_<name>/``. A method with
  ``trains = False`` (per-image optimisation) is built around the decoder the trainer
  would use and scored untrained; its directory gets ``config.yaml`` only;
- the test files of :func:`~evaluation.suite.evaluate.evaluate_test_set`, and with the
  suite's ``real_test`` the ``real_metrics.csv`` of
  :func:`~evaluation.suite.real.evaluate_real_set` (its ``real_*`` metrics and
  ``real_test_size`` join the row);
- ``result.json``: the run's results row (:mod:`evaluation.suite.collect`); ``error.log``:
  the traceback of a failed run.

A failing run never raises: its error is recorded and its row has status ``error``. A
run started again continues its training from ``checkpoints/last.pt``.

Measurements: ``train_steps`` (all stages), ``train_wall_s`` (the trainer's time in
training steps, validation excluded, summed over stages), ``samples_per_s`` (training
images per second of that time), ``inference_ms_per_image``
(:mod:`evaluation.suite.evaluate`), ``peak_mem_mb`` over the whole run (CUDA
``max_memory_allocated``; CPU: the process's peak RSS since the run started,
:class:`evaluation.bench.measure.PeakMemory`, or ``getrusage``'s lifetime maximum where
that cannot be reset) and ``peak_mem_kind`` saying which.
"""

from __future__ import annotations

import math
import traceback
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from evaluation.bench.measure import PeakMemory, free_device_memory
from evaluation.results.rows import environment_columns, error_note, timestamp
from evaluation.suite.collect import base_row
from evaluation.suite.evaluate import draw_test_split, evaluate_test_set
from evaluation.suite.expand import Cell, stage_config
from evaluation.suite.folder import read_json, write_json
from evaluation.suite.real import evaluate_real_set
from evaluation.suite.spec import RealTest, Stage
from mofa_bench.config import TrainConfig, config_from_dict, save_config
from mofa_bench.decoder import MoFADecoder
from mofa_bench.environment import resolve_device
from mofa_bench.errors import ConfigError
from mofa_bench.methods import Method, MethodBuilder, method_builder
from mofa_bench.methods.learned_decoder import EncoderStage, LearnedDecoder
from mofa_bench.progress import labelled
from mofa_bench.scoring import decoder_fidelity, validate
from mofa_bench.training.trainer import Trainer

__all__ = ["RunTask", "method_builder_for", "read_status", "run_task", "write_json"]


@dataclass(frozen=True)
class RunTask:
    """What a worker needs to run one cell (plain data: it travels to submitit jobs).

    Attributes:
        cell: the cell.
        run_dir: its run directory.
        samples: K, the test images whose reconstructions are kept.
        device: device for every stage (``None``: the config's).
        progress: show the trainer's progress bar.
        real_test: real photos the run is also scored on (:mod:`evaluation.suite.real`), or ``None``.
    """

    cell: Cell
    run_dir: str
    samples: int = 6
    device: str | None = None
    progress: bool = False
    real_test: RealTest | None = None


def read_status(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's ``status.json``, or ``None`` when it has none.

    Raises:
        ValueError: the file is unreadable (cut short, not JSON, no ``status``), naming it.
    """
    path = Path(run_dir) / "status.json"
    data, reason = read_json(path)
    if data is None:
        if reason == "missing":
            return None
        raise ValueError(f"status.json is {reason}")
    if not isinstance(data.get("status"), str):
        raise ValueError(f"status.json has no status: {str(data)[:80]}")
    return data


def method_builder_for(name: str, builders: Mapping[str, MethodBuilder] | None = None) -> MethodBuilder:
    """The builder of method ``name``: ``builders[name]`` if given, else the method registry's."""
    if builders and name in builders:
        return builders[name]
    return method_builder(name)


class _NothingToTrain(Exception):
    """Raised from the trainer's method builder for a method with ``trains = False``."""

    def __init__(self, method: Method, decoder: MoFADecoder) -> None:
        super().__init__("nothing to train")
        self.method = method
        self.decoder = decoder


@dataclass
class _Trained:
    method: Method
    decoder: MoFADecoder
    config: TrainConfig
    steps: int = 0
    seconds: float = 0.0
    images: int = 0


def _stage(config: TrainConfig, stage_dir: Path, builders: Mapping[str, MethodBuilder] | None,
           alone: bool) -> tuple[_Trained, Path | None]:
    """Train one stage (or build an untrained method when ``alone``); returns it and its last checkpoint."""
    builder = method_builder_for(config.method, builders)

    def build(cfg: TrainConfig, decoder: MoFADecoder) -> Method:
        method = builder(cfg, decoder)
        if not method.trains:
            raise _NothingToTrain(method, decoder)
        return method

    try:
        trainer = Trainer(config, stage_dir, validator=validate, method_builder=build)
    except _NothingToTrain as untrained:
        if not alone:
            raise ConfigError(f"{stage_dir.name}: method {config.method!r} has nothing to train, "
                              f"so it cannot be a training stage") from None
        save_config(config, stage_dir / "config.yaml")
        return _Trained(untrained.method, untrained.decoder, config), None
    result = trainer.fit(resume=True)
    trained = _Trained(trainer.method, trainer.decoder, config, result.steps, trainer.train_time_s,
                       result.steps * config.optim.batch_size)
    return trained, stage_dir / "checkpoints" / "last.pt"


def _train(task: RunTask, builders: Mapping[str, MethodBuilder] | None) -> _Trained:
    """Train every stage of the task's cell; the last stage's method, with totals over stages."""
    cell, run_dir = task.cell, Path(task.run_dir)
    stages: tuple[Stage | None, ...] = cell.stages or (None,)
    previous: Path | None = None
    steps, seconds, images = 0, 0.0, 0
    trained: _Trained | None = None
    for position, stage in enumerate(stages):
        data = stage_config(cell, stage, previous) if stage is not None else dict(cell.config)
        data.update(device=task.device or data["device"], progress=task.progress)
        last = position == len(stages) - 1
        stage_dir = run_dir if last or stage is None else run_dir / f"stage_{stage.name}"
        with labelled(f"{stage.name} stage") if stage is not None and len(stages) > 1 else nullcontext():
            trained, previous = _stage(config_from_dict(data), stage_dir, builders, alone=len(stages) == 1)
        steps, seconds, images = steps + trained.steps, seconds + trained.seconds, images + trained.images
    if trained is None:
        raise ConfigError(f"run {cell.run_id}: no stage to train")
    trained.steps, trained.seconds, trained.images = steps, seconds, images
    return trained


def _peak_mb(memory: PeakMemory) -> tuple[float, str]:
    value = memory.read_mb()
    if math.isnan(value) and memory.device.type == "cpu":
        import resource
        import sys

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / (2**20 if sys.platform == "darwin" else 1024.0), "cpu process lifetime max RSS (getrusage)"
    return value, memory.kind


def _decoder_fidelity(trained: _Trained, test_seed: int) -> dict[str, float]:
    """A learned decoder's drawing of the test codes against the analytic decoder's.

    Only for the encoder stage of a ``learned_decoder`` run (the paper's Fig. 13 (a)):
    ``decoder_fidelity`` is the mean RGB distance over the analytic face's region,
    ``decoder_fidelity_image`` over the whole image; ``decoder_fidelity_start`` the first
    for an untrained network of the same architecture (initialised under the run's seed),
    the reference that says how much the decoder stage learnt. Empty for every other method.
    """
    if not isinstance(trained.method, EncoderStage):
        return {}
    test = draw_test_split(trained.decoder, trained.config, test_seed)
    device = trained.decoder.model.device
    codes = test.batch(torch.arange(len(test))).codes.to(device)
    out = decoder_fidelity(trained.method.learned, trained.decoder, codes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(trained.config.seed)
        untrained = LearnedDecoder(trained.config.camera.image_size).to(device)
    start = decoder_fidelity(untrained, trained.decoder, codes)
    return {"decoder_fidelity": float(out["photometric"].mean()),
            "decoder_fidelity_image": float(out["photometric_image"].mean()),
            "decoder_fidelity_start": float(start["photometric"].mean())}


def run_task(task: RunTask, builders: Mapping[str, MethodBuilder] | None = None) -> dict[str, Any]:
    """Run one cell (see the module docstring) and return its results row.

    Args:
        task: the cell and where to run it.
        builders: ``{method name: builder}`` used before the built-in ones (tests).

    Returns:
        The row also written to ``result.json``.
    """
    run_dir = Path(task.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = task.cell.record()
    write_json(run_dir / "cell.json", record)
    started = timestamp()
    write_json(run_dir / "status.json", {"status": "running", "error": None, "started": started, "finished": None})
    for stale in ("error.log", "result.json"):
        (run_dir / stale).unlink(missing_ok=True)
    device = torch.device("cpu")
    try:
        device = resolve_device(task.device or task.cell.config["device"])
        memory = PeakMemory(device)
        memory.reset()
        trained = _train(task, builders)
        scores = evaluate_test_set(trained.method, trained.decoder, trained.config, task.cell.test_seed,
                                   task.samples, run_dir)
        fidelity = _decoder_fidelity(trained, task.cell.test_seed)
        real = (evaluate_real_set(trained.method, device, trained.config, task.real_test, run_dir)
                if task.real_test is not None else None)
    except BaseException as err:
        finished = timestamp()
        (run_dir / "error.log").write_text(traceback.format_exc())
        message = f"{type(err).__name__}: {err}"
        write_json(run_dir / "status.json", {"status": "error", "error": message, "started": started,
                                             "finished": finished})
        row = {**base_row(record, "error", error_note(err)), "device": str(device),
               **environment_columns(device), "timestamp": finished}
        write_json(run_dir / "result.json", row)
        free_device_memory(device)
        if not isinstance(err, Exception):
            raise
        return row
    peak_mb, peak_kind = _peak_mb(memory)
    metrics: dict[str, float] = {}
    for part in (scores, real) if real is not None else (scores,):
        for name, value in part.summary.items():
            low, high = part.ci[name]
            metrics.update({name: value, f"{name}_ci_low": low, f"{name}_ci_high": high})
    if real is not None:
        metrics["real_test_size"] = real.size
    finished = timestamp()
    row = {
        **base_row(record, "ok"), **metrics, "test_size": scores.size,
        "train_steps": trained.steps, "train_wall_s": trained.seconds,
        "samples_per_s": trained.images / trained.seconds if trained.seconds > 0 else math.nan,
        "inference_ms_per_image": scores.inference_ms_per_image, **fidelity, "peak_mem_mb": peak_mb,
        "peak_mem_kind": peak_kind, "device": str(device), **environment_columns(device), "timestamp": finished,
    }
    write_json(run_dir / "result.json", row)
    write_json(run_dir / "status.json", {"status": "ok", "error": None, "started": started, "finished": finished})
    del trained
    free_device_memory(device)
    return row
