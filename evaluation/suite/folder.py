"""A suite folder belongs to one suite and one test set: its record ``suite.json``, and atomic writes.

``<out>/suite.json`` says what the folder holds::

    {"format": 1,
     "suites": [{"name": "quick", "spec": "3f2a9c0d41b7"}],  # the suites whose runs it holds
     "test_set": "9c1d0e7a5b33f2c1",                         # every run is scored on this test set
     "test_set_text": "256 test images at 64 px (data seed 1234, model default)",
     "real_test": null,                                      # or {"path": ..., "limit": ...}
     "created": "2025-01-01T00:00:00+00:00", "adopted": false}

- ``spec`` is :func:`spec_digest`: the suite file as resolved (``base`` by its content), less
  where runs execute (``executor``, ``slurm``).
- ``test_set`` is :func:`test_set_digest` of :func:`test_set_key`: the settings that draw the
  test split (face model, camera, the ``data`` keys of the test images, the test seed).

:func:`claim_folder` checks a suite against the folder before anything is written: the same
suite goes on; another suite is refused, naming both, unless ``mode`` is ``add`` (its runs
join the folder; the test set must be the same) or ``replace`` (:func:`set_aside` first
moves the old folder to ``<out>.replaced-<time>``). A folder made before this record
existed is adopted: the record is written on first use, after checking that the runs
already there were scored on the suite's test set.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from mofa_bench.errors import ConfigError

__all__ = ["MODES", "RECORD", "cell_test_set", "claim_folder", "describe_test_set", "read_json", "record_with_defaults",
           "remove_stale_temps", "set_aside", "spec_digest", "suite_test_set", "test_set_digest", "test_set_key",
           "write_atomic", "write_json"]

logger = logging.getLogger(__name__)

#: The folder's record.
RECORD = "suite.json"
#: What ``--add`` / ``--replace`` ask for; ``check`` is neither.
MODES = ("check", "add", "replace")
#: ``data`` keys that draw the test split (:func:`mofa_bench.data.splits.synthetic_split`).
TEST_DATA_KEYS = ("test_size", "synthetic_renderer", "prior", "target_prior", "backgrounds", "out_of_span")


# ---------------------------------------------------------------------------- files
def write_atomic(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temp file in ``path``'s folder, then rename it to ``path``.

    A reader (or a kill) sees the old file or the new one, never half of one.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")  # created with the umask's mode
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete the temp files :func:`write_atomic` left in ``folder`` and its run folders when killed.

    Only files whose writer (the pid in their name) no longer runs; returns them.
    """
    folder = Path(folder)
    removed = []
    for tmp in [*folder.glob(".*.tmp"), *folder.glob("runs/*/.*.tmp")]:
        parts = tmp.name.split(".")
        if len(parts) >= 5 and parts[-3].isdigit() and not _alive(int(parts[-3])):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically."""
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2)))


def read_json(path: str | Path) -> tuple[dict[str, Any] | None, str]:
    """``(data, "")`` of a JSON object file; ``(None, reason)`` when missing, unreadable or not an object."""
    path = Path(path)
    if not path.is_file():
        return None, "missing"
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return None, f"unreadable ({type(err).__name__}: {str(err)[:120]})"
    if not isinstance(data, dict):
        return None, f"unreadable (a JSON {type(data).__name__}, not an object)"
    return data, ""


# ---------------------------------------------------------------------------- identities
def _digest(data: Any, length: int = 16) -> str:
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def spec_digest(spec: Any) -> str:
    """What makes two suite files the same suite: the resolved spec, ``base`` by content, no executor."""
    from evaluation.suite.spec import suite_to_dict

    data = suite_to_dict(spec)
    data.pop("executor", None)
    data.pop("slurm", None)
    base = Path(data["base"]) if data.get("base") else None
    data["base"] = hashlib.sha256(base.read_bytes()).hexdigest() if base and base.is_file() else data.get("base")
    return _digest(data, 12)


def _with_defaults(value: Any, default: Any) -> Any:
    """``value`` with the keys it lacks taken from ``default`` (records written before a key existed)."""
    if isinstance(value, Mapping) and isinstance(default, Mapping):
        return {**copy.deepcopy(dict(default)), **{k: _with_defaults(v, default.get(k)) for k, v in value.items()}}
    return copy.deepcopy(value)


def record_with_defaults(record: Mapping[str, Any]) -> dict[str, Any]:
    """A ``cell.json`` record with the config keys it lacks at their defaults.

    A run recorded before a config key existed ran with that key's default, so its record
    reads as the cell the suite gives now.
    """
    from mofa_bench.config import TrainConfig, config_to_dict

    if not isinstance(record.get("config"), Mapping):
        return dict(record)
    return {**record, "config": _with_defaults(record["config"], config_to_dict(TrainConfig()))}


def test_set_key(config: Mapping[str, Any], test_seed: int) -> dict[str, Any]:
    """The settings that draw a run's test split, from its config dict (keys it lacks at their defaults)."""
    from mofa_bench.config import TrainConfig, config_to_dict

    defaults = config_to_dict(TrainConfig())
    full = _with_defaults({k: config.get(k, {}) for k in ("model", "camera", "data")}, defaults)
    return {"model": full["model"], "camera": full["camera"],
            "data": {k: full["data"].get(k) for k in TEST_DATA_KEYS}, "seed": int(test_seed)}


def test_set_digest(key: Mapping[str, Any]) -> str:
    """A short hash of :func:`test_set_key`."""
    return _digest(key)


def describe_test_set(key: Mapping[str, Any]) -> str:
    """``256 test images at 64 px (data seed 1234, model default)``, naming an out-of-span or domain-gap protocol."""
    data = key["data"]
    span = data.get("out_of_span") or {}
    protocol = (", out-of-span detail" if span.get("shape_modes") or span.get("reflectance_modes") else "") + (
        ", domain-gap prior" if data.get("target_prior") else "")
    return (f"{data['test_size']} test images at {key['camera']['image_size']} px "
            f"(data seed {key['seed']}, model {key['model']['source']}{protocol})")


def cell_test_set(record: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(digest, text)`` of the test set of a ``cell.json`` record, or ``None`` when it cannot tell."""
    try:
        key = test_set_key(record["config"], record["test_seed"])
        return test_set_digest(key), describe_test_set(key)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def suite_test_set(cells: Iterable[Any]) -> tuple[str, str]:
    """``(digest, text)`` of the one test set of a suite's cells.

    Raises:
        ConfigError: two cells would be scored on different test sets (a cell rule changes
            the camera, the face model or the test data): one table cannot compare them.
    """
    seen: dict[str, tuple[str, str]] = {}
    for cell in cells:
        key = test_set_key(cell.config, cell.test_seed)
        seen.setdefault(test_set_digest(key), (cell.run_id, describe_test_set(key)))
    if len(seen) > 1:
        (a, (run_a, text_a)), (b, (run_b, text_b)) = list(seen.items())[:2]
        raise ConfigError(f"cells: runs {run_a} and {run_b} would be scored on different test sets ({text_a} vs "
                          f"{text_b}); a suite's runs share one test set: move the rule that changes the camera, "
                          f"model or test data into another suite")
    digest, (_, text) = next(iter(seen.items()))
    return digest, text


# ---------------------------------------------------------------------------- the record
def _real(spec: Any) -> dict[str, Any] | None:
    real = getattr(spec, "real_test", None)
    return None if real is None else {"path": str(real.path), "limit": real.limit}


def _stamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _describe(record: Mapping[str, Any]) -> str:
    names = ", ".join(f"{s.get('name')} (spec {s.get('spec')})" for s in record.get("suites", []))
    real = f", real photos {record['real_test']['path']}" if record.get("real_test") else ""
    return f"suite {names or '?'} on test set {record.get('test_set')} [{record.get('test_set_text')}{real}]"


def _foreign_runs(out: Path, digest: str) -> list[str]:
    """``runs/<id>`` whose ``cell.json`` names another test set than ``digest``."""
    found = []
    for cell in sorted((out / "runs").glob("*/cell.json")):
        data, _ = read_json(cell)
        known = cell_test_set(data) if data else None
        if known is not None and known[0] != digest:
            found.append(f"{cell.parent.name} ({known[1]})")
    return found


def _has_suite_files(out: Path) -> bool:
    return any((out / name).exists() for name in ("runs", "results.csv", "results.parquet", "inputs.pt",
                                                 "suite.yaml"))


def claim_folder(out: str | Path, spec: Any, cells: list[Any], mode: str = "check",
                 write: bool = True) -> dict[str, Any]:
    """Check that suite ``spec`` (its ``cells``) may run into ``out``; record it there; return the record.

    Args:
        out: the suite folder.
        spec: the suite.
        cells: its cells (:func:`~evaluation.suite.expand.expand_suite`).
        mode: ``check`` (the folder's own suite only), ``add`` (join a folder of another
            suite on the same test set) or ``replace`` (the caller moved the old folder aside).
        write: write the record (``False``: a dry run).

    Raises:
        ConfigError: another suite or another test set, naming both (and the flags), or
            runs already in the folder scored on another test set.
    """
    out = Path(out)
    digest, text = suite_test_set(cells)
    mine = {"name": spec.name, "spec": spec_digest(spec)}
    wanted = {"format": 1, "suites": [mine], "test_set": digest, "test_set_text": text, "real_test": _real(spec),
              "created": _stamp(), "adopted": False}
    record, reason = read_json(out / RECORD)
    if record is None and (reason != "missing" or _has_suite_files(out)):
        foreign = _foreign_runs(out, digest)
        if foreign:
            raise ConfigError(f"--out {out}: {len(foreign)} run(s) there were scored on another test set than suite "
                              f"{spec.name}'s ({text}): {', '.join(foreign[:3])}; use --replace or another --out")
        note = f"its {RECORD} is {reason}" if reason != "missing" else f"it has no {RECORD} yet"
        logger.warning("suite folder %s: %s; recording it as suite %s's (test set %s)", out, note, spec.name, digest)
        wanted["adopted"] = True
    elif record is not None:
        wanted = _joined(out, record, wanted, mode)
    if write:
        write_json(out / RECORD, wanted)
    return wanted


def _same_test_set(record: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return record.get("test_set") == wanted["test_set"] and record.get("real_test") == wanted["real_test"]


def _joined(out: Path, record: dict[str, Any], wanted: dict[str, Any], mode: str) -> dict[str, Any]:
    """The record after suite ``wanted`` joins the folder's ``record`` (or the refusal)."""
    mine = wanted["suites"][0]
    known = any(s.get("spec") == mine["spec"] for s in record.get("suites", []))
    if known and _same_test_set(record, wanted):
        return record
    if mode == "add" and _same_test_set(record, wanted):
        return {**record, "suites": [*record.get("suites", []), mine]}
    this = _describe(wanted)
    if mode == "add":
        raise ConfigError(f"--add: --out {out} holds {_describe(record)}; this {this} is scored on another test set, "
                          f"so its runs cannot join that table; use --replace or another --out")
    raise ConfigError(f"--out {out} holds {_describe(record)}; this is {this}; add its runs with --add (the same "
                      f"test set only), start the folder over with --replace, or choose another --out")


def set_aside(out: str | Path) -> Path | None:
    """Move a suite folder that has suite files to ``<out>.replaced-<UTC time>``; returns that path."""
    out = Path(out)
    if not out.is_dir() or not _has_suite_files(out) and not (out / RECORD).exists():
        return None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = out.with_name(f"{out.name}.replaced-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = out.with_name(f"{out.name}.replaced-{stamp}-{n}")
    out.rename(target)
    out.mkdir()
    return target
