"""Tests of mofa_bench.methods.fit_lm: the Levenberg-Marquardt solver of the per-image fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import mofa_bench.methods.fit_lm as fit_lm
from mofa_bench.methods import FitMethod, code_loss, fit_codes, method_builder
from mofa_bench.methods.fit_lm import LMTargets, irls_objective, jacobian_mode, lm_fit_codes, per_image_loss
from mofa_bench.methods.fit_lm import _linearise  # the normal equations, compared across Jacobian modes
from helpers import save_render_png, tiny_train_config
from mofa_bench import CODE_DIM, Camera, MoFADecoder
from mofa_bench.cli import main
from mofa_bench.errors import ConfigError
from mofa_bench.losses import LossWeights
from mofa_bench.sampling import CodePrior, sample_codes
from renderers import get_renderer
from mofa_checks import InputError

#: Small poses and light: a short fit from the zero code can reach the face.
NEAR_PRIOR = CodePrior(yaw_deg=10.0, pitch_deg=5.0, roll_deg=5.0, translation_std_mm=3.0, depth_std_mm=5.0)


@pytest.fixture(scope="module")
def tiny32(tiny_model):
    return tiny_model.to(dtype=torch.float32)


def _decoder(model, renderer: str = "per_vertex", size: int = 32) -> MoFADecoder:
    return MoFADecoder(model, Camera(size), renderer=get_renderer(renderer, "cpu"))


def _faces(decoder: MoFADecoder, n: int = 2, seed: int = 1,
           prior: CodePrior = NEAR_PRIOR) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Codes, their renders ``(n, 3, H, W)`` and their projected iBUG-68 landmarks ``(n, 68, 2)``."""
    codes = sample_codes(n, prior, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        images, _ = decoder.render(codes)
        landmarks = decoder.form(codes).landmarks_uv
    return codes, images, landmarks


class TestResiduals:
    def test_irls_objective_equals_mofa_loss_at_its_expansion_point(self, tiny32):
        decoder = _decoder(tiny32)
        codes, _, landmarks = _faces(decoder)
        images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))  # errors ≫ eps
        code = 0.5 * codes
        weights = LossWeights(landmark=1.0)
        subset = tiny32.landmark_subset
        confidence = torch.rand(2, 68, generator=torch.Generator().manual_seed(4))
        targets = LMTargets(images, landmarks[:, subset] + 1.5, confidence[:, subset])
        with torch.no_grad():
            expected = code_loss(decoder, code, images, weights, landmarks + 1.5, confidence)["total"]
        surrogate = irls_objective(decoder, code, targets, weights)
        assert surrogate.shape == (2,)
        assert float(surrogate.mean()) == pytest.approx(float(expected), rel=1e-5)
        assert float(per_image_loss(decoder, code, targets, weights).mean()) == pytest.approx(float(expected),
                                                                                              rel=1e-5)

    def test_irls_objective_bounds_the_loss_where_errors_are_below_eps(self, tiny32):
        decoder = _decoder(tiny32)
        codes, images, _ = _faces(decoder)
        targets = LMTargets(images)
        photo_only = LossWeights(reg=0.0)
        exact = per_image_loss(decoder, codes, targets, photo_only)  # the true code: most errors small
        assert torch.all(irls_objective(decoder, codes, targets, photo_only, eps=0.5) > 1.01 * exact)
        assert torch.allclose(irls_objective(decoder, codes, targets, photo_only, eps=1e-12), exact, rtol=1e-4)

    def test_photo_normalisation_by_weights_is_matched(self, tiny32):
        decoder = _decoder(tiny32)
        codes, _, _ = _faces(decoder)
        images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
        weights = LossWeights(photo_normalization="weights")
        with torch.no_grad():
            expected = code_loss(decoder, 0.3 * codes, images, weights)["total"]
        got = irls_objective(decoder, 0.3 * codes, LMTargets(images), weights).mean()
        assert float(got) == pytest.approx(float(expected), rel=1e-5)


class TestJacobian:
    @pytest.mark.parametrize("chunked", [False, True])
    def test_forward_and_reverse_modes_give_the_same_normal_equations(self, tiny32, monkeypatch, chunked):
        if chunked:  # one image per Jacobian group, a few tangents / replicas per pass
            monkeypatch.setattr(fit_lm, "JACOBIAN_ELEMENTS", 1)
            monkeypatch.setattr(fit_lm, "CHUNK_ELEMENTS", 20_000)
        decoder = _decoder(tiny32)
        codes, images, landmarks = _faces(decoder)
        targets = LMTargets(images, landmarks[:, tiny32.landmark_subset] + 2.0)
        weights = LossWeights(landmark=1.0)
        with torch.enable_grad():
            fwd = _linearise(decoder, 0.5 * codes, targets, weights, True, "forward", 1e-3)
            rev = _linearise(decoder, 0.5 * codes, targets, weights, True, "reverse", 1e-3)
        scale = float(fwd[0].abs().max())
        assert float((fwd[0] - rev[0]).abs().max()) < 1e-5 * scale
        assert torch.equal(fwd[1], rev[1]) and torch.equal(fwd[2], rev[2])

    def test_gradient_half_is_half_the_loss_gradient(self, tiny32):
        """At the expansion point Jρᵀρ = ½ ∇loss: Gauss-Newton steps on the surrogate descend the loss."""
        decoder = _decoder(tiny32)
        codes, _, _ = _faces(decoder)
        images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(6))
        code = (0.5 * codes).requires_grad_(True)
        with torch.enable_grad():
            (2 * code_loss(decoder, code, images, LossWeights())["total"]).backward()  # batch mean → per image
            _, half, _ = _linearise(decoder, code.detach(), LMTargets(images), LossWeights(), False, "forward", 1e-3)
        torch.testing.assert_close(2 * half, code.grad, rtol=1e-4, atol=1e-7)

    def test_mode_follows_the_renderer(self, tiny32):
        assert jacobian_mode(_decoder(tiny32)) == "forward"
        assert jacobian_mode(_decoder(tiny32, "pytorch3d")) == "reverse"
        assert jacobian_mode(_decoder(tiny32), "reverse") == "reverse"


class TestSolver:
    def test_lowers_the_loss_from_the_zero_code(self, tiny32):
        decoder = _decoder(tiny32)
        _, images, _ = _faces(decoder)
        code, losses = lm_fit_codes(decoder, LMTargets(images), steps=6)
        assert len(losses) == 7 and all(b <= a for a, b in zip(losses, losses[1:])), losses
        assert losses[-1] < 0.3 * losses[0], losses
        assert float(per_image_loss(decoder, code, LMTargets(images)).mean()) == pytest.approx(losses[-1], rel=1e-5)

    def test_beats_adam_at_the_same_small_step_count(self, tiny32):
        decoder = _decoder(tiny32)
        _, images, _ = _faces(decoder, n=3, seed=2)
        adam = fit_codes(decoder, images, steps=8)
        lm = fit_codes(decoder, images, steps=8, solver="lm")
        assert adam.losses[0] == pytest.approx(lm.losses[0], rel=1e-6)  # both from the zero code
        assert lm.losses[-1] < 0.7 * adam.losses[-1], (adam.losses[-1], lm.losses[-1])
        assert lm.seconds_per_image > 0

    def test_landmarks_pull_the_fit(self, tiny32):
        decoder = _decoder(tiny32)
        _, images, landmarks = _faces(decoder)
        weights = LossWeights(landmark=1.0)
        zero = torch.zeros(2, CODE_DIM)
        method = FitMethod(decoder, weights, steps=6, solver="lm")
        code = method.encode(images, landmarks)
        with torch.no_grad():
            before = code_loss(decoder, zero, images, weights, landmarks)["landmark"]
            after = code_loss(decoder, code, images, weights, landmarks)["landmark"]
        assert float(after) < 0.2 * float(before), (float(before), float(after))
        assert method.last_fit_seconds_per_image > 0 and len(method.last_fit.losses) == 7

    def test_unknown_solver_is_refused(self, tiny32):
        decoder = _decoder(tiny32)
        with pytest.raises(InputError, match="solver: expected one of adam, lm, got 'gn'"):
            fit_codes(decoder, torch.rand(1, 3, 32, 32), solver="gn")
        with pytest.raises(InputError, match="solver: expected one of adam, lm"):
            FitMethod(decoder, solver="gn")


class TestOptions:
    def _build(self, tmp_path: Path, model_path: Path, model, options: str) -> FitMethod:
        cfg = tiny_train_config(tmp_path, model_path, "method=fit", f"method_options={options}")
        return method_builder("fit")(cfg, _decoder(model, size=64))

    def test_lm_options(self, tmp_path, tiny_model_path, tiny32):
        method = self._build(tmp_path, tiny_model_path, tiny32, "{solver: lm, steps: 3, damping: 0.5}")
        assert (method.solver, method.steps, method.damping) == ("lm", 3, 0.5)
        assert self._build(tmp_path, tiny_model_path, tiny32, "{solver: lm}").steps == 20
        adam = self._build(tmp_path, tiny_model_path, tiny32, "{}")
        assert (adam.solver, adam.steps) == ("adam", 100)

    @pytest.mark.parametrize("options, message", [
        ("{solver: gauss}", "method_options.solver: expected one of adam, lm, got 'gauss'"),
        ("{solver: lm, damping: 0}", "method_options.damping: expected a number > 0"),
        ("{solver: lm, lr: {alpha: 0.1}}", "method_options.lr: an option of solver adam, but solver is lm"),
        ("{damping: 0.1}", "method_options.damping: an option of solver lm, but solver is adam"),
        ("{solver: lm, steps: -2}", "method_options.steps: expected an integer > 0"),
    ])
    def test_bad_options(self, tmp_path, tiny_model_path, tiny32, options, message):
        with pytest.raises(ConfigError, match=message):
            self._build(tmp_path, tiny_model_path, tiny32, options)


class TestReconstructCommand:
    def test_fit_solver_lm(self, tmp_path, tiny_model_path, tiny32, capsys):
        codes = sample_codes(1, NEAR_PRIOR, torch.Generator().manual_seed(2))
        photo = save_render_png(_decoder(tiny32, size=96), codes, tmp_path / "face.png")
        config = tmp_path / "fit.yaml"
        config.write_text(yaml.safe_dump({"model": {"source": str(tiny_model_path)}, "camera": {"image_size": 32},
                                          "method": "fit", "method_options": {"steps": 50, "lr": {"gamma": 0.02}}}))
        out = tmp_path / "out"
        rc = main(["reconstruct", str(photo), "--method", "fit", "--config", str(config), "--fit-solver", "lm",
                   "--fit-steps", "3", "--out", str(out), "--device", "cpu", "--detector", "none"])
        captured = capsys.readouterr()
        assert rc == 0, captured.err
        assert "fit: 3 Levenberg-Marquardt iterations" in captured.out, captured.out
        code = np.load(out / "face_code.npz")["code"]
        assert code.shape == (CODE_DIM,) and np.abs(code).max() > 0

    def test_fit_solver_needs_method_fit(self, tmp_path, capsys):
        rc = main(["reconstruct", str(tmp_path / "x.png"), "--fit-solver", "lm", "--checkpoint", str(tmp_path),
                   "--out", str(tmp_path / "o"), "--device", "cpu"])
        assert rc == 1 and "--fit-solver" in capsys.readouterr().err


class TestDampedSolve:
    def test_solves_the_damped_normal_equations(self):
        from mofa_bench.methods.fit_lm import _solve

        j = torch.randn(3, 40, 12, dtype=torch.float64)
        normal, gradient, damping = j.transpose(1, 2) @ j, torch.randn(3, 12, dtype=torch.float64), torch.rand(3)
        step = _solve(normal, gradient, damping)
        diag = torch.diagonal(normal, dim1=1, dim2=2)
        damped = normal + torch.diag_embed(damping.double().unsqueeze(-1) * diag)
        torch.testing.assert_close(damped @ step.unsqueeze(-1), -gradient.unsqueeze(-1), rtol=1e-6, atol=1e-6)

    def test_survives_a_change_of_torch_thread_count(self):
        # Batched LU (torch.linalg.solve) hangs in MKL after set_num_threads(1) → (2).
        import subprocess
        import sys

        script = ("import torch\n"
                  "from mofa_bench.methods.fit_lm import _solve\n"
                  "j = torch.randn(8, 300, 257, dtype=torch.float64)\n"
                  "a, g, d = j.transpose(1, 2) @ j, torch.randn(8, 257, dtype=torch.float64), torch.full((8,), 0.01)\n"
                  "torch.set_num_threads(1); _solve(a, g, d); torch.set_num_threads(2); _solve(a, g, d)\n")
        done = subprocess.run([sys.executable, "-c", script], timeout=120, capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[3])
        assert done.returncode == 0, done.stderr[-2000:]
