"""AlexNet encoder under torchvision's ``alexnet`` module names (loads its state_dict by name)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mofa_bench.encoders.base import FaceEncoder
from mofa_bench.encoders.head import CodeHead

__all__ = ["AlexNetEncoder"]


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
