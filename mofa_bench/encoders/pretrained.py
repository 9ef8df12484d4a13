"""CNN encoders: image ``(B, 3, H, W)`` → MoFA code ``(B, 257)`` (plain torch, no torchvision).

Three backbones with the module names of their torchvision counterparts, so a
torchvision ``alexnet`` / ``vgg16`` / ``resnet18`` / ``resnet50`` state_dict loads by name
(:func:`load_pretrained`); ``vgg16`` is also the VGG-Face topology and loads the
caffe-converted VGG-Face names ``conv1_1 … conv5_3, fc6, fc7`` as well.

Every encoder is ``normalise → backbone → head → × output_scale``:

- **Normalisation** inside the encoder: images in [0, 1] become ``(x − mean) / std``
  (ImageNet statistics by default, :data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`;
  :data:`VGGFACE_MEAN`, :data:`VGGFACE_STD` for VGG-Face weights).
- **Backbone** with adaptive average pooling, so any input with H, W ≥
  :data:`MIN_IMAGE_SIZE` (64) works; the nominal input is 240 × 240 (the paper's crops).
- **Head** (:class:`CodeHead`): the last fully connected layer, features → 257, with all
  weights and biases zero, so the first prediction is the zero code (mean face, frontal,
  centred, ambient-lit), as in the paper. It is two ``nn.Linear`` layers whose outputs are
  interleaved back into code order: ``head.main`` gives the 256 outputs other than
  z-translation, ``head.z_translation`` gives code index :data:`Z_TRANSLATION_INDEX`
  (229). Separate parameters let the optimizer give z-translation its own learning rate
  exactly (:func:`parameter_groups`; the paper uses 0.1 and 0.0005 with AdaDelta).
- **Output scale**: the network output ``o`` becomes the code ``x = o ⊙ s`` with the
  ``(257,)`` buffer ``s`` = :func:`output_scale_vector` of :data:`OUTPUT_SCALE`, so that
  outputs of order one span realistic parameter ranges.

Usage::

    encoder = build_encoder("alexnet", pretrained="weights/alexnet-owt-7be5be79.pth")
    code = encoder(images)                                  # (B, 3, 240, 240) → (B, 257)
    opt = torch.optim.Adadelta(parameter_groups(encoder, lr=0.1, z_translation_lr=5e-4))

Nothing is ever downloaded: pretrained weights are local files.
"""

from __future__ import annotations

import inspect
import re
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from mofa_bench.code_vector import CODE_DIM, CODE_LAYOUT, CODE_SLICES
from mofa_bench.errors import CheckpointError, ConfigError, InputError
from renderers.checks import check_tensor

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGGFACE_MEAN",
    "VGGFACE_STD",
    "MIN_IMAGE_SIZE",
    "OUTPUT_SCALE",
    "Z_TRANSLATION_INDEX",
    "AlexNetEncoder",
    "CodeHead",
    "FaceEncoder",
    "LoadReport",
    "ResNetEncoder",
    "VGG16Encoder",
    "build_encoder",
    "convert_state_dict",
    "encoder_names",
    "load_pretrained",
    "output_scale_vector",
    "parameter_groups",
]

#: ImageNet channel means (RGB, images in [0, 1]); torchvision's pretrained weights expect them.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
#: ImageNet channel standard deviations (RGB, images in [0, 1]).
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: VGG-Face channel means (RGB) in [0, 1] units; the network expects ``255 · x − 255 · mean``.
VGGFACE_MEAN: tuple[float, float, float] = (129.186279296875 / 255.0, 104.76238250732422 / 255.0,
                                            93.59396362304688 / 255.0)
#: VGG-Face "standard deviation": the caffe model works on 0–255 pixel values, std 1 there.
VGGFACE_STD: tuple[float, float, float] = (1.0 / 255.0,) * 3

#: Smallest accepted input height and width in pixels (AlexNet's strides reach 1 × 1 here).
MIN_IMAGE_SIZE: int = 64
#: Index of z-translation (camera-space depth, mm) in the code vector: 227 + 2 = 229.
Z_TRANSLATION_INDEX: int = CODE_SLICES["translation"].start + 2

#: Per-part output scale: code = network output × scale. A float applies to every entry of
#: the part, a tuple gives one value per entry.
#:
#: ============  ===============  ============================================================
#: part          scale            reasoning (network outputs |o| ≲ 2)
#: ============  ===============  ============================================================
#: alpha         1                prior N(0, 1): o is already in standard deviations.
#: delta         1                prior N(0, 1).
#: beta          1                prior N(0, 1).
#: rotation      1 rad            ±1 rad ≈ ±57°: covers in-the-wild yaw, pitch and roll.
#: translation   (10, 10, 50) mm  x, y: 1 mm ≈ 1 px at the default camera (f = 2.5 W at 600 mm,
#:                                W = 240), so ±2 → ±20 px of crop misalignment; z: ±2 → ±100 mm
#:                                of depth, a ±17 % change of apparent face size.
#: gamma         0.3              SH radiance coefficients next to the 0.7 ambient offset: ±1 →
#:                                ±0.27 irradiance on the constant band, ≈ ±0.31 directional
#:                                (band 1) variation against the ambient ≈ 0.62.
#: ============  ===============  ============================================================
OUTPUT_SCALE: dict[str, float | tuple[float, ...]] = {
    "alpha": 1.0,
    "delta": 1.0,
    "beta": 1.0,
    "rotation": 1.0,
    "translation": (10.0, 10.0, 50.0),
    "gamma": 0.3,
}


def output_scale_vector(table: Mapping[str, float | Sequence[float]] | None = None,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Build the ``(257,)`` per-entry output scale from a per-part table.

    Args:
        table: part name → scale (a number for the whole part or one number per entry);
            parts not given use :data:`OUTPUT_SCALE`.
        dtype: dtype of the result.

    Returns:
        ``(257,)`` positive scales in code order (α, δ, β: 1; rotation: rad; translation:
        mm; γ: SH units per unit network output).

    Raises:
        ConfigError: unknown part name, wrong number of entries, or a non-positive scale.
    """
    merged: dict[str, Any] = dict(OUTPUT_SCALE)
    if table:
        unknown = sorted(set(table) - set(CODE_SLICES))
        if unknown:
            raise ConfigError(f"output_scale: unknown code parts {unknown}; known: {list(CODE_SLICES)}")
        merged.update(table)
    pieces = []
    for name, n in CODE_LAYOUT:
        value = merged[name]
        values = torch.as_tensor(value, dtype=torch.float64).flatten()
        if values.numel() == 1:
            values = values.expand(n)
        if values.numel() != n:
            raise ConfigError(f"output_scale.{name}: expected 1 or {n} values, got {values.numel()}")
        if not bool((values > 0).all()) or not bool(torch.isfinite(values).all()):
            raise ConfigError(f"output_scale.{name}: scales must be finite and > 0, got {value!r}")
        pieces.append(values)
    return torch.cat(pieces).to(dtype)


class CodeHead(nn.Module):
    """The last fully connected layer, features ``(B, F)`` → raw code ``(B, 257)``.

    Two ``nn.Linear`` layers whose outputs are interleaved into code order:
    ``main`` (F → 256) gives every code entry except z-translation, in order, and
    ``z_translation`` (F → 1) gives entry :data:`Z_TRANSLATION_INDEX`. Mathematically this is
    one ``Linear(F, 257)`` with weight :attr:`weight`; keeping the z row in its own
    parameters lets an optimizer give it a separate learning rate.

    All weights and biases start at zero, so the head outputs zeros (the zero code).

    Args:
        in_features: feature size F of the backbone.
    """

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.in_features = int(in_features)
        self.main = nn.Linear(self.in_features, CODE_DIM - 1)
        self.z_translation = nn.Linear(self.in_features, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set every weight and bias to zero."""
        for layer in (self.main, self.z_translation):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @property
    def weight(self) -> torch.Tensor:
        """``(257, F)`` the equivalent single-layer weight, in code order (a new tensor)."""
        w = self.main.weight
        return torch.cat([w[:Z_TRANSLATION_INDEX], self.z_translation.weight, w[Z_TRANSLATION_INDEX:]], dim=0)

    @property
    def bias(self) -> torch.Tensor:
        """``(257,)`` the equivalent single-layer bias, in code order (a new tensor)."""
        b = self.main.bias
        return torch.cat([b[:Z_TRANSLATION_INDEX], self.z_translation.bias, b[Z_TRANSLATION_INDEX:]], dim=0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` features → ``(B, 257)`` raw outputs in code order."""
        m = self.main(features)
        z = self.z_translation(features)
        return torch.cat([m[:, :Z_TRANSLATION_INDEX], z, m[:, Z_TRANSLATION_INDEX:]], dim=1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={CODE_DIM}, z_translation_index={Z_TRANSLATION_INDEX}"


class FaceEncoder(nn.Module):
    """Base class: normalisation, backbone (subclass), :class:`CodeHead`, output scale.

    Subclasses build their backbone under torchvision's module names, assign
    ``self.head = CodeHead(feature_dim)`` and implement :meth:`extract_features`.

    Args:
        image_size: nominal square input size in pixels (recorded for data pipelines;
            any H, W ≥ :data:`MIN_IMAGE_SIZE` is accepted by :meth:`forward`).
        mean: per-channel RGB mean subtracted from images in [0, 1].
        std: per-channel RGB standard deviation the centred images are divided by.
        output_scale: per-part overrides of :data:`OUTPUT_SCALE`.

    Buffers (saved in the state_dict):
        input_mean, input_std: ``(1, 3, 1, 1)`` normalisation statistics.
        output_scale: ``(257,)`` per-entry code scale.

    Shape:
        - Input: ``(B, 3, H, W)`` RGB in [0, 1], H, W ≥ 64.
        - Output: ``(B, 257)`` code (layout in :mod:`mofa_bench.code_vector`).
    """

    #: Registry name of the architecture (set by subclasses).
    arch: str = "encoder"
    #: Size F of the feature vector fed to the head.
    feature_dim: int

    def __init__(self, image_size: int = 240, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD,
                 output_scale: Mapping[str, float | Sequence[float]] | None = None) -> None:
        super().__init__()
        if int(image_size) < MIN_IMAGE_SIZE:
            raise ConfigError(f"image_size: expected >= {MIN_IMAGE_SIZE} px, got {image_size}")
        self.image_size = int(image_size)
        self.register_buffer("input_mean", torch.zeros(1, 3, 1, 1))
        self.register_buffer("input_std", torch.ones(1, 3, 1, 1))
        self.set_normalization(mean, std)
        self.register_buffer("output_scale", output_scale_vector(output_scale))

    def set_normalization(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Replace the input statistics (three RGB values each, for images in [0, 1]).

        Raises:
            ConfigError: not three values, or a non-positive std.
        """
        m = torch.as_tensor(mean, dtype=torch.float32).flatten()
        s = torch.as_tensor(std, dtype=torch.float32).flatten()
        if m.numel() != 3 or s.numel() != 3:
            raise ConfigError(f"normalization: mean and std need 3 values each, got {m.tolist()}, {s.tolist()}")
        if not bool((s > 0).all()):
            raise ConfigError(f"normalization: std must be > 0, got {s.tolist()}")
        self.input_mean.copy_(m.view(1, 3, 1, 1))
        self.input_std.copy_(s.view(1, 3, 1, 1))

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` images in [0, 1] → ``(images − mean) / std``."""
        mean = self.input_mean.to(images.dtype)
        std = self.input_std.to(images.dtype)
        return (images - mean) / std

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone: normalised ``(B, 3, H, W)`` → ``(B, F)`` features."""
        raise NotImplementedError

    def raw_output(self, images: torch.Tensor) -> torch.Tensor:
        """The network output ``o`` before the output scale.

        Args:
            images: ``(B, 3, H, W)`` RGB in [0, 1], H, W ≥ 64.

        Returns:
            ``(B, 257)`` raw outputs in code order (zeros for an untrained head).

        Raises:
            InputError: wrong shape or dtype, or an image smaller than 64 px.
        """
        check_tensor("images", images, "B 3 H W", floating=True)
        h, w = images.shape[-2:]
        if h < MIN_IMAGE_SIZE or w < MIN_IMAGE_SIZE:
            raise InputError(f"images: expected H, W >= {MIN_IMAGE_SIZE} px, got {tuple(images.shape)}")
        return self.head(self.extract_features(self.normalize(images)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encode images.

        Args:
            images: ``(B, 3, H, W)`` RGB in [0, 1], H, W ≥ 64.

        Returns:
            ``(B, 257)`` codes ``raw_output(images) · output_scale``.
        """
        return self.raw_output(images) * self.output_scale.to(images.dtype)

    # -- pretrained-weight name mapping (used by convert_state_dict) ---------------------

    def _source_head_prefixes(self) -> tuple[str, ...]:
        """Prefixes of the source network's own classifier layer, skipped on load."""
        return ()

    def _rename_source_key(self, key: str) -> str | None:
        """Map a foreign (non-torchvision) key to ours; ``None`` when not recognised."""
        return None


# --------------------------------------------------------------------------- AlexNet


class AlexNetEncoder(FaceEncoder):
    """AlexNet (torchvision's single-tower layout) with a zero-initialised 257-way head.

    Module names follow torchvision's ``alexnet``: ``features.{0,3,6,8,10}`` convolutions
    (64, 192, 384, 256, 256 channels), ``avgpool`` (adaptive, 6 × 6),
    ``classifier.{1,4}`` (9216 → 4096 → 4096), then ``head`` instead of torchvision's
    ``classifier.6`` (4096 → 1000), which is skipped when loading.

    Args:
        image_size: nominal input size, px (default 240).
        dropout: dropout probability before each hidden fully connected layer.
        **kwargs: ``mean``, ``std``, ``output_scale`` of :class:`FaceEncoder`.
    """

    arch = "alexnet"
    feature_dim = 4096

    def __init__(self, image_size: int = 240, dropout: float = 0.5, **kwargs: Any) -> None:
        super().__init__(image_size=image_size, **kwargs)
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
        )
        self.head = CodeHead(self.feature_dim)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    def _source_head_prefixes(self) -> tuple[str, ...]:
        return ("classifier.6.",)


# --------------------------------------------------------------------------- VGG-16

#: VGG-16 conv configuration ("M" = 2 × 2 max pooling), as torchvision's config "D".
_VGG16_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                                     512, 512, 512, "M", 512, 512, 512, "M")


def _vggface_name_table() -> dict[str, str]:
    """VGG-Face (caffe-converted) layer names → our module names."""
    table: dict[str, str] = {}
    idx, block, conv = 0, 1, 1
    for v in _VGG16_CFG:
        if v == "M":
            idx += 1
            block, conv = block + 1, 1
        else:
            table[f"conv{block}_{conv}"] = f"features.{idx}"
            idx += 2
            conv += 1
    table["fc6"] = "classifier.0"
    table["fc7"] = "classifier.3"
    return table


class VGG16Encoder(FaceEncoder):
    """VGG-16 (= VGG-Face topology) with a zero-initialised 257-way head.

    Module names follow torchvision's ``vgg16``: 13 convolutions in ``features``,
    ``avgpool`` (adaptive, 7 × 7), ``classifier.{0,3}`` (25088 → 4096 → 4096), then
    ``head`` instead of ``classifier.6``. VGG-Face's caffe-converted names also load:
    ``conv1_1 … conv5_3`` → ``features.*``, ``fc6`` → ``classifier.0`` (also when stored
    as a 7 × 7 convolution), ``fc7`` → ``classifier.3``; ``fc8`` is skipped. Loading
    VGG-Face names switches the input normalisation to :data:`VGGFACE_MEAN` /
    :data:`VGGFACE_STD` (see :func:`load_pretrained`).

    Args:
        image_size: nominal input size, px (default 240).
        dropout: dropout probability after each hidden fully connected layer.
        **kwargs: ``mean``, ``std``, ``output_scale`` of :class:`FaceEncoder`.
    """

    arch = "vgg16"
    feature_dim = 4096
    _VGGFACE_NAMES = _vggface_name_table()

    def __init__(self, image_size: int = 240, dropout: float = 0.5, **kwargs: Any) -> None:
        super().__init__(image_size=image_size, **kwargs)
        layers: list[nn.Module] = []
        channels = 3
        for v in _VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = int(v)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
        )
        self.head = CodeHead(self.feature_dim)
        for m in [*self.features, *self.classifier]:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    def _source_head_prefixes(self) -> tuple[str, ...]:
        return ("classifier.6.", "fc8.")

    def _rename_source_key(self, key: str) -> str | None:
        layer, _, param = key.partition(".")
        ours = self._VGGFACE_NAMES.get(layer)
        return f"{ours}.{param}" if ours is not None and param in ("weight", "bias") else None


# --------------------------------------------------------------------------- ResNet


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """ResNet basic block (two 3 × 3 convolutions), torchvision names."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """ResNet bottleneck block (1 × 1, 3 × 3 with the stride, 1 × 1; torchvision "v1.5")."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


#: depth → (block type, blocks per stage), as torchvision.
_RESNET_LAYERS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNetEncoder(FaceEncoder):
    """ResNet-18/34/50/101/152 with a zero-initialised 257-way head.

    Module names follow torchvision's ``resnet*``: ``conv1``, ``bn1``, ``layer1 … layer4``
    (blocks ``conv*``, ``bn*``, ``downsample.{0,1}``), ``avgpool`` (adaptive, 1 × 1); ``head``
    replaces torchvision's ``fc``, which is skipped when loading. Batch-norm statistics
    are buffers: use ``encoder.eval()`` for inference.

    Args:
        depth: 18, 34, 50, 101 or 152.
        image_size: nominal input size, px (default 240).
        **kwargs: ``mean``, ``std``, ``output_scale`` of :class:`FaceEncoder`.

    Raises:
        ConfigError: unsupported depth.
    """

    def __init__(self, depth: int = 18, image_size: int = 240, **kwargs: Any) -> None:
        if depth not in _RESNET_LAYERS:
            raise ConfigError(f"ResNetEncoder.depth: expected one of {sorted(_RESNET_LAYERS)}, got {depth!r}")
        super().__init__(image_size=image_size, **kwargs)
        block, counts = _RESNET_LAYERS[depth]
        self.depth = depth
        self.arch = f"resnet{depth}"
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self._inplanes = 64
        self.layer1 = self._make_layer(block, 64, counts[0], 1)
        self.layer2 = self._make_layer(block, 128, counts[1], 2)
        self.layer3 = self._make_layer(block, 256, counts[2], 2)
        self.layer4 = self._make_layer(block, 512, counts[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.feature_dim = 512 * block.expansion  # type: ignore[attr-defined]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        self.head = CodeHead(self.feature_dim)

    def _make_layer(self, block: type[nn.Module], planes: int, blocks: int, stride: int) -> nn.Sequential:
        expansion = block.expansion  # type: ignore[attr-defined]
        downsample = None
        if stride != 1 or self._inplanes != planes * expansion:
            downsample = nn.Sequential(_conv1x1(self._inplanes, planes * expansion, stride),
                                       nn.BatchNorm2d(planes * expansion))
        layers = [block(self._inplanes, planes, stride, downsample)]
        self._inplanes = planes * expansion
        layers += [block(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def _source_head_prefixes(self) -> tuple[str, ...]:
        return ("fc.",)


# --------------------------------------------------------------------------- registry

_ENCODERS: dict[str, Callable[..., FaceEncoder]] = {
    "alexnet": AlexNetEncoder,
    "vgg16": VGG16Encoder,
    "resnet18": partial(ResNetEncoder, depth=18),
    "resnet50": partial(ResNetEncoder, depth=50),
}
_ALIASES = {"vggface": "vgg16", "vgg-face": "vgg16", "vgg_face": "vgg16"}


def encoder_names() -> tuple[str, ...]:
    """Names accepted by :func:`build_encoder`."""
    return tuple(_ENCODERS)


def build_encoder(name: str, pretrained: str | Path | None = None, image_size: int = 240,
                  **options: Any) -> FaceEncoder:
    """Build an encoder by name, optionally with local pretrained backbone weights.

    Args:
        name: ``"alexnet"``, ``"vgg16"`` (alias ``"vggface"``), ``"resnet18"`` or
            ``"resnet50"`` (case-insensitive).
        pretrained: path of a local state_dict (``.pth``/``.pt``) to load with
            :func:`load_pretrained` (strict); ``None`` keeps the random initialisation.
            Nothing is downloaded.
        image_size: nominal square input size, px.
        **options: constructor options of the class (``dropout``, ``mean``, ``std``,
            ``output_scale``).

    Returns:
        The encoder (in training mode), with a zero head: it predicts the zero code.

    Raises:
        ConfigError: unknown name (the message lists the known names) or option.
        CheckpointError: ``pretrained`` is missing, unreadable or does not match.
    """
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _ENCODERS:
        raise ConfigError(f"encoder: unknown name {name!r}; known: {', '.join(encoder_names())}")
    factory = _ENCODERS[key]
    cls = factory.func if isinstance(factory, partial) else factory
    accepted = {p for c in (cls, FaceEncoder) for p in inspect.signature(c.__init__).parameters}
    accepted -= {"self", "kwargs", "depth"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(f"encoder {key!r}: unknown options {unknown}; accepted: {sorted(accepted - {'image_size'})}")
    encoder = factory(image_size=image_size, **options)
    if pretrained is not None:
        load_pretrained(encoder, pretrained)
    return encoder


# --------------------------------------------------------------------------- pretrained loading


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
    :class:`VGG16Encoder` (``fc8`` skipped; an ``fc6`` stored as a ``(4096, 512, 7, 7)``
    convolution is reshaped), and this package's own encoder state_dicts (head and
    buffers included). A ``module.`` prefix (DataParallel) is removed.

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
    statistics become :data:`VGGFACE_MEAN` / :data:`VGGFACE_STD`, which those weights expect.

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


# --------------------------------------------------------------------------- optimiser groups


def parameter_groups(encoder: FaceEncoder, lr: float, z_translation_lr: float) -> list[dict[str, Any]]:
    """Optimizer parameter groups giving the z-translation output its own learning rate.

    The z-translation row of the head (code index :data:`Z_TRANSLATION_INDEX`) lives in
    ``encoder.head.z_translation`` (its weight ``(1, F)`` and bias ``(1,)``); every other
    trainable parameter, including the other 256 head rows (``head.main``), uses ``lr``.

    Args:
        encoder: an encoder with a :class:`CodeHead`.
        lr: learning rate of everything else (the paper: 0.1 with AdaDelta).
        z_translation_lr: learning rate of the z-translation row (the paper: 0.0005).

    Returns:
        ``[{"name": "default", "params": [...], "lr": lr},
        {"name": "z_translation", "params": [weight, bias], "lr": z_translation_lr}]``,
        ready for any ``torch.optim`` optimizer. Frozen parameters are left out.

    Raises:
        ConfigError: the encoder has no :class:`CodeHead`, or a negative rate.
    """
    head = getattr(encoder, "head", None)
    if not isinstance(head, CodeHead):
        raise ConfigError(f"parameter_groups: {type(encoder).__name__} has no CodeHead at .head")
    if lr < 0 or z_translation_lr < 0:
        raise ConfigError(f"parameter_groups: learning rates must be >= 0, got lr={lr}, "
                          f"z_translation_lr={z_translation_lr}")
    z_params = [p for p in head.z_translation.parameters() if p.requires_grad]
    z_ids = {id(p) for p in head.z_translation.parameters()}
    rest = [p for p in encoder.parameters() if p.requires_grad and id(p) not in z_ids]
    return [
        {"name": "default", "params": rest, "lr": float(lr)},
        {"name": "z_translation", "params": z_params, "lr": float(z_translation_lr)},
    ]
