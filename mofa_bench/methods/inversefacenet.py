"""InverseFaceNet (Kim et al., arXiv:1703.10956): a supervised encoder with a model-space loss and breeding.

The config's encoder regresses the true codes of synthetic faces, as ``code_regression``
does, but its loss is the **model-space** difference of the two codes
(:mod:`~mofa_bench.methods.model_space`: posed geometry, albedo, screen positions and
shaded colours through the face model, each scaled by its prior mean), not a distance
between raw parameters. ``code_regression``'s loss (its prior-scaled, effect-weighted
parameter MSE, :func:`~mofa_bench.methods.code_regression.parameter_loss_terms`) is logged
beside it (term ``parameter``, not optimised), so the two losses compare at equal steps.

With ``rounds > 0`` it **breeds** its corpus (:mod:`~mofa_bench.methods.breeding`): the
run is cut into ``rounds + 1`` phases; phase 0 trains on the trainer's synthetic training
set (the prior); at the start of phase k the encoder encodes ``images_per_round`` target
images, a Gaussian shrunk towards the prior is fitted to its codes, and the rest of the run
trains on faces drawn from it (the batch's indices seed them; the trainer's images are
not used from round 1 on). The fitted distribution and the round are buffers of the
method, so a checkpoint holds them and a resumed run continues the same round with the
same corpus. The round schedule follows ``optim.iterations``: resuming with another
iteration count moves the rounds.

``method_options`` (defaults in :data:`OPTIONS`):

- ``weights``: ``{geometry, reflectance, screen, shading}`` → weight of each model-space term.
- ``rounds``: breeding rounds (0: none, a plain InverseFaceNet on the prior corpus).
- ``target``: ``synthetic`` (the config's synthetic target split: ``data.target_prior``, the
  domain-gap protocol's shifted distribution, or ``data.prior``) or a ``prepare``d folder.
- ``images_per_round``: target images encoded per round (a synthetic target holds
  ``rounds × images_per_round`` distinct faces; a folder is cycled through).
- ``prior_weight``: w in (0, 1], the prior's share of the fitted distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mofa_bench.code_vector import CODE_DIM
from mofa_bench.config import TrainConfig
from mofa_bench.data.batch import FaceBatch
from mofa_bench.decoder import MoFADecoder
from mofa_bench.encoders import FaceEncoder, build_encoder, parameter_groups
from mofa_bench.errors import ConfigError
from mofa_bench.methods.base import Method, NonFiniteBatch, Reconstruction
from mofa_bench.methods.breeding import (BredFaces, BreedingSchedule, fit_code_distribution, round_seed,
                                         target_dataset, target_images)
from mofa_bench.methods.code_regression import effect_weights, parameter_loss_terms, prior_scale
from mofa_bench.methods.model_space import ModelSpaceLoss, model_space_scale
from mofa_bench.methods.options import check_method_options, positive_int

__all__ = ["OPTIONS", "Breeding", "InverseFaceNet", "build_inversefacenet"]

#: ``method_options`` of the inversefacenet method and their defaults.
OPTIONS: dict[str, Any] = {"weights": {}, "rounds": 0, "target": "synthetic", "images_per_round": 256,
                           "prior_weight": 0.2}
#: Samples of a bred corpus: any index of a trainer's training set fits.
_CORPUS_SIZE = 1 << 40
#: Target images encoded per forward pass while breeding.
_ENCODE_CHUNK = 32


@dataclass(frozen=True)
class Breeding:
    """What a breeding InverseFaceNet needs besides its weights (not saved: rebuilt from the config).

    Attributes:
        schedule: the rounds over the run.
        target: the target image set (anything with ``len`` and ``batch(indices)``).
        images_per_round: target images encoded per round.
        prior_weight: the prior's share of the fitted distribution.
        prior_scale: ``(257,)`` the prior's spread per entry.
        drawer: the decoder that draws the bred corpus (the data's drawing renderer).
        data_seed: the config's ``data.seed`` (each round's corpus seed derives from it).
        backgrounds: the data's background augmentation.
        generator: the data's random generator (``data.generator``: ``"cpu"`` or ``"counter"``).
    """

    schedule: BreedingSchedule
    target: Any
    images_per_round: int
    prior_weight: float
    prior_scale: torch.Tensor
    drawer: MoFADecoder
    data_seed: int
    backgrounds: Any
    generator: str = "cpu"


class InverseFaceNet(Method):
    """The encoder trained on true codes with the model-space loss, optionally breeding its corpus.

    Args:
        encoder: image → code network (zero head: it starts at the mean face).
        decoder: the analytic decoder (the loss's face model and camera; reconstructions).
        loss: the model-space loss (:class:`~mofa_bench.methods.model_space.ModelSpaceLoss`).
        parameter_scale: ``(257,)`` the prior's spread per entry, and
        parameter_weights: ``(257,)`` the entry weights of the logged ``parameter`` term
            (``code_regression``'s loss).
        breeding: the breeding set-up, or ``None`` for none.
        amp: run the encoder under bfloat16 autocast.

    Buffers (in the state dict, so in checkpoints): ``breeding_round`` (int64 scalar, the
    round the corpus was last bred for; 0: the prior), ``bred_mean`` ``(257,)`` and
    ``bred_factor`` ``(257, 257)`` float64, the Gaussian of that round.
    """

    def __init__(self, encoder: FaceEncoder, decoder: MoFADecoder, loss: ModelSpaceLoss,
                 parameter_scale: torch.Tensor, parameter_weights: torch.Tensor, breeding: Breeding | None = None, amp: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.loss = loss
        self.breeding = breeding
        self.amp = amp
        self.register_buffer("parameter_scale", parameter_scale.float(), persistent=False)
        self.register_buffer("parameter_weights", parameter_weights.float(), persistent=False)
        self.register_buffer("breeding_round", torch.zeros((), dtype=torch.int64))
        self.register_buffer("bred_mean", torch.zeros(CODE_DIM, dtype=torch.float64))
        self.register_buffer("bred_factor", torch.zeros(CODE_DIM, CODE_DIM, dtype=torch.float64))
        self._corpus: BredFaces | None = None

    @property
    def round(self) -> int:
        """The breeding round the corpus belongs to (0: the trainer's prior corpus)."""
        return int(self.breeding_round)

    def parameter_groups(self, lr: float, z_translation_lr: float) -> list[dict[str, Any]]:
        """The encoder's groups, as MoFA's (z-translation row at its own rate)."""
        return parameter_groups(self.encoder, lr, z_translation_lr)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` images → ``(B, 257)`` float32 codes (bfloat16 autocast with ``amp``)."""
        with torch.autocast(device_type=images.device.type, dtype=torch.bfloat16, enabled=self.amp):
            return self.encoder(images).float()

    def set_step(self, step: int, total_steps: int) -> None:
        """Breed every round that starts at or before ``step`` and has not been bred yet."""
        if self.breeding is None:
            return
        due = self.breeding.schedule.round_at(step, total_steps)
        while self.round < due:
            self.breed(self.round + 1)

    @torch.no_grad()
    def breed(self, round_: int) -> torch.Tensor:
        """Encode round ``round_``'s target images and fit the round's distribution to their codes.

        The encoder runs in eval mode (its mode is restored after). Deterministic: the same
        weights give the same distribution.

        Returns:
            ``(n, 257)`` the predicted target codes the distribution was fitted to.

        Raises:
            ConfigError: the method was built without breeding.
        """
        if self.breeding is None:
            raise ConfigError("inversefacenet: breeding needs method_options.rounds > 0")
        b = self.breeding
        was_training = self.training
        self.eval()
        device = self.bred_mean.device
        codes = [self.encode(b.target.batch(chunk).images.to(device))
                 for chunk in target_images(b.target, round_, b.images_per_round).split(_ENCODE_CHUNK)]
        self.train(was_training)
        predicted = torch.cat(codes)
        mean, factor = fit_code_distribution(predicted, b.prior_scale, b.prior_weight)
        self.bred_mean.copy_(mean)
        self.bred_factor.copy_(factor)
        self.breeding_round.fill_(round_)
        return predicted

    def corpus(self) -> BredFaces:
        """The synthetic corpus of the current round (≥ 1), drawn from ``bred_mean`` / ``bred_factor``."""
        if self.breeding is None or self.round == 0:
            raise ConfigError("inversefacenet: no bred corpus before the first breeding round")
        if self._corpus is None or self._corpus.seed != round_seed(self.breeding.data_seed, self.round):
            b = self.breeding
            self._corpus = BredFaces(b.drawer, _CORPUS_SIZE, round_seed(b.data_seed, self.round), self.bred_mean,
                                     self.bred_factor, b.backgrounds, b.generator)
        return self._corpus

    def loss_terms(self, batch: FaceBatch) -> dict[str, torch.Tensor]:
        """``total`` (the model-space loss), its four scaled terms, ``parameter`` and ``round``.

        From round 1 on the batch is replaced by the bred corpus's samples at its indices.

        Raises:
            ConfigError: the batch has no true codes (real photos).
            NonFiniteBatch: the encoder predicted a NaN/Inf code.
        """
        if self.round > 0:
            device = batch.images.device
            batch = self.corpus().batch(batch.indices.cpu()).to(device, batch.images.dtype)
        if batch.codes is None:
            raise ConfigError("inversefacenet: the batch has no true codes (train it on synthetic data)")
        code = self.encode(batch.images)
        if not bool(torch.isfinite(code).all()):
            raise NonFiniteBatch("non-finite code")
        true = batch.codes.to(code.dtype)
        terms = self.loss(code, true)
        with torch.no_grad():
            terms["parameter"] = parameter_loss_terms(code, true, self.parameter_scale, self.parameter_weights)["total"]
        terms["round"] = code.new_tensor(float(self.round))
        return terms

    def reconstruct(self, images: torch.Tensor) -> Reconstruction:
        """Predicted codes of ``(B, 3, H, W)`` images and the face they decode to (over black)."""
        code = self.encode(images)
        image, mask = self.decoder.render(code)
        return Reconstruction(image=image, mask=mask, code=code)


def _fraction(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f"method_options.{key}: expected a number in (0, 1], got {value!r}")
    return float(value)


def build_inversefacenet(config: TrainConfig, decoder: MoFADecoder) -> InverseFaceNet:
    """The InverseFaceNet method a config describes (``method_options`` in the module docstring).

    Raises:
        ConfigError: an unknown option or a bad value (named ``method_options.<key>``),
            data without true codes, or a target that is not a prepared folder.
    """
    options = check_method_options("inversefacenet", config.method_options, OPTIONS)
    if config.data.kind not in ("synthetic", "sharded"):
        raise ConfigError(f"data.kind: the inversefacenet method needs true codes (synthetic or sharded synthetic "
                          f"data), got {config.data.kind!r}")
    rounds = options["rounds"]
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ConfigError(f"method_options.rounds: expected an integer >= 0, got {rounds!r}")
    images = positive_int("images_per_round", options["images_per_round"])
    weight = _fraction("prior_weight", options["prior_weight"])
    if not isinstance(options["weights"], dict):
        raise ConfigError(f"method_options.weights: expected a mapping of term → weight, got {options['weights']!r}")
    target = options["target"]
    if not isinstance(target, str) or not target:
        raise ConfigError(f"method_options.target: expected 'synthetic' or a prepared folder, got {target!r}")
    if rounds and config.optim.iterations < rounds + 1:
        raise ConfigError(f"method_options.rounds: {rounds} rounds need at least {rounds + 1} optim.iterations, "
                          f"got {config.optim.iterations}")
    scale = prior_scale(config.data.prior)
    breeding = None
    if rounds:
        data = config.data
        target_set = target_dataset(target, data, decoder, config.camera.image_size, rounds * images)
        breeding = Breeding(BreedingSchedule(rounds), target_set, images, weight, scale,
                            decoder.with_renderer(data.synthetic_renderer), data.seed, data.backgrounds,
                            data.generator)
    loss = ModelSpaceLoss(decoder, model_space_scale(decoder, config.data.prior), options["weights"])
    encoder = build_encoder(config.encoder.name, config.encoder.pretrained, image_size=config.camera.image_size)
    method = InverseFaceNet(encoder, decoder, loss, scale, effect_weights(decoder.model), breeding, amp=config.amp)
    return method.to(decoder.model.device)
