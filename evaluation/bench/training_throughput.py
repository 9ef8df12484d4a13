"""``mofa-bench bench train``: training throughput per renderer × encoder × batch × device.

Each group (renderer, encoder, mode, image size, model level) builds a
:class:`~mofa_bench.training.trainer.Trainer` from a :class:`~mofa_bench.config.TrainConfig`
(the optional base YAML, ``--set`` overrides, then the grid's own keys) in a temporary
run directory and times :meth:`Trainer.train_step` — encoder forward, image formation,
renderer, MoFA loss, backward, gradient check and optimiser step, exactly as in
training. ``samples_per_s = batch / step_ms · 1000``; peak memory as in
:mod:`evaluation.bench.measure`.

What the timed step includes is the row's ``data_in_step`` column:

- ``false`` (default): one synthetic batch of the largest size is rendered once, before
  timing, and every step trains on its first ``batch`` samples — the model's cost alone;
- ``true`` (``--data-in-step``): every timed step also makes its batch as the training
  loop does — the next indices of the trainer's order, their codes and backgrounds drawn
  on the CPU (one seeded generator per sample), the faces rendered on the training
  device by ``data.synthetic_renderer`` — so the figure is what training runs at.

The per-cell budget works as in ``bench renderers``: one probe step at the smallest
batch of the group gives the seconds per sample, later cells are extrapolated
linearly and skipped when ``(warm-up + repeats)`` steps would exceed the budget.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from dataclasses import dataclass
from typing import Any, Callable

import torch

from evaluation.bench.measure import (
    BenchSpecError,
    bench_row,
    free_device_memory,
    measure_cell,
    probe_seconds,
)
from evaluation.bench.renderers import BACKEND_VARIANTS, backend_availability, check_backends, unavailable_note
from evaluation.results.budget import BatchPlanner, CellBudget, CostHistory, Deadline, GroupRows
from evaluation.results.grid import check_sizes, check_time_limit, check_timing, spec_preset
from evaluation.results.report import Column, ReportSpec
from evaluation.results.rows import CELL_ERRORS, environment_columns, error_note
from mofa_bench.config import TrainConfig, load_config
from mofa_bench.data.batch import FaceBatch
from mofa_bench.environment import resolve_device

__all__ = ["CUDA_ONLY_MODES", "TRAIN_COLUMNS", "TRAIN_MODES", "TRAIN_REPORT", "TrainBenchSpec", "run_train_bench",
           "setup_trainer"]

#: Speed modes: ``mode -> config switches`` (:class:`~mofa_bench.config.TrainConfig`).
#: ``amp`` runs the encoder under bfloat16 autocast (CUDA, or a CPU with native
#: bfloat16), ``amp+nhwc`` adds channels-last weights and images; ``compile`` wraps the
#: encoder in ``torch.compile`` (CUDA only), ``compile-all`` also compiles the decoder's loss
#: path (``compile_decoder``); ``capture`` records the whole loss computation, forward and
#: backward, as CUDA graphs (``capture: compile``), ``amp+capture+nhwc`` adds bfloat16
#: autocast and channels-last weights and images for the encoder (the CUDA-only modes
#: are those in :data:`CUDA_ONLY_MODES`). Image formation,
#: renderer and loss stay float32 in every mode.
TRAIN_MODES: dict[str, dict[str, Any]] = {
    "fp32": {},
    "amp": {"amp": True},
    "amp+nhwc": {"amp": True, "channels_last": True},
    "compile": {"compile": True},
    "amp+compile": {"amp": True, "compile": True},
    "compile-all": {"compile": True, "compile_decoder": True},
    "amp+compile-all": {"amp": True, "compile": True, "compile_decoder": True},
    "capture": {"capture": "compile"},
    "amp+capture+nhwc": {"amp": True, "capture": "compile", "channels_last": True},
}

#: Modes that need CUDA (``torch.compile`` of the encoder, CUDA-graph capture).
CUDA_ONLY_MODES = frozenset(mode for mode, switches in TRAIN_MODES.items()
                            if switches.get("compile") or switches.get("capture"))

TRAIN_COLUMNS = (
    "bench", "renderer", "encoder", "mode", "device", "batch", "image_size", "level", "vertices", "faces", "step_ms",
    "samples_per_s", "peak_mem_mb", "data_in_step", "status", "note", "warmup", "repeats", "peak_mem_kind",
    "timestamp",
)


@dataclass(frozen=True)
class TrainBenchSpec:
    """The grid and timing settings of ``bench train``.

    Attributes:
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:i"``.
        renderers: names in :data:`~evaluation.bench.renderers.BACKEND_VARIANTS`.
        encoders: encoder names (:func:`mofa_bench.encoders.encoder_names`).
        batches: batch sizes.
        image_sizes: square image sides, px (``camera.image_size``).
        levels: default-model subdivision levels (``model.subdivisions``; ignored,
            and reported as missing, when the config's ``model.source`` is a file).
        warmup: untimed steps per cell.
        repeats: timed steps per cell (the median is reported).
        budget_s: estimated wall time above which a cell is skipped, s.
        seed: the config's ``seed``.
        config: base YAML config (``None``: built-in defaults).
        overrides: ``key=value`` config overrides (as ``--set``); the grid's keys win.
        modes: speed modes from :data:`TRAIN_MODES` (``fp32``, ``amp``, ``compile``,
            ``amp+compile``, ``compile-all``, ``amp+compile-all``, ...); those in
            :data:`CUDA_ONLY_MODES` need a CUDA device.
        time_limit_s: wall-clock limit of the whole run, s; groups starting later are
            recorded as skipped (``None``: no limit).
        data_in_step: time the synthetic batch's generation inside each step (see the
            module docstring); rows record it in their ``data_in_step`` column.
    """

    device: str = "cpu"
    renderers: tuple[str, ...] = ("per_vertex", "pytorch3d", "pytorch3d-soft", "nvdiffrast")
    encoders: tuple[str, ...] = ("alexnet", "vgg16", "resnet18", "resnet50")
    batches: tuple[int, ...] = (5, 16, 64)
    image_sizes: tuple[int, ...] = (240,)
    levels: tuple[int, ...] = (3,)
    warmup: int = 3
    repeats: int = 10
    budget_s: float = 20.0
    seed: int = 0
    config: str | None = None
    overrides: tuple[str, ...] = ()
    modes: tuple[str, ...] = ("fp32",)
    time_limit_s: float | None = None
    data_in_step: bool = False

    @classmethod
    def preset(cls, device: str = "auto", quick: bool = False, **changes: Any) -> "TrainBenchSpec":
        """The full grid (default) or the CPU-sized ``quick`` one on ``device``, then ``changes``.

        Full: per_vertex / pytorch3d / pytorch3d-soft / nvdiffrast × alexnet / vgg16 /
        resnet18 / resnet50, batches 5/16/64, 240 px, level 3; warm-up 3 and 10 repeats
        on CUDA, 1 and 5 on the CPU. Quick: per_vertex and pytorch3d-soft × resnet18 and
        alexnet, batches 5/16, 128 px, level 2, warm-up 1, 3 repeats.
        """
        quick_grid = dict(renderers=("per_vertex", "pytorch3d-soft"), encoders=("resnet18", "alexnet"),
                          batches=(5, 16), image_sizes=(128,), levels=(2,))
        return spec_preset(cls, device, quick_grid if quick else None, changes)

    def validate(self) -> "TrainBenchSpec":
        """Check every field and that the config loads; returns ``self``. Raises :class:`BenchSpecError`."""
        from mofa_bench.encoders import encoder_names

        resolve_device(self.device)
        check_backends(self.renderers)
        unknown = [e for e in self.encoders if e not in encoder_names()]
        if not self.encoders or unknown:
            raise BenchSpecError(f"encoders: expected names from {', '.join(encoder_names())}, "
                                 f"got {', '.join(map(repr, self.encoders)) or 'none'}")
        check_sizes("batches", self.batches)
        check_sizes("image_sizes", self.image_sizes, minimum=8)
        check_sizes("levels", self.levels, minimum=0)
        check_timing(self.warmup, self.repeats)
        CellBudget(self.budget_s, 1)
        check_time_limit(self.time_limit_s)
        unknown = [m for m in self.modes if m not in TRAIN_MODES]
        if not self.modes or unknown:
            raise BenchSpecError(f"modes: expected names from {', '.join(TRAIN_MODES)}, "
                                 f"got {', '.join(map(repr, self.modes)) or 'none'}")
        cuda_only = [m for m in self.modes if m in CUDA_ONLY_MODES]
        if resolve_device(self.device).type != "cuda" and cuda_only:
            allowed = ", ".join(m for m in TRAIN_MODES if m not in CUDA_ONLY_MODES)
            raise BenchSpecError(f"modes: torch.compile and CUDA-graph capture need CUDA; on {self.device} use "
                                 f"{allowed}, got {', '.join(cuda_only)}")
        self.cell_config(self.renderers[0], self.encoders[0], self.image_sizes[0], self.levels[0], self.modes[0])
        return self

    def cell_config(self, renderer: str, encoder: str, image_size: int, level: int,
                    mode: str = "fp32") -> TrainConfig:
        """The :class:`TrainConfig` of one group (raises ``ConfigError`` for bad overrides)."""
        name, options = BACKEND_VARIANTS[renderer]
        largest = max(self.batches)
        switches = {"amp": False, "compile": False, "compile_decoder": False, "capture": "none",
                    "channels_last": False, **TRAIN_MODES[mode]}
        return load_config(
            self.config, list(self.overrides), device=self.device, seed=self.seed, progress=False, **switches,
            renderer__name=name, renderer__options=dict(options), encoder__name=encoder,
            camera__image_size=image_size, model__subdivisions=level, optim__batch_size=largest,
            data__train_size=largest, data__val_size=1,
        )

    @property
    def num_cells(self) -> int:
        return (len(self.renderers) * len(self.encoders) * len(self.batches) * len(self.image_sizes)
                * len(self.levels) * len(self.modes))


def _first(batch: FaceBatch, n: int) -> FaceBatch:
    """The first ``n`` samples of a batch."""
    return dataclasses.replace(batch, **{
        f.name: getattr(batch, f.name)[:n] for f in dataclasses.fields(batch)
        if isinstance(getattr(batch, f.name), torch.Tensor)
    })


def setup_trainer(config: TrainConfig, run_dir: str,
                  data_in_step: bool = False) -> tuple[Any, Callable[[int], Callable[[], Any]]]:
    """A :class:`Trainer` for ``config`` and ``step_for(batch) -> closure`` timing its ``train_step``.

    Args:
        config: the cell's config.
        run_dir: a scratch run directory.
        data_in_step: ``False``: one synthetic batch of ``config.optim.batch_size``
            samples is rendered here and the closure for ``batch`` trains on its first
            ``batch`` samples. ``True``: each call of the closure makes a new batch of
            ``batch`` samples (the trainer's next indices, drawn and rendered as in
            training) and trains on it.
    """
    from mofa_bench.training.schedule import batch_indices
    from mofa_bench.training.trainer import Trainer

    trainer = Trainer(config, run_dir=run_dir)
    size = config.optim.batch_size
    data = trainer.train_data
    if data_in_step:
        def step_for(batch: int) -> Callable[[], Any]:
            def step() -> Any:
                indices = batch_indices(trainer.step, batch, len(data), trainer.order_seed)
                trainer.step += 1
                return trainer.train_step(data.batch(indices).to(trainer.device))
            return step

        return trainer, step_for
    full = data.batch(torch.arange(size) % len(data)).to(trainer.device)

    def step_for(batch: int) -> Callable[[], Any]:
        part = _first(full, batch)
        return lambda: trainer.train_step(part)

    return trainer, step_for


# ---------------------------------------------------------------------------- rows
def _row(spec: TrainBenchSpec, env: dict[str, Any], status: str, note: str = "", **values: Any) -> dict[str, Any]:
    return bench_row(TRAIN_COLUMNS, env, bench="train", device=torch.device(spec.device).type, status=status,
                    note=note, warmup=spec.warmup, repeats=spec.repeats, data_in_step=spec.data_in_step, **values)


def _group_rows(spec: TrainBenchSpec, env: dict[str, Any], renderer: str, encoder: str, image_size: int, level: int,
                mode: str, history: CostHistory, advance: Callable[[], None],
                deadline: Deadline) -> list[dict[str, Any]]:
    """Rows of one renderer × encoder × mode × image size × level over all batches (ascending)."""
    device = torch.device(spec.device)
    budget = CellBudget(spec.budget_s, spec.warmup + spec.repeats)
    config = spec.cell_config(renderer, encoder, image_size, level, mode)
    base: dict[str, Any] = {"renderer": renderer, "encoder": encoder, "mode": mode, "image_size": image_size,
                            "level": level if config.model.source == "default" else math.nan}
    rows = GroupRows(sorted(spec.batches),
                     lambda status, note, batch, **values: _row(spec, env, status, note, batch=batch, **base,
                                                                **values),
                     advance)
    family, coords = f"{renderer}|{encoder}|{mode}", (image_size, level)
    skipped = rows.skip_before_probing(deadline, budget, history, family, coords,
                                       lambda point: f"{point[0]:.0f} px, level {point[1]:.0f}")
    if skipped is not None:
        return skipped
    first = rows.batches[0]
    with tempfile.TemporaryDirectory(prefix="mofa-bench-train-") as run_dir:
        try:
            trainer, step_for = setup_trainer(config, run_dir, data_in_step=spec.data_in_step)
            base.update(vertices=trainer.face_model.num_vertices, faces=trainer.face_model.num_triangles)
            per_item = probe_seconds(step_for(first), device, confirm=not history.has(family)) / first
        except CELL_ERRORS as err:
            failure = error_note(err)
            return rows.finish("error", lambda b: failure)
        history.record(family, coords, per_item)
        planner = BatchPlanner(budget, per_item, f"batch-{first} probe")
        for batch in rows.batches:
            if planner.skip_note(batch):
                return rows.finish("skipped", lambda b: planner.skip_note(b) or "")
            skipped_before = trainer.skipped_total
            try:
                m = measure_cell({"train_step": step_for(batch)}, device, spec.warmup, spec.repeats)
            except CELL_ERRORS as err:
                rows.add("error", error_note(err), batch)
            else:
                step_ms = m.median_ms("train_step")
                planner.observe(batch, step_ms / 1000.0)
                nonfinite = trainer.skipped_total - skipped_before
                note = f"{nonfinite} of {spec.warmup + spec.repeats} steps skipped (non-finite)" if nonfinite else ""
                rows.add("ok", note, batch, step_ms=step_ms, samples_per_s=batch / step_ms * 1000.0,
                         peak_mem_mb=m.peak_mem_mb, peak_mem_kind=m.peak_mem_kind)
    return rows.rows


def run_train_bench(spec: TrainBenchSpec, progress: bool = True,
                    on_rows: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    """Run the grid; one row per cell and one per unavailable renderer.

    Args:
        spec: the grid (validated here).
        progress: show a tqdm bar over cells.
        on_rows: called with the rows so far after every group of cells.

    Returns:
        Rows with the :data:`TRAIN_COLUMNS` and the environment columns.
    """
    from tqdm.auto import tqdm

    spec.validate()
    deadline = Deadline(spec.time_limit_s)
    device = torch.device(spec.device)
    env = environment_columns(device)
    rows: list[dict[str, Any]] = []
    per_renderer = spec.num_cells // len(spec.renderers)
    bar = tqdm(total=spec.num_cells, disable=not progress, desc="bench train", unit="cell", dynamic_ncols=True)
    history = CostHistory()
    for renderer in spec.renderers:
        state = backend_availability(renderer, device)
        if not state.available:
            rows.append(_row(spec, env, "unavailable", unavailable_note(state), renderer=renderer))
            bar.update(per_renderer)
            continue
        for encoder in spec.encoders:
            for mode in spec.modes:
                for level in sorted(spec.levels):
                    for image_size in sorted(spec.image_sizes):
                        bar.set_postfix_str(f"{renderer} {encoder} {mode} L{level} {image_size}px")
                        rows.extend(_group_rows(spec, env, renderer, encoder, image_size, level, mode, history,
                                                lambda: bar.update(1), deadline))
                        free_device_memory(device)
                        if on_rows is not None:
                            on_rows(rows)
    bar.close()
    return rows


#: How a ``train`` CSV becomes its Markdown table and plot (see :mod:`evaluation.bench.reports`).
TRAIN_REPORT = ReportSpec(
    name="train",
    columns=TRAIN_COLUMNS,
    table=(
        Column("renderer", "renderer"), Column("encoder", "encoder"), Column("mode", "mode"),
        Column("batch", "batch", ",.0f"),
        Column("image_size", "px", ",.0f"), Column("vertices", "vertices", ",.0f"),
        Column("step_ms", "step ms", ",.1f"), Column("samples_per_s", "samples/s", ",.1f"),
        Column("peak_mem_mb", "peak MiB", ",.0f"), Column("data_in_step", "data in step"),
        Column("status", "status"), Column("note", "note"),
    ),
    plot={"x": "batch", "y": "samples_per_s", "hue": "renderer", "facet_rows": "mode", "facet_cols": "encoder",
          "xlabel": "batch", "ylabel": "samples/s (training step)",
          "facet_format": {"mode": "{}", "encoder": "{}"}},
    title="Training throughput, one train_step ({device})",
    defaults={"mode": "fp32", "data_in_step": False},
)
