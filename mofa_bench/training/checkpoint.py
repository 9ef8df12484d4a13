"""Atomic checkpoints: written to a temp file and renamed, loaded with ``weights_only=True``.

A checkpoint is a dict of tensors and plain Python values only (model and optimizer
state, step, RNG states, resolved config); loading never executes code. A truncated or
corrupted file raises :class:`~mofa_bench.errors.CheckpointError` naming it, and since
the previous file is only replaced by a complete new one, it survives a crash mid-write.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from mofa_bench.errors import CheckpointError


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temp file in the same folder + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        CheckpointError: missing, truncated, corrupted or not a mofa-bench checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise CheckpointError(f"checkpoint {path} is truncated or corrupted ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or not ({"method", "encoder"} & state.keys()):
        raise CheckpointError(f"checkpoint {path} is not a mofa-bench checkpoint (no 'method' entry)")
    return state
