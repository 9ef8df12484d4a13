"""The paper's convolutional encoder and deconvolutional decoder (Tewari et al. 2017, Sec. 7).

- :class:`ConvEncoder`: four 3×3 convolutions with stride 2 (64, 96, 128, 256 channels,
  ReLU) → one fully connected layer to a 257-d bottleneck.
- :class:`DeconvDecoder`: a fully connected layer from the 257-d bottleneck to a
  256-channel map of side H/16 → four 4×4 transposed convolutions with stride 2 (128, 96,
  64, 3 channels; ReLU between) → an RGB image of side H, squashed into [0, 1] by a
  sigmoid (``output="sigmoid"``) or clipped by :class:`PassThroughClamp`
  (``output="clamp"``: values in [0, 1], gradients everywhere, for images that are mostly
  black, where a sigmoid saturates and stops learning).

Both take any square image side that is a multiple of 16 (e.g. 64, 240).
"""

from __future__ import annotations

import torch
from torch import nn

from mofa_bench.code_vector import CODE_DIM
from mofa_bench.errors import ConfigError
from mofa_checks import check_tensor

__all__ = ["BOTTLENECK", "ENCODER_CHANNELS", "DECODER_CHANNELS", "OUTPUTS", "ConvEncoder", "DeconvDecoder",
           "PassThroughClamp", "map_side"]

#: Width of the bottleneck (the size of a MoFA code).
BOTTLENECK: int = CODE_DIM
#: Output channels of the encoder's four convolutions.
ENCODER_CHANNELS: tuple[int, ...] = (64, 96, 128, 256)
#: Output channels of the decoder's four transposed convolutions.
DECODER_CHANNELS: tuple[int, ...] = (128, 96, 64, 3)
#: How :class:`DeconvDecoder` maps its last layer into [0, 1].
OUTPUTS: tuple[str, ...] = ("sigmoid", "clamp")
#: Each network halves (or doubles) the image side four times.
_SCALE = 2 ** len(ENCODER_CHANNELS)


def map_side(image_size: int) -> int:
    """Side of the innermost feature map for square images of ``image_size`` px (÷ 16).

    Raises:
        ConfigError: ``image_size`` is not a positive multiple of 16.
    """
    if image_size <= 0 or image_size % _SCALE:
        raise ConfigError(f"camera.image_size: the paper's conv/deconv networks need a multiple of {_SCALE} px, "
                          f"got {image_size}")
    return image_size // _SCALE


class ConvEncoder(nn.Module):
    """Image ``(B, 3, H, H)`` in [0, 1] → bottleneck ``(B, 257)``.

    Args:
        image_size: H, a multiple of 16.
    """

    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.image_size = image_size
        side = map_side(image_size)
        layers: list[nn.Module] = []
        channels = 3
        for out in ENCODER_CHANNELS:
            layers += [nn.Conv2d(channels, out, kernel_size=3, stride=2, padding=1), nn.ReLU(inplace=True)]
            channels = out
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(channels * side * side, BOTTLENECK)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, H)`` images → ``(B, 257)`` bottleneck values."""
        h = self.image_size
        check_tensor("images", images, f"B 3 {h} {h}", floating=True)
        return self.fc(self.convs(images).flatten(1))


class PassThroughClamp(nn.Module):
    """Clip to [0, 1] in the forward pass; pass the gradient through unchanged (straight-through).

    A network drawing faces over black pushes most of its outputs to 0 in its first steps;
    behind a sigmoid those units saturate and the face pixels stop receiving a gradient (the
    learned decoder then draws a black image). Clipping keeps the values in range while every
    output still learns.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` clipped to [0, 1], with ∂out/∂x = 1 everywhere."""
        return x + (x.clamp(0.0, 1.0) - x).detach()


class DeconvDecoder(nn.Module):
    """Bottleneck ``(B, 257)`` → image ``(B, 3, H, H)`` in [0, 1].

    Args:
        image_size: H, a multiple of 16.
        input_scale: ``(257,)`` positive divisor applied to the input first (e.g. the
            encoders' output scale, so face-model codes in mm and rad enter as numbers of
            order one); default none.
        output: ``"sigmoid"`` or ``"clamp"`` (:class:`PassThroughClamp`), see :data:`OUTPUTS`.

    Raises:
        ConfigError: an unknown ``output``.
    """

    def __init__(self, image_size: int, input_scale: torch.Tensor | None = None, output: str = "sigmoid") -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ConfigError(f"output: expected one of {', '.join(OUTPUTS)}, got {output!r}")
        self.image_size = image_size
        self.side = map_side(image_size)
        scale = torch.ones(BOTTLENECK) if input_scale is None else input_scale.detach().float().clone()
        check_tensor("input_scale", scale, f"{BOTTLENECK}", floating=True)
        self.register_buffer("input_scale", scale)
        channels = ENCODER_CHANNELS[-1]
        self.fc = nn.Linear(BOTTLENECK, channels * self.side * self.side)
        layers: list[nn.Module] = []
        for i, out in enumerate(DECODER_CHANNELS):
            layers.append(nn.ConvTranspose2d(channels, out, kernel_size=4, stride=2, padding=1))
            if i + 1 < len(DECODER_CHANNELS):
                layers.append(nn.ReLU(inplace=True))
            else:
                layers.append(nn.Sigmoid() if output == "sigmoid" else PassThroughClamp())
            channels = out
        self.deconvs = nn.Sequential(*layers)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        """``(B, 257)`` bottleneck values → ``(B, 3, H, H)`` RGB in [0, 1]."""
        check_tensor("code", code, f"B {BOTTLENECK}", floating=True)
        x = torch.relu(self.fc(code / self.input_scale))
        return self.deconvs(x.view(code.shape[0], ENCODER_CHANNELS[-1], self.side, self.side))
