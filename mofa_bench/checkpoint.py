"""Atomic, verified checkpoints: written to a temp file and renamed, hashed, loaded safely.

A checkpoint is a dict of tensors and plain Python values only (model and optimizer
state, step, RNG states, resolved config); loading never executes code
(``weights_only=True``). Beside each checkpoint ``X.pt`` lies ``X.pt.sha256``, in the
``sha256sum`` format (``<hex digest>  X.pt``), and :func:`load_checkpoint` refuses a file
whose SHA-256 is not listed there (a bit flip, a partial copy). A checkpoint without
its hash file (written before hashes existed) loads with a warning.

Crash safety: the new file is written to ``.X.pt.<random>.tmp`` and renamed over the old
one only when complete, so a crash mid-write keeps the previous checkpoint. The hash
file is rewritten around the rename: first listing both the old and the new digest,
then only the new one, so at every instant it lists the digest of whatever ``X.pt``
holds. A failed write (full disk) raises :class:`~mofa_bench.errors.CheckpointError`
naming the file and leaves the previous checkpoint and hash in place.
"""

from __future__ import annotations

import hashlib
import os
import logging
import tempfile
from pathlib import Path
from typing import Any

import torch

from mofa_bench.errors import CheckpointError

logger = logging.getLogger(__name__)

__all__ = ["HASH_SUFFIX", "check_trainer_state", "file_sha256", "load_checkpoint", "remove_stale_temp_files",
           "save_checkpoint"]

#: Suffix of the hash file written beside each checkpoint.
HASH_SUFFIX = ".sha256"

#: Entries every trainer checkpoint holds (see :meth:`Trainer.state_dict`).
TRAINER_KEYS: tuple[str, ...] = ("method", "optimizer", "step", "best", "nonfinite_in_row", "skipped_total",
                                 "rng_cpu", "config")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash_path(path: Path) -> Path:
    return path.with_name(path.name + HASH_SUFFIX)


def _read_hashes(path: Path) -> set[str]:
    """Digests listed in ``path``'s hash file (empty when it has none)."""
    hash_file = _hash_path(path)
    if not hash_file.is_file():
        return set()
    return {line.split()[0].lower() for line in hash_file.read_text().splitlines() if line.strip()}


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_hashes(path: Path, digests: list[str]) -> None:
    _write_atomic(_hash_path(path), "".join(f"{d}  {path.name}\n" for d in digests).encode())


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically, with its SHA-256 in ``path.sha256``.

    Raises:
        CheckpointError: the file could not be written (full disk, no permission); the
            previous checkpoint at ``path`` is kept.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise CheckpointError(f"cannot write checkpoint {path}: {err.strerror or err}") from err
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        digest = file_sha256(tmp)
        old = sorted(_read_hashes(path) - {digest}) if path.exists() else []
        _write_hashes(path, old + [digest])
        os.replace(tmp, path)
        _write_hashes(path, [digest])
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise CheckpointError(f"cannot write checkpoint {path}: {err.strerror or err}; "
                              f"the previous checkpoint there (if any) is kept") from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (hash verified, ``weights_only=True``).

    Raises:
        CheckpointError: missing, truncated, corrupted (its SHA-256 is not the one in its
            hash file), not a mofa-bench checkpoint, or a ``step`` that is not an int >= 0.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    expected = _read_hashes(path)
    if expected:
        actual = file_sha256(path)
        if actual not in expected:
            raise CheckpointError(f"checkpoint {path} is truncated or corrupted: its SHA-256 {actual[:16]}… "
                                  f"is not the one recorded in {_hash_path(path).name}")
    else:
        logger.warning("checkpoint %s has no %s beside it; its content is not verified", path,
                       _hash_path(path).name)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        message = " ".join(str(err).split())[:300]
        raise CheckpointError(f"checkpoint {path} is truncated or corrupted ({type(err).__name__}: {message})") from err
    if not isinstance(state, dict) or not ({"method", "encoder"} & state.keys()):
        raise CheckpointError(f"checkpoint {path} is not a mofa-bench checkpoint (no 'method' entry)")
    step = state.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"checkpoint {path}: 'step' must be an integer >= 0, got {step!r}")
    return state


def check_trainer_state(state: dict[str, Any], path: str | Path) -> None:
    """Check the schema of a trainer checkpoint before it is restored.

    Args:
        state: from :func:`load_checkpoint`.
        path: the file, for messages.

    Raises:
        CheckpointError: a missing entry (``optimizer``, ``rng_cpu``, ...), an entry of
            the wrong type, or an RNG state that is not the ``uint8`` vector of
            ``torch.get_rng_state()``'s size.
    """
    if "method" not in state:
        raise CheckpointError(f"checkpoint {path} predates trainable methods (it holds only 'encoder'); "
                              f"it cannot be resumed, but `mofa-bench reconstruct` still reads it")
    missing = [key for key in TRAINER_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path}: missing {', '.join(repr(k) for k in missing)}; "
                              f"it was not written by the trainer, or is damaged")
    for key, kind in (("method", dict), ("optimizer", dict), ("config", dict)):
        if not isinstance(state[key], kind):
            raise CheckpointError(f"checkpoint {path}: {key!r} must be a mapping, got {type(state[key]).__name__}")
    for key in ("nonfinite_in_row", "skipped_total"):
        value = state[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CheckpointError(f"checkpoint {path}: {key!r} must be an integer >= 0, got {value!r}")
    if isinstance(state["best"], bool) or not isinstance(state["best"], (int, float)):
        raise CheckpointError(f"checkpoint {path}: 'best' must be a number, got {state['best']!r}")
    reference = torch.get_rng_state()
    rng = state["rng_cpu"]
    if not (isinstance(rng, torch.Tensor) and rng.dtype == torch.uint8 and rng.shape == reference.shape):
        got = f"{rng.dtype} {tuple(rng.shape)}" if isinstance(rng, torch.Tensor) else type(rng).__name__
        raise CheckpointError(f"checkpoint {path}: 'rng_cpu' must be a uint8 tensor of shape "
                              f"{tuple(reference.shape)} (torch.get_rng_state()), got {got}")
    cuda = state.get("rng_cuda")
    if cuda is not None and not (isinstance(cuda, (list, tuple)) and all(
            isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.dim() == 1 for t in cuda)):
        raise CheckpointError(f"checkpoint {path}: 'rng_cuda' must be a list of uint8 vectors "
                              f"(torch.cuda.get_rng_state_all())")


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the ``.*.tmp`` files an interrupted :func:`save_checkpoint` left in ``folder``.

    Call it only while holding the run directory's lock (no writer is active then).

    Returns:
        The files removed.
    """
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp"):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed
