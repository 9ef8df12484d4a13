"""``mofa-bench bench profile``: where one renderer cell's forward+backward time goes.

Runs the loss path of ``bench renderers`` (image formation → photometric samples →
photometric loss → backward to the code) under ``torch.profiler`` with one labelled range
per stage (``mofa::form``, ``mofa::photometric_samples``, ``mofa::loss``,
``mofa::backward``) and writes two tables to ``<out>/profile_<backend>_<device>.txt``:
the stages, and the operators with the most device time (CUDA) or CPU time. Wall time per
step and the number of kernel launches per step are printed with them, since on a GPU a
small per-step workload is often bound by launches rather than arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from evaluation.bench.measure import synchronize, time_callable
from evaluation.bench.renderers import cell_inputs, load_default_model
from mofa_bench.environment import resolve_device
from mofa_bench.losses import photometric_loss

__all__ = ["ProfileSpec", "profile_cell"]

STAGES = ("mofa::form", "mofa::photometric_samples", "mofa::loss", "mofa::backward")


@dataclass(frozen=True)
class ProfileSpec:
    """One cell to profile.

    Attributes:
        backend: a ``bench renderers`` backend name.
        batch: B.
        resolution: image side, px.
        level: default-model subdivision level.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:i"``.
        steps: profiled forward+backward steps (after ``warmup`` unprofiled ones).
        warmup: unprofiled steps first.
        rows: operators listed.
    """

    backend: str = "per_vertex"
    batch: int = 64
    resolution: int = 240
    level: int = 3
    device: str = "auto"
    steps: int = 5
    warmup: int = 3
    rows: int = 25


def profile_cell(spec: ProfileSpec, out: str | Path) -> tuple[Path, str]:
    """Profile ``spec``'s cell; returns ``(report path, report text)``."""
    from torch.profiler import ProfilerActivity, profile, record_function

    device = resolve_device(spec.device)
    model = load_default_model(spec.level).to(device, torch.float32)
    decoder, codes, images = cell_inputs(model, spec.backend, spec.batch, spec.resolution, device)

    def step() -> None:
        with record_function(STAGES[0]):
            formed = decoder.form(codes)
        with record_function(STAGES[1]):
            samples = decoder.photometric_samples(formed, images)
        with record_function(STAGES[2]):
            loss = photometric_loss(samples)
        with record_function(STAGES[3]):
            loss.backward()
        codes.grad = None

    wall_ms = time_callable(step, device, spec.warmup, spec.steps).median_ms

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, acc_events=True) as prof:
        for _ in range(spec.steps):
            step()
        synchronize(device)
    events = prof.key_averages()
    on_device = device.type == "cuda"
    sort_key = "device_time_total" if on_device else "cpu_time_total"
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC"))
    lines = [
        f"profile: backend {spec.backend}, batch {spec.batch}, {spec.resolution}² px, level {spec.level} "
        f"({model.num_vertices:,} vertices), {device} ({_device_name(device)}), torch {torch.__version__}",
        f"wall time per forward+backward step (unprofiled, median): {wall_ms:.2f} ms",
    ]
    if on_device:
        lines.append(f"kernel launches per step: {launches / spec.steps:.0f}")
    lines += ["", "stages (totals over the profiled steps):",
              _stage_table(events, spec.steps, on_device), "",
              f"top {spec.rows} operators by {'device' if on_device else 'CPU'} time:",
              events.table(sort_by=sort_key, row_limit=spec.rows)]
    text = "\n".join(lines)
    path = Path(out) / f"profile_{spec.backend}_{device.type}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return path, text


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def _stage_table(events: Any, steps: int, on_device: bool) -> str:
    """Per-stage CPU time (and device time on CUDA) per step, ms.

    A labelled range appears twice in the profile on CUDA (the CPU range and its GPU
    annotation, under the same name); each column takes the entry that carries it.
    """
    rows = ["| stage | CPU ms/step |" + (" device ms/step |" if on_device else ""),
            "|:---|---:|" + ("---:|" if on_device else "")]
    for stage in STAGES:
        entries = [e for e in events if e.key == stage]
        if not entries:
            continue
        cpu_ms = max(e.cpu_time_total for e in entries) / 1000.0 / steps
        row = f"| {stage.split('::')[1]} | {cpu_ms:.2f} |"
        if on_device:
            device_ms = max(getattr(e, "device_time_total", 0.0) for e in entries) / 1000.0 / steps
            row += f" {device_ms:.2f} |"
        rows.append(row)
    return "\n".join(rows)
