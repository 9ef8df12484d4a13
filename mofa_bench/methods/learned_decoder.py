"""The learned-decoder baseline (paper Fig. 13): a deconvolutional network in place of the model.

Two stages, each a method the trainer trains (``method_options.stage``):

- ``"decoder"``: :class:`LearnedDecoder` learns to draw the analytic decoder's faces:
  pairs (code drawn from the prior → analytic render over black) are made on the fly
  with the trainer's decoder; the batch images are not used, only their indices, which
  seed the codes (:func:`prior_codes`), so a run is reproducible.
- ``"encoder"``: the config's encoder is trained through the frozen learned decoder
  (``method_options.decoder_checkpoint``: a ``"decoder"`` run's checkpoint or run
  directory) with the photometric loss over the decoded face's region and the
  statistical regulariser. Its codes are face-model codes, so it is scored like MoFA:
  through the analytic decoder.

:func:`decoder_fidelity` measures how closely a learned decoder draws test codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mofa_bench.methods.networks import DeconvDecoder
from mofa_bench.methods.options import check_method_options, image_photometric_loss
from mofa_bench.config import TrainConfig
from mofa_bench.data.batch import FaceBatch
from mofa_bench.decoder import MoFADecoder
from mofa_bench.encoders import FaceEncoder, build_encoder, output_scale_vector, parameter_groups
from mofa_bench.errors import CheckpointError, ConfigError
from mofa_bench.losses import LossWeights, regularization_loss
from mofa_bench.sampling import CodePrior, sample_codes
from mofa_bench.checkpoint import load_checkpoint
from mofa_bench.methods.base import Method, NonFiniteBatch, Reconstruction
from mofa_checks import check_tensor

__all__ = [
    "COVERAGE_THRESHOLD",
    "DecoderStage",
    "EncoderStage",
    "LearnedDecoder",
    "build_learned_decoder",
    "decoder_fidelity",
    "load_learned_decoder",
    "prior_codes",
]

#: A pixel of a learned rendering belongs to the face where its brightest channel
#: exceeds this (the network draws faces over black).
COVERAGE_THRESHOLD: float = 0.05
#: ``method_options`` of the learned-decoder method and their defaults.
OPTIONS: dict[str, Any] = {"stage": "decoder", "decoder_checkpoint": None}
_STAGES = ("decoder", "encoder")


class LearnedDecoder(DeconvDecoder):
    """Face-model code ``(B, 257)`` → rendering over black ``(B, 3, H, H)`` in [0, 1].

    The deconvolutional decoder, its input divided by the encoders' output scale
    (:func:`~mofa_bench.encoders.output_scale_vector`) so that codes in rad and mm enter
    as numbers of order one, its output clipped to [0, 1] with a pass-through gradient
    (:class:`~mofa_bench.methods.networks.PassThroughClamp`): behind a sigmoid the network
    learns the black background in its first steps, saturates, and draws black images.

    Args:
        image_size: H, a multiple of 16.
    """

    def __init__(self, image_size: int) -> None:
        super().__init__(image_size, input_scale=output_scale_vector(), output="clamp")

    def render(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 257)`` codes → ``(B, 3, H, H)`` image and ``(B, 1, H, H)`` coverage in {0, 1}.

        The coverage is the drawn face's region (brightest channel above
        :data:`COVERAGE_THRESHOLD`), not differentiable.
        """
        image = self(code)
        return image, coverage(image)


def coverage(image: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` float mask of the pixels of ``(B, 3, H, W)`` drawn over black."""
    return (image.detach().amax(1, keepdim=True) > COVERAGE_THRESHOLD).to(image.dtype)


def prior_codes(indices: torch.Tensor, prior: CodePrior, seed: int) -> torch.Tensor:
    """One prior code per sample index, each a pure function of ``(seed, index)``.

    Args:
        indices: ``(B,)`` int64 sample indices.
        prior: the sampling ranges (the config's ``data.prior``).
        seed: stream seed (the config's ``seed``).

    Returns:
        ``(B, 257)`` float32 codes on the CPU.
    """
    check_tensor("indices", indices, "B", integer=True)
    codes = []
    for index in indices.tolist():
        generator = torch.Generator().manual_seed((seed * 0x9E3779B97F4A7C15 + index) % 2**63)
        codes.append(sample_codes(1, prior, generator))
    return torch.cat(codes)


class DecoderStage(Method):
    """Stage ``"decoder"``: train :class:`LearnedDecoder` to reproduce analytic renders.

    Loss (term ``photo``, ``total`` equals it): the squared RGB distance between the
    learned and the analytic rendering over black, averaged over the analytic face's
    pixels (term ``face``) and over the background's (``background``), the two weighed
    equally, so the background (most of the image) does not outweigh the face. Neither
    this loss nor a lower learning rate kept the network from drawing black behind a
    sigmoid; the pass-through clamp of :class:`LearnedDecoder` did (fidelity over the face
    0.17 after 120 steps of 64, where the sigmoid network ended at 0.61).

    It has no encoder: its reconstruction of any image is the learned mean face (the
    zero code) with its coverage, and no code. Its fidelity is measured with
    :func:`decoder_fidelity`.

    Args:
        analytic: the trainer's decoder (face model, camera, renderer) drawing the targets.
        prior: ranges of the training codes.
        seed: seed of the code stream (see :func:`prior_codes`).
    """

    def __init__(self, analytic: MoFADecoder, prior: CodePrior = CodePrior(), seed: int = 0) -> None:
        super().__init__()
        self.network = LearnedDecoder(analytic.camera.image_size)
        self.analytic = analytic
        self.prior = prior
        self.seed = seed

    def parameter_groups(self, lr: float, z_translation_lr: float) -> list[dict[str, Any]]:
        """Every network parameter at ``lr`` (its input is a code, not a prediction of one)."""
        return [{"params": self.trainable_parameters(), "lr": lr}]

    def loss_terms(self, batch: FaceBatch) -> dict[str, torch.Tensor]:
        """``{"total", "photo", "face", "background"}`` on prior codes seeded by ``batch.indices`` (images unused)."""
        device = self.analytic.model.device
        code = prior_codes(batch.indices.cpu(), self.prior, self.seed).to(device)
        with torch.no_grad():
            target, mask = self.analytic.render(code)
        drawn = self.network(code)
        if not bool(torch.isfinite(drawn).all()):
            raise NonFiniteBatch("non-finite learned rendering")
        squared = (drawn - target).square().sum(1, keepdim=True)
        face = (squared * mask).sum() / mask.sum().clamp_min(1.0)
        background = (squared * (1.0 - mask)).sum() / (1.0 - mask).sum().clamp_min(1.0)
        photo = 0.5 * (face + background)
        return {"total": photo, "photo": photo, "face": face, "background": background}

    def reconstruct(self, images: torch.Tensor) -> Reconstruction:
        """The learned mean face (zero code) for each ``(B, 3, H, W)`` image; no code."""
        code = images.new_zeros(images.shape[0], self.network.input_scale.shape[0])
        image, mask = self.network.render(code)
        return Reconstruction(image=image, mask=mask, code=None)


class EncoderStage(Method):
    """Stage ``"encoder"``: an encoder trained through a frozen :class:`LearnedDecoder`.

    Loss: ``w_photo · E_photo + w_reg · E_reg`` (:mod:`mofa_bench.losses`), with E_photo
    the ℓ2,1 distance between the learned rendering (a face over black) and the image over
    the whole image. Restricted to the rendering's face region (:func:`coverage`) the loss
    falls as the drawn face shrinks or darkens, and it has no gradient at all where the
    network draws nothing, as it can at the zero code; over the whole image drawing the
    face where the image has it is what lowers the loss. There are no landmarks: the
    network draws none.
    Reconstructions render the encoder's codes with the analytic decoder.

    Args:
        encoder: image → code network (zero head: the first prediction is the mean face).
        learned: the trained learned decoder (frozen here).
        decoder: the analytic decoder scoring the codes.
        loss_weights: ``photo``, ``reg``, ``reg_beta`` and ``reg_delta`` are used.
    """

    def __init__(self, encoder: FaceEncoder, learned: LearnedDecoder, decoder: MoFADecoder,
                 loss_weights: LossWeights = LossWeights()) -> None:
        super().__init__()
        self.encoder = encoder
        self.learned = learned.requires_grad_(False).eval()
        self.decoder = decoder
        self.loss_weights = loss_weights

    def train(self, mode: bool = True) -> "EncoderStage":
        """Switch the encoder's mode; the frozen learned decoder stays in eval mode."""
        super().train(mode)
        self.learned.eval()
        return self

    def parameter_groups(self, lr: float, z_translation_lr: float) -> list[dict[str, Any]]:
        """The encoder's groups: z-translation at its own rate, as MoFA's."""
        return parameter_groups(self.encoder, lr, z_translation_lr)

    def loss_terms(self, batch: FaceBatch) -> dict[str, torch.Tensor]:
        """``{"total", "photo", "reg"}`` of a batch.

        Raises:
            NonFiniteBatch: the encoder predicted a NaN/Inf code.
        """
        code = self.encoder(batch.images).float()
        if not bool(torch.isfinite(code).all()):
            raise NonFiniteBatch("non-finite code")
        drawn = self.learned(code)
        w = self.loss_weights
        photo = image_photometric_loss(drawn, batch.images)
        reg = regularization_loss(code, w.reg_beta, w.reg_delta)
        return {"total": w.photo * photo + w.reg * reg, "photo": photo, "reg": reg}

    def reconstruct(self, images: torch.Tensor) -> Reconstruction:
        """The encoder's ``(B, 257)`` codes and their analytic rendering over black."""
        code = self.encoder(images).float()
        image, mask = self.decoder.render(code)
        return Reconstruction(image=image, mask=mask, code=code)


def load_learned_decoder(path: str | Path, image_size: int,
                         device: torch.device | str = "cpu") -> LearnedDecoder:
    """The network of a ``"decoder"``-stage run, frozen, in eval mode.

    Args:
        path: its checkpoint, or its run directory (``checkpoints/last.pt``: the last
            network; the stage's validation does not rank networks).
        image_size: the side the network must draw, px.
        device: where to put it.

    Raises:
        ConfigError: named ``method_options.decoder_checkpoint``: missing or unreadable
            file, not a ``"decoder"``-stage run, or a network for another image size.
    """
    key = "method_options.decoder_checkpoint"
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    try:
        state = load_checkpoint(path, "cpu")
    except CheckpointError as err:
        raise ConfigError(f"{key}: {err}") from err
    config = state.get("config") or {}
    stage = (config.get("method_options") or {}).get("stage", OPTIONS["stage"])
    if config.get("method") != "learned_decoder" or stage != "decoder" or "method" not in state:
        raise ConfigError(f"{key}: {path} is not a checkpoint of a learned_decoder run with stage 'decoder'")
    trained_size = (config.get("camera") or {}).get("image_size")
    if trained_size != image_size:
        raise ConfigError(f"{key}: {path} draws {trained_size} px images; this run needs {image_size} px")
    prefix = "network."
    weights = {k[len(prefix):]: v for k, v in state["method"].items() if k.startswith(prefix)}
    network = LearnedDecoder(image_size)
    try:
        network.load_state_dict(weights)
    except RuntimeError as err:
        raise ConfigError(f"{key}: {path}: the weights do not fit the learned decoder ({err})") from err
    return network.to(device).requires_grad_(False).eval()


def build_learned_decoder(config: TrainConfig, decoder: MoFADecoder) -> Method:
    """The learned-decoder method of ``method_options.stage``, on the decoder's device.

    Raises:
        ConfigError: an unknown ``method_options`` key, an unknown stage, a missing or
            unusable ``decoder_checkpoint`` for stage ``"encoder"``, or one given for
            stage ``"decoder"``.
    """
    options = check_method_options("learned_decoder", config.method_options, OPTIONS)
    stage, checkpoint = options["stage"], options["decoder_checkpoint"]
    if stage not in _STAGES:
        raise ConfigError(f"method_options.stage: expected one of {', '.join(_STAGES)}, got {stage!r}")
    device = decoder.model.device
    if stage == "decoder":
        if checkpoint is not None:
            raise ConfigError("method_options.decoder_checkpoint: only stage 'encoder' loads a learned decoder")
        return DecoderStage(decoder, config.data.prior, config.seed).to(device)
    if not isinstance(checkpoint, (str, Path)) or not str(checkpoint):
        raise ConfigError("method_options.decoder_checkpoint: stage 'encoder' needs the checkpoint (or run "
                          "directory) of a learned_decoder run with stage 'decoder'")
    learned = load_learned_decoder(checkpoint, config.camera.image_size, device)
    encoder = build_encoder(config.encoder.name, config.encoder.pretrained, image_size=config.camera.image_size)
    return EncoderStage(encoder, learned, decoder, config.loss).to(device)
