"""Timing and peak memory of a benchmark cell.

Timing (:func:`time_callable`): ``warmup`` untimed calls, then ``repeats`` timed calls,
each bracketed by :func:`synchronize` (``torch.cuda.synchronize`` on CUDA, nothing on
the CPU) and measured with ``time.perf_counter``; a benchmark reports the median.

Peak memory (:class:`PeakMemory`), in MiB:

- CUDA: ``torch.cuda.max_memory_allocated`` since ``torch.cuda.reset_peak_memory_stats``
  at the start of the cell — the largest amount held by tensors at any moment of the
  cell, inputs and the face model included; not the caching allocator's reserve and not
  the CUDA context.
- CPU: the process's peak resident set size (Linux ``VmHWM``) during the cell, after
  resetting it to the current RSS by writing ``5`` to ``/proc/self/clear_refs``. It is
  the whole process (Python, libraries, models and memory the allocator kept from
  earlier cells), so it bounds the cell's need from above. Where the reset is not
  possible (not Linux, no permission) the value is NaN and the kind says why.

Budgets, time limits and error rows are generic (:mod:`evaluation.results.budget`,
:mod:`evaluation.results.rows`); :data:`BenchSpecError` is
:class:`evaluation.results.grid.SpecError`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any, Callable, Sequence

import torch

from evaluation.results.grid import SpecError, check_timing
from evaluation.results.rows import make_row

__all__ = [
    "BenchSpecError",
    "bench_row",
    "CellMeasurement",
    "PeakMemory",
    "Timing",
    "free_device_memory",
    "measure_cell",
    "probe_seconds",
    "synchronize",
    "time_callable",
]


#: ``/proc`` files used for the CPU peak-RSS reading (module attributes so tests can point them elsewhere).
CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")


#: A benchmark option is invalid (unknown backend or encoder, empty grid, bad number).
BenchSpecError = SpecError


def free_device_memory(device: torch.device) -> None:
    """Return cached CUDA blocks after a failed or finished cell (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels on ``device`` (CUDA); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------- timing
@dataclass(frozen=True)
class Timing:
    """Wall times of the timed calls of one callable.

    Attributes:
        samples_ms: per-call wall time, ms, in call order (``repeats`` values).
    """

    samples_ms: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        """Median per-call time, ms."""
        return float(median(self.samples_ms))

    @property
    def min_ms(self) -> float:
        """Fastest call, ms."""
        return float(min(self.samples_ms))


def time_callable(fn: Callable[[], Any], device: torch.device, warmup: int = 1, repeats: int = 5) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` calls timed one by one.

    Every timed call is bracketed by :func:`synchronize`, so on CUDA the time covers
    the kernels ``fn`` launched, not only their launch.

    Raises:
        SpecError: ``warmup < 0`` or ``repeats < 1``.
    """
    check_timing(warmup, repeats)
    for _ in range(warmup):
        fn()
    synchronize(device)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        samples.append((time.perf_counter() - start) * 1000.0)
    return Timing(tuple(samples))


def probe_seconds(fn: Callable[[], Any], device: torch.device, confirm: bool = True) -> float:
    """Seconds of one call of ``fn``, the basis of a group's estimates.

    A first call can carry one-off costs (lazy imports, kernel compilation such as
    nvdiffrast's plugin build, CUDA context and allocator growth), which on a GPU can be
    many times a warm call. With ``confirm`` (meant for the first probe of a backend) the
    call is made twice and the second time is used.
    """
    seconds = time_callable(fn, device, warmup=0, repeats=1).median_ms / 1000.0
    if confirm:
        seconds = time_callable(fn, device, warmup=0, repeats=1).median_ms / 1000.0
    return seconds


# ---------------------------------------------------------------------------- memory
class PeakMemory:
    """Peak memory of a cell on ``device``, in MiB (see the module docstring for the meaning).

    Usage: ``mem = PeakMemory(device); mem.reset(); ...; mem.read_mb()``.

    Attributes:
        kind: what :meth:`read_mb` measures: ``"cuda max_memory_allocated"``,
            ``"cpu process peak RSS (VmHWM)"`` or ``"unavailable: <why>"``.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = "cuda max_memory_allocated" if device.type == "cuda" else "cpu process peak RSS (VmHWM)"

    def reset(self) -> None:
        """Start a new peak at the current usage."""
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            CLEAR_REFS.write_text("5")
        except OSError as err:
            self.kind = f"unavailable: cannot reset the peak RSS ({CLEAR_REFS}: {err.strerror or err})"

    def read_mb(self) -> float:
        """Peak since :meth:`reset`, MiB (NaN when unavailable)."""
        if self.device.type == "cuda":
            synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self.kind.startswith("unavailable"):
            return math.nan
        try:
            for line in STATUS.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
        except (OSError, ValueError, IndexError) as err:
            self.kind = f"unavailable: cannot read VmHWM ({err})"
            return math.nan
        self.kind = f"unavailable: no VmHWM line in {STATUS}"
        return math.nan


@dataclass(frozen=True)
class CellMeasurement:
    """Timings of the callables of one cell and the cell's peak memory.

    Attributes:
        timings: ``{name: Timing}`` in the order the callables were timed.
        peak_mem_mb: peak memory over all of them, MiB (NaN when unavailable).
        peak_mem_kind: what ``peak_mem_mb`` measures (:attr:`PeakMemory.kind`).
    """

    timings: dict[str, Timing]
    peak_mem_mb: float
    peak_mem_kind: str

    def median_ms(self, name: str) -> float:
        """Median time of callable ``name``, ms (NaN if it was not timed)."""
        timing = self.timings.get(name)
        return timing.median_ms if timing else math.nan


def measure_cell(fns: dict[str, Callable[[], Any]], device: torch.device, warmup: int, repeats: int) -> CellMeasurement:
    """Time each callable in turn (:func:`time_callable`) under one peak-memory window."""
    memory = PeakMemory(device)
    memory.reset()
    timings = {name: time_callable(fn, device, warmup, repeats) for name, fn in fns.items()}
    return CellMeasurement(timings, memory.read_mb(), memory.kind)


def bench_row(columns: Sequence[str], env: dict[str, Any], **values: Any) -> dict[str, Any]:
    """A benchmark row (:func:`~evaluation.results.rows.make_row`); ``peak_mem_kind`` is ``""`` unless given."""
    return make_row(columns, env, **{"peak_mem_kind": "", **values})
