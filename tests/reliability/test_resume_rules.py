"""Resume: a changed config is refused unless allowed (and then recorded), logs restart cleanly
after a kill before the first checkpoint, and a run that never gets a finite loss fails."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from helpers import tiny_train_config
from mofa_bench.errors import ConfigError, TrainingDivergedError
from mofa_bench.training import Trainer
from mofa_bench.training.trainer import config_differences


def _config(tmp_path: Path, model: Path, *overrides: str):
    return tiny_train_config(tmp_path, model, "optim.iterations=2", *overrides, name="run")


def _steps(path: Path) -> list[int]:
    with path.open(newline="") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


def test_changed_config_is_refused_then_allowed_and_recorded(tmp_path, tiny_model_path):
    Trainer(_config(tmp_path, tiny_model_path)).fit()
    changed = _config(tmp_path, tiny_model_path, "optim.iterations=3", "optim.lr=0.002")
    with pytest.raises(ConfigError, match=r"optim\.lr: 0\.001 → 0\.002.*--allow-config-change"):
        Trainer(changed).fit(resume=True)
    config_yaml = (tmp_path / "run" / "config.yaml").read_text()
    assert "lr: 0.001" in config_yaml  # the refused resume left the run's config alone
    result = Trainer(changed).fit(resume=True, allow_config_change=True)
    assert result.steps == 3
    with (tmp_path / "run" / "config_changes.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["step"], r["key"], r["checkpoint_value"], r["new_value"]) for r in rows] == [
        ("2", "optim.lr", "0.001", "0.002")]


def test_bookkeeping_keys_may_change_on_resume(tmp_path, tiny_model_path):
    saved = _config(tmp_path, tiny_model_path)
    from mofa_bench.config import config_to_dict

    later = _config(tmp_path, tiny_model_path, "optim.iterations=50", "log_every=5", "progress=true",
                    "checkpoint_every=7", "num_val_images=1")
    assert config_differences(config_to_dict(saved), later) == {}
    assert set(config_differences(config_to_dict(saved), _config(tmp_path, tiny_model_path, "seed=3"))) == {"seed"}


def test_logs_of_a_run_killed_before_its_first_checkpoint_are_not_repeated(tmp_path, tiny_model_path):
    config = _config(tmp_path, tiny_model_path, "optim.iterations=4", "checkpoint_every=4", "val_every=4")
    first = Trainer(config)
    original = first.train_step

    def dies_at_step_3(batch):
        if first.step == 2:
            raise KeyboardInterrupt  # stands for a kill: nothing after this point runs
        return original(batch)

    first.train_step = dies_at_step_3
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    assert _steps(tmp_path / "run" / "metrics.csv") == [1, 2]
    (tmp_path / "run" / "checkpoints" / ".last.pt.abc.tmp").write_bytes(b"partial")
    Trainer(config).fit(resume=True)
    assert _steps(tmp_path / "run" / "metrics.csv") == [1, 2, 3, 4]
    assert not list((tmp_path / "run").rglob("*.tmp"))


def test_a_loss_that_is_never_finite_fails_the_run(tmp_path, tiny_model_path):
    trainer = Trainer(_config(tmp_path, tiny_model_path, "optim.iterations=3", "max_nonfinite=5"), validator=None)
    trainer.method.encode = lambda images: torch.full((images.shape[0], 257), math.nan)
    with pytest.raises(TrainingDivergedError, match="every one of the 3 training steps gave a non-finite"):
        trainer.fit()
