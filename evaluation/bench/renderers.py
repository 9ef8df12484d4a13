"""``mofa-bench bench renderers``: the loss path of every renderer backend, timed.

One *cell* is a backend × batch × image resolution × model level. Its callables (built
by :func:`setup_cell`, which returns closures, PyTorch3D-benchmark style):

- ``forward``: image formation of ``(B, 257)`` prior codes (:func:`sample_codes`) with
  ``requires_grad`` (so the autograd graph is recorded as in training), the backend's
  ``photometric_samples`` against a random ``(B, 3, H, W)`` target, and
  :func:`photometric_loss`;
- ``forward_backward``: the same plus ``loss.backward()`` down to the code;
- ``render`` (with ``time_render``): ``render()`` of the same codes without gradients.

Each is timed as in :mod:`evaluation.bench.measure` (warm-up, CUDA sync, median of
``repeats``) under one peak-memory window. ``images_per_s = batch / fwdbwd_ms · 1000``.

The reference (unless disabled) is one **encoder-only AlexNet training step** at
``reference.batch`` images of ``reference.resolution``² px: encoder forward, backward
of a scalar of its ``(B, 257)`` output, and the paper's AdaDelta step (lr 0.1,
0.0005 on z-translation). It excludes image formation and rendering, so
``ratio_to_alexnet_step = fwdbwd_ms / reference step ms`` is the renderer's cost
relative to the rest of a training step (its share of a full step is
``ratio / (1 + ratio)``). The issue's target: on a GPU, for every backend, at batch 64,
240² and level 3 (≈24k vertices in the paper; 28,881 here), the ratio is ≤ 0.10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch

from evaluation.bench.measure import (
    BenchSpecError,
    CellMeasurement,
    bench_row,
    free_device_memory,
    measure_cell,
    probe_seconds,
)
from evaluation.results.budget import BatchPlanner, CellBudget, CostHistory, Deadline, GroupRows
from evaluation.results.grid import check_sizes, check_time_limit, check_timing, spec_preset
from evaluation.results.report import Column, ReportSpec
from evaluation.results.rows import CELL_ERRORS, environment_columns, error_note
from mofa_bench.camera import Camera
from mofa_bench.decoder import MoFADecoder
from mofa_bench.environment import resolve_device
from mofa_bench.face_model.model import FaceModel
from mofa_bench.losses import photometric_loss
from mofa_bench.sampling import sample_codes
from renderers import Availability, Renderer, available_renderers, get_renderer

__all__ = [
    "BACKEND_VARIANTS",
    "RENDERERS_REPORT",
    "RENDERER_COLUMNS",
    "ReferenceSpec",
    "RendererBenchSpec",
    "backend_availability",
    "build_backend",
    "check_backends",
    "encoder_step_closure",
    "run_renderer_bench",
    "setup_cell",
    "target_summary",
]

#: Options of PyTorch3D's soft mode in the first benchmarks (2 px blur, 4 faces per pixel):
#: cheap, but its silhouette falls well below 1 inside the face on the default model.
PYTORCH3D_SOFT_OPTIONS: dict[str, Any] = {"blur_radius": 2.0, "faces_per_pixel": 4, "sigma": 0.5}
#: The suites' soft setting (learning_cpu, quick): 0.5 px blur, 16 faces per pixel, whose
#: silhouette stays near 1 inside the face (tests/evaluation/test_suite_soft_coverage.py).
PYTORCH3D_SOFT_K16_OPTIONS: dict[str, Any] = {"blur_radius": 0.5, "faces_per_pixel": 16}

#: Benchmark backend name → (registry name, constructor options).
BACKEND_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "per_vertex": ("per_vertex", {}),
    "pytorch3d": ("pytorch3d", {}),
    "pytorch3d-soft": ("pytorch3d", PYTORCH3D_SOFT_OPTIONS),
    "pytorch3d-soft-k16": ("pytorch3d", PYTORCH3D_SOFT_K16_OPTIONS),
    "nvdiffrast": ("nvdiffrast", {}),
}
DEFAULT_BACKENDS = ("per_vertex", "pytorch3d", "nvdiffrast")

#: The issue's target cell: model level, and the largest allowed fwd+bwd / AlexNet-step ratio.
TARGET_LEVEL = 3
TARGET_RATIO = 0.10

#: Value of the ``backend`` column of the reference row is ``reference:<encoder>``.
REFERENCE_PREFIX = "reference:"

RENDERER_COLUMNS = (
    "bench", "backend", "device", "batch", "resolution", "level", "vertices", "faces", "fwd_ms", "fwdbwd_ms",
    "render_ms", "images_per_s", "peak_mem_mb", "ratio_to_alexnet_step", "status", "note", "warmup", "repeats",
    "peak_mem_kind", "timestamp",
)

#: ``level -> FaceModel``; the default loads the built-in model at that subdivision level.
ModelLoader = Callable[[int], FaceModel]


def load_default_model(level: int) -> FaceModel:
    """The built-in face model subdivided ``level`` times (0 = 468 … 4 = 115,233 vertices)."""
    return FaceModel.load("default", subdivisions=level)


# ---------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class ReferenceSpec:
    """The AlexNet training step the renderer cells are compared with.

    Attributes:
        encoder: encoder name (:func:`mofa_bench.encoders.build_encoder`).
        batch: images per step.
        resolution: image side, px.
    """

    encoder: str = "alexnet"
    batch: int = 64
    resolution: int = 240


def check_backends(names: Iterable[str]) -> None:
    """Raise :class:`BenchSpecError` for names not in :data:`BACKEND_VARIANTS`."""
    names = tuple(names)
    if not names:
        raise BenchSpecError("backends: expected at least one backend")
    unknown = [n for n in names if n not in BACKEND_VARIANTS]
    if unknown:
        raise BenchSpecError(f"backends: unknown {', '.join(map(repr, unknown))}; "
                             f"known: {', '.join(BACKEND_VARIANTS)}")


@dataclass(frozen=True)
class RendererBenchSpec:
    """The grid and timing settings of ``bench renderers``.

    Attributes:
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:i"``.
        backends: names in :data:`BACKEND_VARIANTS`.
        batches: batch sizes.
        resolutions: square image sides, px.
        levels: subdivision levels of the default model (1≈1.8k, 2≈7.3k, 3≈29k, 4≈115k vertices).
        warmup: untimed calls per callable and cell.
        repeats: timed calls per callable and cell (the median is reported).
        budget_s: estimated wall time above which a cell is skipped, s.
        seed: seed of the random codes and target images.
        time_render: also time ``render()`` (``render_ms``).
        reference: the AlexNet step to compare with, or ``None``.
        time_limit_s: wall-clock limit of the whole run, s; groups starting later are
            recorded as skipped (``None``: no limit).
    """

    device: str = "cpu"
    backends: tuple[str, ...] = DEFAULT_BACKENDS
    batches: tuple[int, ...] = (1, 8, 64, 256)
    resolutions: tuple[int, ...] = (128, 240, 512)
    levels: tuple[int, ...] = (1, 2, 3, 4)
    warmup: int = 3
    repeats: int = 10
    budget_s: float = 20.0
    seed: int = 0
    time_render: bool = False
    reference: ReferenceSpec | None = ReferenceSpec()
    time_limit_s: float | None = None

    @classmethod
    def preset(cls, device: str = "auto", quick: bool = False, **changes: Any) -> "RendererBenchSpec":
        """The full grid (default) or the CPU-sized ``quick`` one on ``device``, then ``changes``.

        Full: batches 1/8/64/256, 128/240/512 px, levels 1–4; warm-up 3 and 10 repeats
        on CUDA, 1 and 5 on the CPU. Quick: batches 1/8/64, 128/240 px, levels 1–3,
        warm-up 1, 3 repeats.
        """
        quick_grid = dict(batches=(1, 8, 64), resolutions=(128, 240), levels=(1, 2, 3))
        return spec_preset(cls, device, quick_grid if quick else None, changes)

    def validate(self) -> "RendererBenchSpec":
        """Check every field; returns ``self``. Raises :class:`BenchSpecError`."""
        resolve_device(self.device)
        check_backends(self.backends)
        check_sizes("batches", self.batches)
        check_sizes("resolutions", self.resolutions, minimum=8)
        check_sizes("levels", self.levels, minimum=0)
        check_timing(self.warmup, self.repeats)
        CellBudget(self.budget_s, 1)
        check_time_limit(self.time_limit_s)
        if self.reference is not None:
            from mofa_bench.encoders import encoder_names

            if self.reference.encoder not in encoder_names():
                raise BenchSpecError(f"reference encoder: expected one of {', '.join(encoder_names())}, "
                                     f"got {self.reference.encoder!r}")
            check_sizes("reference batch", (self.reference.batch,))
            check_sizes("reference resolution", (self.reference.resolution,), minimum=8)
        return self

    @property
    def calls_per_cell(self) -> int:
        """Calls one cell makes: (warm-up + repeats) × (forward, forward+backward[, render])."""
        return (self.warmup + self.repeats) * (3 if self.time_render else 2)

    @property
    def num_cells(self) -> int:
        return len(self.backends) * len(self.batches) * len(self.resolutions) * len(self.levels)


# ---------------------------------------------------------------------------- cells
def backend_availability(backend: str, device: torch.device) -> Availability:
    """Availability of a benchmark backend's registry backend on ``device``."""
    return available_renderers(device)[BACKEND_VARIANTS[backend][0]]


def unavailable_note(state: Availability) -> str:
    """The reason a backend cannot run, and the fix, for a row's note."""
    return state.reason + (f" (fix: {state.fix})" if state.fix else "")


def build_backend(backend: str, device: torch.device) -> Renderer:
    """The :class:`~renderers.base.Renderer` of a benchmark backend name."""
    name, options = BACKEND_VARIANTS[backend]
    return get_renderer(name, device, **options)


def cell_inputs(model: FaceModel, backend: str, batch: int, resolution: int, device: torch.device,
                seed: int = 0) -> tuple[MoFADecoder, torch.Tensor, torch.Tensor]:
    """The decoder with ``backend`` and the inputs of one cell.

    Returns:
        ``(decoder, codes, images)``: ``(B, 257)`` prior codes that require grad and a
        ``(B, 3, H, W)`` uniform random target, both seeded by ``seed``, on ``device``.
    """
    generator = torch.Generator().manual_seed(seed)
    codes = sample_codes(batch, generator=generator).to(device).requires_grad_(True)
    images = torch.rand(batch, 3, resolution, resolution, generator=generator).to(device)
    decoder = MoFADecoder(model, Camera(image_size=resolution), renderer=build_backend(backend, device)).to(device)
    return decoder, codes, images


def setup_cell(model: FaceModel, backend: str, batch: int, resolution: int, device: torch.device,
               seed: int = 0, time_render: bool = False) -> dict[str, Callable[[], Any]]:
    """Inputs of one cell and the closures to time.

    Args:
        model: face model, already on ``device`` in float32.
        backend: a :data:`BACKEND_VARIANTS` name.
        batch: B.
        resolution: image side H = W, px.
        device: where everything runs.
        seed: seed of the ``(B, 257)`` codes and the ``(B, 3, H, W)`` uniform target.
        time_render: include a ``render`` closure.

    Returns:
        ``{"forward", "forward_backward"[, "render"]}`` closures (see the module docstring).
    """
    decoder, codes, images = cell_inputs(model, backend, batch, resolution, device, seed)

    def forward() -> torch.Tensor:
        return photometric_loss(decoder.photometric_samples(decoder.form(codes), images))

    def forward_backward() -> None:
        forward().backward()
        codes.grad = None

    closures: dict[str, Callable[[], Any]] = {"forward": forward, "forward_backward": forward_backward}
    if time_render:
        def render() -> None:
            with torch.no_grad():
                decoder.render(codes.detach())

        closures["render"] = render
    return closures


def encoder_step_closure(encoder: str, batch: int, resolution: int, device: torch.device,
                         seed: int = 0) -> Callable[[], None]:
    """One encoder-only training step on a fixed random ``(B, 3, H, W)`` batch.

    Forward through the encoder, backward of ``mean(code²)`` (every weight gets a
    gradient) and the trainer's default AdaDelta step (lr 0.1, 0.0005 on z-translation).
    """
    from mofa_bench.config import OptimConfig
    from mofa_bench.encoders import build_encoder, parameter_groups

    torch.manual_seed(seed)
    net = build_encoder(encoder, image_size=resolution).to(device).train()
    optim = OptimConfig()
    optimizer = torch.optim.Adadelta(parameter_groups(net, optim.lr, optim.z_translation_lr), lr=optim.lr,
                                     foreach=True)
    images = torch.rand(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed)).to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        net(images).square().mean().backward()
        optimizer.step()

    return step


# ---------------------------------------------------------------------------- rows
def _row(spec: RendererBenchSpec, env: dict[str, Any], status: str, note: str = "", **values: Any) -> dict[str, Any]:
    return bench_row(RENDERER_COLUMNS, env, bench="renderers", device=torch.device(spec.device).type, status=status,
                    note=note, warmup=spec.warmup, repeats=spec.repeats, **values)


def _measured_values(m: CellMeasurement, batch: int) -> dict[str, Any]:
    fwdbwd = m.median_ms("forward_backward")
    return {"fwd_ms": m.median_ms("forward"), "fwdbwd_ms": fwdbwd, "render_ms": m.median_ms("render"),
            "images_per_s": batch / fwdbwd * 1000.0, "peak_mem_mb": m.peak_mem_mb, "peak_mem_kind": m.peak_mem_kind}


def _reference_row(spec: RendererBenchSpec, ref: ReferenceSpec, env: dict[str, Any]) -> dict[str, Any]:
    device = torch.device(spec.device)
    cell = {"backend": REFERENCE_PREFIX + ref.encoder, "batch": ref.batch, "resolution": ref.resolution}
    note = f"encoder-only {ref.encoder} training step (forward, backward, AdaDelta step)"
    try:
        step = encoder_step_closure(ref.encoder, ref.batch, ref.resolution, device, spec.seed)
        m = measure_cell({"forward_backward": step}, device, spec.warmup, spec.repeats)
    except CELL_ERRORS as err:
        free_device_memory(device)
        return _row(spec, env, "error", error_note(err), **cell)
    return _row(spec, env, "ok", note, **cell, **_measured_values(m, ref.batch))


def _group_rows(spec: RendererBenchSpec, env: dict[str, Any], backend: str, model: FaceModel, level: int,
                resolution: int, history: CostHistory, advance: Callable[[], None],
                deadline: Deadline) -> list[dict[str, Any]]:
    """Rows of one backend × level × resolution over all batches (budget-aware, ascending batch)."""
    device = torch.device(spec.device)
    budget = CellBudget(spec.budget_s, spec.calls_per_cell)
    base = {"backend": backend, "resolution": resolution, "level": level, "vertices": model.num_vertices,
            "faces": model.num_triangles}
    rows = GroupRows(sorted(spec.batches),
                     lambda status, note, batch, **values: _row(spec, env, status, note, batch=batch, **base,
                                                                **values),
                     advance)
    coords = (resolution, model.num_vertices)
    skipped = rows.skip_before_probing(deadline, budget, history, backend, coords,
                                       lambda point: f"{point[0]} px, {point[1]:,} vertices")
    if skipped is not None:
        return skipped
    try:
        probe = setup_cell(model, backend, 1, resolution, device, spec.seed)["forward_backward"]
        per_item = probe_seconds(probe, device, confirm=not history.has(backend))
    except CELL_ERRORS as err:
        free_device_memory(device)
        failure = error_note(err)
        return rows.finish("error", lambda b: failure)
    history.record(backend, coords, per_item)
    planner = BatchPlanner(budget, per_item)
    for batch in rows.batches:
        if planner.skip_note(batch):
            return rows.finish("skipped", lambda b: planner.skip_note(b) or "")
        try:
            closures = setup_cell(model, backend, batch, resolution, device, spec.seed, spec.time_render)
            m = measure_cell(closures, device, spec.warmup, spec.repeats)
        except CELL_ERRORS as err:
            free_device_memory(device)
            rows.add("error", error_note(err), batch)
        else:
            planner.observe(batch, m.median_ms("forward_backward") / 1000.0)
            rows.add("ok", "", batch, **_measured_values(m, batch))
    return rows.rows


def _add_ratios(rows: list[dict[str, Any]], reference: dict[str, Any] | None) -> None:
    """``ratio_to_alexnet_step`` for measured cells at the reference's batch and resolution."""
    if reference is None or reference["status"] != "ok":
        return
    for row in rows:
        if (row is not reference and row["status"] == "ok" and row["batch"] == reference["batch"]
                and row["resolution"] == reference["resolution"]):
            row["ratio_to_alexnet_step"] = row["fwdbwd_ms"] / reference["fwdbwd_ms"]


def group_order(spec: RendererBenchSpec) -> list[tuple[int, list[int]]]:
    """``[(level, [resolutions…])…]`` in the order the groups run.

    Ascending, except that the target's level and, within it, the reference resolution
    come first (when the grid has them), so that a run cut short by ``time_limit_s``
    still measures the cells the target is judged on.
    """
    levels = sorted(spec.levels)
    resolutions = sorted(spec.resolutions)
    first_resolution = spec.reference.resolution if spec.reference is not None else None
    if TARGET_LEVEL in levels:
        levels.remove(TARGET_LEVEL)
        levels.insert(0, TARGET_LEVEL)
    order = []
    for level in levels:
        mine = list(resolutions)
        if level == TARGET_LEVEL and first_resolution in mine:
            mine.remove(first_resolution)
            mine.insert(0, first_resolution)
        order.append((level, mine))
    return order


def run_renderer_bench(spec: RendererBenchSpec, model_loader: ModelLoader | None = None,
                       progress: bool = True,
                       on_rows: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    """Run the grid; one row per cell, one per unavailable backend, one for the reference.

    Cells run level by level (each model is loaded once; see :func:`group_order`: the
    target cell's group first) with batches ascending; rows come back as reference,
    unavailable backends, then cells by backend (in ``spec.backends`` order), level,
    resolution and batch.

    Args:
        spec: the grid (validated here).
        model_loader: ``level -> FaceModel`` (default: the built-in model subdivided).
        progress: show a tqdm bar over cells.
        on_rows: called with the rows so far after every group of cells (e.g. to write
            a partial CSV, so that an interrupted run keeps what it measured).

    Returns:
        Rows with the :data:`RENDERER_COLUMNS` and the environment columns.
    """
    from tqdm.auto import tqdm

    spec.validate()
    deadline = Deadline(spec.time_limit_s)
    device = torch.device(spec.device)
    loader = model_loader or load_default_model
    env = environment_columns(device)
    rows: list[dict[str, Any]] = []
    reference = None
    per_backend = spec.num_cells // len(spec.backends)
    bar = tqdm(total=spec.num_cells + (spec.reference is not None), disable=not progress, desc="bench renderers",
               unit="cell", dynamic_ncols=True)
    if spec.reference is not None:
        bar.set_postfix_str(f"reference {spec.reference.encoder} step")
        reference = _reference_row(spec, spec.reference, env)
        rows.append(reference)
        bar.update(1)
    states = {backend: backend_availability(backend, device) for backend in spec.backends}
    for backend in [b for b in spec.backends if not states[b].available]:
        rows.append(_row(spec, env, "unavailable", unavailable_note(states[backend]), backend=backend))
        bar.update(per_backend)
    history = CostHistory()
    cells: list[dict[str, Any]] = []
    for level, resolutions in group_order(spec):
        model = loader(level).to(device, torch.float32)
        for resolution in resolutions:
            for backend in [b for b in spec.backends if states[b].available]:
                bar.set_postfix_str(f"{backend} L{level} {resolution}px")
                cells.extend(_group_rows(spec, env, backend, model, level, resolution, history,
                                         lambda: bar.update(1), deadline))
                if on_rows is not None:
                    on_rows(rows + cells)
        del model
        free_device_memory(device)
    bar.close()
    order = {backend: i for i, backend in enumerate(spec.backends)}
    cells.sort(key=lambda r: (order[r["backend"]], r["level"], r["resolution"], r["batch"]))
    rows.extend(cells)
    _add_ratios(rows, reference)
    return rows


# ---------------------------------------------------------------------------- report
def target_summary(frame: Any, level: int = TARGET_LEVEL, threshold: float = TARGET_RATIO) -> list[str]:
    """Markdown lines: does each backend's fwd+bwd stay ≤ ``threshold`` × the AlexNet step?

    Reads everything from a results frame (the reference row and ``ratio_to_alexnet_step``).
    """
    refs = frame[frame["backend"].astype(str).str.startswith(REFERENCE_PREFIX)]
    title = f"**Target** (fwd+bwd ≤ {threshold:.0%} of an encoder-only AlexNet training step, level {level}):"
    if refs.empty or refs.iloc[0]["status"] != "ok":
        why = "no reference step in this run" if refs.empty else f"reference step failed: {refs.iloc[0]['note']}"
        return [title, "", f"- not checked: {why}", ""]
    ref = refs.iloc[0]
    batch, resolution = int(ref["batch"]), int(ref["resolution"])
    lines = [title, "",
             f"- reference: {ref['backend'][len(REFERENCE_PREFIX):]} step, batch {batch}, {resolution}² px: "
             f"{ref['fwdbwd_ms']:.1f} ms"]
    cells = frame[~frame["backend"].astype(str).str.startswith(REFERENCE_PREFIX)]
    for backend in dict.fromkeys(cells["backend"].astype(str)):
        mine = cells[cells["backend"] == backend]
        hit = mine[(mine["batch"] == batch) & (mine["resolution"] == resolution) & (mine["level"] == level)]
        if hit.empty:
            status = mine.iloc[0]["status"] if (mine["status"] == "unavailable").any() else "cell not in the grid"
            note = mine.iloc[0]["note"] if status == "unavailable" else ""
            lines.append(f"- {backend}: not measured ({status}{': ' + note if note else ''})")
            continue
        cell = hit.iloc[0]
        if cell["status"] != "ok":
            lines.append(f"- {backend}: not measured ({cell['status']}: {cell['note']})")
            continue
        ratio = float(cell["ratio_to_alexnet_step"])
        verdict = "PASS" if ratio <= threshold else "FAIL"
        lines.append(f"- {backend}: {verdict} — fwd+bwd {cell['fwdbwd_ms']:.1f} ms at {int(cell['vertices']):,} "
                     f"vertices = {ratio:.1%} of the step")
    return lines + [""]


#: How a ``renderers`` CSV becomes its Markdown table and plot (see :mod:`evaluation.bench.reports`).
RENDERERS_REPORT = ReportSpec(
    name="renderers",
    columns=RENDERER_COLUMNS,
    table=(
        Column("backend", "backend"), Column("batch", "batch", ",.0f"), Column("resolution", "px", ",.0f"),
        Column("level", "level", ".0f"), Column("vertices", "vertices", ",.0f"), Column("fwd_ms", "fwd ms", ",.1f"),
        Column("fwdbwd_ms", "fwd+bwd ms", ",.1f"), Column("images_per_s", "images/s", ",.1f"),
        Column("peak_mem_mb", "peak MiB", ",.0f"), Column("ratio_to_alexnet_step", "÷ AlexNet step", ".3f"),
        Column("status", "status"), Column("note", "note"),
    ),
    plot={"x": "batch", "y": "images_per_s", "hue": "backend", "facet_rows": "resolution", "facet_cols": "vertices",
          "xlabel": "batch", "ylabel": "images/s (fwd+bwd)",
          "facet_format": {"resolution": "{:.0f} px", "vertices": "{:,.0f} vertices"}},
    title="Renderer loss path, forward + backward ({device})",
    summary=target_summary,
)
