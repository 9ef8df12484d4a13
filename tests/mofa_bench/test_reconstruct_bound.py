"""Long fits are bounded and visible (#30 item 4): LM's progress, its time limit, its estimate and the refusal."""

from __future__ import annotations

import io
import time
from types import SimpleNamespace

import pytest
import torch

import mofa_bench.methods.fit_lm as fit_lm
import mofa_bench.reconstruct_bound as bound
from mofa_bench import Camera, MoFADecoder
from mofa_bench.methods import FitMethod, fit_codes
from mofa_bench.methods.fit_lm import LMTargets, estimate_iteration_seconds, lm_fit_codes
from mofa_checks import InputError
from renderers import get_renderer


@pytest.fixture(scope="module")
def tiny32(tiny_model):
    return tiny_model.to(dtype=torch.float32)


def _decoder(model, renderer: str = "per_vertex") -> MoFADecoder:
    return MoFADecoder(model, Camera(32), renderer=get_renderer(renderer, "cpu"))


def _images() -> torch.Tensor:
    return torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_each_iteration_is_reported(tiny32):
    seen = []
    _, losses = lm_fit_codes(_decoder(tiny32), LMTargets(_images()), steps=2,
                             on_iteration=lambda *args: seen.append(args))
    assert [(i, n) for i, n, _, _ in seen] == [(1, 2), (2, 2)]
    assert [loss for _, _, loss, _ in seen] == losses[1:] and all(s > 0 for *_, s in seen)


def test_the_time_limit_stops_the_fit_with_its_best_codes(tiny32, monkeypatch):
    decoder = _decoder(tiny32)
    code, losses = lm_fit_codes(decoder, LMTargets(_images()), steps=5, time_limit_s=1e-9)
    assert losses == pytest.approx([float(fit_lm.per_image_loss(decoder, code, LMTargets(_images())).mean())])
    assert not code.any()
    clock = iter(range(10**6))
    monkeypatch.setattr(fit_lm.time, "perf_counter", lambda: float(next(clock)))
    result = fit_codes(decoder, _images(), steps=50, solver="lm", time_limit_s=40.0)
    assert 1 < len(result.losses) < 51 and result.stopped == "time limit"
    assert result.losses[-1] <= result.losses[0]


def test_adam_takes_no_time_limit(tiny32):
    with pytest.raises(InputError, match="on_iteration and time_limit_s go with solver 'lm'"):
        fit_codes(_decoder(tiny32), _images(), steps=1, time_limit_s=5.0)


def test_the_estimate_is_for_reverse_passes_and_near_the_real_iteration(tiny32):
    assert estimate_iteration_seconds(_decoder(tiny32), LMTargets(_images())) is None
    decoder = _decoder(tiny32, "pytorch3d")
    seconds, rows = estimate_iteration_seconds(decoder, LMTargets(_images()))
    assert 0 < rows <= 3 * 32 * 32 and seconds > 0
    began = time.perf_counter()
    lm_fit_codes(decoder, LMTargets(_images()), steps=1)
    real = time.perf_counter() - began  # one linearisation and one trial, as estimated
    assert seconds / 5 < real < seconds * 5, (seconds, real)


def _fit_model(tiny32, solver: str = "lm", steps: int = 20):
    fit = FitMethod(_decoder(tiny32, "pytorch3d"), steps=steps, solver=solver)
    return SimpleNamespace(fit=fit, image_size=32)


def test_lm_on_the_cpu_is_refused_above_its_limit_with_the_alternatives(tiny32, monkeypatch):
    monkeypatch.setattr(fit_lm, "estimate_iteration_seconds", lambda *a, **k: (100.0, 1234))
    cpu = torch.device("cpu")
    with pytest.raises(InputError, match=r"^--fit-solver lm: Levenberg-Marquardt through pytorch3d on cpu takes about "
                                         r"100 s per iteration per 32 px photo \(1234 Jacobian rows .*\), 33 min for "
                                         r"20 iterations; use --fit-solver adam .*--renderer per_vertex .*--timeout"):
        bound.bound_lm_fit(_fit_model(tiny32), cpu, None)
    with pytest.raises(InputError, match=r"^--timeout 50: shorter than one iteration"):
        bound.bound_lm_fit(_fit_model(tiny32), cpu, 50.0)
    model = _fit_model(tiny32)
    text = bound.bound_lm_fit(model, cpu, 300.0, stream=io.StringIO())
    assert text.endswith("each batch stops at --timeout 300 s with its best codes so far")
    assert model.fit.time_limit_s == 300.0 and model.fit.on_iteration is not None
    assert "33 min" in bound.bound_lm_fit(_fit_model(tiny32), torch.device("cuda"), None)  # warned, not refused
    monkeypatch.setattr(fit_lm, "estimate_iteration_seconds", lambda *a, **k: (1.0, 10))
    assert bound.bound_lm_fit(_fit_model(tiny32), cpu, None).startswith("fit: Levenberg-Marquardt")


def test_progress_lines_go_to_the_stream(tiny32):
    stream = io.StringIO()
    model = SimpleNamespace(fit=FitMethod(_decoder(tiny32), steps=2, solver="lm"), image_size=32)
    assert bound.bound_lm_fit(model, torch.device("cpu"), None, stream=stream) is None  # forward mode: cheap
    model.fit.encode(_images())
    assert [line.split(",")[0] for line in stream.getvalue().splitlines()] == ["fit lm: iteration 1/2",
                                                                             "fit lm: iteration 2/2"]


def test_timeout_goes_with_lm(tiny32):
    with pytest.raises(InputError, match="--timeout: bounds the Levenberg-Marquardt fit"):
        bound.bound_lm_fit(_fit_model(tiny32, "adam"), torch.device("cpu"), 10.0)
