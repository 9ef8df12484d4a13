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
  centred, ambient-lit), as in the paper. Code index :data:`Z_TRANSLATION_INDEX` (229,
  z-translation) has its own parameters, so :func:`parameter_groups` can give it its own
  learning rate (the paper uses 0.1 and 0.0005 with AdaDelta).
- **Output scale**: the network output ``o`` becomes the code ``x = o ⊙ s`` with the
  ``(257,)`` buffer ``s`` = :func:`output_scale_vector` of :data:`OUTPUT_SCALE`, so that
  outputs of order one span realistic parameter ranges.

Modules:

- :mod:`~mofa_bench.encoders.head`: :class:`CodeHead`, the output scale, :func:`parameter_groups`.
- :mod:`~mofa_bench.encoders.base`: :class:`FaceEncoder` and the input statistics.
- :mod:`~mofa_bench.encoders.alexnet`, :mod:`~mofa_bench.encoders.vgg`,
  :mod:`~mofa_bench.encoders.resnet`: the backbones.
- :mod:`~mofa_bench.encoders.pretrained`: :func:`load_pretrained`, :func:`convert_state_dict`,
  :class:`LoadReport`.
- :mod:`~mofa_bench.encoders.registry`: :func:`build_encoder`, :func:`encoder_names`.

Usage::

    encoder = build_encoder("alexnet", pretrained="weights/alexnet-owt-7be5be79.pth")
    code = encoder(images)                                  # (B, 3, 240, 240) → (B, 257)
    opt = torch.optim.Adadelta(parameter_groups(encoder, lr=0.1, z_translation_lr=5e-4))

Nothing is ever downloaded: pretrained weights are local files.
"""

from mofa_bench.encoders.alexnet import AlexNetEncoder
from mofa_bench.encoders.base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MIN_IMAGE_SIZE,
    VGGFACE_MEAN,
    VGGFACE_STD,
    FaceEncoder,
)
from mofa_bench.encoders.head import (
    OUTPUT_SCALE,
    Z_TRANSLATION_INDEX,
    CodeHead,
    output_scale_vector,
    parameter_groups,
)
from mofa_bench.encoders.pretrained import LoadReport, convert_state_dict, load_pretrained
from mofa_bench.encoders.registry import build_encoder, encoder_names
from mofa_bench.encoders.resnet import BasicBlock, Bottleneck, ResNetEncoder
from mofa_bench.encoders.vgg import VGG16Encoder

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGGFACE_MEAN",
    "VGGFACE_STD",
    "MIN_IMAGE_SIZE",
    "OUTPUT_SCALE",
    "Z_TRANSLATION_INDEX",
    "AlexNetEncoder",
    "BasicBlock",
    "Bottleneck",
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
