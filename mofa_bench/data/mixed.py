"""Training on several data sources at once, mixed by weight (``data.kind: mixed``).

A config lists its sources under ``data.sources``::

    data:
      kind: mixed
      sources:
        - {kind: prepared, path: prepared/, weight: 0.5}   # photos: landmarks + confidences
        - {kind: synthetic, weight: 0.5}                    # renders: ground-truth codes too
      train_size: 100000                                    # the synthetic source's size

Each **batch** comes from one source, chosen with probability proportional to its weight,
so a batch of photos carries landmarks and confidences (no codes) and a batch of renders
carries its ground truth (codes, vertices, landmarks, masks), never a mixture of the two
with the codes dropped. The choice is a pure function of ``(seed, the batch's indices)``:
the trainer's index batches are themselves a pure function of the step
(:mod:`mofa_bench.training.schedule`), so a resumed run draws the same sources an
uninterrupted one would. A synthetic source is the config's synthetic training split
(``data.train_size``, ``data.seed``, ``prior``, ``backgrounds``); the other kinds read
their ``path`` as ``data.kind`` of that name would. Validation is the synthetic
validation split (faces with ground truth, the same for every run with the same
``data`` section).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import torch

from mofa_bench.data.batch import FaceBatch
from mofa_bench.data.synthetic import check_indices
from mofa_bench.errors import ConfigError, InputError

__all__ = ["SOURCE_KINDS", "DataSource", "MixedFaces", "check_sources"]

#: Kinds a source of a mixed dataset can have (every ``data.kind`` but ``mixed``).
SOURCE_KINDS: tuple[str, ...] = ("synthetic", "sharded", "images", "prepared")


@dataclass
class DataSource:
    """One source of ``data.kind: mixed``.

    Attributes:
        kind: one of :data:`SOURCE_KINDS`.
        path: its folder (every kind but ``synthetic``).
        weight: its share of the training batches, relative to the other sources' (> 0).
    """

    kind: str = "synthetic"
    path: str | None = None
    weight: float = 1.0


def check_sources(kind: str, sources: Sequence[DataSource], check_paths: bool = True) -> None:
    """Check ``data.sources`` against ``data.kind``.

    Raises:
        ConfigError: sources given for another kind, none for ``mixed``, or a source with
            an unknown kind, a missing or absent path, or a weight that is not finite and
            > 0; the message names the key (``data.sources[1].weight``).
    """
    from pathlib import Path

    if kind != "mixed":
        if sources:
            raise ConfigError(f"data.sources: only used with data.kind='mixed', got data.kind={kind!r}")
        return
    if not sources:
        raise ConfigError("data.sources: data.kind='mixed' needs at least one source, e.g. "
                          "[{kind: prepared, path: prepared/, weight: 0.5}, {kind: synthetic, weight: 0.5}]")
    for i, source in enumerate(sources):
        key = f"data.sources[{i}]"
        if source.kind not in SOURCE_KINDS:
            raise ConfigError(f"{key}.kind: expected one of {', '.join(SOURCE_KINDS)}, got {source.kind!r}")
        if not (math.isfinite(source.weight) and source.weight > 0):
            raise ConfigError(f"{key}.weight: expected a finite weight > 0, got {source.weight}")
        if source.kind == "synthetic":
            if source.path:
                raise ConfigError(f"{key}.path: a synthetic source has no path (it is the synthetic training "
                                  f"split of the data section)")
            continue
        if not source.path:
            raise ConfigError(f"{key}.path: required for a source of kind {source.kind!r}")
        if check_paths and not Path(source.path).exists():
            raise ConfigError(f"{key}.path: {source.path} does not exist")


def _batch_seed(seed: int, indices: torch.Tensor) -> int:
    """A 63-bit seed from ``seed`` and the index values (blake2b, stable across runs and platforms)."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(int(seed).to_bytes(8, "little", signed=False))
    digest.update(indices.numpy().astype("<i8").tobytes())
    return int.from_bytes(digest.digest(), "little") >> 1


class MixedFaces:
    """Several datasets behind one index range; each batch is drawn from one of them by weight.

    The dataset has ``L = max_s ceil(len_s / p_s)`` indices (``p_s`` the normalised
    weights), so an epoch of it draws at least each source's size from that source (in
    expectation). Index ``i`` of a batch given to source ``s`` is that source's sample
    ``i mod len_s``.

    Args:
        sources: the datasets (each with ``__len__`` and ``batch(indices) -> FaceBatch``).
        weights: one positive weight per dataset (normalised here).
        seed: seed of the per-batch source choice.
        names: a name per source, for messages and :meth:`describe`.

    Raises:
        InputError: no sources, a weight that is not finite and > 0, a length mismatch or
            an empty source.
    """

    def __init__(self, sources: Sequence[Any], weights: Sequence[float], seed: int = 0,
                 names: Sequence[str] | None = None) -> None:
        if not sources:
            raise InputError("sources: expected at least one dataset")
        if len(weights) != len(sources):
            raise InputError(f"weights: expected {len(sources)} weights (one per source), got {len(weights)}")
        if any(not (math.isfinite(float(w)) and float(w) > 0) for w in weights):
            raise InputError(f"weights: expected finite weights > 0, got {list(weights)}")
        names = list(names) if names is not None else [f"source {i}" for i in range(len(sources))]
        for name, source in zip(names, sources):
            if len(source) == 0:
                raise InputError(f"sources: {name} is empty")
        total = float(sum(float(w) for w in weights))
        self.sources = list(sources)
        self.names = names
        self.probabilities = torch.tensor([float(w) / total for w in weights], dtype=torch.float64)
        """``(S,)`` float64 normalised weights: the share of batches each source gives."""
        self.seed = int(seed)
        self.size = max(math.ceil(len(s) / float(p)) for s, p in zip(self.sources, self.probabilities))

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}: {float(p):.3g}" for n, p in zip(self.names, self.probabilities))
        return f"MixedFaces({len(self)} indices; {parts})"

    def source_of(self, indices: torch.Tensor | Any) -> int:
        """The source (position in ``sources``) that the batch of ``indices`` is drawn from.

        A pure function of ``(seed, indices)``: one uniform draw from a generator seeded by
        a hash of both, compared with the cumulative normalised weights.
        """
        indices = check_indices(indices, len(self))
        generator = torch.Generator().manual_seed(_batch_seed(self.seed, indices))
        u = float(torch.rand((), generator=generator, dtype=torch.float64))
        cumulative = torch.cumsum(self.probabilities, 0)
        return min(int(torch.searchsorted(cumulative, torch.tensor(u, dtype=torch.float64), right=True)),
                   len(self.sources) - 1)

    def batch(self, indices: torch.Tensor | Any) -> FaceBatch:
        """The batch of ``indices``, drawn from one source (:meth:`source_of`).

        Args:
            indices: ``(B,)`` integer indices in ``[0, len)``.

        Returns:
            That source's :class:`FaceBatch` of its samples ``indices mod len(source)``
            (on that source's device: the CPU for photos, the decoder's for renders), with
            ``indices`` the given ``(B,)`` int64 indices of this dataset.

        Raises:
            InputError: indices not a 1-D integer tensor or out of range.
        """
        indices = check_indices(indices, len(self))
        source = self.sources[self.source_of(indices)]
        batch = source.batch(indices % len(source))
        return replace(batch, indices=indices.to(batch.indices.device))

    def describe(self) -> dict[str, Any]:
        """``{"size", "sources": [{"name", "size", "share"}]}`` (plain data, for logs)."""
        return {"size": len(self), "sources": [{"name": n, "size": len(s), "share": float(p)}
                                               for n, s, p in zip(self.names, self.sources, self.probabilities)]}
