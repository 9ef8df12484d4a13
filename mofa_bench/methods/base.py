"""What the trainer trains: a :class:`Method` (MoFA is one; the study's baselines are others).

A method is an ``nn.Module`` that owns its learnable parts and knows its own loss. The
trainer (:mod:`mofa_bench.training.trainer`) owns everything around it — the loop, the
optimiser, checkpoints, resume, CSVs, figures, sample grids — and asks the method only:

- :meth:`Method.parameter_groups`: the optimiser's parameter groups (e.g. MoFA's
  separate z-translation learning rate);
- :meth:`Method.loss_terms`: the named loss terms of a batch, ``"total"`` among them;
- :meth:`Method.reconstruct`: what it makes of a batch of images (a code where it has
  one, and an image with its coverage), for validation and pictures;
- ``state_dict`` / ``load_state_dict`` (from ``nn.Module``) for checkpoints.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import torch
from torch import nn

from mofa_bench.data.batch import FaceBatch
from mofa_bench.decoder import MoFADecoder
from mofa_bench.formation import FormedFace

if TYPE_CHECKING:
    from mofa_bench.config import TrainConfig


@dataclass(frozen=True)
class Reconstruction:
    """A method's reconstruction of a batch of images.

    Attributes:
        image: ``(B, 3, H, W)`` the reconstruction over black, RGB in [0, 1] (colour ×
            coverage; a method that predicts whole images returns them as they are).
        mask: ``(B, 1, H, W)`` coverage of the reconstruction in [0, 1]: the region the
            photometric error is measured over (all ones for a method that predicts
            whole images). ``image + (1 - mask) * input`` is the reconstruction drawn
            over the input.
        code: ``(B, 257)`` predicted codes, or ``None`` for a method without a face-model
            code (e.g. a convolutional autoencoder): then there is no geometry to score.
        formed: the reconstruction's formed face where it is not the code's 3DMM face
            (``decoder.form(code)``), e.g. the multi-level model's corrected mesh and
            albedo under the code's pose and light; scoring uses it in place of the
            code's. ``None``: the code's face.
    """

    image: torch.Tensor
    mask: torch.Tensor
    code: torch.Tensor | None = None
    formed: FormedFace | None = None


class Method(nn.Module, ABC):
    """A trainable face autoencoder: its parameters, its loss and its reconstructions.

    ``trains`` is ``False`` for a method with nothing to learn (per-image optimisation):
    it is evaluated as it is, never handed to the trainer.

    A method that predicts codes has a ``decoder`` attribute: the analytic
    :class:`~mofa_bench.decoder.MoFADecoder` that turns its codes into faces (used to
    score codes against ground truth); :func:`code_decoder` reads it.
    """

    trains: ClassVar[bool] = True

    @abstractmethod
    def parameter_groups(self, lr: float, z_translation_lr: float) -> list[dict[str, Any]]:
        """Optimiser parameter groups (``{"params": [...], "lr": ...}`` dicts).

        Args:
            lr: the base learning rate (``optim.lr``).
            z_translation_lr: the paper's separate rate for the code's z-translation,
                for methods that predict one (others ignore it).
        """

    def set_step(self, step: int, total_steps: int) -> None:
        """Called by the trainer before each training step (``step`` 0-based of
        ``total_steps``): a method whose loss follows a schedule updates it here."""

    @abstractmethod
    def loss_terms(self, batch: FaceBatch) -> dict[str, torch.Tensor]:
        """Scalar loss terms of a training batch; ``"total"`` is what is minimised.

        Args:
            batch: a batch on the method's device.

        Returns:
            Named scalar tensors, ``"total"`` included; the trainer logs every term.
        """

    @abstractmethod
    def reconstruct(self, images: torch.Tensor) -> Reconstruction:
        """Reconstruct ``(B, 3, H, W)`` images (called under ``torch.no_grad`` in eval mode)."""

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Every parameter the optimiser updates (gradient clipping runs over these)."""
        return [p for p in self.parameters() if p.requires_grad]


class NonFiniteBatch(Exception):
    """Raised by :meth:`Method.loss_terms` when an intermediate of a batch is NaN or Inf.

    The trainer skips the batch and logs ``str(error)`` as the reason (a run aborts
    after ``max_nonfinite`` such batches in a row).
    """


def code_decoder(method: Method) -> MoFADecoder | None:
    """The analytic decoder of a method's codes, or ``None`` for a method without codes."""
    decoder = getattr(method, "decoder", None)
    return decoder if isinstance(decoder, MoFADecoder) else None


#: ``builder(config, decoder) -> method``: makes the method a config names around a
#: decoder (the face model, camera and renderer of the config, on its device).
MethodBuilder = Callable[["TrainConfig", MoFADecoder], Method]
