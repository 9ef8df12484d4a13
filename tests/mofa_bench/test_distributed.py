"""Multi-process training (``torchrun`` + DDP, gloo on the CPU): mofa_bench.training.distributed.

The multi-process cases start ``python -m torch.distributed.run --nproc_per_node 2`` on
:mod:`distributed_worker` (or on the ``mofa-bench train`` command itself) and read back
what each rank wrote.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from distributed_worker import OVERRIDES, no_dropout
from helpers import tiny_train_config
from mofa_bench.errors import ConfigError
from mofa_bench.training import Trainer
from mofa_bench.training import distributed as ddp
from mofa_bench.training.schedule import batch_indices

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("distributed_worker.py")


def _torchrun(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess:
    """Two CPU processes under torchrun (gloo), one thread each; fails the test with their output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def _ranks(out: Path) -> list[dict]:
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


class TestBatchSplit:
    def test_ranks_take_disjoint_contiguous_shares_of_the_global_batch(self):
        indices = batch_indices(3, 6, 20, seed=5)
        shares = [ddp.rank_slice(indices, r, 3) for r in range(3)]
        assert all(len(share) == 2 for share in shares)
        assert torch.equal(torch.cat(shares), indices)
        assert len(set(torch.cat(shares).tolist())) == 6

    def test_batch_not_divisible_by_the_world_size_is_refused(self):
        assert ddp.per_rank_batch(8, 4) == 2
        with pytest.raises(ConfigError, match=r"optim.batch_size: the global batch \(5\) must be divisible .* \(2\)"):
            ddp.per_rank_batch(5, 2)

    def test_without_torchrun_everything_is_one_process(self, monkeypatch):
        monkeypatch.delenv("WORLD_SIZE", raising=False)
        context, device = ddp.setup_distributed(torch.device("cpu"))
        assert (context.world_size, context.rank, context.backend, context.enabled) == (1, 0, None, False)
        assert device == torch.device("cpu") and ddp.is_main() and ddp.world_size() == 1
        assert ddp.mean_over_ranks({"a": 2.0}) == {"a": 2.0} and ddp.all_ranks_true(True)
        assert ddp.run_on_main(lambda: 7) == 7 and ddp.gather_rng_states(device) is None

    def test_world_size_one_from_torchrun_stays_single_process(self, monkeypatch):
        monkeypatch.setenv("WORLD_SIZE", "1")
        assert ddp.setup_distributed(torch.device("cpu"))[0].world_size == 1

    def test_malformed_torchrun_variable_is_named(self, monkeypatch):
        monkeypatch.setenv("WORLD_SIZE", "two")
        with pytest.raises(ConfigError, match="WORLD_SIZE: expected an integer"):
            ddp.setup_distributed(torch.device("cpu"))


def test_collectives_on_two_gloo_processes(tmp_path):
    _torchrun(str(WORKER), str(tmp_path), "-", "collectives")
    ranks = _ranks(tmp_path)
    for r, result in enumerate(ranks):
        assert result["context"] == (r, 2, "gloo") and result["device"] == "cpu"
        assert result["mean"] == {"loss": 0.5, "other": 6.0}
        assert result["all_true_mixed"] is False and result["all_true"] is True
        assert result["error"] == "ConfigError: run directory busy (raised on rank 0)"
        assert result["rng_states_differ"]
    assert ranks[0]["shared"] == {"from": 0} and ranks[1]["shared"] == 0  # rank 0 keeps its result, others `shared`
    assert ranks[0]["slice"] == [10, 11] and ranks[1]["slice"] == [12, 13]


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory, tiny_model_path):
    """Two ranks: 2 steps of global batch 4, then a resumed trainer to step 4."""
    out = tmp_path_factory.mktemp("ddp_resume")
    _torchrun(str(WORKER), str(out), str(tiny_model_path), "resume")
    return out, _ranks(out)


@pytest.mark.slow
class TestTwoRanks:
    def test_ranks_keep_identical_parameters(self, resumed_run):
        _, (zero, one) = resumed_run
        assert zero["world"] == one["world"] == 2 and zero["steps"] == one["steps"] == 4
        assert all(torch.equal(zero["state"][k], one["state"][k]) for k in zero["state"])

    def test_ranks_train_on_disjoint_halves_of_each_global_batch(self, resumed_run, tiny_model_path, tmp_path):
        _, (zero, one) = resumed_run
        order_seed = Trainer(tiny_train_config(tmp_path, tiny_model_path, *OVERRIDES)).order_seed
        assert sorted(zero["seen"]) == sorted(one["seen"]) == [1, 2, 3, 4]
        for step in range(1, 5):
            assert zero["seen"][step] + one["seen"][step] == batch_indices(step - 1, 4, 16, order_seed).tolist()

    def test_only_rank_zero_writes_files_and_logs_each_step_once(self, resumed_run):
        out, (zero, one) = resumed_run
        assert one["writes"] == []
        assert "checkpoint last.pt" in zero["writes"] and "row metrics.csv" in zero["writes"]
        assert [row["step"] for row in _rows(out / "run" / "metrics.csv")] == ["1", "2", "3", "4"]
        assert [row["step"] for row in _rows(out / "run" / "validation.csv")] == ["0", "2", "4"]
        # Rank 1 heard rank 0's validation.
        assert zero["validation"] == one["validation"] and "photometric" in zero["validation"]
        assert not (out / "run" / ".lock").exists()

    def test_resumed_two_rank_run_equals_one_process_over_the_global_batch(self, resumed_run, tiny_model_path,
                                                                           tmp_path):
        out, (zero, _) = resumed_run
        trainer = Trainer(tiny_train_config(tmp_path, tiny_model_path, *OVERRIDES, "optim.iterations=4"))
        no_dropout(trainer)
        trainer.fit()
        single = trainer.method.state_dict()
        for key, value in single.items():
            torch.testing.assert_close(zero["state"][key], value, rtol=1e-4, atol=1e-6, msg=key)
        ours = [float(row["loss"]) for row in _rows(out / "run" / "metrics.csv")]
        reference = [float(row["loss"]) for row in _rows(trainer.run_dir / "metrics.csv")]
        assert ours == pytest.approx(reference, rel=1e-4)


@pytest.mark.slow
def test_a_nonfinite_loss_on_one_rank_is_skipped_by_every_rank(tmp_path, tiny_model_path):
    _torchrun(str(WORKER), str(tmp_path), str(tiny_model_path), "nonfinite")
    zero, one = _ranks(tmp_path)
    assert zero["skipped"] == one["skipped"] == 1 and zero["steps"] == 3
    assert all(torch.equal(zero["state"][k], one["state"][k]) for k in zero["state"])
    assert [(row["step"], row["reason"]) for row in _rows(tmp_path / "run" / "skipped.csv")] == [
        ("1", "non-finite loss or code on another rank")]


@pytest.mark.slow
def test_train_command_under_torchrun(tmp_path, tiny_model_path):
    """The README's multi-GPU command, on two CPU processes."""
    overrides = [f"model.source={tiny_model_path}", "camera.image_size=64", "encoder.name=resnet18",
                 "optim.optimizer=adamw", "optim.lr=0.001", "optim.batch_size=4", "optim.iterations=2",
                 "data.train_size=8", "data.val_size=2", "data.backgrounds={photo: 0.0}", "val_every=2", "log_every=1",
                 "progress=false", "num_val_images=2"]
    args = ["-m", "mofa_bench.cli", "train", "--device", "cpu", "--out", str(tmp_path), "--name", "ddp"]
    for item in overrides:
        args += ["--set", item]
    proc = _torchrun(*args)
    assert proc.stdout.count("finished 2 steps") == 1, proc.stdout
    assert [row["step"] for row in _rows(tmp_path / "ddp" / "metrics.csv")] == ["1", "2"]
    assert '"world_size": 2' in (tmp_path / "ddp" / "environment.json").read_text()
