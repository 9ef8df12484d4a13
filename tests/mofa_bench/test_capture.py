"""``capture`` and ``channels_last``: mofa_bench.training.capture through the trainer."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from helpers import TINY_TRAIN_OVERRIDES, tiny_train_config
from mofa_bench.config import load_config
from mofa_bench.errors import ConfigError
from mofa_bench.training import Trainer


def _losses(run_dir: Path) -> list[float]:
    import csv

    with (run_dir / "metrics.csv").open(newline="") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def _params(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().cpu() for k, v in trainer.method.named_parameters()}


class TestConfig:
    def test_unknown_capture_is_named(self, tmp_path, tiny_model_path):
        with pytest.raises(ConfigError, match="capture: expected one of none, compile, got 'graphs'"):
            tiny_train_config(tmp_path, tiny_model_path, "capture=graphs")

    def test_capture_replaces_the_compile_switches(self, tmp_path, tiny_model_path):
        with pytest.raises(ConfigError, match="capture: 'compile' compiles the whole loss computation; set compile"):
            tiny_train_config(tmp_path, tiny_model_path, "capture=compile", "compile_decoder=true")

    def test_defaults_run_eagerly(self, tmp_path, tiny_model_path):
        config = tiny_train_config(tmp_path, tiny_model_path)
        assert config.capture == "none" and config.channels_last is False


class TestCpuFallback:
    def test_compile_on_the_cpu_is_todays_eager_step_with_one_warning(self, tmp_path, tiny_model_path, caplog):
        with caplog.at_level(logging.WARNING, logger="mofa_bench.training.capture"):
            captured = Trainer(tiny_train_config(tmp_path, tiny_model_path, "capture=compile", name="captured"))
        warnings = [r.getMessage() for r in caplog.records if r.name == "mofa_bench.training.capture"]
        assert warnings == ["capture: 'compile' records CUDA graphs, and the device is cpu; the eager step runs"]
        assert captured.capture.mode == "none" and not captured.capture.captured
        assert captured.loss_fn == captured.method.loss_terms  # the method's own bound loss, not a compiled one
        eager = Trainer(tiny_train_config(tmp_path, tiny_model_path, name="eager"))
        captured.fit()
        eager.fit()
        assert _losses(captured.run_dir) == _losses(eager.run_dir)
        a, b = _params(captured), _params(eager)
        assert all(torch.equal(a[k], b[k]) for k in a)
        record = json.loads((captured.run_dir / "environment.json").read_text())
        assert record["capture"] == "none" and record["capture_requested"] == "compile"
        assert "CUDA graphs" in record["capture_note"]

    def test_capture_may_change_on_resume(self, tmp_path, tiny_model_path):
        Trainer(tiny_train_config(tmp_path, tiny_model_path, "optim.iterations=2", name="run")).fit()
        resumed = Trainer(tiny_train_config(tmp_path, tiny_model_path, "capture=compile", "channels_last=true",
                                            name="run"))
        assert resumed.fit(resume=True).steps == 4


def test_channels_last_converts_the_encoder_and_trains_like_the_default(tmp_path, tiny_model_path):
    nhwc = Trainer(tiny_train_config(tmp_path, tiny_model_path, "channels_last=true", name="nhwc"))
    convs = [p for p in nhwc.method.encoder.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert all(b.dim() != 4 or b.is_contiguous() for b in nhwc.method.decoder.buffers())
    batch = nhwc.capture.prepare(nhwc.train_data.batch(torch.arange(2)))
    assert batch.images.is_contiguous(memory_format=torch.channels_last)
    nchw = Trainer(tiny_train_config(tmp_path, tiny_model_path, name="nchw"))
    nhwc.fit()
    nchw.fit()
    assert _losses(nhwc.run_dir) == pytest.approx(_losses(nchw.run_dir), rel=1e-3)


def _cuda_config(out: Path, model: Path, *overrides: str):
    base = [f"model.source={model}", *TINY_TRAIN_OVERRIDES, "optim.iterations=6", "val_every=100",
            "sample_every=100", "checkpoint_every=100"]
    return load_config(None, base + list(overrides), device="cuda", out_dir=str(out))


@pytest.mark.cuda
class TestCudaCapture:
    def test_captured_step_matches_the_eager_one(self, tmp_path, tiny_model_path):
        torch.backends.cudnn.benchmark = False
        captured = Trainer(_cuda_config(tmp_path, tiny_model_path, "capture=compile", "name=captured"))
        assert captured.capture.captured and captured.loss_fn is not captured.method.loss_terms
        eager = Trainer(_cuda_config(tmp_path, tiny_model_path, "name=eager"))
        captured.fit()
        eager.fit()
        assert _losses(captured.run_dir) == pytest.approx(_losses(eager.run_dir), rel=2e-3, abs=1e-5)
        a, b = _params(captured), _params(eager)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=2e-3, atol=1e-4, msg=key)

    def test_captured_bf16_channels_last_step_trains(self, tmp_path, tiny_model_path):
        trainer = Trainer(_cuda_config(tmp_path, tiny_model_path, "capture=compile", "amp=true",
                                       "channels_last=true", "name=fast"))
        result = trainer.fit()
        losses = _losses(trainer.run_dir)
        assert result.skipped == 0 and all(torch.isfinite(torch.tensor(losses)))
        eager = Trainer(_cuda_config(tmp_path, tiny_model_path, "name=eager32"))
        eager.fit()
        assert losses[0] == pytest.approx(_losses(eager.run_dir)[0], rel=2e-2)
