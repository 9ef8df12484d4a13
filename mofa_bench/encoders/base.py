"""Base class of the encoders: ``normalise → backbone → head → × output_scale``.

- **Normalisation** inside the encoder: images in [0, 1] become ``(x − mean) / std``
  (ImageNet statistics by default, :data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`;
  :data:`VGGFACE_MEAN`, :data:`VGGFACE_STD` for VGG-Face weights).
- **Backbone** (a subclass's :meth:`FaceEncoder.extract_features`) with adaptive average
  pooling, so any input with H, W ≥ :data:`MIN_IMAGE_SIZE` (64) works; the nominal input
  is 240 × 240 (the paper's crops).
- **Head** and **output scale**: :class:`~mofa_bench.encoders.head.CodeHead` and
  :func:`~mofa_bench.encoders.head.output_scale_vector`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from mofa_bench.encoders.head import CodeHead, output_scale_vector
from mofa_bench.errors import ConfigError, InputError
from mofa_checks import check_tensor

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "MIN_IMAGE_SIZE", "VGGFACE_MEAN", "VGGFACE_STD", "FaceEncoder"]

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


class FaceEncoder(nn.Module):
    """Base class: normalisation, backbone (subclass), :class:`~mofa_bench.encoders.head.CodeHead`, output scale.

    Subclasses build their backbone under torchvision's module names, assign
    ``self.head = CodeHead(feature_dim)`` and implement :meth:`extract_features`.

    Args:
        image_size: nominal square input size in pixels (recorded for data pipelines;
            any H, W ≥ :data:`MIN_IMAGE_SIZE` is accepted by :meth:`forward`).
        mean: per-channel RGB mean subtracted from images in [0, 1].
        std: per-channel RGB standard deviation the centred images are divided by.
        output_scale: per-part overrides of :data:`~mofa_bench.encoders.head.OUTPUT_SCALE`.

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
    #: The zero-initialised last layer, features ``(B, F)`` → raw code ``(B, 257)`` (set by subclasses).
    head: CodeHead

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
