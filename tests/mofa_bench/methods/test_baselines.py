"""Tests of mofa_bench.methods: the conv autoencoder, the learned decoder, per-image fitting."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from mofa_bench.methods import (
    ConvAutoencoder,
    ConvEncoder,
    DecoderStage,
    DeconvDecoder,
    EncoderStage,
    FitMethod,
    LearnedDecoder,
    PassThroughClamp,
    code_loss,
    fit_codes,
    method_builder,
    prior_codes,
)
from mofa_bench.scoring import decoder_fidelity, evaluate_batch
from mofa_bench import CODE_DIM, Camera, MoFADecoder
from mofa_bench.code_vector import CODE_SLICES
from mofa_bench.cli import main
from helpers import save_render_png, tiny_train_config
from mofa_bench.data.batch import FaceBatch
from mofa_bench.errors import ConfigError
from mofa_bench.losses import LossWeights
from mofa_bench.sampling import CodePrior, sample_codes
from mofa_bench.training import Trainer, save_checkpoint
from mofa_checks import InputError
from renderers import available_renderers, get_renderer

CPU_RENDERERS = [name for name, state in available_renderers("cpu").items() if state.available]
#: Soft PyTorch3D: its hard mode gives no coverage gradients.
SOFT = {"pytorch3d": {"blur_radius": 2.0, "faces_per_pixel": 4, "sigma": 0.5}}
#: Small poses and light, so a short fit from the zero code can reach the face.
NEAR_PRIOR = CodePrior(yaw_deg=10.0, pitch_deg=5.0, roll_deg=5.0, translation_std_mm=3.0, depth_std_mm=5.0)


def _config(tmp_path: Path, model_path: Path, *overrides: str, **direct):
    one_step = ("optim.iterations=1", "data.train_size=4", "data.val_size=2", "val_every=1", "sample_every=1",
                "checkpoint_every=1")
    return tiny_train_config(tmp_path, model_path, *one_step, *overrides, **direct)


def _decoder(model, renderer: str = "per_vertex", size: int = 32) -> MoFADecoder:
    return MoFADecoder(model, Camera(size), renderer=get_renderer(renderer, "cpu", **SOFT.get(renderer, {})))


def _synthetic_batch(decoder: MoFADecoder, n: int = 2, seed: int = 1) -> tuple[FaceBatch, torch.Tensor]:
    codes = sample_codes(n, NEAR_PRIOR, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        images, _ = decoder.render(codes)
        landmarks = decoder.form(codes).landmarks_uv
    return FaceBatch(images=images, indices=torch.arange(n), codes=codes, landmarks=landmarks), codes


def _one_step(trainer: Trainer) -> dict[str, float]:
    """One training step on the first batch; the trainable parameters must move."""
    before = [p.detach().clone() for p in trainer.method.trainable_parameters()]
    batch = trainer.train_data.batch(torch.arange(trainer.config.optim.batch_size))
    terms = trainer.train_step(batch)
    assert terms is not None and all(math.isfinite(v) for v in terms.values()), terms
    after = trainer.method.trainable_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    return terms


@pytest.fixture(scope="module")
def tiny32(tiny_model):
    return tiny_model.to(dtype=torch.float32)


class TestNetworks:
    @pytest.mark.parametrize("size", [32, 64])
    def test_shapes(self, size):
        images = torch.rand(2, 3, size, size)
        code = ConvEncoder(size)(images)
        assert code.shape == (2, CODE_DIM)
        out = DeconvDecoder(size)(code)
        assert out.shape == (2, 3, size, size) and bool(((out >= 0) & (out <= 1)).all())

    def test_paper_channels(self):
        convs = [m for m in ConvEncoder(32).modules() if isinstance(m, torch.nn.Conv2d)]
        assert [(m.out_channels, m.kernel_size, m.stride) for m in convs] == [
            (c, (3, 3), (2, 2)) for c in (64, 96, 128, 256)]
        deconvs = [m for m in DeconvDecoder(32).modules() if isinstance(m, torch.nn.ConvTranspose2d)]
        assert [(m.out_channels, m.kernel_size) for m in deconvs] == [(c, (4, 4)) for c in (128, 96, 64, 3)]

    def test_image_size_must_be_a_multiple_of_16(self):
        with pytest.raises(ConfigError, match="camera.image_size.*multiple of 16"):
            ConvEncoder(40)


class TestConvAutoencoder:
    def test_reconstruction_is_a_whole_image_without_code(self):
        rec = ConvAutoencoder(32).reconstruct(torch.rand(3, 3, 32, 32))
        assert rec.image.shape == (3, 3, 32, 32) and rec.code is None
        assert torch.equal(rec.mask, torch.ones(3, 1, 32, 32))

    def test_scored_on_the_photometric_error_only(self):
        method = ConvAutoencoder(32)
        batch = FaceBatch(images=torch.rand(2, 3, 32, 32), indices=torch.arange(2))
        with torch.no_grad():
            metrics = evaluate_batch(method, batch)
        assert set(metrics) == {"photometric"} and metrics["photometric"].shape == (2,)

    def test_one_trainer_step(self, tmp_path, tiny_model_path):
        cfg = _config(tmp_path, tiny_model_path, "method=conv_autoencoder")
        trainer = Trainer(cfg, method_builder=method_builder("conv_autoencoder"))
        assert isinstance(trainer.method, ConvAutoencoder)
        terms = _one_step(trainer)
        assert set(terms) == {"total", "photo"} and terms["total"] == terms["photo"]

    def test_has_no_options(self, tmp_path, tiny_model_path):
        cfg = _config(tmp_path, tiny_model_path, "method=conv_autoencoder", "method_options={width: 2}")
        with pytest.raises(ConfigError, match="method_options.width: unknown option"):
            Trainer(cfg, method_builder=method_builder("conv_autoencoder"))


class TestLearnedDecoder:
    def test_shapes_and_coverage(self):
        image, mask = LearnedDecoder(32).render(torch.zeros(2, CODE_DIM))
        assert image.shape == (2, 3, 32, 32) and mask.shape == (2, 1, 32, 32)
        assert set(mask.unique().tolist()) <= {0.0, 1.0}

    def test_prior_codes_are_a_function_of_seed_and_index(self):
        prior = CodePrior()
        a = prior_codes(torch.tensor([5, 9]), prior, seed=3)
        b = prior_codes(torch.tensor([9, 7, 5]), prior, seed=3)
        assert a.shape == (2, CODE_DIM)
        assert torch.equal(a[0], b[2]) and torch.equal(a[1], b[0])
        assert not torch.equal(a[0], a[1])
        assert not torch.equal(a, prior_codes(torch.tensor([5, 9]), prior, seed=4))

    def test_output_is_clipped_with_a_gradient_everywhere(self):
        x = torch.tensor([-2.0, 0.25, 3.0], dtype=torch.float64, requires_grad=True)
        out = PassThroughClamp()(x)
        assert torch.equal(out.detach(), torch.tensor([0.0, 0.25, 1.0], dtype=torch.float64))
        out.sum().backward()
        assert torch.equal(x.grad, torch.ones(3, dtype=torch.float64))  # a sigmoid's would be ~0 at -2 and 3
        assert isinstance(LearnedDecoder(32).deconvs[-1], PassThroughClamp)
        assert isinstance(DeconvDecoder(32).deconvs[-1], torch.nn.Sigmoid)
        with pytest.raises(ConfigError, match="output: expected one of sigmoid, clamp"):
            DeconvDecoder(32, output="tanh")

    def test_decoder_loss_weighs_face_and_background_equally(self, tiny32):
        analytic = _decoder(tiny32)
        stage = DecoderStage(analytic)
        codes = prior_codes(torch.arange(2), CodePrior(), seed=0)
        with torch.no_grad():
            target, mask = analytic.render(codes)
        stage.network.forward = lambda code: target.clone()  # draws the analytic face exactly
        batch = SimpleNamespace(indices=torch.arange(2))
        terms = stage.loss_terms(batch)
        assert float(terms["total"]) == pytest.approx(0.0, abs=1e-12)
        stage.network.forward = lambda code: torch.zeros_like(target)  # black everywhere: all the error is the face's
        terms = stage.loss_terms(batch)
        face = float((target.square().sum(1, keepdim=True) * mask).sum() / mask.sum())
        assert float(terms["background"]) == pytest.approx(0.0, abs=1e-12)
        assert float(terms["face"]) == pytest.approx(face, rel=1e-5)
        assert float(terms["total"]) == pytest.approx(0.5 * face, rel=1e-5)

    def test_decoder_stage_learns_the_face_instead_of_black(self, tiny32):
        """A few dozen Adam steps: the network draws the faces closer than at its start and not black."""
        torch.manual_seed(0)
        analytic = _decoder(tiny32)
        stage = DecoderStage(analytic, NEAR_PRIOR, seed=0)
        codes = sample_codes(8, NEAR_PRIOR, torch.Generator().manual_seed(9))
        before = float(decoder_fidelity(stage.network, analytic, codes)["photometric"].mean())
        optimizer = torch.optim.AdamW(stage.parameter_groups(2e-3, 2e-3))
        for step in range(40):
            optimizer.zero_grad()
            stage.loss_terms(SimpleNamespace(indices=torch.arange(16) + 16 * step))["total"].backward()
            optimizer.step()
        after = float(decoder_fidelity(stage.network, analytic, codes)["photometric"].mean())
        with torch.no_grad():
            drawn, mask = stage.network.render(codes)
        assert after < 0.6 * before
        assert float(mask.mean()) > 0.1, "the learned decoder draws (almost) black images"

    def test_encoder_stage_learns_where_the_learned_decoder_draws_nothing(self, tiny32):
        """At a code the network draws black there is no face region; the whole-image loss still has a gradient."""
        from mofa_bench.encoders import build_encoder

        learned = LearnedDecoder(64)
        with torch.no_grad():
            learned.deconvs[-2].bias.fill_(-5.0)  # the last transposed convolution: black everywhere
            learned.deconvs[-2].weight.mul_(1e-3)
        analytic = _decoder(tiny32, size=64)
        stage = EncoderStage(build_encoder("resnet18", None, image_size=64), learned, analytic)
        batch, _ = _synthetic_batch(analytic)
        assert not stage.learned.render(torch.zeros(2, CODE_DIM))[1].any()
        terms = stage.loss_terms(batch)
        assert float(terms["photo"]) > 0.05
        terms["total"].backward()
        grads = [p.grad for p in stage.encoder.parameters() if p.grad is not None]
        assert grads and any(float(g.abs().sum()) > 0 for g in grads)

    def test_fidelity_per_code(self, tiny32):
        analytic = _decoder(tiny32)
        codes = sample_codes(3, NEAR_PRIOR, torch.Generator().manual_seed(0))
        fidelity = decoder_fidelity(LearnedDecoder(32), analytic, codes, batch_size=2)
        assert set(fidelity) == {"photometric", "photometric_image"}
        for values in fidelity.values():
            assert values.shape == (3,) and bool(((values >= 0) & (values <= math.sqrt(3))).all())

    def test_both_stages_train_one_step(self, tmp_path, tiny_model_path):
        cfg = _config(tmp_path, tiny_model_path, "method=learned_decoder", "method_options={stage: decoder}",
                      name="decoder")
        trainer = Trainer(cfg, method_builder=method_builder("learned_decoder"))
        assert isinstance(trainer.method, DecoderStage)
        assert set(_one_step(trainer)) == {"total", "photo", "face", "background"}
        rec = trainer.method.reconstruct(trainer.train_data.batch(torch.arange(2)).images)
        assert rec.code is None and rec.image.shape == (2, 3, 64, 64)
        save_checkpoint(trainer.state_dict(), trainer.run_dir / "checkpoints" / "last.pt")
        network = {k: v.clone() for k, v in trainer.method.network.state_dict().items()}

        cfg = _config(tmp_path, tiny_model_path, "method=learned_decoder",
                      f"method_options={{stage: encoder, decoder_checkpoint: {trainer.run_dir}}}", name="encoder")
        trainer = Trainer(cfg, method_builder=method_builder("learned_decoder"))
        method = trainer.method
        assert isinstance(method, EncoderStage)
        for key, value in method.learned.state_dict().items():
            assert torch.equal(value, network[key]), key
        images = trainer.train_data.batch(torch.arange(2)).images
        method.eval()
        with torch.no_grad():
            rec = method.reconstruct(images)
        assert rec.code.shape == (2, CODE_DIM) and not rec.code.any()  # zero head: the zero code
        assert set(_one_step(trainer)) == {"total", "photo", "reg"}
        for key, value in method.learned.state_dict().items():
            assert torch.equal(value, network[key]), f"the learned decoder moved: {key}"

    @pytest.mark.parametrize("options, message", [
        ("{stage: both}", "method_options.stage: expected one of decoder, encoder"),
        ("{stage: encoder}", "method_options.decoder_checkpoint: stage 'encoder' needs"),
        ("{stage: encoder, decoder_checkpoint: nowhere.pt}", "method_options.decoder_checkpoint: .*does not exist"),
        ("{stage: decoder, decoder_checkpoint: x.pt}", "method_options.decoder_checkpoint: only stage 'encoder'"),
        ("{steps: 3}", "method_options.steps: unknown option of the learned_decoder method"),
    ])
    def test_bad_options(self, tmp_path, tiny_model_path, tiny32, options, message):
        cfg = _config(tmp_path, tiny_model_path, "method=learned_decoder", f"method_options={options}")
        with pytest.raises(ConfigError, match=message):
            method_builder("learned_decoder")(cfg, _decoder(tiny32, size=64))

    def test_checkpoint_of_another_method_is_refused(self, tmp_path, tiny_model_path, tiny32):
        run = Trainer(_config(tmp_path, tiny_model_path, "method=conv_autoencoder", name="ae"),
                      method_builder=method_builder("conv_autoencoder"))
        save_checkpoint(run.state_dict(), run.run_dir / "checkpoints" / "last.pt")
        cfg = _config(tmp_path, tiny_model_path, "method=learned_decoder",
                      f"method_options={{stage: encoder, decoder_checkpoint: {run.run_dir}}}")
        with pytest.raises(ConfigError, match="not a checkpoint of a learned_decoder run with stage 'decoder'"):
            method_builder("learned_decoder")(cfg, _decoder(tiny32, size=64))


class TestFit:
    def test_starts_from_the_zero_code(self, tiny32):
        decoder = _decoder(tiny32)
        batch, _ = _synthetic_batch(decoder)
        result = fit_codes(decoder, batch.images, steps=0)
        assert torch.equal(result.code, torch.zeros(2, CODE_DIM)) and len(result.losses) == 1

    def test_fixed_parts_stay_at_their_start(self, tiny32):
        """``start`` and ``fixed``: the face fitted with the true pose and light held."""
        decoder = _decoder(tiny32)
        batch, codes = _synthetic_batch(decoder)
        face = slice(0, CODE_SLICES["rotation"].start)
        start = codes.clone()
        start[:, face] = 0.0
        result = fit_codes(decoder, batch.images, steps=8, start=start,
                           fixed=("rotation", "translation", "z_translation", "gamma"))
        assert torch.equal(result.code[:, face.stop:], codes[:, face.stop:])
        assert bool((result.code[:, face] != 0).any()) and result.losses[-1] < result.losses[0]
        with torch.no_grad():
            at_start = code_loss(decoder, start, batch.images, LossWeights())["total"]
        assert result.losses[0] == pytest.approx(float(at_start), rel=1e-6)

    @pytest.mark.parametrize("kwargs, message", [
        ({"fixed": ("pose",)}, "fixed: unknown code part 'pose'"),
        ({"fixed": ("alpha", "delta", "beta", "rotation", "translation", "z_translation", "gamma")}, "nothing to fit"),
        ({"fixed": ("gamma",), "solver": "lm"}, "go with solver 'adam'"),
        ({"start": torch.zeros(3, CODE_DIM)}, "start"),
    ])
    def test_bad_start_or_fixed(self, tiny32, kwargs, message):
        decoder = _decoder(tiny32)
        batch, _ = _synthetic_batch(decoder)
        with pytest.raises(InputError, match=message):
            fit_codes(decoder, batch.images, steps=1, **kwargs)

    @pytest.mark.parametrize("renderer", CPU_RENDERERS)
    def test_fitting_lowers_the_loss(self, tiny32, renderer):
        decoder = _decoder(tiny32, renderer)
        batch, _ = _synthetic_batch(decoder)
        method = FitMethod(decoder, steps=12)
        with torch.no_grad():  # the fit turns gradients on itself
            rec = method.reconstruct(batch.images)
        losses = method.last_fit.losses
        assert len(losses) == 13 and losses[-1] < 0.8 * losses[0], losses
        with torch.no_grad():
            final = code_loss(decoder, rec.code, batch.images, LossWeights())["total"]
        assert float(final) == pytest.approx(losses[-1], rel=1e-5)
        assert rec.image.shape == (2, 3, 32, 32) and rec.mask.shape == (2, 1, 32, 32)
        assert method.last_fit_seconds_per_image > 0

    def test_landmarks_when_given(self, tiny32):
        decoder = _decoder(tiny32)
        batch, _ = _synthetic_batch(decoder)
        weights = LossWeights(landmark=1.0)
        zero = torch.zeros(2, CODE_DIM)
        with torch.no_grad():
            before = code_loss(decoder, zero, batch.images, weights, batch.landmarks)["landmark"]
        method = FitMethod(decoder, weights, steps=12)
        code = method.encode(batch.images, batch.landmarks)
        with torch.no_grad():
            after = code_loss(decoder, code, batch.images, weights, batch.landmarks)["landmark"]
        assert float(after) < 0.5 * float(before), (float(before), float(after))

    def test_scored_like_mofa(self, tiny32):
        decoder = _decoder(tiny32)
        batch, _ = _synthetic_batch(decoder)
        with torch.no_grad():
            metrics = evaluate_batch(FitMethod(decoder, steps=2), batch)
        assert {"photometric", "geometric_mm", "landmark_px"} <= set(metrics)

    def test_trainer_refuses_it(self, tmp_path, tiny_model_path):
        cfg = _config(tmp_path, tiny_model_path, "method=fit")
        with pytest.raises(ConfigError, match="nothing to train"):
            Trainer(cfg, method_builder=method_builder("fit"))

    def test_options(self, tmp_path, tiny_model_path, tiny32):
        cfg = _config(tmp_path, tiny_model_path, "method=fit", "method_options={steps: 7, lr: {gamma: 0.02}}")
        method = method_builder("fit")(cfg, _decoder(tiny32, size=64))
        assert method.steps == 7 and method.lr["gamma"] == 0.02 and method.lr["alpha"] == 0.05
        assert method.parameter_groups(0.1, 0.001) == [] and not method.trains

    @pytest.mark.parametrize("options, message", [
        ("{iterations: 3}", "method_options.iterations: unknown option of the fit method"),
        ("{steps: 0}", "method_options.steps: expected an integer > 0"),
        ("{lr: 0.1}", "method_options.lr: expected a mapping"),
        ("{lr: {pose: 0.1}}", "method_options.lr.pose: unknown code part"),
        ("{lr: {alpha: -1}}", "method_options.lr.alpha: expected a number > 0"),
    ])
    def test_bad_options(self, tmp_path, tiny_model_path, tiny32, options, message):
        cfg = _config(tmp_path, tiny_model_path, "method=fit", f"method_options={options}")
        with pytest.raises(ConfigError, match=message):
            method_builder("fit")(cfg, _decoder(tiny32, size=64))


class TestReconstructFitCommand:
    @pytest.fixture
    def photo(self, tmp_path, tiny32) -> Path:
        """A 96 px synthetic face on grey, as a PNG."""
        codes = sample_codes(1, NEAR_PRIOR, torch.Generator().manual_seed(2))
        return save_render_png(_decoder(tiny32, size=96), codes, tmp_path / "face.png")

    @pytest.fixture
    def config_file(self, tmp_path, tiny_model_path) -> Path:
        path = tmp_path / "fit.yaml"
        path.write_text(yaml.safe_dump({"model": {"source": str(tiny_model_path)}, "camera": {"image_size": 32},
                                        "method": "fit", "method_options": {"steps": 50}}))
        return path

    def test_fits_a_photo_without_a_checkpoint(self, tmp_path, photo, config_file, capsys):
        out = tmp_path / "out"
        rc = main(["reconstruct", str(photo), "--method", "fit", "--config", str(config_file), "--fit-steps", "4",
                   "--out", str(out), "--device", "cpu", "--detector", "none"])
        captured = capsys.readouterr()
        assert rc == 0, captured.err
        assert "fit: 4 Adam steps" in captured.out and "reconstructed 1 of 1 photos" in captured.out
        for name in ("face.obj", "face.ply", "face_overlay.png", "face_code.npz", "reconstructions.csv"):
            assert (out / name).is_file(), name
        code = np.load(out / "face_code.npz")["code"]
        assert code.shape == (CODE_DIM,) and np.abs(code).max() > 0  # moved away from the zero code

    def test_fit_takes_no_checkpoint_and_the_encoder_needs_one(self, tmp_path, photo, config_file, capsys):
        rc = main(["reconstruct", str(photo), "--method", "fit", "--checkpoint", str(tmp_path / "x.pt"),
                   "--out", str(tmp_path), "--device", "cpu"])
        assert rc == 1 and "--method fit uses no trained model" in capsys.readouterr().err
        rc = main(["reconstruct", str(photo), "--out", str(tmp_path), "--device", "cpu"])
        assert rc == 1 and "--checkpoint: required" in capsys.readouterr().err
