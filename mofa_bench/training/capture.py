"""How a training step's loss runs: eagerly, or captured into CUDA graphs (``capture``).

On a GPU the MoFA loss path is bound by kernel launches (hundreds of small kernels
for formation, renderer and loss, forward and backward), not by arithmetic. With
``capture: compile`` the method's :meth:`~mofa_bench.methods.base.Method.loss_terms`
runs under ``torch.compile(mode="reduce-overhead", dynamic=False)``: Inductor fuses the
elementwise work and CUDA graphs replay the forward and the backward kernels with one
launch per graph. Shapes are static — every training step has ``batch_size`` samples of
the same size — so the graphs are recorded once (after Inductor's warm-up steps).

The optimiser step and the trainer's checks (finite loss, gradient norm) stay eager
around the captured part. A method whose ``loss_terms`` checks its code for NaN
(MoFA does) splits the capture in two graphs at that check.

On the CPU there is nothing to capture: ``compile`` falls back to the eager step, with
one logged warning naming the reason, so a config written for a GPU runs anywhere.

``channels_last`` (any device) converts the encoder's weights and each batch's images
to NHWC memory order (:func:`to_channels_last`).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from mofa_bench.data.batch import FaceBatch

__all__ = ["LossFn", "StepCapture", "build_step_capture", "to_channels_last"]

logger = logging.getLogger(__name__)

#: ``batch -> {term: scalar tensor}`` with ``"total"`` among the terms.
LossFn = Callable[[FaceBatch], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class StepCapture:
    """The loss function of a training step and how it runs.

    Attributes:
        loss_fn: ``batch -> terms``: the method's own ``loss_terms``, or its compiled version.
        mode: what runs: ``"none"`` (eager) or ``"compile"`` (CUDA graphs).
        requested: the config's ``capture``.
        note: why ``mode`` differs from ``requested`` (empty when it does not).
        channels_last: batches' images are converted to NHWC before the step.
    """

    loss_fn: LossFn
    mode: str
    requested: str
    note: str = ""
    channels_last: bool = False

    @property
    def captured(self) -> bool:
        """Whether the loss runs as recorded CUDA graphs."""
        return self.mode == "compile"

    def prepare(self, batch: FaceBatch) -> FaceBatch:
        """The batch as the step wants it (images in NHWC order under ``channels_last``)."""
        if not self.channels_last:
            return batch
        return dataclasses.replace(batch, images=batch.images.contiguous(memory_format=torch.channels_last))

    def begin_step(self) -> None:
        """Mark a new step for CUDA-graph trees: the previous step's outputs are no longer used."""
        if self.captured:
            torch.compiler.cudagraph_mark_step_begin()

    def describe(self) -> dict[str, Any]:
        """What ``environment.json`` records: requested and effective capture, and the reason."""
        return {"capture": self.mode, "capture_requested": self.requested, "capture_note": self.note,
                "channels_last": self.channels_last}


def to_channels_last(method: nn.Module) -> int:
    """Store every 4-D parameter of ``method`` (the convolution weights) in channels-last order.

    Buffers are left as they are (the decoder's face model arrays are not images).

    Returns:
        The number of tensors converted.
    """
    count = 0
    for param in method.parameters():
        if param.dim() == 4 and not param.is_contiguous(memory_format=torch.channels_last):
            param.data = param.data.contiguous(memory_format=torch.channels_last)
            count += 1
    return count


def build_step_capture(method: nn.Module, capture: str, device: torch.device,
                       channels_last: bool = False) -> StepCapture:
    """The loss function a config's ``capture`` asks for, on ``device``.

    Args:
        method: the trained method (on ``device``); converted to channels-last in place
            when ``channels_last``.
        capture: ``"none"`` or ``"compile"`` (:data:`mofa_bench.config.CAPTURE_MODES`).
        device: the training device: ``compile`` captures on CUDA only and falls back to
            the eager step elsewhere (one warning).
        channels_last: convert the method's convolution weights and every batch's images
            to NHWC order.

    Returns:
        The :class:`StepCapture`.
    """
    if channels_last:
        converted = to_channels_last(method)
        logger.info("channels_last: %d weight tensors in NHWC order", converted)
    eager: LossFn = method.loss_terms
    if capture == "none":
        return StepCapture(eager, "none", capture, channels_last=channels_last)
    if device.type != "cuda":
        note = f"capture: {capture!r} records CUDA graphs, and the device is {device.type}; the eager step runs"
        logger.warning(note)
        return StepCapture(eager, "none", capture, note, channels_last)
    compiled = torch.compile(eager, mode="reduce-overhead", dynamic=False)
    return StepCapture(compiled, "compile", capture, channels_last=channels_last)
