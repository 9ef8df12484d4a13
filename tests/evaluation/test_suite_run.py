"""Suites end to end on the tiny model: layout, table, skip-finished, crash isolation, executors."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from evaluation.suite.collect import ID_COLUMNS, RUN_COLUMNS, collect_results
from evaluation.suite.expand import expand_suite
from evaluation.suite.orchestrate import plan_suite, run_suite
from evaluation.suite.spec import load_suite_spec, suite_from_dict
from mofa_bench.cli import main
from mofa_bench.errors import ConfigError
from mofa_bench.methods.base import Method, Reconstruction
from mofa_bench.methods.mofa import build_mofa_method

TRAINER_FILES = ("config.yaml", "environment.json", "metrics.csv", "validation.csv", "checkpoints/last.pt",
                 "samples", "figures")
TEST_FILES = ("cell.json", "status.json", "test_metrics.csv", "test_reconstructions.pt", "result.json")


def tiny_suite(model_path: Path, **changes) -> dict:
    """A suite of 2-step runs on the tiny model at 64 px (4 test images)."""
    suite = {
        "name": "tiny",
        "set": {
            "model.source": str(model_path), "camera.image_size": 64, "encoder.name": "resnet18", "device": "cpu",
            "optim.optimizer": "adamw", "optim.lr": 1.0e-3, "optim.batch_size": 2, "optim.iterations": 2,
            "data.train_size": 4, "data.val_size": 2, "data.test_size": 4, "data.backgrounds": {"photo": 0.0},
            "log_every": 1, "val_every": 2, "sample_every": 2, "checkpoint_every": 2, "num_val_images": 2,
            "progress": False,
        },
        "grid": {"method": ["mofa"], "seed": [0]},
        "samples": 2,
    }
    suite.update(changes)
    return suite


class TinyAutoencoder(Method):
    """A code-less method: a 1×1 convolution trained to copy its input (photometric error only)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Conv2d(3, 3, 1)

    def parameter_groups(self, lr, z_translation_lr):
        return [{"params": list(self.net.parameters()), "lr": lr}]

    def loss_terms(self, batch):
        photo = (self.net(batch.images) - batch.images).abs().mean()
        return {"total": photo, "photo": photo, "reg": torch.zeros_like(photo)}

    def reconstruct(self, images):
        return Reconstruction(self.net(images).clamp(0, 1), torch.ones_like(images[:, :1]))


class ZeroCode(Method):
    """Nothing to train: predicts the prior mean (zero code) for every image."""

    trains = False

    def __init__(self, decoder) -> None:
        super().__init__()
        self.decoder = decoder

    def parameter_groups(self, lr, z_translation_lr):
        return []

    def loss_terms(self, batch):
        raise NotImplementedError("ZeroCode has nothing to train")

    def reconstruct(self, images):
        code = torch.zeros(images.shape[0], 257, device=images.device)
        image, mask = self.decoder.render(code)
        return Reconstruction(image, mask, code)


def crashing_mofa(config, decoder):
    if config.seed == 1:
        raise RuntimeError("boom at seed 1")
    return build_mofa_method(config, decoder)


def autoencoder(config, decoder):
    return TinyAutoencoder().to(decoder.model.device)


@pytest.fixture(scope="module")
def crash_then_rerun(tiny_model_path, tmp_path_factory):
    """mofa × conv autoencoder × seeds 0, 1 with mofa crashing at seed 1; then the suite run again, fixed."""
    out = tmp_path_factory.mktemp("suite") / "out"
    spec = suite_from_dict(tiny_suite(tiny_model_path, grid={"method": ["mofa", "conv_autoencoder"], "seed": [0, 1]}))
    first = run_suite(spec, out, progress=False, builders={"mofa": crashing_mofa, "conv_autoencoder": autoencoder})
    before = {p.parent.name: (p.read_text(), (p.parent / "result.json").stat().st_mtime_ns)
              for p in out.glob("runs/*/status.json")}
    logs = {p.parent.name: p.read_text() for p in out.glob("runs/*/error.log")}
    second = run_suite(spec, out, progress=False, builders={"conv_autoencoder": autoencoder})
    after = {p.parent.name: (p.read_text(), (p.parent / "result.json").stat().st_mtime_ns)
             for p in out.glob("runs/*/status.json")}
    return SimpleNamespace(out=out, first=first, second=second, before=before, after=after, logs=logs)


class TestSuiteRun:
    def test_every_run_has_the_contract_layout(self, crash_then_rerun):
        run = crash_then_rerun
        assert {"suite.yaml", "results.csv", "results.parquet", "inputs.pt"} <= {p.name for p in run.out.iterdir()}
        inputs = torch.load(run.out / "inputs.pt")
        assert inputs["images"].shape == (2, 3, 64, 64) and inputs["indices"].tolist() == [0, 1]
        for run_id in run.second["run_id"]:
            run_dir = run.out / "runs" / run_id
            for name in TRAINER_FILES + TEST_FILES:
                assert (run_dir / name).exists(), f"{run_id}: {name} missing"
            recs = torch.load(run_dir / "test_reconstructions.pt")
            assert recs["image"].shape == (2, 3, 64, 64) and recs["mask"].shape == (2, 1, 64, 64)
            metrics = pd.read_csv(run_dir / "test_metrics.csv")
            assert metrics["index"].tolist() == [0, 1, 2, 3]
            assert json.loads((run_dir / "cell.json").read_text())["run_id"] == run_id
        mofa = run.out / "runs" / "mofa-per_vertex-resnet18-land0-s0"
        assert np.load(mofa / "vertex_error_mm.npy").shape == (162,)
        assert np.load(mofa / "vertex_error_mm.npy").dtype == np.float32

    def test_results_table_is_tidy_with_intervals(self, crash_then_rerun):
        run = crash_then_rerun
        columns = list(run.second.columns)
        assert columns[:len(ID_COLUMNS)] == list(ID_COLUMNS)
        assert set(RUN_COLUMNS) <= set(columns)
        assert {"device_name", "commit", "threads", "version_torch", "timestamp"} <= set(columns)
        assert len(run.second) == 4 and set(run.second["status"]) == {"ok"}
        for metric in ("photometric", "geometric_mm", "landmark_px"):
            rows = run.second[run.second["method"] == "mofa"]
            assert (rows[f"{metric}_ci_low"] <= rows[metric]).all()
            assert (rows[metric] <= rows[f"{metric}_ci_high"]).all()
        assert run.second["test_size"].tolist() == [4] * 4 and run.second["train_steps"].tolist() == [2] * 4
        assert (run.second["train_wall_s"] > 0).all() and (run.second["inference_ms_per_image"] > 0).all()
        assert (run.second["peak_mem_mb"] > 0).all()
        assert run.second["protocol"].tolist() == ["synthetic-64px-tiny"] * 4
        csv = pd.read_csv(run.out / "results.csv")
        parquet = pd.read_parquet(run.out / "results.parquet")
        assert csv["run_id"].tolist() == parquet["run_id"].tolist() == run.second["run_id"].tolist()
        np.testing.assert_allclose(csv["photometric"], parquet["photometric"])

    def test_a_method_without_codes_has_photometric_error_only(self, crash_then_rerun):
        run = crash_then_rerun
        rows = run.second[run.second["method"] == "conv_autoencoder"]
        assert rows["photometric"].notna().all() and rows["geometric_mm"].isna().all()
        assert not (run.out / "runs" / rows["run_id"].iloc[0] / "vertex_error_mm.npy").exists()

    def test_a_crashed_run_is_recorded_and_the_others_go_on(self, crash_then_rerun):
        run = crash_then_rerun
        status = dict(zip(run.first["run_id"], run.first["status"]))
        assert status == {"mofa-per_vertex-resnet18-land0-s0": "ok", "mofa-per_vertex-resnet18-land0-s1": "error",
                          "conv_autoencoder-per_vertex-resnet18-land0-s0": "ok",
                          "conv_autoencoder-per_vertex-resnet18-land0-s1": "ok"}
        crashed = run.first[run.first["status"] == "error"].iloc[0]
        assert crashed["error"] == "RuntimeError: boom at seed 1"
        assert math.isnan(crashed["photometric"])
        state = json.loads(run.before["mofa-per_vertex-resnet18-land0-s1"][0])
        assert state["status"] == "error" and "boom at seed 1" in state["error"] and state["finished"]
        assert list(run.logs) == ["mofa-per_vertex-resnet18-land0-s1"]
        assert "boom at seed 1" in run.logs["mofa-per_vertex-resnet18-land0-s1"]

    def test_a_rerun_skips_finished_runs_and_redoes_failed_ones(self, crash_then_rerun):
        run = crash_then_rerun
        for run_id, (status, mtime) in run.before.items():
            if json.loads(status)["status"] == "ok":
                assert run.after[run_id] == (status, mtime), f"{run_id} ran again"
        assert json.loads(run.after["mofa-per_vertex-resnet18-land0-s1"][0])["status"] == "ok"
        assert run.second.set_index("run_id").loc["mofa-per_vertex-resnet18-land0-s1", "error"] == ""


def test_a_method_with_nothing_to_train_is_evaluated_untrained(tiny_model_path, tmp_path):
    spec = suite_from_dict(tiny_suite(tiny_model_path, grid={"method": ["fit"]}))
    frame = run_suite(spec, tmp_path, progress=False, builders={"fit": lambda config, decoder: ZeroCode(decoder)})
    row = frame.iloc[0]
    assert row["status"] == "ok", row["error"]
    assert row["train_steps"] == 0 and row["train_wall_s"] == 0 and math.isnan(row["samples_per_s"])
    run = tmp_path / "runs" / row["run_id"]
    assert (run / "vertex_error_mm.npy").exists() and (run / "config.yaml").exists()
    assert not (run / "checkpoints").exists()
    assert row["alpha_rms"] == pytest.approx(row["alpha_rms_zero"])


def test_learned_decoder_trains_its_decoder_then_its_encoder(tiny_model_path, tmp_path):
    seen = []

    def learned_decoder(config, decoder):
        options = dict(config.method_options)
        seen.append(options)
        if options["stage"] == "encoder" and not Path(options["decoder_checkpoint"]).is_file():
            raise ConfigError(f"method_options.decoder_checkpoint: {options['decoder_checkpoint']} does not exist")
        return TinyAutoencoder().to(decoder.model.device)

    spec = suite_from_dict(tiny_suite(tiny_model_path, grid={"method": ["learned_decoder"]}))
    frame = run_suite(spec, tmp_path, progress=False, builders={"learned_decoder": learned_decoder})
    row = frame.iloc[0]
    assert row["status"] == "ok", row["error"]
    run = tmp_path / "runs" / row["run_id"]
    first = run / "stage_decoder" / "checkpoints" / "last.pt"
    assert seen == [{"stage": "decoder"}, {"stage": "encoder", "decoder_checkpoint": str(first)}]
    assert (run / "checkpoints" / "last.pt").exists() and row["train_steps"] == 4


def test_the_baselines_in_the_grid(tiny_model_path, tmp_path):
    suite = tiny_suite(tiny_model_path, grid={"method": ["conv_autoencoder", "learned_decoder", "fit"]},
                       cells=[{"match": {"method": "fit"}, "set": {"method_options": {"steps": 2}}}])
    frame = run_suite(suite_from_dict(suite), tmp_path, progress=False).set_index("method")
    assert frame["status"].tolist() == ["ok"] * 3, frame["error"].tolist()
    assert frame["train_steps"].to_dict() == {"conv_autoencoder": 2, "learned_decoder": 4, "fit": 0}
    assert math.isnan(frame.loc["conv_autoencoder", "geometric_mm"])
    assert frame.loc["learned_decoder", "geometric_mm"] > 0 and frame.loc["fit", "geometric_mm"] > 0
    # The learned decoder's drawing of the test codes is scored against the analytic decoder's (Fig. 13 a).
    assert 0 < frame.loc["learned_decoder", "decoder_fidelity"] <= frame.loc["learned_decoder", "decoder_fidelity_image"] * 10
    assert 0 < frame.loc["learned_decoder", "decoder_fidelity_start"]
    assert math.isnan(frame.loc["conv_autoencoder", "decoder_fidelity"])
    stage = tmp_path / "runs" / frame.loc["learned_decoder", "run_id"] / "stage_decoder" / "checkpoints" / "last.pt"
    assert stage.is_file()


def test_a_changed_cell_under_an_existing_run_is_an_error(tiny_model_path, tmp_path):
    spec = suite_from_dict(tiny_suite(tiny_model_path))
    [(cell, state)] = plan_suite(spec, tmp_path)
    assert state == "new"
    run = tmp_path / "runs" / cell.run_id
    run.mkdir(parents=True)
    (run / "cell.json").write_text(json.dumps(cell.record()))
    (run / "status.json").write_text(json.dumps({"status": "ok"}))
    assert plan_suite(spec, tmp_path)[0][1] == "ok"
    changed = tiny_suite(tiny_model_path)
    changed["set"]["optim.iterations"] = 3
    with pytest.raises(ConfigError, match=f"made from a different cell.*{cell.run_id}"):
        plan_suite(suite_from_dict(changed), tmp_path)


def test_a_run_without_its_row_is_listed_by_its_status(tiny_model_path, tmp_path):
    cell = expand_suite(suite_from_dict(tiny_suite(tiny_model_path)))[0]
    run = tmp_path / "runs" / cell.run_id
    run.mkdir(parents=True)
    (run / "cell.json").write_text(json.dumps(cell.record()))
    (run / "status.json").write_text(json.dumps({"status": "running", "error": None}))
    frame = collect_results(tmp_path, [cell.run_id, "never-started"])
    assert frame["run_id"].tolist() == [cell.run_id] and frame["status"].tolist() == ["running"]
    (run / "status.json").write_text(json.dumps({"status": "error", "error": "MemoryError: out of memory\nmore"}))
    row = collect_results(tmp_path, [cell.run_id]).iloc[0]
    assert (row["status"], row["error"]) == ("error", "MemoryError: out of memory")


@pytest.mark.skipif(shutil.which("srun") is not None, reason="Slurm is installed here")
def test_the_slurm_executor_without_slurm_says_so(tiny_model_path, tmp_path):
    spec = suite_from_dict(tiny_suite(tiny_model_path, executor="slurm", slurm={"slurm_partition": "gpu"}))
    with pytest.raises(ConfigError, match="executor: slurm: .*srun"):
        run_suite(spec, tmp_path, progress=False)


def test_submitit_local_executor_runs_the_suite(tiny_model_path, tmp_path):
    spec = suite_from_dict(tiny_suite(tiny_model_path, executor="local_submitit", slurm={"timeout_min": 10}))
    frame = run_suite(spec, tmp_path / "out", progress=False)
    assert frame["status"].tolist() == ["ok"], frame["error"].tolist()
    assert any((tmp_path / "out" / "submitit").iterdir())
    assert (tmp_path / "out" / "runs" / frame["run_id"].iloc[0] / "test_metrics.csv").exists()


class TestCommand:
    def test_dry_run_prints_the_grid(self, tiny_model_path, tmp_path, capsys):
        path = tmp_path / "suite.yaml"
        path.write_text(yaml.safe_dump(tiny_suite(tiny_model_path, grid={"method": ["mofa"], "seed": [0, 1]})))
        assert main(["suite", str(path), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "2 runs" in out and "mofa-per_vertex-resnet18-land0-s1  new" in out
        assert not (tmp_path / "out").exists()

    def test_bad_key_is_a_message_naming_it(self, tiny_model_path, tmp_path, capsys):
        path = tmp_path / "suite.yaml"
        path.write_text(yaml.safe_dump(tiny_suite(tiny_model_path, grid={"renderer": ["per_vertx"]})))
        assert main(["suite", str(path), "--dry-run"]) == 1
        assert "grid.renderer[0]: unknown renderer 'per_vertx'" in capsys.readouterr().err

    def test_only_runs_the_matching_runs(self, tiny_model_path, tmp_path, capsys):
        path = tmp_path / "suite.yaml"
        path.write_text(yaml.safe_dump(tiny_suite(tiny_model_path, grid={"method": ["mofa"], "seed": [0, 1]})))
        args = ["suite", str(path), "--out", str(tmp_path / "out"), "--only", "*-s1", "--no-progress"]
        assert main(args) == 0
        assert "1 of 1 runs ok" in capsys.readouterr().out
        assert [p.name for p in (tmp_path / "out" / "runs").iterdir()] == ["mofa-per_vertex-resnet18-land0-s1"]


@pytest.mark.slow
def test_smoke_suite_end_to_end(tmp_path, capsys):
    assert main(["suite", "smoke", "--out", str(tmp_path),
                 "--device", "cpu", "--no-progress"]) == 0
    frame = pd.read_csv(tmp_path / "results.csv")
    assert frame["status"].tolist() == ["ok", "ok"]
    assert frame["train_steps"].tolist() == [20, 20] and frame["test_size"].tolist() == [16, 16]
    assert load_suite_spec(tmp_path / "suite.yaml").name == "smoke"
