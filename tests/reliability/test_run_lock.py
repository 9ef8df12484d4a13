"""One trainer per run directory: a second one refuses; the lock goes with its holder, however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import tiny_train_config
from mofa_bench.training import Trainer
from mofa_bench.training.lock import LOCK_NAME, RunDirectoryBusyError, RunLock

REPO = Path(__file__).parents[2]
HOLD = ("import sys, time; from mofa_bench.training.lock import RunLock; lock = RunLock(sys.argv[1]).acquire(); "
        "print('locked', flush=True); time.sleep(120)")


def _config(tmp_path: Path, model: Path):
    return tiny_train_config(tmp_path, model, "optim.iterations=2", name="shared")


def test_second_trainer_in_another_process_refuses_then_takes_over_a_killed_ones_lock(tmp_path, tiny_model_path):
    run_dir = tmp_path / "shared"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        trainer = Trainer(_config(tmp_path, tiny_model_path))
        with pytest.raises(RunDirectoryBusyError, match=rf"in use by another training \(pid {holder.pid} "):
            trainer.fit()
        assert not (run_dir / "checkpoints" / "last.pt").exists() and not (run_dir / "metrics.csv").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (run_dir / LOCK_NAME).exists()  # left behind by the killed holder: stale
    result = trainer.fit()
    assert result.steps == 2 and not (run_dir / LOCK_NAME).exists()


def test_two_trainers_in_one_process(tmp_path, tiny_model_path):
    first, second = Trainer(_config(tmp_path, tiny_model_path)), Trainer(_config(tmp_path, tiny_model_path))
    entered = []

    def step_and_try_the_second(batch):
        if not entered:
            entered.append(True)
            with pytest.raises(RunDirectoryBusyError, match="is in use by another training"):
                second.fit()
        return original(batch)

    original = first.train_step
    first.train_step = step_and_try_the_second
    first.fit()
    assert entered and not (tmp_path / "shared" / LOCK_NAME).exists()


def test_lock_is_released_when_training_fails(tmp_path):
    lock = RunLock(tmp_path / "run")
    with pytest.raises(ZeroDivisionError):
        with lock:
            assert (tmp_path / "run" / LOCK_NAME).exists()
            1 / 0
    assert not lock.held and not (tmp_path / "run" / LOCK_NAME).exists()
    with RunLock(tmp_path / "run"):
        pass
