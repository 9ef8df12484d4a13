"""The datasets a config names, and the fixed index ranges of the synthetic splits.

Synthetic sample ``i`` of a split is a pure function of ``(data.seed, start + i)``, so the
splits are disjoint by construction and the same for every run with the same seed:

- training: global indices ``[0, train_size)``;
- validation: ``[VALIDATION_START, VALIDATION_START + val_size)`` — the same faces
  whatever the training size;
- test: ``[TEST_START, TEST_START + test_size)`` — never seen by training or validation;
  suites and reports score on it;
- target: ``[TARGET_START, TARGET_START + size)`` — the images a breeding method
  (InverseFaceNet's) encodes to learn the target distribution; never tested on.

Protocols (the config's ``data`` section): with ``data.out_of_span`` on, every split adds
held-out detail outside the decoder's model
(:class:`~mofa_bench.data.out_of_span.OutOfSpanFaces`); with ``data.target_prior`` set (the
domain-gap protocol) the validation, test and target splits draw their codes from it, the
training split from ``data.prior``. ``data.generator`` (how codes and backgrounds are drawn:
per-sample CPU generators or the batched counter-based generator) applies to the training
split; validation, test and target always draw with the CPU generators, so their faces
are the same for every run of a seed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from mofa_bench.decoder import MoFADecoder

if TYPE_CHECKING:
    from mofa_bench.config import DataConfig

#: Global index of the first synthetic validation sample.
VALIDATION_START = 1_000_000_000
#: Global index of the first synthetic test sample.
TEST_START = 2_000_000_000
#: Global index of the first sample of the breeding target split.
TARGET_START = 3_000_000_000

Split = Literal["train", "val", "test", "target"]
_STARTS: dict[str, int] = {"train": 0, "val": VALIDATION_START, "test": TEST_START, "target": TARGET_START}


def synthetic_split(decoder: MoFADecoder, data: "DataConfig", split: Split, size: int | None = None) -> Any:
    """One split of the synthetic data a config describes.

    Args:
        decoder: draws the images (its model, camera and renderer; on its model's device).
        data: the config's ``data`` section (seed, prior, backgrounds, split sizes).
        split: ``"train"``, ``"val"``, ``"test"`` or ``"target"``.
        size: number of samples (default: the config's size of that split; the target
            split's is the test size).

    Returns:
        A :class:`~mofa_bench.data.synthetic.SyntheticFaces` (an
        :class:`~mofa_bench.data.out_of_span.OutOfSpanFaces` under ``data.out_of_span``).
    """
    from mofa_bench.data.synthetic import SyntheticFaces

    default = {"train": data.train_size, "val": data.val_size, "test": data.test_size, "target": data.test_size}[split]
    prior = data.target_prior if split != "train" and data.target_prior is not None else data.prior
    generator = data.generator if split == "train" else "cpu"
    common = dict(seed=data.seed, prior=prior, backgrounds=data.backgrounds, start=_STARTS[split], generator=generator)
    if data.out_of_span.enabled:
        from mofa_bench.data.out_of_span import OutOfSpanFaces

        return OutOfSpanFaces(decoder, size or default, detail=data.out_of_span, **common)
    return SyntheticFaces(decoder, size or default, **common)


def build_datasets(data: "DataConfig", decoder: MoFADecoder, image_size: int,
                   progress: bool = True) -> tuple[Any, Any]:
    """The training and validation datasets of a config's ``data`` section.

    Args:
        data: the ``data`` section.
        decoder: the training decoder; synthetic images are drawn with its model and
            camera and the ``data.synthetic_renderer`` backend.
        image_size: side of the square crops of photo folders, px.
        progress: show a progress bar while ``data.preload`` draws the training set.

    Returns:
        ``(train, val)``; ``val`` is ``None`` when the config names no validation data.
        ``mixed`` data (:mod:`mofa_bench.data.mixed`) trains on a
        :class:`~mofa_bench.data.mixed.MixedFaces` of its sources and validates on the
        synthetic validation split. With ``data.preload`` the training set is a
        :class:`~mofa_bench.data.preload.PreloadedFaces`: drawn once, held in memory.
    """
    train, val = _train_and_val(data, decoder, image_size)
    if data.preload:
        from mofa_bench.data.preload import PreloadedFaces

        train = PreloadedFaces(train, progress=progress)
    return train, val


def _train_and_val(data: "DataConfig", decoder: MoFADecoder, image_size: int) -> tuple[Any, Any]:
    """``(train, val)`` of :func:`build_datasets`, before any preloading."""
    if data.kind == "mixed":
        from mofa_bench.data.mixed import MixedFaces

        sources = [_dataset(source.kind, source.path, data, decoder, image_size) for source in data.sources]
        names = [source.kind if not source.path else f"{source.kind} {source.path}" for source in data.sources]
        mixed = MixedFaces(sources, [source.weight for source in data.sources], seed=data.seed, names=names)
        return mixed, synthetic_split(decoder.with_renderer(data.synthetic_renderer), data, "val")
    train = _dataset(data.kind, data.path, data, decoder, image_size)
    if data.kind == "synthetic":
        return train, synthetic_split(decoder.with_renderer(data.synthetic_renderer), data, "val")
    return train, _dataset(data.kind, data.val_path, data, decoder, image_size) if data.val_path else None


def _dataset(kind: str, path: str | None, data: "DataConfig", decoder: MoFADecoder, image_size: int) -> Any:
    """The training dataset of one kind: the synthetic training split, or the folder at ``path``."""
    if kind == "synthetic":
        return synthetic_split(decoder.with_renderer(data.synthetic_renderer), data, "train")
    if kind == "sharded":
        from mofa_bench.data.synthetic import ShardedFaces

        return ShardedFaces(path)
    if kind == "prepared":
        from mofa_bench.data.prepared import PreparedFaces

        return PreparedFaces(path, image_size)
    from mofa_bench.data.images import ImageFolder

    return ImageFolder(path, image_size, grey=data.grey)
