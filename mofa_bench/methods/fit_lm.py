"""Levenberg-Marquardt solver of the per-image fit (Gauss-Newton with Marquardt damping).

Minimises, per image, the same MoFA loss as the Adam solver of
:mod:`mofa_bench.methods.fit` (``w_photo·E_photo + w_land·E_land + w_reg·E_reg``, see
:func:`~mofa_bench.losses.mofa_loss`) over the 257-d code, starting from the zero code.

**Residuals.** The landmark and regularisation terms are sums of squares already:
``ρ_land = √(w_land·c_j)·(u_j − s_j)`` (px) and ``ρ_reg = √(w_reg·k_p)·x_p`` with
k = 1 (α), w_β (β), w_δ (δ). The photometric term is an ℓ2,1 norm
(``Σ_i w_i ‖e_i‖ / n``, e_i = predicted − observed RGB of sample i, n = M samples or
Σw), not a sum of squares, so it is handled by **iteratively reweighted least squares**:
at the current code x_k each sample gets a fixed weight from its current error,
``a_i = max(‖e_i(x_k)‖, eps)``, and its RGB residual is
``ρ_i(x) = w_i(x)·e_i(x)·√(w_photo / (2·n·w_i(x_k)·a_i))``. Because
``‖e‖ ≤ ‖e‖²/(2a) + a/2`` for every a > 0, the surrogate
``Σ ρ_i² + Σ w_photo·w_i(x_k)·a_i/(2n)`` lies above the photometric term, touches it at
x_k (when every error exceeds eps) and has its gradient there, so each Gauss-Newton step
on the surrogate is a step on the ℓ2,1 loss itself. The weight w_i(x) sits inside the
residual linearly, so coverage weights that vary with the code (soft rasterizers) keep
their gradient; samples with w_i(x_k) = 0 are left out of that iteration (their surrogate
has no gradient there). The normaliser n is held at x_k. :func:`irls_objective` returns the
surrogate at x_k (equal to :func:`~mofa_bench.losses.mofa_loss` per image).

**Jacobian** of the residuals w.r.t. each image's own code (images are independent, so
one pass gives every image's block at once):

- ``forward`` (renderers of plain PyTorch ops, ``per_vertex``): Jacobian-vector products by
  the double-backward trick (``Jᵀu`` built with ``create_graph``, then differentiated in u),
  vectorised over chunks of the 257 basis tangents with ``is_grads_batched``, for a group
  of images at a time whose Jacobians fit :data:`JACOBIAN_ELEMENTS`; then ``JᵀJ`` by one
  batched matrix product.
  ``torch.func``'s forward mode is not usable: ``grid_sample`` has no forward-mode formula.
- ``reverse`` (rasterizers, whose custom autograd functions have backward passes that are
  neither differentiable again nor vmappable, so ``torch.func`` and the double-backward
  trick both fail or silently drop terms): rows of J by plain reverse mode, K rows per pass
  by replicating each image K times in the batch, over the active residual rows only.

Memory is bounded by :data:`CHUNK_ELEMENTS` (tangents or replicas × batch × residuals) and
:data:`JACOBIAN_ELEMENTS`.

**Step.** ``(A + λ·diag(A)) δ = −g`` with ``A = JᵀJ`` (+ the regulariser's constant
diagonal) and ``g = Jᵀρ``, solved per image in float64; the diagonal scaling makes the
damping invariant to each part's units (mm, rad, SH). The trial code is accepted when the
true loss falls (λ ← λ/3), else rejected (λ ← 4λ); each image has its own λ. A fixed number
of iterations, each with one linearisation (reused after a rejection) and one trial.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Literal

import torch

from mofa_bench.code_vector import CODE_DIM, CODE_SLICES
from mofa_bench.decoder import MoFADecoder
from mofa_bench.losses import _NORM_EPS, LossWeights
from mofa_checks import check_tensor

__all__ = ["CHUNK_ELEMENTS", "DEFAULT_DAMPING", "DEFAULT_LM_STEPS", "FORWARD_RENDERERS", "IRLS_EPS",
           "JACOBIAN_ELEMENTS", "JacobianMode", "LMTargets", "estimate_iteration_seconds", "irls_objective",
           "jacobian_mode", "lm_fit_codes", "per_image_loss"]

#: Levenberg-Marquardt iterations per batch when ``steps`` is not given.
DEFAULT_LM_STEPS: int = 20
#: Initial Marquardt damping λ (relative to diag(JᵀJ)).
DEFAULT_DAMPING: float = 1e-2
#: Floor of the IRLS error scale a_i, RGB distance (channels in [0, 1]; 8-bit step ≈ 4e-3).
IRLS_EPS: float = 1e-3
#: Bound on (tangents or replicas) × batch × residuals held at once by the Jacobian passes.
CHUNK_ELEMENTS: int = 2 ** 23
#: Bound on images × residuals × 257 of the Jacobian held at once (forward mode; one image at least).
JACOBIAN_ELEMENTS: int = 2 ** 25
#: Renderers made of plain, twice-differentiable PyTorch ops (forward-mode Jacobian is exact).
FORWARD_RENDERERS: frozenset[str] = frozenset({"per_vertex"})

JacobianMode = Literal["auto", "forward", "reverse"]
#: ``on_iteration(iteration, steps, loss, seconds)``: after each iteration (1-based), the batch-mean loss.
OnIteration = Callable[[int, int, float, float], None]


class _OutOfTime(Exception):
    """The fit's time limit passed (raised between Jacobian passes)."""


def _check_time(deadline: float | None) -> None:
    if deadline is not None and time.perf_counter() > deadline:
        raise _OutOfTime
_DAMPING_DOWN, _DAMPING_UP, _DAMPING_MIN, _DAMPING_MAX = 1.0 / 3.0, 4.0, 1e-9, 1e9


@dataclass(frozen=True)
class LMTargets:
    """What the codes are fitted to.

    Attributes:
        images: ``(B, 3, H, W)`` RGB in [0, 1] on the model's device and dtype.
        landmarks: ``(B, L, 2)`` target positions of the model's training landmarks, px,
            or ``None`` (no landmark term).
        confidence: ``(B, L)`` their confidences, or ``None`` (all 1).
    """

    images: torch.Tensor
    landmarks: torch.Tensor | None = None
    confidence: torch.Tensor | None = None

    def select(self, part: slice) -> "LMTargets":
        """The images (and landmarks) of ``part`` of the batch."""
        def sel(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[part]
        return LMTargets(sel(self.images), sel(self.landmarks), sel(self.confidence))

    def repeat(self, k: int) -> "LMTargets":
        """Each image repeated ``k`` times in a row (batch ``B·k``)."""
        def rep(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.repeat_interleave(k, dim=0)
        return LMTargets(rep(self.images), rep(self.landmarks), rep(self.confidence))


@dataclass(frozen=True)
class _Pieces:
    """Raw residuals of one batch: ``r`` (B, R) = [w·e (3M), √c·(u − s) (2L)], plus the
    detached ``weights`` (B, M) and error norms ``dist`` (B, M) = √(‖e‖² + 1e-10)."""

    r: torch.Tensor
    weights: torch.Tensor
    dist: torch.Tensor


def _pieces(decoder: MoFADecoder, code: torch.Tensor, targets: LMTargets, landmark: bool) -> _Pieces:
    formed = decoder.form(code)
    samples = decoder.photometric_samples(formed, targets.images)
    err = samples.predicted - samples.observed
    parts = [(samples.weights.unsqueeze(-1) * err).flatten(1)]
    if landmark and targets.landmarks is not None:
        diff = formed.landmarks_uv[:, decoder.model.landmark_subset] - targets.landmarks
        if targets.confidence is not None:
            diff = diff * targets.confidence.clamp(min=0).sqrt().unsqueeze(-1)
        parts.append(diff.flatten(1))
    dist = torch.sqrt((err.detach() ** 2).sum(-1) + _NORM_EPS)
    return _Pieces(r=torch.cat(parts, dim=1), weights=samples.weights.detach(), dist=dist)


def _normaliser(weights: torch.Tensor, loss: LossWeights) -> torch.Tensor:
    """``(B,)`` photometric normaliser n: M samples, or Σw (as the loss)."""
    if loss.photo_normalization == "weights":
        return weights.sum(-1).clamp(min=1e-8)
    return weights.new_full((weights.shape[0],), float(weights.shape[1]))


def _reg_diagonal(loss: LossWeights, like: torch.Tensor) -> torch.Tensor:
    """``(257,)`` w_reg·k_p: the regulariser is Σ_p diag_p·x_p²."""
    diag = like.new_zeros(CODE_DIM)
    diag[CODE_SLICES["alpha"]] = loss.reg
    diag[CODE_SLICES["beta"]] = loss.reg * loss.reg_beta
    diag[CODE_SLICES["delta"]] = loss.reg * loss.reg_delta
    return diag


def _loss_from(pieces: _Pieces, code: torch.Tensor, loss: LossWeights, landmark: bool) -> torch.Tensor:
    """``(B,)`` MoFA total per image from residual pieces (landmark rows follow 3M photo rows)."""
    n_photo = 3 * pieces.weights.shape[1]
    photo = (pieces.weights * pieces.dist).sum(-1) / _normaliser(pieces.weights, loss)
    total = loss.photo * photo + ((code.detach() ** 2) * _reg_diagonal(loss, code)).sum(-1)
    if landmark and pieces.r.shape[1] > n_photo:
        total = total + loss.landmark * (pieces.r.detach()[:, n_photo:] ** 2).sum(-1)
    return total


def _uses_landmarks(loss: LossWeights, targets: LMTargets) -> bool:
    return loss.landmark > 0 and targets.landmarks is not None


def per_image_loss(decoder: MoFADecoder, code: torch.Tensor, targets: LMTargets,
                   loss: LossWeights = LossWeights()) -> torch.Tensor:
    """``(B,)`` MoFA total loss of each ``(B, 257)`` code (its batch mean is ``mofa_loss``'s total)."""
    landmark = _uses_landmarks(loss, targets)
    with torch.no_grad():
        return _loss_from(_pieces(decoder, code, targets, landmark), code, loss, landmark)


def _row_scales(pieces: _Pieces, loss: LossWeights, landmark: bool, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """IRLS row scales s (B, R) so that ρ = s·r, and the surrogate's constant (B,)."""
    w, n = pieces.weights, _normaliser(pieces.weights, loss).unsqueeze(-1)
    a = pieces.dist.clamp(min=eps)
    active = w > 0
    photo = torch.where(active, loss.photo / (2.0 * n * torch.where(active, w, 1.0) * a), 0.0).sqrt()
    scales = [photo.unsqueeze(-1).expand(*photo.shape, 3).flatten(1)]
    n_land = pieces.r.shape[1] - scales[0].shape[1]
    if landmark and n_land > 0:
        scales.append(pieces.r.new_full((pieces.r.shape[0], n_land), math.sqrt(loss.landmark)))
    constant = (loss.photo * w * (a / 2.0 + _NORM_EPS / (2.0 * a)) / n).sum(-1)
    return torch.cat(scales, dim=1), constant


def irls_objective(decoder: MoFADecoder, code: torch.Tensor, targets: LMTargets, loss: LossWeights = LossWeights(),
                   eps: float = IRLS_EPS) -> torch.Tensor:
    """``(B,)`` IRLS surrogate ``Σρ² + const + w_reg·E_reg`` at its own expansion point ``code``.

    Equals :func:`per_image_loss` when every sample's error exceeds ``eps`` (above it
    otherwise): the check that the residuals are built and scaled right.
    """
    landmark = _uses_landmarks(loss, targets)
    with torch.no_grad():
        pieces = _pieces(decoder, code, targets, landmark)
        scales, constant = _row_scales(pieces, loss, landmark, eps)
        reg = ((code ** 2) * _reg_diagonal(loss, code)).sum(-1)
        return ((scales * pieces.r) ** 2).sum(-1) + constant + reg


def jacobian_mode(decoder: MoFADecoder, mode: JacobianMode = "auto") -> Literal["forward", "reverse"]:
    """``forward`` for plain-PyTorch renderers (:data:`FORWARD_RENDERERS`), else ``reverse``."""
    if mode == "auto":
        return "forward" if decoder.renderer.name in FORWARD_RENDERERS else "reverse"
    return mode


ResidualFn = Callable[[torch.Tensor, LMTargets], _Pieces]


def _normal_forward(fn: ResidualFn, code: torch.Tensor, targets: LMTargets,
                    scales: torch.Tensor, r_shape: int, deadline: float | None = None) -> torch.Tensor:
    """``(B, P, P)`` JρᵀJρ from J's columns by batched JVPs (double-backward), a group of images at a time."""
    batch = code.shape[0]
    group = max(1, min(batch, JACOBIAN_ELEMENTS // max(1, r_shape * CODE_DIM)))
    eye = torch.eye(CODE_DIM, dtype=code.dtype, device=code.device)
    normal = []
    for first in range(0, batch, group):
        part = slice(first, first + group)
        x = code[part].detach().requires_grad_(True)
        r = fn(x, targets.select(part)).r
        u = torch.zeros_like(r, requires_grad=True)
        (jtu,) = torch.autograd.grad(r, x, u, create_graph=True)  # Jᵀu, linear in u
        size = x.shape[0]
        chunk = max(1, min(CODE_DIM, CHUNK_ELEMENTS // max(1, size * r_shape)))
        jac = r.new_empty(size, CODE_DIM, r_shape)  # rows of Jρᵀ
        for start in range(0, CODE_DIM, chunk):
            _check_time(deadline)
            tangents = eye[start:start + chunk].unsqueeze(1).expand(-1, size, CODE_DIM)
            (jv,) = torch.autograd.grad(jtu, u, tangents, retain_graph=True, is_grads_batched=True)  # (K, G, R)
            jac[:, start:start + chunk] = (jv * scales[part]).transpose(0, 1)
        normal.append(jac @ jac.transpose(1, 2))
    return torch.cat(normal)


def _normal_reverse(fn: ResidualFn, code: torch.Tensor, targets: LMTargets,
                    scales: torch.Tensor, r_shape: int, deadline: float | None = None) -> torch.Tensor:
    """``(B, P, P)`` JρᵀJρ from rows of J, K active rows per pass (each image replicated K times)."""
    batch = code.shape[0]
    active = scales > 0
    counts = active.sum(1)
    order = torch.argsort((~active).to(torch.int8), dim=1, stable=True)  # active rows first
    n_rows = int(counts.max())
    per_pass = max(1, min(n_rows, CHUNK_ELEMENTS // max(1, batch * r_shape)))
    normal = code.new_zeros(batch, CODE_DIM, CODE_DIM)
    for start in range(0, n_rows, per_pass):
        _check_time(deadline)
        k = min(per_pass, n_rows - start)
        rows = order[:, start:start + k]  # (B, k)
        valid = (torch.arange(start, start + k, device=code.device) < counts.unsqueeze(1)).to(code.dtype)
        x = code.detach().repeat_interleave(k, dim=0).requires_grad_(True)
        r = fn(x, targets.repeat(k)).r.view(batch, k, -1)
        picked = r.gather(2, rows.unsqueeze(-1)).squeeze(-1)  # (B, k): replica j gives row rows[:, j]
        (grad,) = torch.autograd.grad(picked.sum(), x)
        jrows = grad.view(batch, k, CODE_DIM) * (scales.gather(1, rows) * valid).unsqueeze(-1)
        normal += jrows.transpose(1, 2) @ jrows
    return normal


def _linearise(decoder: MoFADecoder, code: torch.Tensor, targets: LMTargets, loss: LossWeights, landmark: bool,
               mode: str, eps: float, deadline: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normal matrix ``(B, P, P)``, gradient half ``Jρᵀρ`` ``(B, P)`` and loss ``(B,)`` at ``code``."""
    def fn(c: torch.Tensor, t: LMTargets) -> _Pieces:
        return _pieces(decoder, c, t, landmark)

    x = code.detach().requires_grad_(True)
    pieces = fn(x, targets)
    scales, _ = _row_scales(pieces, loss, landmark, eps)
    (jtr,) = torch.autograd.grad(pieces.r, x, scales * scales * pieces.r.detach())
    reg = _reg_diagonal(loss, code)
    build = _normal_forward if mode == "forward" else _normal_reverse
    normal = build(fn, code, targets, scales, pieces.r.shape[1], deadline) + torch.diag(reg)
    return normal, jtr + reg * code, _loss_from(pieces, code, loss, landmark)


def _solve(normal: torch.Tensor, gradient: torch.Tensor, damping: torch.Tensor) -> torch.Tensor:
    """``(B, P)`` step δ of ``(A + λ·diag(A)) δ = −g``, in float64."""
    a = normal.double()
    diag = torch.diagonal(a, dim1=1, dim2=2)
    floor = diag.amax(-1, keepdim=True).clamp(min=1e-30) * 1e-9
    damped = a + torch.diag_embed(damping.double().unsqueeze(-1) * diag.clamp(min=floor))
    damped = damped + torch.diag_embed(floor.expand_as(diag))
    rhs = -gradient.double().unsqueeze(-1)
    # The damped normal matrix is symmetric positive definite: Cholesky. (Batched LU,
    # torch.linalg.solve, also hangs in MKL once torch's thread count has been changed.)
    factor, info = torch.linalg.cholesky_ex(damped)
    step = torch.cholesky_solve(rhs, factor)
    for i in torch.nonzero(info).flatten().tolist():  # not positive definite in floating point
        step[i] = torch.linalg.lstsq(damped[i], rhs[i]).solution
    return step.squeeze(-1).to(gradient.dtype)


def estimate_iteration_seconds(decoder: MoFADecoder, targets: LMTargets, loss: LossWeights = LossWeights(),
                               jacobian: JacobianMode = "auto", eps: float = IRLS_EPS) -> tuple[float, int] | None:
    """``(seconds, Jacobian rows)`` one iteration on ``targets`` should take here, from two timed probe passes.

    Only for reverse-mode Jacobians (rasterizers), whose cost grows with the rows the
    images cover; ``None`` for the forward mode. The estimate is the linearisation (one
    forward pass, then ``rows`` replica rows at the probes' per-row and per-pass cost)
    plus one trial.
    """
    mode = jacobian_mode(decoder, jacobian)
    if mode != "reverse":
        return None
    landmark = _uses_landmarks(loss, targets)
    code = torch.zeros(targets.images.shape[0], CODE_DIM, device=decoder.model.device, dtype=decoder.model.dtype)
    with torch.enable_grad():
        began = time.perf_counter()
        pieces = _pieces(decoder, code.requires_grad_(True), targets, landmark)
        forward = time.perf_counter() - began
        scales, _ = _row_scales(pieces, loss, landmark, eps)
        rows = int((scales > 0).sum(1).max())
        probe = {}
        for k in (2, 8):
            x = code.detach().repeat_interleave(k, dim=0).requires_grad_(True)
            began = time.perf_counter()
            (grad,) = torch.autograd.grad(_pieces(decoder, x, targets.repeat(k), landmark).r[:, 0].sum(), x)
            float(grad.sum())
            probe[k] = time.perf_counter() - began
    per_row = max((probe[8] - probe[2]) / 6, probe[8] / 8 / 4)
    per_pass = max(0.0, probe[2] - 2 * per_row)
    passes = math.ceil(rows / max(1, min(rows, CHUNK_ELEMENTS // max(1, code.shape[0] * pieces.r.shape[1]))))
    return 2 * forward + passes * per_pass + rows * per_row, rows


def lm_fit_codes(decoder: MoFADecoder, targets: LMTargets, loss: LossWeights = LossWeights(),
                 steps: int = DEFAULT_LM_STEPS, damping: float = DEFAULT_DAMPING, jacobian: JacobianMode = "auto",
                 eps: float = IRLS_EPS, on_iteration: OnIteration | None = None,
                 time_limit_s: float | None = None) -> tuple[torch.Tensor, list[float]]:
    """Fit one code per image from the zero code by Levenberg-Marquardt on the IRLS residuals.

    Args:
        decoder: face model, camera and renderer.
        targets: images (and landmarks) on the model's device and dtype.
        loss: MoFA loss weights (landmark term only when ``targets.landmarks`` is given).
        steps: iterations (each one linearisation, reused after a rejected trial, and one trial).
        damping: initial λ.
        jacobian: ``auto`` (by renderer, see :func:`jacobian_mode`), ``forward`` or ``reverse``.
        eps: IRLS error floor, RGB distance.
        on_iteration: called after each iteration as ``on_iteration(i, steps, loss, seconds)``.
        time_limit_s: stop once this much wall time has passed (checked between Jacobian
            passes and iterations): the codes are the best so far.

    Returns:
        ``(B, 257)`` fitted codes (detached) and the batch-mean loss before each iteration
        and after the last (``steps + 1`` values, non-increasing; fewer when the time limit
        stopped the fit).
    """
    check_tensor("images", targets.images, "B 3 H W", floating=True)
    mode = jacobian_mode(decoder, jacobian)
    landmark = _uses_landmarks(loss, targets)
    batch = targets.images.shape[0]
    model = decoder.model
    code = torch.zeros(batch, CODE_DIM, device=model.device, dtype=model.dtype)
    lam = torch.full((batch,), damping, device=model.device, dtype=model.dtype)
    began = time.perf_counter()
    deadline = None if time_limit_s is None else began + time_limit_s
    try:
        with torch.enable_grad():
            normal, gradient, current = _linearise(decoder, code, targets, loss, landmark, mode, eps, deadline)
    except _OutOfTime:
        return code, [float(per_image_loss(decoder, code, targets, loss).mean())]
    losses = [float(current.mean())]
    for step in range(steps):
        trial = code + _solve(normal, gradient, lam)
        trial_loss = per_image_loss(decoder, trial, targets, loss)
        accept = torch.isfinite(trial_loss) & torch.isfinite(trial).all(-1) & (trial_loss < current)
        code = torch.where(accept.unsqueeze(-1), trial, code)
        current = torch.where(accept, trial_loss, current)
        lam = torch.where(accept, lam * _DAMPING_DOWN, lam * _DAMPING_UP).clamp(_DAMPING_MIN, _DAMPING_MAX)
        losses.append(float(current.mean()))
        if on_iteration is not None:
            on_iteration(step + 1, steps, losses[-1], time.perf_counter() - began)
        try:
            _check_time(deadline)
            if step + 1 < steps and bool(accept.any()):
                with torch.enable_grad():
                    normal, gradient, current = _linearise(decoder, code, targets, loss, landmark, mode, eps,
                                                           deadline)
        except _OutOfTime:
            break
    return code.detach(), losses
