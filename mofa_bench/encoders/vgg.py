"""VGG-16 encoder under torchvision's ``vgg16`` module names; also loads VGG-Face's caffe names.

VGG-16 is the VGG-Face topology: besides a torchvision ``vgg16`` state_dict, the
caffe-converted VGG-Face names ``conv1_1 … conv5_3, fc6, fc7`` map onto ours
(:meth:`VGG16Encoder._rename_source_key`, used by
:func:`~mofa_bench.encoders.pretrained.convert_state_dict`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mofa_bench.encoders.base import FaceEncoder
from mofa_bench.encoders.head import CodeHead

__all__ = ["VGG16Encoder"]

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
    VGG-Face names switches the input normalisation to
    :data:`~mofa_bench.encoders.base.VGGFACE_MEAN` / :data:`~mofa_bench.encoders.base.VGGFACE_STD`
    (see :func:`~mofa_bench.encoders.pretrained.load_pretrained`).

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
