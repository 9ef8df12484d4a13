"""A prepared folder's state: its settings file, what it has prepared (by content), and what is never input.

:mod:`mofa_bench.photos.prepare` keeps three things here:

- ``prepare.json`` (:func:`check_settings`): the settings a folder was made with; other
  settings are refused. An unreadable one is rebuilt from the settings asked for when the
  manifest agrees with them (crop size, detector), else refused naming the fix.
- The manifest's fingerprint columns (:data:`FINGERPRINT_COLUMNS`): each photo's size,
  modification time (ns) and SHA-256 when it was prepared. A rerun redoes a photo whose
  size or time changed unless its content hash is the one recorded (a copy or a touch),
  and logs which photos it redoes; rows written before fingerprints existed get the
  file's current fingerprint (logged) and are kept.
- :func:`outputs_under`: what an output folder inside the input folder holds, which is
  never listed as input (``prepare folder P --out P`` or ``--out P/prepared``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from mofa_bench.errors import DatasetError, InputError

__all__ = ["FINGERPRINT_COLUMNS", "MANIFEST", "SETTINGS", "check_settings", "fingerprint", "outputs_under",
           "resume_plan"]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.parquet"
SETTINGS = "prepare.json"
#: Manifest columns that identify the file a row was made from.
FINGERPRINT_COLUMNS: tuple[str, ...] = ("file_size", "file_mtime_ns", "file_sha256")
#: What ``prepare`` writes into its output folder (besides temp files).
OUTPUTS: tuple[str, ...] = ("crops", MANIFEST, SETTINGS, "frames")


# ---------------------------------------------------------------------------- fingerprints
def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def fingerprint(path: str | Path, content: bool = True) -> dict[str, Any]:
    """``{file_size, file_mtime_ns, file_sha256}`` of a photo (``None`` each where it cannot be had).

    Only a regular file is hashed (never a FIFO); ``content=False`` leaves the hash out.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return dict.fromkeys(FINGERPRINT_COLUMNS)
    regular = path.is_file()
    return {"file_size": int(stat.st_size), "file_mtime_ns": int(stat.st_mtime_ns),
            "file_sha256": _sha256(path) if regular and content else None}


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or (not isinstance(value, (str, bytes)) and bool(pd.isna(value)))


def _same_file(path: Path, row: dict[str, Any]) -> bool | None:
    """Whether ``path`` still is the file ``row`` was made from; ``None`` when the row has no fingerprint."""
    if all(_missing(row.get(key)) for key in FINGERPRINT_COLUMNS):
        return None
    now = fingerprint(path, content=False)
    if now["file_size"] == row.get("file_size") and now["file_mtime_ns"] == row.get("file_mtime_ns"):
        return True
    if now["file_size"] != row.get("file_size") or _missing(row.get("file_sha256")):
        return False
    same = _sha256(path) == row.get("file_sha256")
    if same:
        row["file_mtime_ns"] = now["file_mtime_ns"]  # touched or copied: the same content
    return same


def _names(sources: Sequence[str]) -> str:
    return ", ".join(sources[:5]) + (f" and {len(sources) - 5} more" if len(sources) > 5 else "")


def resume_plan(items: Sequence[Any], rows: list[dict[str, Any]], out: Path) -> tuple[list[Any], list[dict[str, Any]]]:
    """``(items to prepare, rows kept)``: new photos, and photos whose file changed since their row.

    A changed photo's row is dropped and its crop deleted (it is prepared again); the change
    is logged, naming the photos. Rows without a fingerprint get the file's current one.
    """
    by_source = {row["source"]: row for row in rows}
    todo, changed, adopted = [], [], 0
    for item in items:
        row = by_source.get(item.source)
        if row is None:
            todo.append(item)
            continue
        same = _same_file(Path(item.path), row)
        if same is None:
            row.update(fingerprint(item.path))
            adopted += 1
        elif not same:
            changed.append(item.source)
            todo.append(item)
    if adopted:
        logger.warning("prepare %s: recorded the file fingerprints of %d photos prepared before fingerprints were "
                       "kept (a photo replaced before now is not noticed)", out, adopted)
    if changed:
        logger.warning("prepare %s: %d photos changed since they were prepared, prepared again: %s", out,
                       len(changed), _names(changed))
    redo = set(changed)
    for row in rows:
        if row["source"] in redo and isinstance(row.get("crop"), str) and row["crop"]:
            (out / row["crop"]).unlink(missing_ok=True)
    return todo, [row for row in rows if row["source"] not in redo]


# ---------------------------------------------------------------------------- inputs and outputs
def outputs_under(folder: Path, out: Path) -> list[Path]:
    """What of ``out`` must not be read as input of ``folder`` (resolved paths; empty when ``out`` is elsewhere)."""
    folder, out = folder.resolve(), out.resolve()
    if out == folder:
        return [out / name for name in OUTPUTS]
    return [out] if folder in out.parents else []


def is_output(path: Path, outputs: Iterable[Path], out: Path) -> bool:
    """Whether ``path`` lies in one of ``outputs`` or is a temp file ``prepare`` writes into ``out``."""
    resolved = path.parent.resolve() / path.name
    if resolved.parent == out.resolve() and (path.name.endswith(".tmp") or path.name.startswith(".")):
        return True
    return any(resolved == o or o in resolved.parents for o in outputs)


# ---------------------------------------------------------------------------- settings
def _manifest_agrees(rows: list[dict[str, Any]], wanted: dict[str, Any]) -> str:
    """``""`` when the manifest's ok rows were made with ``wanted``'s crop size and detector, else what differs."""
    for row in rows:
        if row.get("status") != "ok":
            continue
        if row.get("crop_size") not in (None, wanted["size"]):
            return f"its crops are {row['crop_size']} px, now size={wanted['size']}"
        if row.get("detector") not in (None, wanted["detector"]):
            return f"its faces were found by {row['detector']}, now detector={wanted['detector']}"
    return ""


def check_settings(out: Path, settings: Any, rows: list[dict[str, Any]]) -> None:
    """Refuse other settings than ``out/prepare.json``'s; write it when missing; rebuild it when unreadable.

    Raises:
        InputError: other settings (naming the key), or an unreadable ``prepare.json`` the
            manifest contradicts (naming the fix).
    """
    path = out / SETTINGS
    wanted = asdict(settings)
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
            if not isinstance(stored, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as err:
            problem = _manifest_agrees(rows, wanted)
            if problem:
                raise InputError(f"{path} is unreadable ({type(err).__name__}) and {problem}; prepare with those "
                                 f"settings, or use another --out") from None
            logger.warning("%s is unreadable (%s); rebuilt from the settings asked for now (the manifest agrees on "
                           "crop size and detector)", path, type(err).__name__)
            _write_settings(path, wanted)
            return
        for key, value in wanted.items():
            if stored.get(key) != value:
                raise InputError(f"{out}: prepared with {key}={stored.get(key)!r}, now {key}={value!r}; "
                                 f"use another --out folder (or delete {out})")
    else:
        _write_settings(path, wanted)


def _write_settings(path: Path, wanted: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(wanted, indent=2) + "\n")
    os.replace(tmp, path)


def unreadable_manifest(err: DatasetError, out: Path) -> DatasetError:
    """The error for a manifest that cannot be read, with the fix."""
    return DatasetError(f"{err}; move {out / MANIFEST} away to prepare every photo again (their crops are "
                        f"rewritten), or restore it")
