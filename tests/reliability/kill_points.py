"""Where the kill tests' child processes SIGKILL themselves: a countdown and the patches that reach it.

A child is told ``<point>:<n>`` and dies the n-th time (1-based) the point is reached.
"""

from __future__ import annotations

import os
import signal
from typing import Callable


class Countdown:
    """Calling it counts a reach of the kill point; the ``n``-th call SIGKILLs this process."""

    def __init__(self, n: int) -> None:
        self.n, self.reached = n, 0

    @property
    def due(self) -> bool:
        """The next call is the one that kills."""
        return self.reached + 1 == self.n

    def __call__(self) -> None:
        self.reached += 1
        if self.reached == self.n:
            os.kill(os.getpid(), signal.SIGKILL)


def kill_after_rows(countdown: Countdown) -> None:
    """Count every row the trainer appends to a CSV log, right after it is written."""
    import mofa_bench.training.trainer as trainer

    append_row = trainer.append_row

    def logged(path, row):
        append_row(path, row)
        countdown()

    trainer.append_row = logged


def kill_before_replace(countdown: Countdown, renames_onto: Callable[[str], bool]) -> None:
    """Count every ``os.replace`` onto a path ``renames_onto`` accepts, just before it happens."""
    replace = os.replace

    def checked(src, dst):
        if renames_onto(str(dst)):
            countdown()
        replace(src, dst)

    os.replace = checked
