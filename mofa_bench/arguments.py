"""argparse value types of the command line: a bad value is refused naming the flag (exit 2)."""

from __future__ import annotations

import argparse
import math
from typing import Callable

__all__ = ["positive_int", "positive_number"]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_number(unit: str = "") -> Callable[[str], float]:
    """argparse type: a finite number > 0, its messages naming ``unit`` (e.g. ``"seconds"``)."""
    what = f"number of {unit}" if unit else "number"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {what} > 0, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"expected a finite {what} > 0, got {text}")
        return value

    return parse
