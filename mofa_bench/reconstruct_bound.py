"""``reconstruct --method fit --fit-solver lm``: its cost said before it starts, its progress and its bound.

Levenberg-Marquardt through a rasterizer builds each Jacobian row by a reverse pass over a
replicated batch (:mod:`mofa_bench.methods.fit_lm`), so an iteration costs about one
backward pass per pixel the face covers: on the CPU, minutes to tens of minutes per photo
at 64 px. :func:`bound_lm_fit` measures that with two probe passes before the first photo
and

- prints the estimate (per iteration and for ``--fit-steps`` iterations per photo);
- refuses, with the reason and the alternatives, a fit on the CPU estimated above
  :data:`CPU_LM_LIMIT_S` per photo unless ``--timeout`` bounds it, and a ``--timeout``
  shorter than one iteration;
- with ``--timeout``, stops each batch's fit at that wall time (checked between Jacobian
  passes), keeping its best codes so far;
- prints one progress line per iteration on stderr.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, TextIO

import torch

from mofa_checks import InputError

__all__ = ["CPU_LM_LIMIT_S", "bound_lm_fit", "duration"]

#: Estimated seconds per photo above which LM on the CPU is refused unless ``--timeout`` bounds it.
CPU_LM_LIMIT_S = 600.0


def duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``7.3 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _progress(stream: TextIO | None) -> Callable[[int, int, float, float], None]:
    def show(iteration: int, steps: int, loss: float, seconds: float) -> None:
        print(f"fit lm: iteration {iteration}/{steps}, loss {loss:.4f}, {duration(seconds)}",
              file=stream if stream is not None else sys.stderr, flush=True)
    return show


def bound_lm_fit(model: Any, device: torch.device, timeout: float | None,
                 stream: TextIO | None = None) -> str | None:
    """Set up the bound and progress of a :class:`~mofa_bench.reconstruct_fit.LandmarkFit`; the line to print.

    Args:
        model: the fit (its ``fit`` is a :class:`~mofa_bench.methods.fit.FitMethod`).
        device: where it runs.
        timeout: ``--timeout``: wall time bound of each batch's fit, s, or ``None``.
        stream: where the per-iteration progress goes (``None``: ``sys.stderr`` as it is
            when a line is printed, so a redirected stderr is followed).

    Returns:
        The estimate to print (``None`` for Adam, or LM with forward-mode Jacobians).

    Raises:
        InputError: ``--timeout`` with Adam; LM through a rasterizer on the CPU estimated
            above :data:`CPU_LM_LIMIT_S` per photo without ``--timeout``; a ``--timeout``
            shorter than one estimated iteration.
    """
    from mofa_bench.methods.fit_lm import LMTargets, estimate_iteration_seconds

    fit = model.fit
    if fit.solver != "lm":
        if timeout is not None:
            raise InputError("--timeout: bounds the Levenberg-Marquardt fit (--fit-solver lm); Adam's work is "
                             "bounded by --fit-steps")
        return None
    fit.time_limit_s, fit.on_iteration = timeout, _progress(stream)
    size, face_model = model.image_size, fit.decoder.model
    probe = torch.zeros(1, 3, size, size, device=face_model.device, dtype=face_model.dtype)
    found = estimate_iteration_seconds(fit.decoder, LMTargets(probe), fit.loss_weights)
    if found is None:
        return None
    per_iteration, rows = found
    renderer = fit.decoder.renderer.name
    text = (f"Levenberg-Marquardt through {renderer} on {device.type} takes about {duration(per_iteration)} per "
            f"iteration per {size} px photo ({rows} Jacobian rows by reverse passes), "
            f"{duration(per_iteration * fit.steps)} for {fit.steps} iterations")
    instead = (f"use --fit-solver adam (the same loss, cheap steps), --renderer per_vertex (LM by forward-mode "
               f"Jacobians), a CUDA device, or")
    if timeout is None and device.type == "cpu" and per_iteration * fit.steps > CPU_LM_LIMIT_S:
        raise InputError(f"--fit-solver lm: {text}; {instead} bound each batch with --timeout SECONDS")
    if timeout is not None and timeout < per_iteration:
        raise InputError(f"--timeout {timeout:g}: shorter than one iteration: {text}; {instead} a longer --timeout")
    bound = f"; each batch stops at --timeout {timeout:g} s with its best codes so far" if timeout else ""
    return f"fit: {text}{bound}"
