import math
from pathlib import Path

import pytest
import torch
import yaml

from mofa_bench.scoring.validation import validate
from helpers import tiny_train_config
from mofa_bench.config import config_names, config_to_dict, load_config
from mofa_bench.errors import CheckpointError, ConfigError, TrainingDivergedError
from mofa_bench.training import Trainer, load_checkpoint, save_checkpoint
from mofa_bench.losses import prior_factor
from mofa_bench.training.schedule import batch_indices, lr_factor
from renderers import RendererUnavailableError, available_renderers

CPU_RENDERERS = [name for name, state in available_renderers("cpu").items() if state.available]


def _config(tmp_path: Path, model_path: Path, *overrides: str, **direct):
    return tiny_train_config(tmp_path, model_path, *overrides, **direct)


class TestSchedule:
    def test_steps_cover_each_epoch_once_and_are_deterministic(self):
        seen = torch.cat([batch_indices(s, 4, 10, seed=3) for s in range(5)])  # 20 = 2 epochs
        assert sorted(seen[:10].tolist()) == list(range(10))
        assert sorted(seen[10:].tolist()) == list(range(10))
        assert torch.equal(batch_indices(3, 4, 10, seed=3), batch_indices(3, 4, 10, seed=3))
        assert not torch.equal(seen[:10], seen[10:20])


class TestLearningRateSchedule:
    def test_constant_is_one_after_a_linear_warmup(self):
        assert [lr_factor(s, 10, "constant", 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
        assert lr_factor(0, 10) == lr_factor(9, 10) == 1.0

    def test_cosine_falls_from_one_to_near_zero(self):
        factors = [lr_factor(s, 100, "cosine", 10) for s in range(100)]
        assert factors[9] == pytest.approx(1.0) and factors[10] == pytest.approx(1.0)
        assert factors[55] == pytest.approx(0.5)  # halfway through the 90 decaying steps
        assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
        assert 0 < factors[-1] < 0.01
        assert lr_factor(100, 100, "cosine") > 0  # past the end (more steps on resume): still a step

    def test_unknown_schedule_is_refused(self, tmp_path, tiny_model_path):
        with pytest.raises(ConfigError, match="optim.schedule"):
            lr_factor(0, 10, "linear")
        with pytest.raises(ConfigError, match="optim.schedule"):
            _config(tmp_path, tiny_model_path, "optim.schedule=step")
        with pytest.raises(ConfigError, match="optim.warmup_steps"):
            _config(tmp_path, tiny_model_path, "optim.warmup_steps=-1")

    def test_trainer_sets_each_groups_rate_and_resume_follows_it(self, tmp_path, tiny_model_path):
        # The learning rates alone: no validation (at these rates the tiny model's codes reach 1e7).
        over = ("optim.optimizer=adamw", "optim.lr=0.01", "optim.z_translation_lr=0.001", "optim.schedule=cosine",
                "optim.warmup_steps=1")
        full = Trainer(_config(tmp_path, tiny_model_path, *over, "optim.iterations=4", name="full"), validator=None)
        full.fit()
        want = lr_factor(3, 4, "cosine", 1)
        assert sorted(g["lr"] for g in full.optimizer.param_groups) == pytest.approx([0.001 * want, 0.01 * want])
        part = Trainer(_config(tmp_path, tiny_model_path, *over, "optim.iterations=4", "checkpoint_every=1",
                               name="part"), validator=None)
        step = part.train_step

        def killed_after_two(batch):
            if part.step == 2:
                raise KeyboardInterrupt
            return step(batch)

        part.train_step = killed_after_two
        with pytest.raises(KeyboardInterrupt):
            part.fit()
        resumed = Trainer(_config(tmp_path, tiny_model_path, *over, "optim.iterations=4", "checkpoint_every=1",
                                  name="part"), validator=None)
        resumed.fit(resume=True)
        a, b = full.method.state_dict(), resumed.method.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
        constant = Trainer(_config(tmp_path, tiny_model_path, *over[:-2], "optim.iterations=4", name="constant"), validator=None)
        constant.fit()
        c = constant.method.state_dict()
        assert not all(torch.equal(a[k], c[k]) for k in a)  # the schedule changed what was learnt


class TestPriorSchedule:
    def test_falls_from_one_to_the_final_factor_along_a_cosine(self):
        factors = [prior_factor(s, 100, 0.1) for s in range(101)]
        assert factors[0] == 1.0 and factors[100] == pytest.approx(0.1)
        assert factors[50] == pytest.approx(0.55)
        assert all(a > b for a, b in zip(factors, factors[1:]))
        assert prior_factor(250, 100, 0.1) == pytest.approx(0.1)  # past the end: stays at the final factor
        assert {prior_factor(s, 100) for s in range(0, 101, 10)} == {1.0}

    def test_trainer_scales_only_the_prior_weight_each_step(self, tmp_path, tiny_model_path):
        trainer = Trainer(_config(tmp_path, tiny_model_path, "optim.iterations=4", "loss.reg=0.02",
                                  "loss.reg_final=0.25", "loss.landmark=0.001"))
        seen = []
        loss_path = trainer.method.loss_path

        def spy(*args):
            seen.append(trainer.method.loss_weights)
            return loss_path(*args)

        trainer.method.loss_path_fn = spy
        trainer.fit()
        assert [w.reg for w in seen] == pytest.approx([0.02 * prior_factor(s, 4, 0.25) for s in range(4)])
        assert seen[-1].reg < 0.02 * 0.5
        assert {(w.landmark, w.photo, w.reg_beta, w.reg_delta) for w in seen} == {(0.001, 1.92, 1.7e-3, 0.8)}
        assert trainer.method.base_loss_weights.reg == 0.02


def test_seed_varies_batch_order_and_weights_not_the_faces(tmp_path, tiny_model_path):
    a = Trainer(_config(tmp_path, tiny_model_path, name="a"))
    b = Trainer(_config(tmp_path, tiny_model_path, "seed=1", name="b"))
    assert a.order_seed == a.config.data.seed  # seed 0 keeps the data's own order
    assert not torch.equal(batch_indices(0, 8, 16, a.order_seed), batch_indices(0, 8, 16, b.order_seed))
    assert torch.equal(a.val_data.batch(torch.arange(2)).images, b.val_data.batch(torch.arange(2)).images)
    assert torch.equal(a.train_data.batch(torch.arange(2)).images, b.train_data.batch(torch.arange(2)).images)
    head = [k for k in a.method.state_dict() if "conv1.weight" in k][0]
    assert not torch.equal(a.method.state_dict()[head], b.method.state_dict()[head])


class TestConfig:
    def test_unknown_key_is_named(self, tmp_path, tiny_model_path):
        with pytest.raises(ConfigError, match="optim.learning_rate: unknown key"):
            _config(tmp_path, tiny_model_path, "optim.learning_rate=0.1")

    def test_wrong_type_is_named(self, tmp_path, tiny_model_path):
        with pytest.raises(ConfigError, match="optim.iterations: expected an integer"):
            _config(tmp_path, tiny_model_path, "optim.iterations=many")

    def test_exponent_floats_are_numbers(self, tmp_path, tiny_model_path):
        cfg = _config(tmp_path, tiny_model_path, "optim.lr=1e-4", "optim.weight_decay=5E-2")
        assert cfg.optim.lr == pytest.approx(1e-4)
        assert cfg.optim.weight_decay == pytest.approx(0.05)
        path = tmp_path / "exp.yaml"
        path.write_text("optim:\n  lr: 3e-4\n")
        assert load_config(path).optim.lr == pytest.approx(3e-4)

    def test_broken_yaml_file(self, tmp_path):
        bad = tmp_path / "bad.yaml"
        bad.write_text("optim: [unclosed")
        with pytest.raises(ConfigError, match="not valid YAML"):
            load_config(bad)

    def test_missing_dataset_path(self, tmp_path, tiny_model_path):
        with pytest.raises(ConfigError, match="data.path"):
            _config(tmp_path, tiny_model_path, "data.kind=images", f"data.path={tmp_path / 'nowhere'}")

    def test_yaml_file_round_trip(self, tmp_path, tiny_model_path):
        cfg = _config(tmp_path, tiny_model_path)
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(config_to_dict(cfg)))
        assert load_config(path) == cfg

    def test_shipped_configs_load(self):
        assert config_names("train")
        for name in config_names("train"):
            load_config(name)

    def test_unavailable_renderer_is_a_clear_error(self, tmp_path, tiny_model_path):
        cfg = _config(tmp_path, tiny_model_path, renderer__name="nvdiffrast")
        if available_renderers("cpu")["nvdiffrast"].available:
            pytest.skip("nvdiffrast runs here")
        with pytest.raises(RendererUnavailableError, match="nvdiffrast"):
            Trainer(cfg)


#: Backend options for the tiny training run. PyTorch3D runs soft: its hard mode has no
#: coverage gradients and drifts at this learning rate (see the renderers' docs).
TRAIN_OPTIONS = {"pytorch3d": "{blur_radius: 2.0, faces_per_pixel: 4, sigma: 0.5}"}


@pytest.mark.parametrize("renderer", CPU_RENDERERS)
def test_tiny_run_lowers_loss_and_writes_run_directory(tmp_path, tiny_model_path, renderer):
    # Two training images, seen every step: the loss on them must fall.
    cfg = _config(tmp_path, tiny_model_path, "optim.iterations=16", "optim.lr=0.0003", "val_every=16",
                  "data.train_size=2", f"renderer.options={TRAIN_OPTIONS.get(renderer, '{}')}",
                  name=f"tiny_{renderer}", renderer__name=renderer)
    trainer = Trainer(cfg, validator=validate)
    probe = trainer.train_data.batch(torch.arange(2))

    def photo_loss() -> float:
        # Batch statistics (train mode): running BN statistics lag after a dozen steps.
        trainer.method.train()
        with torch.no_grad():
            code = trainer.method.encoder(probe.images)
            samples = trainer.decoder.photometric_samples(trainer.decoder.form(code), probe.images)
            from mofa_bench.losses import photometric_loss

            return float(photometric_loss(samples))

    before = photo_loss()
    result = trainer.fit()
    after = photo_loss()
    assert after < 0.9 * before, (before, after)
    run = result.run_dir
    for name in ("config.yaml", "environment.json", "metrics.csv", "validation.csv",
                 "checkpoints/last.pt", "checkpoints/best.pt", "figures/loss_curve.png", "samples/step_0000016.png"):
        assert (run / name).exists(), name
    assert load_config(run / "config.yaml") == cfg
    assert {"photometric", "geometric_mm", "geometric_model_mm", "landmark_px", "alpha_cos"} <= set(result.validation)
    validation = (run / "validation.csv").read_text().splitlines()
    assert len(validation) == 1 + 2 and validation[0].startswith("step,train_time_s,photometric")
    # The face stays in view (an empty render would give a NaN photometric error).
    assert math.isfinite(result.validation["photometric"]) and result.validation["landmark_px"] < 20


def test_resume_equals_uninterrupted_bit_for_bit(tmp_path, tiny_model_path):
    full = Trainer(_config(tmp_path, tiny_model_path, "optim.iterations=4", name="full"))
    full.fit()
    part = Trainer(_config(tmp_path, tiny_model_path, "optim.iterations=2", name="part"))
    part.fit()
    resumed = Trainer(_config(tmp_path, tiny_model_path, "optim.iterations=4", name="part"))
    resumed.fit(resume=True)
    assert resumed.step == 4
    a, b = full.method.state_dict(), resumed.method.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = (tmp_path / "part" / "metrics.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]


def test_existing_run_needs_resume(tmp_path, tiny_model_path):
    Trainer(_config(tmp_path, tiny_model_path, "optim.iterations=2", name="once")).fit()
    with pytest.raises(ConfigError, match="--resume"):
        Trainer(_config(tmp_path, tiny_model_path, "optim.iterations=2", name="once")).fit()


class TestCheckpoints:
    def test_round_trip(self, tmp_path):
        state = {"encoder": {"w": torch.randn(3)}, "step": 7}
        save_checkpoint(state, tmp_path / "c.pt")
        loaded = load_checkpoint(tmp_path / "c.pt")
        assert loaded["step"] == 7 and torch.equal(loaded["encoder"]["w"], state["encoder"]["w"])

    def test_truncated_checkpoint_is_a_clear_error(self, tmp_path):
        path = save_checkpoint({"encoder": {"w": torch.randn(100)}}, tmp_path / "c.pt")
        path.write_bytes(path.read_bytes()[:50])
        with pytest.raises(CheckpointError, match="truncated or corrupted"):
            load_checkpoint(path)

    def test_missing_checkpoint(self, tmp_path):
        with pytest.raises(CheckpointError, match="does not exist"):
            load_checkpoint(tmp_path / "none.pt")

    def test_failed_write_keeps_previous_checkpoint(self, tmp_path, monkeypatch):
        path = save_checkpoint({"encoder": {}, "step": 1}, tmp_path / "last.pt")

        def broken_save(obj, handle):
            handle.write(b"partial")
            raise OSError("disk full")

        monkeypatch.setattr(torch, "save", broken_save)
        with pytest.raises(CheckpointError, match="cannot write checkpoint .*last.pt: disk full"):
            save_checkpoint({"encoder": {}, "step": 2}, path)
        monkeypatch.undo()
        assert load_checkpoint(path)["step"] == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "last.pt.sha256"]

    def test_checkpoint_cannot_run_code(self, tmp_path):
        class Evil:
            def __reduce__(self):
                return (print, ("owned",))

        path = tmp_path / "evil.pt"
        torch.save({"encoder": Evil()}, path)
        with pytest.raises(CheckpointError):
            load_checkpoint(path)


def test_nan_batches_are_skipped_then_abort(tmp_path, tiny_model_path):
    trainer = Trainer(_config(tmp_path, tiny_model_path, "optim.iterations=10", "max_nonfinite=3", name="nan"),
                      validator=None)

    trainer.method.encode = lambda images: torch.full((images.shape[0], 257), math.nan)
    with pytest.raises(TrainingDivergedError, match="3 batches in a row"):
        trainer.fit()
    skipped = (tmp_path / "nan" / "skipped.csv").read_text().strip().splitlines()
    assert len(skipped) == 1 + 3


def test_section_value_errors_name_the_section(tmp_path, tiny_model_path):
    with pytest.raises(ConfigError, match="loss: .*photo"):
        _config(tmp_path, tiny_model_path, "loss.photo=-1")
    with pytest.raises(ConfigError, match="data.prior: .*yaw_deg"):
        _config(tmp_path, tiny_model_path, "data.prior.yaw_deg=-5")


class TestCompiledLossPath:
    def test_eager_by_default_and_compiled_when_asked(self, tmp_path, tiny_model_path):
        eager = Trainer(_config(tmp_path, tiny_model_path, name="eager")).method
        assert eager.loss_path_fn == eager.loss_path
        compiled = Trainer(_config(tmp_path, tiny_model_path, "compile_decoder=true", name="compiled")).method
        assert compiled.loss_path_fn != compiled.loss_path
        assert getattr(compiled.loss_path_fn, "_torchdynamo_orig_callable", None) == compiled.loss_path

    @pytest.mark.slow
    def test_compiled_loss_path_trains_like_the_eager_one(self, tmp_path, tiny_model_path):
        # Same seed, same data, same steps: the compiled loss path (torch.compile with
        # inductor; on the CPU it needs a C++ compiler) gives the eager loss terms and
        # encoder gradients up to float32 rounding.
        runs = {}
        for name, flag in (("eager", "false"), ("compiled", "true")):
            trainer = Trainer(_config(tmp_path, tiny_model_path, "optim.iterations=2", "val_every=2",
                                      f"compile_decoder={flag}", name=name))
            batch = trainer.train_data.batch(torch.arange(2))
            first = trainer.train_step(batch)
            grads = [p.grad.clone() for p in trainer.method.parameters() if p.grad is not None]
            runs[name] = (first, grads, trainer.train_step(batch))
        (e1, eg, e2), (c1, cg, c2) = runs["eager"], runs["compiled"]
        for eager_terms, compiled_terms in ((e1, c1), (e2, c2)):
            assert eager_terms.keys() == compiled_terms.keys()
            for key in eager_terms:
                assert compiled_terms[key] == pytest.approx(eager_terms[key], rel=1e-4, abs=1e-6), key
        assert len(eg) == len(cg) > 0
        for e, c in zip(eg, cg):
            torch.testing.assert_close(c, e, rtol=1e-3, atol=1e-5 * float(e.abs().max()) + 1e-8)
