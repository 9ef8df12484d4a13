"""``mofa-bench bench pytorch3d-bins``: PyTorch3D's coarse-to-fine settings on one cell.

PyTorch3D's CUDA rasterizer first sorts triangles into square bins of ``bin_size`` px
(the coarse kernel), each holding at most ``max_faces_per_bin`` triangles, then tests
each pixel against its bin's triangles (the fine kernel, whose cost grows with the
capacity). PyTorch3D's defaults are a bin side from the image size and a fixed capacity
``max(10000, F / 5)``, while the triangles a bin receives depend on where the mesh lands:
a face drawn small packs its triangles into few bins. This benchmark times the ``bench
renderers`` loss path (formation → photometric samples → loss → backward) for each pair of
settings and compares the predicted pixels with a reference that cannot overflow
(PyTorch3D's bin side with the ``"auto"`` capacity of
:func:`renderers.pytorch3d.bin_capacity`): too small a capacity silently drops
triangles, and such settings are reported, not timed.

Rows (``<out>/pytorch3d_bins_<device>.csv``): ``bin_size``, ``max_faces_per_bin``
(``default`` = PyTorch3D's choice, ``auto`` = sized from the triangles), ``fwdbwd_ms``
(median), ``speedup`` (time with PyTorch3D's defaults / this time), ``max_abs_diff`` and
``mismatched_pixels`` of the predicted colours against the reference, ``status`` (``ok``;
``mismatch``: pixels differ, not timed; ``error``). The table ``.md`` is made from the CSV
by :data:`BINS_REPORT`, as ``mofa-bench bench report`` re-makes it.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from evaluation.bench.measure import BenchSpecError, bench_row, time_callable
from evaluation.bench.renderers import BACKEND_VARIANTS, cell_inputs, load_default_model
from evaluation.results.grid import expand_grid
from evaluation.results.report import Column, ReportSpec, write_results_report
from evaluation.results.rows import environment_columns, write_csv
from mofa_bench.environment import resolve_device
from mofa_bench.losses import photometric_loss
from renderers import get_renderer

__all__ = ["BINS_REPORT", "BIN_COLUMNS", "BinSweepSpec", "bins_heading", "run_bin_sweep"]

BIN_COLUMNS = (
    "bench", "backend", "device", "batch", "resolution", "level", "vertices", "faces", "bin_size",
    "max_faces_per_bin", "fwdbwd_ms", "speedup", "max_abs_diff", "mismatched_pixels", "status", "note",
    "warmup", "repeats", "timestamp",
)

#: A predicted colour further than this from the defaults' counts as a mismatched pixel.
PIXEL_TOLERANCE = 1e-5


@dataclass(frozen=True)
class BinSweepSpec:
    """The cell and the settings to sweep.

    Attributes:
        backend: ``pytorch3d`` or ``pytorch3d-soft`` (its options are kept, the bin settings added).
        batch: B.
        resolution: image side, px.
        level: default-model subdivision level.
        device: a CUDA device (PyTorch3D's CPU kernel has no bins).
        bin_sizes: bin sides in px; ``None`` = PyTorch3D's heuristic. PyTorch3D allows
            fewer than 22 bins per image side.
        max_faces: bin capacities; ``None`` = PyTorch3D's ``max(10000, F / 5)``, ``"auto"`` =
            sized per call from the triangles (:func:`renderers.pytorch3d.bin_capacity`).
        warmup: untimed calls per setting.
        repeats: timed calls per setting (median reported).
        seed: seed of the codes and the target image.
    """

    backend: str = "pytorch3d"
    batch: int = 64
    resolution: int = 240
    level: int = 3
    device: str = "cuda"
    bin_sizes: tuple[int | None, ...] = (None, 32, 64)
    max_faces: tuple[int | str | None, ...] = (None, "auto", 4000)
    warmup: int = 2
    repeats: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.backend not in ("pytorch3d", "pytorch3d-soft"):
            raise BenchSpecError(f"backend: expected pytorch3d or pytorch3d-soft, got {self.backend!r}")
        for name in ("batch", "resolution", "repeats"):
            if getattr(self, name) < 1:
                raise BenchSpecError(f"{name}: expected >= 1, got {getattr(self, name)}")
        if any(b is not None and b < 1 for b in self.bin_sizes):
            raise BenchSpecError(f"bin_sizes: expected sides >= 1 px, got {self.bin_sizes}")
        if any(m is not None and m != "auto" and (not isinstance(m, int) or m < 1) for m in self.max_faces):
            raise BenchSpecError(f"max_faces: expected capacities >= 1, got {self.max_faces}")


@contextmanager
def native_output_silenced() -> Iterator[None]:
    """Send what native code writes to the process's stdout and stderr to the null device.

    PyTorch3D's CUDA kernel prints its bin-overflow warning from every thread block that
    overflows (megabytes per call); the sweep detects overflows from the pixels instead.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(fd) for fd in (1, 2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            os.dup2(devnull, fd)
        yield
    finally:
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # device printf output is flushed at synchronization
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def _label(value: int | str | None) -> Any:
    return "default" if value is None else value


def run_bin_sweep(spec: BinSweepSpec, out: str | Path) -> tuple[list[dict[str, Any]], Path, Path]:
    """Time every (bin_size, max_faces_per_bin) pair; returns ``(rows, csv path, md path)``.

    ``speedup`` is NaN on every row when PyTorch3D's defaults (``None``, ``None``) are not
    in the sweep or overflow.

    Raises:
        BenchSpecError: the device is not CUDA.
    """
    device = resolve_device(spec.device)
    if device.type != "cuda":
        raise BenchSpecError(f"device: PyTorch3D bins exist on CUDA only, got {device}")
    model = load_default_model(spec.level).to(device, torch.float32)
    decoder, codes, images = cell_inputs(model, spec.backend, spec.batch, spec.resolution, device, spec.seed)
    name, options = BACKEND_VARIANTS[spec.backend]
    env = environment_columns(device)
    cell = dict(bench="pytorch3d-bins", backend=spec.backend, device=str(device), batch=spec.batch,
                resolution=spec.resolution, level=spec.level, vertices=model.num_vertices,
                faces=model.num_triangles, warmup=spec.warmup, repeats=spec.repeats)

    def predicted() -> torch.Tensor:
        with torch.no_grad():
            return decoder.photometric_samples(decoder.form(codes), images).predicted

    def forward_backward() -> None:
        photometric_loss(decoder.photometric_samples(decoder.form(codes), images)).backward()
        codes.grad = None

    decoder.renderer = get_renderer(name, device, **options, bin_size=None, max_faces_per_bin="auto")
    reference = predicted()
    rows: list[dict[str, Any]] = []
    baseline_ms = float("nan")
    for setting in expand_grid({"bin_size": spec.bin_sizes, "max_faces": spec.max_faces}):
        bin_size, max_faces = setting["bin_size"], setting["max_faces"]
        decoder.renderer = get_renderer(name, device, **options, bin_size=bin_size, max_faces_per_bin=max_faces)
        values: dict[str, Any] = dict(cell, bin_size=_label(bin_size), max_faces_per_bin=_label(max_faces))
        try:
            with native_output_silenced():  # an overflowing bin prints a warning per thread block
                diff = (predicted() - reference).abs().amax(dim=-1)
            mismatched = int((diff > PIXEL_TOLERANCE).sum())
            values.update(max_abs_diff=float(diff.max()), mismatched_pixels=mismatched)
            if mismatched:
                rows.append(bench_row(BIN_COLUMNS, env, **values, status="mismatch",
                                     note="differs from the reference (a bin overflowed and dropped "
                                          "triangles); not timed"))
                continue
            timing = time_callable(forward_backward, device, spec.warmup, spec.repeats)
        except (RuntimeError, ValueError) as exc:
            rows.append(bench_row(BIN_COLUMNS, env, **values, status="error",
                                 note=f"{type(exc).__name__}: {exc}".splitlines()[0][:200]))
            torch.cuda.empty_cache()
            continue
        if bin_size is None and max_faces is None:
            baseline_ms = timing.median_ms
        rows.append(bench_row(BIN_COLUMNS, env, **values, fwdbwd_ms=timing.median_ms, status="ok"))
    for row in rows:
        row["speedup"] = baseline_ms / row["fwdbwd_ms"] if row["status"] == "ok" else float("nan")
    stem = Path(out) / f"pytorch3d_bins_{device.type}"
    csv_path = write_csv(rows, stem.with_suffix(".csv"), BIN_COLUMNS)
    md_path, _ = write_results_report(csv_path, {BINS_REPORT.name: BINS_REPORT})
    return rows, csv_path, md_path


def bins_heading(frame: Any) -> list[str]:
    """The sentence above the table: the cell (backend, batch, size, level, vertices) and the device."""
    cell = frame.iloc[0]
    return [f"PyTorch3D bin settings, {cell['backend']}, batch {int(cell['batch'])}, {int(cell['resolution'])}² px, "
            f"level {int(cell['level'])} ({int(cell['vertices']):,} vertices), {cell['device_name']}; "
            "forward+backward of the loss path.", ""]


#: How a ``pytorch3d-bins`` CSV becomes its Markdown table (see :mod:`evaluation.bench.reports`); no plot.
BINS_REPORT = ReportSpec(
    name="pytorch3d-bins",
    columns=BIN_COLUMNS,
    table=(
        Column("bin_size", "bin_size"), Column("max_faces_per_bin", "max_faces_per_bin"),
        Column("fwdbwd_ms", "fwd+bwd ms", ".1f"), Column("speedup", "× defaults", ".2f"),
        Column("mismatched_pixels", "pixels ≠ reference", ",d"), Column("status", "status"),
    ),
    title="PyTorch3D bin settings ({device})",
    heading=bins_heading,
)
