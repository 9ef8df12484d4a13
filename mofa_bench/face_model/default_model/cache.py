"""The ``.npz`` cache of the built default model: where it lives, reading and writing it.

A cache file holds the arrays of :func:`arrays_to_model` plus ``metadata_json``,
``build_version``, ``fingerprint`` and ``subdivisions``; a file whose version, level or
fingerprint differs from the caller's is treated as absent.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mofa_bench.face_model.model import N_EXPRESSION, N_REFLECTANCE, N_SHAPE, FaceModel

__all__ = [
    "ARRAY_KEYS",
    "BUILD_VERSION",
    "CACHE_ENV_VAR",
    "arrays_to_model",
    "cache_path",
    "default_cache_dir",
    "read_cache",
    "write_cache",
]

#: Version of the construction; bump it whenever the built arrays change (invalidates caches).
BUILD_VERSION = 1
#: Environment variable overriding the cache folder.
CACHE_ENV_VAR = "MOFA_BENCH_CACHE"
#: Arrays stored in a cache file, the tensor fields of :class:`FaceModel`.
ARRAY_KEYS = ("mean_shape", "shape_basis", "expression_basis", "mean_reflectance",
              "reflectance_basis", "triangles", "landmark_indices", "landmark_subset")


def default_cache_dir() -> Path:
    """``$MOFA_BENCH_CACHE`` if set, else ``~/.cache/mofa-bench``."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mofa-bench"


def cache_path(subdivisions: int, cache_dir: Path | str | None = None) -> Path:
    """Cache file of the default model at ``subdivisions`` for this :data:`BUILD_VERSION`."""
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return folder / f"default_model_sub{int(subdivisions)}_v{BUILD_VERSION}.npz"


def arrays_to_model(arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> FaceModel:
    """The float32 :class:`FaceModel` named ``"default"`` from the arrays of :data:`ARRAY_KEYS`.

    Args:
        arrays: ``mean_shape (N, 3)`` mm, ``shape_basis (N, 3, 80)``,
            ``expression_basis (N, 3, 64)``, ``mean_reflectance (N, 3)``,
            ``reflectance_basis (N, 3, 80)``, ``triangles (F, 3)``,
            ``landmark_indices (68,)``, ``landmark_subset (46,)``.
        metadata: provenance, stored as given.
    """
    return FaceModel(
        mean_shape=torch.from_numpy(np.ascontiguousarray(arrays["mean_shape"], dtype=np.float32)),
        shape_basis=torch.from_numpy(np.ascontiguousarray(arrays["shape_basis"], dtype=np.float32)),
        expression_basis=torch.from_numpy(np.ascontiguousarray(arrays["expression_basis"], dtype=np.float32)),
        mean_reflectance=torch.from_numpy(np.ascontiguousarray(arrays["mean_reflectance"], dtype=np.float32)),
        reflectance_basis=torch.from_numpy(np.ascontiguousarray(arrays["reflectance_basis"], dtype=np.float32)),
        triangles=torch.from_numpy(np.ascontiguousarray(arrays["triangles"], dtype=np.int64)),
        landmark_indices=torch.from_numpy(np.ascontiguousarray(arrays["landmark_indices"], dtype=np.int64)),
        landmark_subset=torch.from_numpy(np.ascontiguousarray(arrays["landmark_subset"], dtype=np.int64)),
        name="default",
        metadata=metadata,
    )


def read_cache(path: Path, subdivisions: int, fingerprint: str) -> FaceModel | None:
    """The cached model, or ``None`` when the file is absent, unreadable or stale.

    Args:
        path: the cache file (:func:`cache_path`).
        subdivisions: the level the caller asks for.
        fingerprint: hash of the construction code; a file with another one is stale.
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            if int(archive["build_version"]) != BUILD_VERSION or int(archive["subdivisions"]) != subdivisions \
                    or str(archive["fingerprint"]) != fingerprint:
                return None
            arrays = {key: archive[key] for key in ARRAY_KEYS}
            metadata = json.loads(str(archive["metadata_json"]))
        model = arrays_to_model(arrays, metadata)
        if model.shape_basis.shape[-1] != N_SHAPE or model.expression_basis.shape[-1] != N_EXPRESSION \
                or model.reflectance_basis.shape[-1] != N_REFLECTANCE:
            return None
        metadata["cache"] = str(path)
        return model
    except Exception:  # any unreadable / truncated / inconsistent file is rebuilt
        return None


def write_cache(path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, Any], subdivisions: int,
                fingerprint: str) -> None:
    """Write the cache atomically (temporary file, then rename); warn and go on if it fails."""
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            tmp,
            **arrays,
            metadata_json=np.array(json.dumps(metadata)),
            build_version=np.array(BUILD_VERSION),
            fingerprint=np.array(fingerprint),
            subdivisions=np.array(int(subdivisions)),
        )
        os.replace(tmp, path)
    except OSError as exc:
        warnings.warn(f"default face model: could not write the cache {path} ({exc}); continuing without it",
                      stacklevel=3)
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
