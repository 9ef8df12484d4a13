"""Synthetic faces with ground truth (the paper's Fig. 10 protocol).

:class:`SyntheticFaces` renders random codes of the face model on the fly, composited over
augmented backgrounds (:mod:`mofa_bench.data.backgrounds`); every sample comes with its
code, model-space geometry, landmark positions and coverage mask. The paper trains on
100k such renders and tests on 5k.

Determinism: sample ``i`` of a dataset is global index ``g = start + i``. Its code and its
background come from two CPU generators seeded with :func:`sample_seed` of
``(seed, g, stream)`` (stream 0 for the code, 1 for the background): a SplitMix64 mix of
integers, the same in every process, on every platform and for any batch composition.
Changing the background config therefore never changes the codes. Rendering then runs on
the device and dtype of ``decoder.model``.

``generator="counter"`` draws them instead with the counter-based generator
(:mod:`mofa_bench.data.counter_rng`), a whole batch at once on the decoder model's device
(:mod:`mofa_bench.data.device_backgrounds`): the same distributions and contract (sample
``g`` depends only on ``(seed, g)``), other numbers; for training on a GPU.

:meth:`SyntheticFaces.split` builds a training and a validation set from one seed with
disjoint global index ranges (``[0, train)`` and ``[train, train + val)``); a test set
is ``SyntheticFaces(..., start=train + val)``.

:func:`write_synthetic_dataset` stores a dataset as shards for reuse, and
:class:`ShardedFaces` reads them back. On-disk format (version 1), in one folder:

- ``manifest.json``: ``format`` (``"mofa-bench-synthetic"``), ``format_version``,
  ``complete``, ``size``, ``image_size`` ``[H, W]``, ``seed``, ``start``, ``prior``,
  ``backgrounds``, ``model`` (name, vertex and triangle counts), ``camera``,
  ``renderer``, ``shard_size``, ``store_vertices``, ``fields`` and ``shards``
  (a list of ``{"file", "start", "count"}``; ``start`` is the dataset-local index of the
  shard's first sample).
- ``shard_00000.pt``, ...: ``torch.save`` dicts of tensors: ``images`` ``(n, 3, H, W)``
  uint8, ``masks`` ``(n, 1, H, W)`` uint8 (coverage × 255), ``codes`` ``(n, 257)``
  float32, ``vertices`` ``(n, N, 3)`` float32 mm (if stored), ``landmarks``
  ``(n, 68, 2)`` float32 px, ``landmark_confidence`` ``(n, 68)`` float32, ``indices``
  ``(n,)`` int64 dataset-local.

Shards and the manifest are written to a temporary file and renamed, so an interrupted
write never leaves a truncated file; calling :func:`write_synthetic_dataset` again with
the same dataset resumes from the shards already written.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from mofa_bench.code_vector import CODE_DIM, CODE_SLICES
from mofa_bench.data.backgrounds import BackgroundConfig, sample_backgrounds
from mofa_bench.data.batch import FaceBatch
from mofa_bench.data.counter_rng import CounterStream
from mofa_bench.data.device_backgrounds import counter_backgrounds
from mofa_bench.decoder import MoFADecoder
from mofa_bench.errors import DatasetError, InputError
from mofa_bench.face_model.model import FaceModel
from mofa_bench.formation import FormedFace
from mofa_bench.data.streams import BACKGROUND_STREAM, CODE_STREAM, GENERATORS, check_indices, sample_seed
from mofa_bench.sampling import CodePrior, sample_codes, sample_codes_counter

__all__ = [
    "FORMAT_NAME",
    "GENERATORS",
    "check_indices",
    "FORMAT_VERSION",
    "ShardedFaces",
    "SyntheticFaces",
    "sample_seed",
    "stored_fields",
    "to_uint8",
    "write_synthetic_dataset",
]

#: ``format`` entry of the manifest.
FORMAT_NAME = "mofa-bench-synthetic"
#: Version of the shard format written by :func:`write_synthetic_dataset`.
FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_SHARD_KEYS = ("images", "masks", "codes", "landmarks", "landmark_confidence", "indices")


# ---------------------------------------------------------------------------- on the fly
class SyntheticFaces:
    """Random faces of the decoder's model rendered on the fly, with ground truth.

    Args:
        decoder: the analytic decoder; renders on the device and dtype of
            ``decoder.model`` (move it with ``decoder.to("cuda")``).
        size: number of samples.
        seed: dataset seed; sample ``i`` depends only on ``(seed, start + i)``.
        prior: ranges of the sampled codes.
        backgrounds: background augmentation; ``None`` renders over black.
        start: global index of sample 0 (disjoint ranges never share samples).
        generator: ``"cpu"`` (one CPU ``torch.Generator`` per sample and stream) or
            ``"counter"`` (the counter-based generator, batched on the decoder model's
            device); see the module docstring.

    Example:
        >>> train, val = SyntheticFaces.split(decoder, 100_000, 5_000, seed=0)
        >>> batch = train.batch(torch.arange(5))   # FaceBatch with codes, vertices, ...
    """

    def __init__(self, decoder: MoFADecoder, size: int, seed: int = 0, prior: CodePrior | None = None,
                 backgrounds: BackgroundConfig | None = BackgroundConfig(), start: int = 0,
                 generator: str = "cpu") -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise InputError(f"size: expected a positive number of samples, got {size!r}")
        if not isinstance(start, int) or start < 0:
            raise InputError(f"start: expected a global index ≥ 0, got {start!r}")
        if generator not in GENERATORS:
            raise InputError(f"generator: expected one of {', '.join(GENERATORS)}, got {generator!r}")
        self.decoder = decoder
        self.size = size
        self.seed = int(seed)
        self.prior = prior or CodePrior()
        self.backgrounds = backgrounds if backgrounds is not None else BackgroundConfig.disabled()
        self.start = start
        self.generator = generator

    @classmethod
    def split(cls, decoder: MoFADecoder, train_size: int, val_size: int, seed: int = 0,
              prior: CodePrior | None = None,
              backgrounds: BackgroundConfig | None = BackgroundConfig()) -> tuple["SyntheticFaces", "SyntheticFaces"]:
        """A training and a validation set that never share a sample.

        Both use ``seed``; training covers global indices ``[0, train_size)``, validation
        ``[train_size, train_size + val_size)``.

        Returns:
            ``(train, val)``.
        """
        train = cls(decoder, train_size, seed, prior, backgrounds, start=0)
        val = cls(decoder, val_size, seed, prior, backgrounds, start=train_size)
        return train, val

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        h, w = self.image_size
        return (f"SyntheticFaces(size={self.size}, seed={self.seed}, start={self.start}, "
                f"image_size={h}x{w}, model={self.decoder.model.name!r})")

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` of the images (the decoder camera's size)."""
        return self.decoder.camera.size

    @property
    def device(self) -> torch.device:
        """Where samples are rendered (the decoder model's device)."""
        return self.decoder.model.device

    def _generator(self, index: int, stream: int) -> torch.Generator:
        return torch.Generator().manual_seed(sample_seed(self.seed, self.start + index, stream))

    def counter_stream(self, indices: torch.Tensor, stream: int) -> CounterStream:
        """The counter-based draws of ``stream`` for the samples at checked dataset-local
        ``indices``, on :attr:`device` (``generator="counter"``)."""
        return CounterStream(self.seed, indices.to(self.device) + self.start, stream)

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Ground-truth codes of samples, drawn from :attr:`prior`.

        Args:
            indices: ``(B,)`` integer dataset-local indices.

        Returns:
            ``(B, 257)`` float32 codes on the CPU (``generator="counter"``: on :attr:`device`).
        """
        indices = check_indices(indices, self.size)
        if self.generator == "counter":
            return sample_codes_counter(self.counter_stream(indices, CODE_STREAM), self.prior)
        return torch.cat([sample_codes(1, self.prior, self._generator(int(i), CODE_STREAM)) for i in indices])

    def background_images(self, indices: torch.Tensor) -> torch.Tensor:
        """Backgrounds of samples (what shows outside the face mask).

        Args:
            indices: ``(B,)`` integer dataset-local indices.

        Returns:
            ``(B, 3, H, W)`` float32 RGB in [0, 1] on the CPU (``generator="counter"``: on
            :attr:`device`).
        """
        indices = check_indices(indices, self.size)
        size = self.image_size
        if self.generator == "counter":
            return counter_backgrounds(self.counter_stream(indices, BACKGROUND_STREAM), size, self.backgrounds)
        return torch.cat([sample_backgrounds(1, size, self._generator(int(i), BACKGROUND_STREAM), self.backgrounds)
                          for i in indices])

    def form(self, codes: torch.Tensor, indices: torch.Tensor) -> "FormedFace":
        """The formed faces of samples: ``(B, 257)`` codes of the samples at ``(B,)`` ``indices``
        through the decoder (a subclass may add what the codes do not hold)."""
        return self.decoder.form(codes)

    @torch.no_grad()
    def batch(self, indices: torch.Tensor) -> FaceBatch:
        """Render the samples at ``indices``.

        Args:
            indices: ``(B,)`` integer dataset-local indices in ``[0, len)``.

        Returns:
            :class:`FaceBatch` on the decoder model's device, in its dtype:
            ``images`` ``(B, 3, H, W)`` in [0, 1] (face over background, clamped),
            ``codes`` ``(B, 257)``, ``vertices`` ``(B, N, 3)`` model space (mm),
            ``landmarks`` ``(B, 68, 2)`` pixel positions of the landmark vertices
            (``landmarks_uv`` of the formed face, whether visible or not),
            ``landmark_confidence`` ``(B, 68)`` ones, ``masks`` ``(B, 1, H, W)`` coverage,
            ``indices`` ``(B,)`` int64.

        Raises:
            InputError: indices not a 1-D integer tensor or out of range.
        """
        indices = check_indices(indices, self.size)
        model = self.decoder.model
        device, dtype = model.device, model.dtype
        codes = self.codes(indices).to(device=device, dtype=dtype)
        background = self.background_images(indices).to(device=device, dtype=dtype)
        formed = self.form(codes, indices)
        rendered = self.decoder.renderer.render(formed, background)
        landmarks = formed.landmarks_uv
        return FaceBatch(
            images=rendered.image.clamp(0.0, 1.0),
            indices=indices.to(device),
            codes=codes,
            vertices=formed.vertices,
            landmarks=landmarks,
            landmark_confidence=torch.ones(landmarks.shape[:2], device=device, dtype=dtype),
            masks=rendered.mask.to(dtype),
        )

    def describe(self) -> dict[str, Any]:
        """JSON-friendly description (seed, prior, backgrounds, model, camera, renderer; the
        generator unless it is the default ``"cpu"``)."""
        camera = self.decoder.camera
        model = self.decoder.model
        generator = {} if self.generator == "cpu" else {"generator": self.generator}
        return {
            "size": self.size,
            "start": self.start,
            "seed": self.seed,
            "image_size": list(self.image_size),
            "prior": asdict(self.prior),
            "backgrounds": self.backgrounds.to_dict(),
            "model": {"name": model.name, "num_vertices": model.num_vertices,
                      "num_triangles": model.num_triangles},
            "camera": {"focal": camera.focal, "center": list(camera.center),
                       "head_distance": camera.head_distance},
            "renderer": getattr(self.decoder.renderer, "name", type(self.decoder.renderer).__name__),
            **generator,
        }


# ---------------------------------------------------------------------------- writing
def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    _atomic_write(path, lambda tmp: tmp.write_text(json.dumps(manifest, indent=2) + "\n"))


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Values in [0, 1] → uint8 on the CPU (clamped, rounded to the nearest 1/255)."""
    return (x.detach().float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).cpu()


def stored_fields(batch: FaceBatch, keys: Sequence[str]) -> dict[str, torch.Tensor | None]:
    """The ``keys`` of a batch as they are stored (in shards, or held by a preloaded dataset).

    ``images`` and ``masks`` become uint8 (:func:`to_uint8`), ``indices`` int64, every other
    field (codes, landmarks, confidences, vertices) float32; all on the CPU. A field the
    batch does not have is ``None``.
    """
    out: dict[str, torch.Tensor | None] = {}
    for key in keys:
        value = getattr(batch, key)
        if value is None:
            out[key] = None
        elif key in ("images", "masks"):
            out[key] = to_uint8(value)
        elif key == "indices":
            out[key] = value.detach().cpu()
        else:
            out[key] = value.detach().float().cpu()
    return out


def write_synthetic_dataset(dataset: SyntheticFaces, out_dir: str | Path, shard_size: int = 1000,
                            progress: bool = True, store_vertices: bool = True,
                            render_batch_size: int = 32, overwrite: bool = False) -> Path:
    """Render a synthetic dataset to shards on disk (format in the module docstring).

    The manifest is written first with ``"complete": false`` and rewritten with
    ``true`` at the end. A folder that already holds the *same* dataset is returned as it
    is when complete and resumed when not (shards already present are kept); a folder
    holding a different dataset raises unless ``overwrite``.

    Args:
        dataset: what to render.
        out_dir: output folder (created).
        shard_size: samples per shard file.
        progress: show a tqdm progress bar.
        store_vertices: keep ``(n, N, 3)`` float32 geometry in the shards (≈ 12·N bytes
            per sample; without it :class:`ShardedFaces` recomputes vertices from the
            codes when given the face model).
        render_batch_size: samples rendered at once.
        overwrite: re-render from scratch, replacing whatever ``out_dir`` holds.

    Returns:
        The output folder.

    Raises:
        DatasetError: ``out_dir`` holds another dataset and ``overwrite`` is false.
        InputError: non-positive ``shard_size`` or ``render_batch_size``.
    """
    from tqdm.auto import tqdm

    if shard_size <= 0 or render_batch_size <= 0:
        raise InputError(f"shard_size/render_batch_size: expected positive sizes, got {shard_size}/{render_batch_size}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / _MANIFEST
    n_shards = math.ceil(len(dataset) / shard_size)
    shards = [{"file": f"shard_{k:05d}.pt", "start": k * shard_size,
               "count": min(shard_size, len(dataset) - k * shard_size)} for k in range(n_shards)]
    fields_ = list(_SHARD_KEYS) + (["vertices"] if store_vertices else [])
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "complete": False,
        **dataset.describe(),
        "shard_size": shard_size,
        "store_vertices": store_vertices,
        "fields": fields_,
        "shards": shards,
    }
    resume = False
    if manifest_path.exists():
        try:
            previous = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            previous = None
        ignore = ("complete", "created")
        same = isinstance(previous, dict) and all(
            previous.get(k) == v for k, v in manifest.items() if k not in ignore)
        if overwrite:
            for shard in out.glob("shard_*.pt"):
                shard.unlink()
        elif same and previous.get("complete", False):
            return out
        elif same:
            resume = True
        else:
            raise DatasetError(f"{out}: already holds a different dataset ({manifest_path}); "
                               "pass overwrite=True to replace it")
    manifest["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    _write_manifest(manifest_path, manifest)

    bar = tqdm(total=len(dataset), unit="img", desc=f"rendering {out.name}", disable=not progress)
    try:
        for shard in shards:
            path = out / shard["file"]
            if resume and path.exists() and path.stat().st_size > 0:
                bar.update(shard["count"])
                continue
            parts: dict[str, list[torch.Tensor]] = {key: [] for key in fields_}
            for first in range(shard["start"], shard["start"] + shard["count"], render_batch_size):
                last = min(first + render_batch_size, shard["start"] + shard["count"])
                for key, value in stored_fields(dataset.batch(torch.arange(first, last)), fields_).items():
                    parts[key].append(value)  # type: ignore[arg-type]
                bar.update(last - first)
            tensors = {key: torch.cat(values) for key, values in parts.items()}
            _atomic_write(path, lambda tmp: torch.save(tensors, tmp))
    finally:
        bar.close()
    manifest["complete"] = True
    _write_manifest(manifest_path, manifest)
    return out


# ---------------------------------------------------------------------------- reading
class ShardedFaces:
    """A synthetic dataset written by :func:`write_synthetic_dataset`.

    Args:
        path: the dataset folder (or its ``manifest.json``).
        cache_shards: how many loaded shards to keep in memory (least recently used go).
        model: face model used to recompute ``vertices`` from the codes when the shards
            do not store them; without it those batches have ``vertices=None``.

    Raises:
        DatasetError: missing folder or manifest, unreadable or invalid manifest,
            incomplete dataset, or an unknown format version.
    """

    def __init__(self, path: str | Path, cache_shards: int = 2, model: FaceModel | None = None) -> None:
        path = Path(path)
        if path.name == _MANIFEST:
            path = path.parent
        if not path.exists():
            raise DatasetError(f"{path}: synthetic dataset folder does not exist")
        manifest_path = path / _MANIFEST
        if not manifest_path.is_file():
            raise DatasetError(f"{manifest_path}: manifest not found; is {path} a dataset written by "
                               "write_synthetic_dataset?")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise DatasetError(f"{manifest_path}: unreadable manifest ({exc})") from exc
        self.path = path
        self.manifest: dict[str, Any] = self._validate(manifest, manifest_path)
        self.model = model
        self.cache_shards = max(1, int(cache_shards))
        self._cache: OrderedDict[int, dict[str, torch.Tensor]] = OrderedDict()
        self._starts = torch.tensor([s["start"] for s in self.manifest["shards"]], dtype=torch.int64)

    @staticmethod
    def _validate(manifest: Any, where: Path) -> dict[str, Any]:
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise DatasetError(f"{where}: not a {FORMAT_NAME} manifest")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise DatasetError(f"{where}: format version {manifest.get('format_version')!r} is not supported "
                               f"(this mofa_bench reads version {FORMAT_VERSION})")
        if not manifest.get("complete", False):
            raise DatasetError(f"{where}: the dataset is incomplete; rerun write_synthetic_dataset on it to resume")
        try:
            size = int(manifest["size"])
            height, width = (int(v) for v in manifest["image_size"])
            shards = manifest["shards"]
            expected = 0
            for shard in shards:
                if int(shard["start"]) != expected or int(shard["count"]) <= 0 or not isinstance(shard["file"], str):
                    raise ValueError(f"shard entry {shard!r} does not continue at index {expected}")
                expected += int(shard["count"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{where}: invalid manifest ({type(exc).__name__}: {exc})") from exc
        if expected != size or size <= 0:
            raise DatasetError(f"{where}: shard counts add up to {expected}, but the manifest says size {size}")
        if height <= 0 or width <= 0:
            raise DatasetError(f"{where}: invalid image_size {manifest['image_size']!r}")
        return manifest

    def __len__(self) -> int:
        return int(self.manifest["size"])

    def __repr__(self) -> str:
        return f"ShardedFaces({str(self.path)!r}, size={len(self)}, shards={len(self.manifest['shards'])})"

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` of the stored images."""
        h, w = self.manifest["image_size"]
        return (int(h), int(w))

    @property
    def seed(self) -> int:
        return int(self.manifest["seed"])

    @property
    def prior(self) -> CodePrior:
        """The code prior the samples were drawn from."""
        return CodePrior(**self.manifest["prior"])

    def _load_shard(self, k: int) -> dict[str, torch.Tensor]:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        entry = self.manifest["shards"][k]
        path = self.path / entry["file"]
        if not path.is_file():
            raise DatasetError(f"{path}: shard file is missing")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch/pickle/zip errors all mean a corrupt shard
            raise DatasetError(f"{path}: shard file is corrupt or unreadable ({type(exc).__name__}: {exc})") from exc
        self._check_shard(data, entry["count"], path)
        self._cache[k] = data
        while len(self._cache) > self.cache_shards:
            self._cache.popitem(last=False)
        return data

    def _check_shard(self, data: Any, count: int, path: Path) -> None:
        if not isinstance(data, dict):
            raise DatasetError(f"{path}: shard file is corrupt (expected a dict of tensors, got {type(data).__name__})")
        missing = [key for key in _SHARD_KEYS if not isinstance(data.get(key), torch.Tensor)]
        if missing:
            raise DatasetError(f"{path}: shard file is corrupt (missing tensors {missing})")
        h, w = self.image_size
        expected = {"images": (count, 3, h, w), "masks": (count, 1, h, w), "codes": (count, CODE_DIM),
                    "landmarks": (count, 68, 2), "landmark_confidence": (count, 68), "indices": (count,)}
        for key, shape in expected.items():
            if tuple(data[key].shape) != shape:
                raise DatasetError(f"{path}: shard file is corrupt ({key} has shape {tuple(data[key].shape)}, "
                                   f"expected {shape})")
        if data["images"].dtype != torch.uint8 or data["masks"].dtype != torch.uint8:
            raise DatasetError(f"{path}: shard file is corrupt (images/masks must be uint8)")

    def batch(self, indices: torch.Tensor) -> FaceBatch:
        """Read the samples at ``indices``.

        Args:
            indices: ``(B,)`` integer dataset-local indices in ``[0, len)``.

        Returns:
            :class:`FaceBatch` on the CPU: ``images`` ``(B, 3, H, W)`` float32 in [0, 1]
            (quantised to 1/255), ``masks`` ``(B, 1, H, W)`` float32, ``codes``
            ``(B, 257)``, ``vertices`` ``(B, N, 3)`` mm (stored, recomputed from the
            codes with :attr:`model`, or ``None``), ``landmarks`` ``(B, 68, 2)`` px,
            ``landmark_confidence`` ``(B, 68)``, ``indices`` ``(B,)`` int64.

        Raises:
            InputError: indices not a 1-D integer tensor or out of range.
            DatasetError: a needed shard is missing or corrupt (names the file).
        """
        indices = check_indices(indices, len(self))
        shard_of = torch.searchsorted(self._starts, indices, right=True) - 1
        keys = list(_SHARD_KEYS) + ["vertices"]
        rows: dict[str, list[torch.Tensor | None]] = {key: [] for key in keys}
        order = []
        for k in torch.unique(shard_of).tolist():
            where = torch.nonzero(shard_of == k).flatten()
            data = self._load_shard(k)
            local = indices[where] - int(self._starts[k])
            for key in keys:
                value = data.get(key)
                rows[key].append(value[local] if isinstance(value, torch.Tensor) else None)
            order.append(where)
        inverse = torch.empty_like(indices)
        inverse[torch.cat(order)] = torch.arange(indices.numel())

        def gather(key: str) -> torch.Tensor | None:
            values = rows[key]
            if any(v is None for v in values):
                return None
            return torch.cat(values)[inverse]

        codes = gather("codes")
        vertices = gather("vertices")
        if vertices is None and self.model is not None:
            model = self.model.to("cpu", torch.float32)
            vertices = model.vertices(codes[:, CODE_SLICES["alpha"]], codes[:, CODE_SLICES["delta"]])
        return FaceBatch(
            images=gather("images").float() / 255.0,
            indices=indices,
            codes=codes,
            vertices=vertices,
            landmarks=gather("landmarks"),
            landmark_confidence=gather("landmark_confidence"),
            masks=gather("masks").float() / 255.0,
        )
