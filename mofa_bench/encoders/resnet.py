"""ResNet-18/34/50/101/152 encoders under torchvision's ``resnet*`` module names."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mofa_bench.encoders.base import FaceEncoder
from mofa_bench.encoders.head import CodeHead
from mofa_bench.errors import ConfigError

__all__ = ["BasicBlock", "Bottleneck", "ResNetEncoder"]


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
