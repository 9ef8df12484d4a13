"""Timing, peak memory and per-cell time budgets shared by every benchmark.

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

Budgets (:class:`CellBudget`, :class:`BatchPlanner`, :class:`CostHistory`): a cell is
run only if its estimated wall time fits the budget: seconds per call × calls per cell.
Seconds per call start linear in the batch (from one probe call at the group's smallest
batch — batch 1 for renderers — then from the first measured cell) and, once two cells
of the group are measured, follow the line through the two largest (see
:class:`BatchPlanner`). Groups whose smaller sibling (lower or equal resolution and model size, same
backend) was already too expensive are skipped without a probe, since cost grows with
both. The first probe of a backend is made twice and the second (warm) call is used,
so one-off costs of a first call (kernel compilation, lazy imports) do not skip cells.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any, Callable, Sequence, TypeVar

import torch

from mofa_bench.errors import ConfigError

__all__ = [
    "CELL_ERRORS",
    "BenchSpecError",
    "BatchPlanner",
    "CellBudget",
    "CellMeasurement",
    "CostHistory",
    "Deadline",
    "GroupRows",
    "PeakMemory",
    "Timing",
    "check_sizes",
    "check_time_limit",
    "check_timing",
    "error_note",
    "free_device_memory",
    "measure_cell",
    "probe_seconds",
    "spec_preset",
    "synchronize",
    "time_callable",
]

#: A benchmark spec dataclass (see :func:`spec_preset`).
S = TypeVar("S")

#: ``/proc`` files used for the CPU peak-RSS reading (module attributes so tests can point them elsewhere).
CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")


class BenchSpecError(ConfigError):
    """A benchmark option is invalid (unknown backend or encoder, empty grid, bad number)."""


#: Failures of one cell that become an ``error`` row instead of stopping the benchmark
#: (CUDA out of memory, backend and input errors, a backend's compiled part that fails to
#: build or load; torch raises RuntimeError subclasses).
CELL_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, ValueError, ImportError, OSError)


def check_sizes(name: str, values: Sequence[int], minimum: int = 1) -> None:
    """Raise :class:`BenchSpecError` unless ``values`` is a non-empty sequence of ints ≥ ``minimum``."""
    if not values:
        raise BenchSpecError(f"{name}: expected at least one value")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise BenchSpecError(f"{name}: expected integers ≥ {minimum}, got {value!r}")


def check_time_limit(seconds: float | None) -> None:
    """Raise :class:`BenchSpecError` unless ``seconds`` is ``None`` or a time > 0."""
    if seconds is not None and not (isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
                                    and seconds > 0):
        raise BenchSpecError(f"--time-limit-s: expected a time > 0 s, got {seconds!r}")


def check_timing(warmup: int, repeats: int) -> None:
    """Raise :class:`BenchSpecError` unless ``warmup ≥ 0`` and ``repeats ≥ 1``."""
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise BenchSpecError(f"warmup: expected an integer ≥ 0, got {warmup!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise BenchSpecError(f"repeats: expected an integer ≥ 1, got {repeats!r}")


def error_note(err: BaseException) -> str:
    """``"<Type>: <first line of the message>"``, at most 300 characters (for a row's note)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:300]


def free_device_memory(device: torch.device) -> None:
    """Return cached CUDA blocks after a failed or finished cell (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def spec_preset(cls: type[S], device: str, quick_grid: dict[str, Any] | None, changes: dict[str, Any]) -> S:
    """A benchmark spec dataclass on ``device``: the quick grid or the full one, then ``changes``.

    ``quick_grid`` (field values of the CPU-sized grid) also sets warm-up 1 and 3 repeats;
    ``None`` is the class's full grid, with its own timing on CUDA and warm-up 1 and 5
    repeats on the CPU. ``None`` values in ``changes`` are ignored. The result is validated.
    """
    from mofa_bench.environment import resolve_device

    dev = resolve_device(device)
    if quick_grid is not None:
        base = cls(device=str(dev), warmup=1, repeats=3, **quick_grid)
    elif dev.type == "cuda":
        base = cls(device=str(dev))
    else:
        base = cls(device=str(dev), warmup=1, repeats=5)
    return dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None}).validate()


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
        BenchSpecError: ``warmup < 0`` or ``repeats < 1``.
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


# ---------------------------------------------------------------------------- budgets
@dataclass(frozen=True)
class CellBudget:
    """The most wall time one cell may be expected to take.

    Attributes:
        seconds: budget per cell, s (``inf`` disables skipping).
        calls_per_cell: calls one cell makes, warm-up included; each is costed like
            the probed call (an overestimate for the cheaper ones, e.g. forward only).
    """

    seconds: float
    calls_per_cell: int

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise BenchSpecError(f"--budget-s: expected a time > 0 s, got {self.seconds}")
        if self.calls_per_cell < 1:
            raise BenchSpecError(f"calls_per_cell: expected ≥ 1, got {self.calls_per_cell}")

    def estimate_s(self, per_item_s: float, batch: int) -> float:
        """Estimated cell time, s: ``per_item_s · batch · calls_per_cell``."""
        return per_item_s * batch * self.calls_per_cell

    def skip_note(self, estimate_s: float, basis: str = "") -> str | None:
        """``"estimated N s > budget B s"`` when the estimate exceeds the budget, else ``None``."""
        if estimate_s <= self.seconds:
            return None
        estimate = f"{estimate_s:.3g}" if estimate_s < 100 else f"{estimate_s:,.0f}"
        return f"estimated {estimate} s > budget {self.seconds:g} s" + (f" ({basis})" if basis else "")


@dataclass
class BatchPlanner:
    """Decides, batch by batch in increasing order, which cells of one group fit the budget.

    Before two cells of the group are measured, a call is estimated linear in the batch
    (``per_item_s · batch``). From two measured cells on, the estimate is the straight
    line through the two largest ones, ``t(b) = t₂ + slope · (b - b₂)`` with the slope
    kept ≥ 0: on a GPU a call's time is often nearly flat in the batch (launch-bound),
    which the linear rule would overestimate many times over.

    Attributes:
        budget: the per-cell budget.
        per_item_s: current seconds per item and call (probe, then measured cells).
        basis: where the estimate comes from (shown in skip notes).
        measured: ``(batch, seconds per call)`` of the measured cells, in order.
    """

    budget: CellBudget
    per_item_s: float
    basis: str = "batch-1 probe"
    measured: list[tuple[int, float]] = field(default_factory=list)

    def seconds_per_call(self, batch: int) -> float:
        """Estimated seconds of one call at ``batch``."""
        if len(self.measured) < 2:
            return self.per_item_s * batch
        (b1, t1), (b2, t2) = sorted(self.measured)[-2:]
        slope = max((t2 - t1) / (b2 - b1), 0.0) if b2 != b1 else t2 / b2
        return t2 + slope * (batch - b2)

    def skip_note(self, batch: int) -> str | None:
        """Why the batch-``batch`` cell is skipped, or ``None`` when it fits."""
        estimate = self.seconds_per_call(batch) * self.budget.calls_per_cell
        return self.budget.skip_note(estimate, self.basis)

    def observe(self, batch: int, seconds_per_call: float) -> None:
        """Use a measured cell (its median seconds per call) for the next estimates."""
        if math.isfinite(seconds_per_call) and seconds_per_call > 0:
            self.per_item_s = seconds_per_call / batch
            self.measured.append((batch, seconds_per_call))
            if len(self.measured) >= 2:
                batches = sorted(b for b, _ in self.measured)[-2:]
                self.basis = f"line through batches {batches[0]} and {batches[1]}"
            else:
                self.basis = f"from batch {batch}"


@dataclass
class CostHistory:
    """Probe costs per family (e.g. backend) at grid coordinates (e.g. resolution, vertices).

    :meth:`lower_bound` gives the largest cost of a probed point that is ≤ the query in
    every coordinate: work grows with resolution and vertex count, so a larger point
    costs at least that much.
    """

    points: dict[str, list[tuple[tuple[float, ...], float]]] = field(default_factory=dict)

    def record(self, family: str, coords: Sequence[float], per_item_s: float) -> None:
        """Store the probe cost (s per item) of ``family`` at ``coords``."""
        self.points.setdefault(family, []).append((tuple(coords), per_item_s))

    def has(self, family: str) -> bool:
        """Whether ``family`` was probed before."""
        return bool(self.points.get(family))

    def lower_bound(self, family: str, coords: Sequence[float]) -> tuple[float, tuple[float, ...] | None]:
        """``(seconds per item, coords it came from)``; ``(0, None)`` when nothing smaller was probed."""
        best: tuple[float, tuple[float, ...] | None] = (0.0, None)
        for point, cost in self.points.get(family, []):
            if all(p <= c for p, c in zip(point, coords)) and cost > best[0]:
                best = (cost, point)
        return best


@dataclass
class Deadline:
    """The wall-clock limit of a whole benchmark run (``--time-limit-s``).

    Groups of cells that start after the limit are recorded as ``skipped`` with
    :meth:`note`, so a bounded run still writes a complete grid.

    Attributes:
        seconds: the limit, s, from construction (``None``: no limit).
        start: ``time.perf_counter()`` at construction.
    """

    seconds: float | None
    start: float = field(default_factory=time.perf_counter)

    def note(self) -> str | None:
        """``"run time limit N s reached"`` once the limit has passed, else ``None``."""
        if self.seconds is None or time.perf_counter() - self.start < self.seconds:
            return None
        return f"run time limit {self.seconds:g} s reached"


@dataclass
class GroupRows:
    """The rows of one group of cells (one per batch, ascending), added as each is decided.

    Attributes:
        batches: the group's batch sizes, ascending.
        make_row: ``(status, note, batch, **values) -> row`` with the group's fixed columns.
        advance: called once per row (a progress bar's update).
        rows: the rows so far.
    """

    batches: list[int]
    make_row: Callable[..., dict[str, Any]]
    advance: Callable[[], None]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, status: str, note: str, batch: int, **values: Any) -> None:
        """Append the row of the batch-``batch`` cell."""
        self.rows.append(self.make_row(status, note, batch, **values))
        self.advance()

    def finish(self, status: str, notes: Callable[[int], str]) -> list[dict[str, Any]]:
        """Give every batch without a row ``status`` and ``notes(batch)``; returns all rows."""
        for batch in self.batches[len(self.rows):]:
            self.add(status, notes(batch), batch)
        return self.rows

    def skip_before_probing(self, deadline: Deadline, budget: CellBudget, history: CostHistory, family: str,
                            coords: Sequence[float], describe: Callable[[tuple[float, ...]], str]
                            ) -> list[dict[str, Any]] | None:
        """All rows, skipped, when the run's time is up or a smaller probed point of
        ``family`` already puts the smallest batch over the budget; else ``None``.

        ``describe(coords)`` names the smaller point in the note (e.g. ``"128 px, 7,257 vertices"``).
        """
        late = deadline.note()
        if late:
            return self.finish("skipped", lambda b: late)
        bound, source = history.lower_bound(family, coords)
        if source is not None and budget.skip_note(budget.estimate_s(bound, self.batches[0])):
            basis = f"lower bound from {describe(source)}"
            return self.finish("skipped", lambda b: budget.skip_note(budget.estimate_s(bound, b), basis) or "")
        return None
