"""Progress of long work: a tqdm bar where one is wanted, and the same counts to a listener.

Long steps (drawing a training set, training, scoring the test faces) count their work with
:class:`Progress`, which behaves like a tqdm bar (``update``, ``set_postfix``, ``close``) and
can show one. Whoever runs such work inside its own display — a suite showing one bar over
its runs — installs a listener with :func:`listen` and receives a :class:`ProgressUpdate`
(what is being done, how far along, the latest loss, time left) at most every
``min_interval_s`` seconds, so its bar says where the current run is without a second bar::

    with listen(lambda update: bar.set_postfix_str(update.describe())):
        train(...)
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

__all__ = ["Listener", "Progress", "ProgressUpdate", "labelled", "listen"]


@dataclass(frozen=True)
class ProgressUpdate:
    """Where a piece of long work stands.

    Attributes:
        task: what is being done (e.g. ``"train quick"``, ``"drawing training faces"``).
        done: units done so far, including any done before a resume.
        total: units in all.
        unit: what a unit is (``"step"``, ``"img"``).
        remaining_s: estimated seconds left from this sitting's rate, or ``None`` before
            the first unit of this sitting.
        postfix: the latest extra figures (e.g. ``"loss 0.1234"``), or ``""``.
    """

    task: str
    done: int
    total: int
    unit: str
    remaining_s: float | None
    postfix: str = ""

    def describe(self) -> str:
        """One line: ``"train quick 120/300 step, loss 0.2113, 1:10 left"``."""
        parts = [f"{self.task} {self.done}/{self.total} {self.unit}"]
        if self.postfix:
            parts.append(self.postfix)
        if self.remaining_s is not None:
            parts.append(f"{_clock(self.remaining_s)} left")
        return ", ".join(parts)


def _clock(seconds: float) -> str:
    """``seconds`` as ``m:ss`` (or ``h:mm:ss`` from an hour)."""
    whole = max(int(round(seconds)), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


Listener = Callable[[ProgressUpdate], None]
_LISTENER: ContextVar[Listener | None] = ContextVar("mofa_bench_progress_listener", default=None)


@contextmanager
def listen(listener: Listener) -> Iterator[None]:
    """Send the updates of every :class:`Progress` made inside the block to ``listener``."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


@contextmanager
def labelled(prefix: str) -> Iterator[None]:
    """Prefix the task of every update made inside the block (``"decoder stage: train ..."``)."""
    outer = _LISTENER.get()
    if outer is None:
        yield
        return
    with listen(lambda update: outer(replace(update, task=f"{prefix}: {update.task}"))):
        yield


class Progress:
    """A counter of long work with a tqdm bar (when ``show``) and updates to the listener.

    Args:
        total: units in all.
        task: what is being done (the bar's label).
        unit: what a unit is.
        show: draw a tqdm bar on stderr.
        initial: units already done (a resumed run).
        min_interval_s: the listener hears at most this often (and always at the end).
    """

    def __init__(self, total: int, task: str, unit: str = "it", show: bool = True, initial: int = 0,
                 min_interval_s: float = 0.5) -> None:
        from tqdm.auto import tqdm

        self.total, self.task, self.unit = int(total), task, unit
        self.done = self._start_done = int(initial)
        self.postfix = ""
        self.min_interval_s = min_interval_s
        self._started = time.perf_counter()
        self._last_sent = -float("inf")
        self._listener = _LISTENER.get()
        self._bar = tqdm(total=total, initial=initial, desc=task, unit=unit, dynamic_ncols=True) if show else None
        self._send(force=True)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        self._send(force=self.done >= self.total)

    def set_postfix(self, **values: Any) -> None:
        """Show ``values`` after the count (``loss="0.1234"`` → ``"loss 0.1234"``)."""
        self.postfix = ", ".join(f"{key} {value}" for key, value in values.items())
        if self._bar is not None:
            self._bar.set_postfix(**values)

    def close(self) -> None:
        """Close the bar (the listener keeps the last update it heard)."""
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def remaining_s(self) -> float | None:
        """Seconds left at this sitting's rate, or ``None`` before its first unit."""
        done_here = self.done - self._start_done
        if done_here <= 0:
            return None
        elapsed = time.perf_counter() - self._started
        return elapsed / done_here * max(self.total - self.done, 0)

    def _send(self, force: bool = False) -> None:
        if self._listener is None:
            return
        now = time.perf_counter()
        if not force and now - self._last_sent < self.min_interval_s:
            return
        self._last_sent = now
        self._listener(ProgressUpdate(self.task, self.done, self.total, self.unit, self.remaining_s(), self.postfix))
