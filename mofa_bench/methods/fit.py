"""Per-image optimisation baseline: fit a code to each image, no network.

Each image's code starts at zero (the mean face, frontal, centred, ambient-lit) and a
solver — Adam (default) or Levenberg-Marquardt (:mod:`mofa_bench.methods.fit_lm`) —
minimises MoFA's own loss (:func:`~mofa_bench.losses.mofa_loss`: photometric through the
decoder's renderer — any backend that gives gradients — plus landmarks when the caller
gives them, plus the statistical regulariser) for a fixed number of steps.

For Adam each code part has its own learning rate (Adam moves each entry by about its rate
per step, in the part's units): translation in mm needs a larger rate than the SH
coefficients, and z-translation a small one, as in the paper (depth trades off against face
size). Levenberg-Marquardt instead solves damped Gauss-Newton normal equations per image on
the same loss (the ℓ2,1 photometric term by iteratively reweighted least squares): far
fewer, far costlier steps (on one CPU thread with the default model at 64 px, one LM
iteration lowers the loss about as much as 20 Adam steps and costs about as much as 200).

Options (``method_options``): ``solver`` (``adam`` or ``lm``, default ``adam``), ``steps``
(int: Adam steps, default 100, or LM iterations, default 20), ``lr`` (Adam only: a mapping
of code part → rate; parts not given keep :data:`DEFAULT_LR`) and ``damping`` (LM only:
the initial Marquardt λ, default :data:`~mofa_bench.methods.fit_lm.DEFAULT_DAMPING`).

:func:`fit_codes` can also start Adam from given codes and hold some code parts at their
start values (``start``, ``fixed``): e.g. fit the face with a known pose and light; and
hand each step's codes to a callback (``on_step``): e.g. score them along the way.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

import torch

from mofa_bench.methods.fit_lm import DEFAULT_DAMPING, DEFAULT_LM_STEPS, LMTargets, lm_fit_codes
from mofa_bench.methods.options import check_method_options, positive_int
from mofa_bench.code_vector import CODE_DIM, CODE_LAYOUT
from mofa_bench.config import TrainConfig
from mofa_bench.data.batch import FaceBatch
from mofa_bench.decoder import MoFADecoder
from mofa_bench.errors import ConfigError
from mofa_bench.losses import LossWeights, mofa_loss
from mofa_bench.methods.base import Method, Reconstruction
from mofa_checks import check_tensor
from mofa_checks import InputError

__all__ = ["DEFAULT_LR", "DEFAULT_STEPS", "SOLVERS", "FitMethod", "FitResult", "build_fit", "code_loss", "fit_codes"]

#: Adam learning rate per code part (per step, in the part's units): α, δ, β in prior
#: standard deviations, rotation in rad, translation (x, y) and z-translation in mm, γ
#: in SH units.
DEFAULT_LR: dict[str, float] = {
    "alpha": 0.05,
    "delta": 0.05,
    "beta": 0.05,
    "rotation": 0.01,
    "translation": 1.0,
    "z_translation": 0.1,
    "gamma": 0.01,
}
#: Adam steps per batch.
DEFAULT_STEPS: int = 100
#: The solvers and their default step counts.
SOLVERS: dict[str, int] = {"adam": DEFAULT_STEPS, "lm": DEFAULT_LM_STEPS}
#: The leaves optimised, in code order: ``translation`` is split into x, y and z.
_LEAVES: tuple[tuple[str, int], ...] = tuple(
    item for name, size in CODE_LAYOUT
    for item in ((("translation", 2), ("z_translation", 1)) if name == "translation" else ((name, size),)))


@dataclass(frozen=True)
class FitResult:
    """The outcome of :func:`fit_codes` on one batch.

    Attributes:
        code: ``(B, 257)`` fitted codes (detached).
        losses: ``total`` loss (batch mean) before each step and after the last one;
            shorter than ``steps + 1`` when a step made the loss non-finite (the code is
            then the last one with a finite loss).
        seconds_per_image: wall time of the fit divided by B, s.
        stopped: why the fit ended before its steps (``"time limit"``), or ``""``.
    """

    code: torch.Tensor
    losses: list[float]
    seconds_per_image: float
    stopped: str = ""


def code_loss(decoder: MoFADecoder, code: torch.Tensor, images: torch.Tensor, weights: LossWeights,
              landmarks: torch.Tensor | None = None,
              confidence: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """MoFA loss terms of ``(B, 257)`` codes against ``(B, 3, H, W)`` images.

    Args:
        decoder: face model, camera and renderer (its photometric samples).
        code: ``(B, 257)`` codes on the decoder's device.
        images: ``(B, 3, H, W)`` RGB in [0, 1].
        weights: the loss weights; the landmark weight is used only when ``landmarks``
            are given.
        landmarks: ``(B, 68, 2)`` iBUG-68 target positions, px (the model's landmark
            subset is compared), or ``None``.
        confidence: ``(B, 68)`` their confidences, or ``None``.

    Returns:
        ``{"total", "photo", "landmark", "reg", "pose"}`` (see :func:`~mofa_bench.losses.mofa_loss`).
    """
    formed = decoder.form(code)
    samples = decoder.photometric_samples(formed, images)
    if landmarks is None:
        return mofa_loss(code, samples, replace(weights, landmark=0.0))
    subset = decoder.model.landmark_subset
    dims: dict[str, int] = {"B": code.shape[0]}
    check_tensor("landmarks", landmarks, "B 68 2", dims, floating=True)
    target_confidence = None
    if confidence is not None:
        target_confidence = check_tensor("landmark_confidence", confidence, "B 68", dims, floating=True)[:, subset]
    return mofa_loss(code, samples, weights, formed.landmarks_uv[:, subset], landmarks[:, subset],
                     target_confidence)


def _assemble(leaves: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([leaves[name] for name, _ in _LEAVES], dim=1)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _lm_targets(decoder: MoFADecoder, images: torch.Tensor, landmarks: torch.Tensor | None,
                confidence: torch.Tensor | None) -> LMTargets:
    """The LM solver's targets: the model's training-landmark subset of iBUG-68 inputs."""
    if landmarks is None:
        return LMTargets(images)
    model = decoder.model
    dims: dict[str, int] = {"B": images.shape[0]}
    landmarks = check_tensor("landmarks", landmarks, "B 68 2", dims, floating=True)
    subset = model.landmark_subset
    target = landmarks.detach().to(model.device, model.dtype)[:, subset]
    if confidence is None:
        return LMTargets(images, target)
    confidence = check_tensor("landmark_confidence", confidence, "B 68", dims, floating=True)
    return LMTargets(images, target, confidence.detach().to(model.device, model.dtype)[:, subset])


def _adam(decoder: MoFADecoder, images: torch.Tensor, weights: LossWeights, steps: int, rates: Mapping[str, float],
          landmarks: torch.Tensor | None, confidence: torch.Tensor | None, start: torch.Tensor | None = None,
          fixed: Sequence[str] = (),
          on_step: Callable[[int, torch.Tensor], None] | None = None) -> tuple[torch.Tensor, list[float]]:
    model = decoder.model
    batch = images.shape[0]
    if start is None:
        start = torch.zeros(batch, CODE_DIM, device=model.device, dtype=model.dtype)
    with torch.enable_grad():
        leaves = {name: part.clone().requires_grad_(name not in fixed)
                  for (name, _), part in zip(_LEAVES, start.split([size for _, size in _LEAVES], dim=1))}
        optimizer = torch.optim.Adam([{"params": [leaves[name]], "lr": rates[name]}
                                      for name, _ in _LEAVES if name not in fixed])
        losses: list[float] = []
        code = _assemble(leaves).detach()
        for step in range(steps + 1):
            current = _assemble(leaves)
            total = code_loss(decoder, current, images, weights, landmarks, confidence)["total"]
            if not bool(torch.isfinite(total)):
                break
            losses.append(float(total.detach()))
            code = current.detach()
            if on_step is not None:
                on_step(step, code)
            if step == steps:
                break
            optimizer.zero_grad(set_to_none=True)
            # Summed over the batch: each image's code gets its own gradient, whatever B is.
            (total * batch).backward()
            optimizer.step()
    return code, losses


def fit_codes(decoder: MoFADecoder, images: torch.Tensor, weights: LossWeights = LossWeights(),
              steps: int = DEFAULT_STEPS, lr: Mapping[str, float] | None = None,
              landmarks: torch.Tensor | None = None, confidence: torch.Tensor | None = None,
              solver: str = "adam", damping: float = DEFAULT_DAMPING, start: torch.Tensor | None = None,
              fixed: Sequence[str] = (), on_step: Callable[[int, torch.Tensor], None] | None = None,
              on_iteration: Callable[[int, int, float, float], None] | None = None,
              time_limit_s: float | None = None) -> FitResult:
    """Fit one code per image, from the zero code unless given ``start`` (gradients on even under ``no_grad``).

    Args:
        decoder: face model, camera and renderer.
        images: ``(B, 3, H, W)`` RGB in [0, 1] (moved to the decoder's device and dtype).
        weights: MoFA loss weights.
        steps: Adam steps, or LM iterations.
        lr: Adam's per-part rates (:data:`DEFAULT_LR` for parts not given).
        landmarks: ``(B, 68, 2)`` target landmarks, px, or ``None``.
        confidence: ``(B, 68)`` landmark confidences, or ``None``.
        solver: ``"adam"`` or ``"lm"`` (:func:`~mofa_bench.methods.fit_lm.lm_fit_codes`).
        damping: LM's initial Marquardt λ.
        start: ``(B, 257)`` codes to start from (Adam only; default: zero).
        fixed: code parts held at their start values (Adam only), named as in ``lr``
            (:data:`DEFAULT_LR`: ``translation`` is x and y, ``z_translation`` is z).
        on_step: called as ``on_step(step, code)`` (Adam only) with the ``(B, 257)``
            detached codes before step ``step`` is taken (``losses[step]`` is their loss)
            and after the last one (``step == steps``); its time counts in
            ``seconds_per_image``.
        on_iteration: LM only: called after each iteration as ``(i, steps, loss, seconds)``.
        time_limit_s: LM only: stop once this much wall time has passed, keeping the best
            codes so far (``stopped`` says so).

    Returns:
        The fitted codes, the loss per step and the time per image.

    Raises:
        InputError: a bad ``solver``, input shape or ``fixed`` part, or ``start`` /
            ``fixed`` / ``on_step`` with the LM solver.
    """
    dims: dict[str, int] = {}
    check_tensor("images", images, "B 3 H W", dims, floating=True)
    if solver not in SOLVERS:
        raise InputError(f"solver: expected one of {', '.join(SOLVERS)}, got {solver!r}")
    fixed = tuple(fixed)
    unknown = [part for part in fixed if part not in DEFAULT_LR]
    if unknown:
        raise InputError(f"fixed: unknown code part {unknown[0]!r}; known: {', '.join(DEFAULT_LR)}")
    if set(fixed) == set(DEFAULT_LR):
        raise InputError("fixed: every code part is fixed; nothing to fit")
    if solver == "lm" and (start is not None or fixed or on_step is not None):
        raise InputError("start, fixed and on_step go with solver 'adam'; the LM solver starts every code at zero")
    if solver == "adam" and (on_iteration is not None or time_limit_s is not None):
        raise InputError("on_iteration and time_limit_s go with solver 'lm'; Adam's work is bounded by steps")
    model = decoder.model
    device = model.device
    if start is not None:
        start = check_tensor("start", start, f"B {CODE_DIM}", dims, floating=True).detach().to(device, model.dtype)
    images = images.detach().to(device, model.dtype)
    batch = images.shape[0]
    _synchronize(device)
    began = time.perf_counter()
    if solver == "lm":
        code, losses = lm_fit_codes(decoder, _lm_targets(decoder, images, landmarks, confidence), weights, steps,
                                    damping, on_iteration=on_iteration, time_limit_s=time_limit_s)
    else:
        code, losses = _adam(decoder, images, weights, steps, {**DEFAULT_LR, **(lr or {})}, landmarks, confidence,
                             start, fixed, on_step)
    _synchronize(device)
    seconds = time.perf_counter() - began
    stopped = "time limit" if time_limit_s is not None and len(losses) < steps + 1 and seconds >= time_limit_s else ""
    return FitResult(code=code, losses=losses, seconds_per_image=seconds / batch, stopped=stopped)


class FitMethod(Method):
    """Per-image optimisation as a method: nothing to train, codes fitted at reconstruction.

    Args:
        decoder: the analytic decoder whose renderer the loss goes through (and which
            scores the codes).
        loss_weights: MoFA loss weights.
        steps: Adam steps (or LM iterations) per batch.
        lr: Adam's per-part learning rates (see :data:`DEFAULT_LR`).
        solver: ``"adam"`` or ``"lm"`` (Levenberg-Marquardt).
        damping: LM's initial Marquardt λ.

    Attributes:
        last_fit_seconds_per_image: wall time per image of the last fit, s (NaN before any).
        last_fit: the last :class:`FitResult`, or ``None``.
        time_limit_s: LM only: wall time bound of each batch's fit, s (``None``: none).
        on_iteration: LM only: per-iteration callback (see :func:`fit_codes`).
    """

    trains = False

    def __init__(self, decoder: MoFADecoder, loss_weights: LossWeights = LossWeights(), steps: int = DEFAULT_STEPS,
                 lr: Mapping[str, float] | None = None, solver: str = "adam",
                 damping: float = DEFAULT_DAMPING) -> None:
        super().__init__()
        if solver not in SOLVERS:
            raise InputError(f"solver: expected one of {', '.join(SOLVERS)}, got {solver!r}")
        self.decoder = decoder
        self.loss_weights = loss_weights
        self.steps = steps
        self.lr = {**DEFAULT_LR, **(lr or {})}
        self.solver = solver
        self.damping = damping
        self.last_fit_seconds_per_image = math.nan
        self.last_fit: FitResult | None = None
        self.time_limit_s: float | None = None
        self.on_iteration: Callable[[int, int, float, float], None] | None = None

    def parameter_groups(self, lr: float, z_translation_lr: float) -> list[dict[str, Any]]:
        """None: every code is fitted afresh per image."""
        return []

    def encode(self, images: torch.Tensor, landmarks: torch.Tensor | None = None,
               landmark_confidence: torch.Tensor | None = None) -> torch.Tensor:
        """Fit ``(B, 257)`` codes to ``(B, 3, H, W)`` images (landmarks ``(B, 68, 2)`` px if given)."""
        lm = {"on_iteration": self.on_iteration, "time_limit_s": self.time_limit_s} if self.solver == "lm" else {}
        result = fit_codes(self.decoder, images, self.loss_weights, self.steps, self.lr, landmarks,
                           landmark_confidence, self.solver, self.damping, **lm)
        self.last_fit = result
        self.last_fit_seconds_per_image = result.seconds_per_image
        return result.code

    def loss_terms(self, batch: FaceBatch) -> dict[str, torch.Tensor]:
        """The loss terms of the codes fitted to ``batch`` (its landmarks used when it has them)."""
        code = self.encode(batch.images, batch.landmarks, batch.landmark_confidence)
        with torch.no_grad():
            return code_loss(self.decoder, code, batch.images, self.loss_weights, batch.landmarks,
                             batch.landmark_confidence)

    def reconstruct(self, images: torch.Tensor, landmarks: torch.Tensor | None = None,
                    landmark_confidence: torch.Tensor | None = None) -> Reconstruction:
        """Fitted codes of ``(B, 3, H, W)`` images and their analytic rendering over black."""
        code = self.encode(images, landmarks, landmark_confidence)
        with torch.no_grad():
            image, mask = self.decoder.render(code)
        return Reconstruction(image=image, mask=mask, code=code)


def _check_rates(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"method_options.lr: expected a mapping of code part → learning rate "
                          f"({', '.join(DEFAULT_LR)}), got {value!r}")
    for part, rate in value.items():
        if part not in DEFAULT_LR:
            raise ConfigError(f"method_options.lr.{part}: unknown code part; known: {', '.join(DEFAULT_LR)}")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < math.inf:
            raise ConfigError(f"method_options.lr.{part}: expected a number > 0, got {rate!r}")
    return {part: float(rate) for part, rate in value.items()}


def _check_damping(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigError(f"method_options.damping: expected a number > 0, got {value!r}")
    return float(value)


def build_fit(config: TrainConfig, decoder: MoFADecoder) -> FitMethod:
    """Per-image optimisation with the config's loss weights and ``method_options``.

    Raises:
        ConfigError: an unknown ``method_options`` key, a bad ``solver`` / ``steps`` /
            ``lr`` / ``damping``, or an option of the other solver.
    """
    options = check_method_options("fit", config.method_options,
                                   {"solver": "adam", "steps": None, "lr": None, "damping": None})
    solver = options["solver"]
    if solver not in SOLVERS:
        raise ConfigError(f"method_options.solver: expected one of {', '.join(SOLVERS)}, got {solver!r}")
    for key, owner in (("lr", "adam"), ("damping", "lm")):
        if options[key] is not None and solver != owner:
            raise ConfigError(f"method_options.{key}: an option of solver {owner}, but solver is {solver}")
    steps = SOLVERS[solver] if options["steps"] is None else positive_int("steps", options["steps"])
    rates = _check_rates(options["lr"]) if options["lr"] is not None else {}
    damping = DEFAULT_DAMPING if options["damping"] is None else _check_damping(options["damping"])
    return FitMethod(decoder, config.loss, steps, rates, solver, damping).to(decoder.model.device)
