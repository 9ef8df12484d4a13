"""Local pretrained weights for the encoders: name mapping, loading and its :class:`LoadReport`.

Every backbone uses the module names of its torchvision counterpart, so a torchvision
``alexnet`` / ``vgg16`` / ``resnet18`` / ``resnet50`` state_dict loads by name;
:class:`~mofa_bench.encoders.vgg.VGG16Encoder` also loads the caffe-converted VGG-Face
names ``conv1_1 … conv5_3, fc6, fc7``. The source's own classifier layer is skipped, so
the zero head (:class:`~mofa_bench.encoders.head.CodeHead`) stays zero.

Nothing is ever downloaded: pretrained weights are local files.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from mofa_bench.encoders.base import VGGFACE_MEAN, VGGFACE_STD, FaceEncoder
from mofa_bench.errors import CheckpointError

__all__ = ["LoadReport", "convert_state_dict", "load_pretrained"]


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_pretrained` / :func:`convert_state_dict` did.

    Attributes:
        source_format: ``"torchvision"``, ``"vggface"`` (caffe-converted names) or
            ``"mofa_bench"`` (an encoder checkpoint of this package, head included).
        loaded: our state_dict keys that received a value.
        missing: our backbone keys the source did not provide (head, normalisation /
            scale buffers and ``num_batches_tracked`` are never counted).
        unexpected: source keys that map to nothing of ours.
        skipped: source keys deliberately ignored (the source's own classifier layer).
        normalization: ``"vggface"`` when the input statistics were switched, else ``None``.
        path: the file read, when loaded from a file.
    """

    source_format: str
    loaded: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    skipped: tuple[str, ...]
    normalization: str | None = None
    path: str | None = None

    def summary(self) -> str:
        """One readable paragraph: counts and the first few missing / unexpected keys."""
        def few(keys: tuple[str, ...]) -> str:
            return ", ".join(keys[:8]) + (f", … (+{len(keys) - 8})" if len(keys) > 8 else "")

        parts = [f"{self.source_format} weights{f' from {self.path}' if self.path else ''}: "
                 f"{len(self.loaded)} tensors loaded, {len(self.skipped)} skipped (source classifier)"]
        if self.missing:
            parts.append(f"missing {len(self.missing)}: {few(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)}: {few(self.unexpected)}")
        if self.normalization:
            parts.append(f"input normalisation set to {self.normalization} statistics")
        return "; ".join(parts)


_OWN_EXTRAS = ("input_mean", "input_std", "output_scale")


def _is_optional(key: str) -> bool:
    """Our keys a pretrained backbone need not provide."""
    return key.startswith("head.") or key in _OWN_EXTRAS or key.endswith("num_batches_tracked")


def convert_state_dict(encoder: FaceEncoder,
                       state_dict: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Map a source state_dict's names and shapes onto ``encoder``'s.

    Accepted sources: torchvision names (identical to ours; the source classifier
    ``classifier.6`` / ``fc`` is skipped), VGG-Face caffe-converted names for
    :class:`~mofa_bench.encoders.vgg.VGG16Encoder` (``fc8`` skipped; an ``fc6`` stored as
    a ``(4096, 512, 7, 7)`` convolution is reshaped), and this package's own encoder
    state_dicts (head and buffers included). A ``module.`` prefix (DataParallel) is removed.

    Args:
        encoder: the target encoder.
        state_dict: name → tensor.

    Returns:
        ``(mapped, report)``: ``mapped`` holds our key → tensor for every recognised entry.

    Raises:
        CheckpointError: a tensor's shape does not match ours (names key and shapes).
    """
    ours = encoder.state_dict()
    heads = encoder._source_head_prefixes()
    mapped: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    skipped: list[str] = []
    mismatched: list[str] = []
    source_format = "torchvision"
    for raw_key, value in state_dict.items():
        key = re.sub(r"^(module\.)+", "", str(raw_key))
        if key.startswith("head.") or key in _OWN_EXTRAS:
            source_format = "mofa_bench"
        if any(key.startswith(p) for p in heads):
            skipped.append(str(raw_key))
            continue
        target = key if key in ours else encoder._rename_source_key(key)
        if target is not None and target != key:
            source_format = "vggface" if source_format == "torchvision" else source_format
        if target is None or target not in ours or not isinstance(value, torch.Tensor):
            unexpected.append(str(raw_key))
            continue
        expected = ours[target].shape
        if value.shape != expected:
            if value.numel() == ours[target].numel() and value.dim() > len(expected):
                value = value.reshape(expected)
            else:
                mismatched.append(f"{raw_key} {tuple(value.shape)} vs ours {target} {tuple(expected)}")
                continue
        mapped[target] = value
    if mismatched:
        raise CheckpointError(f"{encoder.arch}: pretrained tensor shapes do not match: " + "; ".join(mismatched[:8])
                              + (f" (+{len(mismatched) - 8} more)" if len(mismatched) > 8 else ""))
    missing = tuple(k for k in ours if k not in mapped and not _is_optional(k))
    report = LoadReport(source_format=source_format, loaded=tuple(mapped), missing=missing,
                        unexpected=tuple(unexpected), skipped=tuple(skipped))
    return mapped, report


def _read_state_dict(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"pretrained weights not found: {path} (give a local state_dict file; "
                              "mofa-bench never downloads weights)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling / zip / format error
        raise CheckpointError(f"could not read pretrained weights {path}: {type(exc).__name__}: {exc}") from exc
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "encoder", "model"):
            inner = obj.get(wrapper)
            if isinstance(inner, Mapping):
                return inner
        if any(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        raise CheckpointError(f"{path}: no state_dict found; top-level keys: {sorted(map(str, obj))[:10]}")
    raise CheckpointError(f"{path}: expected a state_dict (a mapping of tensors), got {type(obj).__name__}")


def load_pretrained(encoder: FaceEncoder, path: str | Path, strict: bool = True,
                    adopt_normalization: bool = True) -> LoadReport:
    """Load local pretrained weights into ``encoder`` (never downloads).

    The file is read with ``torch.load(path, map_location="cpu", weights_only=True)`` and
    may hold a raw state_dict or a dict with a ``"state_dict"`` (also ``"encoder"`` or
    ``"model"``) entry. Names are mapped by :func:`convert_state_dict`; the source's own
    classifier layer is skipped, so the head stays zero unless the file is a mofa-bench
    encoder checkpoint. With VGG-Face names and ``adopt_normalization``, the input
    statistics become :data:`~mofa_bench.encoders.base.VGGFACE_MEAN` /
    :data:`~mofa_bench.encoders.base.VGGFACE_STD`, which those weights expect.

    Args:
        encoder: target encoder (modified in place).
        path: the state_dict file.
        strict: raise when any backbone tensor is missing or any source key is unexpected;
            otherwise load what matches and emit a ``UserWarning`` with the report.
        adopt_normalization: switch to VGG-Face statistics for VGG-Face weights.

    Returns:
        :class:`LoadReport` of what was loaded, missing, unexpected and skipped.

    Raises:
        CheckpointError: the file is missing or unreadable, holds no state_dict, shapes
            differ, nothing matches, or (``strict``) keys are missing / unexpected. The
            message names the path.
    """
    path = Path(path).expanduser()
    mapped, report = convert_state_dict(encoder, _read_state_dict(path))
    if not mapped:
        raise CheckpointError(f"{path}: no tensor names match a {encoder.arch} encoder "
                              f"({len(report.unexpected)} unexpected keys, e.g. {list(report.unexpected[:5])})")
    normalization = "vggface" if (report.source_format == "vggface" and adopt_normalization) else None
    report = LoadReport(report.source_format, report.loaded, report.missing, report.unexpected,
                        report.skipped, normalization, str(path))
    if strict and (report.missing or report.unexpected):
        raise CheckpointError(f"{encoder.arch}: {report.summary()} (pass strict=False to load what matches)")
    if report.missing or report.unexpected:
        warnings.warn(report.summary(), UserWarning, stacklevel=2)
    with torch.no_grad():
        encoder.load_state_dict(mapped, strict=False)
    if normalization:
        encoder.set_normalization(VGGFACE_MEAN, VGGFACE_STD)
    return report
