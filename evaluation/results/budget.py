"""Per-cell time budgets and a run's time limit, so that a bounded run still writes a complete grid.

A cell is run only if its estimated wall time fits the budget: seconds per call × calls
per cell (:class:`CellBudget`). Seconds per call start linear in the batch (from one
probe call at the group's smallest batch, then from the first measured cell) and, once
two cells of the group are measured, follow the line through the two largest (see
:class:`BatchPlanner`). Groups whose smaller sibling (lower or equal in every coordinate,
same family) was already too expensive are skipped without a probe (:class:`CostHistory`).
Groups that start after the run's limit (:class:`Deadline`) are recorded as ``skipped``.
:class:`GroupRows` collects the rows of one group, one per batch, whatever their status.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from evaluation.results.grid import SpecError

__all__ = ["BatchPlanner", "CellBudget", "CostHistory", "Deadline", "GroupRows"]


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
            raise SpecError(f"--budget-s: expected a time > 0 s, got {self.seconds}")
        if self.calls_per_cell < 1:
            raise SpecError(f"calls_per_cell: expected ≥ 1, got {self.calls_per_cell}")

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
    """Probe costs per family (e.g. one method) at grid coordinates (e.g. image size, model size).

    :meth:`lower_bound` gives the largest cost of a probed point that is ≤ the query in
    every coordinate: where work grows with every coordinate, a larger point costs at
    least that much.
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
    """The wall-clock limit of a whole run (``--time-limit-s``).

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

        ``describe(coords)`` names the smaller point in the note (e.g. ``"128 px, level 2"``).
        """
        late = deadline.note()
        if late:
            return self.finish("skipped", lambda b: late)
        bound, source = history.lower_bound(family, coords)
        if source is not None and budget.skip_note(budget.estimate_s(bound, self.batches[0])):
            basis = f"lower bound from {describe(source)}"
            return self.finish("skipped", lambda b: budget.skip_note(budget.estimate_s(bound, b), basis) or "")
        return None
