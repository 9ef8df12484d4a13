import math
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers import tiny_face_model
from evaluation.bench import training_throughput as bench_train
from evaluation.bench.measure import BenchSpecError
from evaluation.bench.training_throughput import TRAIN_COLUMNS, TrainBenchSpec, run_train_bench
from evaluation.results.budget import Deadline
from evaluation.results.rows import read_csv
from mofa_bench.cli import main
from mofa_bench.errors import ConfigError
from renderers import available_renderers


def _overrides(model_path: Path) -> tuple[str, ...]:
    return (f"model.source={model_path}", "optim.optimizer=adamw", "optim.lr=0.001", "data.backgrounds={photo: 0.0}")


def _spec(model_path: Path, **changes) -> TrainBenchSpec:
    base = dict(device="cpu", renderers=("per_vertex",), encoders=("resnet18",), batches=(2, 3), image_sizes=(64,),
                levels=(2,), warmup=0, repeats=1, budget_s=60.0, overrides=_overrides(model_path))
    base.update(changes)
    return TrainBenchSpec(**base)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, tiny_model_path):
    """One small real run through the CLI: per_vertex (batches 1 and 2) and nvdiffrast, resnet18, 64 px."""
    out = tmp_path_factory.mktemp("bench")
    args = ["bench", "train", "--device", "cpu", "--renderers", "per_vertex,nvdiffrast", "--encoders", "resnet18",
            "--batches", "1,2", "--image-sizes", "64", "--warmup", "0", "--repeats", "1", "--no-progress",
            "--out", str(out)]
    for item in _overrides(tiny_model_path):
        args += ["--set", item]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def tiny_rows(cli_run):
    return read_csv(cli_run / "train_cpu.csv").to_dict("records")


class TestTrainBench:
    def test_rows_per_cell_with_positive_throughput(self, tiny_rows):
        cells = [r for r in tiny_rows if r["renderer"] == "per_vertex"]
        assert [r["batch"] for r in cells] == [1, 2]
        for row in cells:
            assert set(TRAIN_COLUMNS) | {"commit", "device_name", "version_torch", "threads"} <= set(row)
            assert row["status"] == "ok" and row["bench"] == "train" and row["encoder"] == "resnet18"
            assert row["step_ms"] > 0 and row["samples_per_s"] > 0
            assert row["samples_per_s"] == pytest.approx(row["batch"] / row["step_ms"] * 1000.0)
            assert row["vertices"] == 162 and row["image_size"] == 64 and row["peak_mem_mb"] > 0
            assert math.isnan(row["level"]), "a model file has no subdivision level"

    def test_unavailable_renderer_is_one_row_with_the_reason(self, tiny_rows):
        if available_renderers("cpu")["nvdiffrast"].available:
            pytest.skip("nvdiffrast runs on this CPU")
        rows = [r for r in tiny_rows if r["renderer"] == "nvdiffrast"]
        assert len(rows) == 1 and rows[0]["status"] == "unavailable" and "CUDA" in rows[0]["note"]

    def test_budget_skips_cells_whose_estimate_exceeds_it(self, tiny_model_path, monkeypatch):
        steps = []

        def fake_setup(config, run_dir, data_in_step=False):
            trainer = SimpleNamespace(face_model=tiny_face_model(subdivisions=1), skipped_total=0)
            return trainer, lambda batch: lambda: steps.append(batch) or time.sleep(0.02 * batch)

        monkeypatch.setattr(bench_train, "setup_trainer", fake_setup)
        # ≈ 0.02 s per sample and step, 2 steps per cell: batch 2 ≈ 0.08 s, batch 64 ≈ 2.6 s > 1 s.
        rows = run_train_bench(_spec(tiny_model_path, batches=(2, 64), warmup=1, budget_s=1.0), progress=False)
        assert [r["status"] for r in rows] == ["ok", "skipped"]
        assert rows[1]["note"].startswith("estimated") and "> budget 1 s (from batch 2)" in rows[1]["note"]
        assert math.isnan(rows[1]["step_ms"]) and 64 not in steps
        assert rows[0]["vertices"] == 42 and rows[0]["step_ms"] >= 40.0

    def test_grid_keys_win_over_overrides(self, tiny_model_path):
        spec = _spec(tiny_model_path, overrides=_overrides(tiny_model_path) + ("camera.image_size=999",))
        config = spec.cell_config("pytorch3d-soft", "alexnet", 64, 1)
        assert config.camera.image_size == 64 and config.encoder.name == "alexnet"
        assert config.renderer.name == "pytorch3d" and config.renderer.options["blur_radius"] == 2.0
        assert config.optim.batch_size == 3 and config.optim.optimizer == "adamw"
        assert config.data.train_size == 3

    def test_bad_arguments_are_clear_errors(self, tiny_model_path):
        with pytest.raises(BenchSpecError, match="encoders"):
            _spec(tiny_model_path, encoders=("lenet",)).validate()
        with pytest.raises(BenchSpecError, match="batches"):
            _spec(tiny_model_path, batches=()).validate()
        with pytest.raises(ConfigError, match="optim.learning_rate: unknown key"):
            _spec(tiny_model_path, overrides=("optim.learning_rate=1",)).validate()

    def test_quick_preset(self):
        spec = TrainBenchSpec.preset("cpu", quick=True)
        assert spec.renderers == ("per_vertex", "pytorch3d-soft") and spec.encoders == ("resnet18", "alexnet")
        assert spec.batches == (5, 16) and spec.image_sizes == (128,) and spec.levels == (2,)

    def test_report_files_next_to_the_csv(self, cli_run):
        assert (cli_run / "train_cpu.md").exists() and (cli_run / "train_cpu.png").exists()
        table = [line for line in (cli_run / "train_cpu.md").read_text().splitlines() if line.startswith("|")]
        assert table[0].startswith("| renderer | encoder |") and len(table) == 2 + 3


class TestModesLimitsAppend:
    def test_modes_set_amp_and_compile_in_the_cell_config(self, tiny_model_path):
        spec = _spec(tiny_model_path, device="cpu")

        def switches(mode):
            config = spec.cell_config("per_vertex", "resnet18", 64, 1, mode)
            return config.amp, config.compile, config.compile_decoder, config.capture, config.channels_last

        assert {mode: switches(mode) for mode in bench_train.TRAIN_MODES} == {
            "fp32": (False, False, False, "none", False), "amp": (True, False, False, "none", False),
            "amp+nhwc": (True, False, False, "none", True),
            "compile": (False, True, False, "none", False), "amp+compile": (True, True, False, "none", False),
            "compile-all": (False, True, True, "none", False), "amp+compile-all": (True, True, True, "none", False),
            "capture": (False, False, False, "compile", False),
            "amp+capture+nhwc": (True, False, False, "compile", True)}

    def test_compile_or_capture_on_the_cpu_is_a_clear_error_and_amp_is_not(self, tiny_model_path):
        _spec(tiny_model_path, modes=("fp32", "amp", "amp+nhwc")).validate()
        for mode in ("compile", "amp+compile-all", "amp+capture+nhwc"):
            with pytest.raises(BenchSpecError, match=f"need CUDA.*got {re.escape(mode)}$"):
                _spec(tiny_model_path, modes=("fp32", mode)).validate()
        with pytest.raises(BenchSpecError, match="modes"):
            _spec(tiny_model_path, modes=("fp16",)).validate()

    def test_rows_carry_their_mode(self, tiny_rows):
        assert {r["mode"] for r in tiny_rows if r["renderer"] == "per_vertex"} == {"fp32"}

    def test_time_limit_skips_later_groups_and_rows_are_reported_per_group(self, tiny_model_path, monkeypatch):
        steps = []

        class ExpiresAfterFirstStep(Deadline):
            """The limit passes during the first cell's steps, however fast the machine is."""

            def note(self):
                return "run time limit 0.05 s reached" if steps else None

        def fake_setup(config, run_dir, data_in_step=False):
            trainer = SimpleNamespace(face_model=tiny_face_model(subdivisions=1), skipped_total=0)
            return trainer, lambda batch: lambda: steps.append(batch)

        monkeypatch.setattr(bench_train, "setup_trainer", fake_setup)
        monkeypatch.setattr(bench_train, "Deadline", ExpiresAfterFirstStep)
        reported = []
        spec = _spec(tiny_model_path, encoders=("resnet18", "alexnet"), batches=(2,), time_limit_s=0.05)
        rows = run_train_bench(spec, progress=False, on_rows=lambda r: reported.append(len(r)))
        assert [(r["encoder"], r["status"]) for r in rows] == [("resnet18", "ok"), ("alexnet", "skipped")]
        assert rows[1]["note"] == "run time limit 0.05 s reached"
        assert reported == [1, 2]

    def test_bad_time_limit_is_a_clear_error(self, tiny_model_path):
        with pytest.raises(BenchSpecError, match="time-limit"):
            _spec(tiny_model_path, time_limit_s=0).validate()

    def test_append_keeps_earlier_rows(self, cli_run, tiny_model_path):
        before = read_csv(cli_run / "train_cpu.csv")
        args = ["bench", "train", "--device", "cpu", "--renderers", "per_vertex", "--encoders", "resnet18",
                "--batches", "1", "--image-sizes", "80", "--warmup", "0", "--repeats", "1", "--no-progress",
                "--out", str(cli_run), "--append"]
        for item in _overrides(tiny_model_path):
            args += ["--set", item]
        assert main(args) == 0
        after = read_csv(cli_run / "train_cpu.csv")
        assert len(after) == len(before) + 1
        assert after.iloc[:len(before)]["timestamp"].tolist() == before["timestamp"].tolist()
        assert int(after.iloc[-1]["image_size"]) == 80

    def test_report_of_a_csv_without_the_mode_column_reads_it_as_fp32(self, cli_run, tmp_path):
        from evaluation.bench.reports import write_bench_report

        frame = read_csv(cli_run / "train_cpu.csv").drop(columns=["mode"])
        old = tmp_path / "train_cpu.csv"
        frame.to_csv(old, index=False)
        md, png = write_bench_report(old)
        assert "| fp32 |" in md.read_text() and png.exists()


class TestCellErrors:
    def test_a_group_that_cannot_be_set_up_is_error_rows_and_the_run_goes_on(self, tiny_model_path, monkeypatch):
        def fake_setup(config, run_dir, data_in_step=False):
            if config.encoder.name == "alexnet":
                raise ImportError("No module named 'nvdiffrast_plugin_x'")
            trainer = SimpleNamespace(face_model=tiny_face_model(subdivisions=1), skipped_total=0)
            return trainer, lambda batch: lambda: None

        monkeypatch.setattr(bench_train, "setup_trainer", fake_setup)
        rows = run_train_bench(_spec(tiny_model_path, encoders=("alexnet", "resnet18")), progress=False)
        assert [(r["encoder"], r["batch"], r["status"]) for r in rows] == [
            ("alexnet", 2, "error"), ("alexnet", 3, "error"), ("resnet18", 2, "ok"), ("resnet18", 3, "ok")]
        assert rows[0]["note"] == "ImportError: No module named 'nvdiffrast_plugin_x'"

    def test_a_failing_cell_is_an_error_row_between_measured_ones(self, tiny_model_path, monkeypatch):
        def fake_setup(config, run_dir, data_in_step=False):
            trainer = SimpleNamespace(face_model=tiny_face_model(subdivisions=1), skipped_total=0)

            def step_for(batch):
                def step():
                    if batch == 3:
                        raise RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB")
                return step

            return trainer, step_for

        monkeypatch.setattr(bench_train, "setup_trainer", fake_setup)
        rows = run_train_bench(_spec(tiny_model_path, batches=(2, 3, 4)), progress=False)
        assert [r["status"] for r in rows] == ["ok", "error", "ok"]
        assert rows[1]["note"] == "RuntimeError: CUDA out of memory."


class TestDataInStep:
    def test_rows_say_the_batch_was_made_before_timing_by_default(self, tiny_rows):
        assert {r["data_in_step"] for r in tiny_rows} == {False}

    def test_data_in_step_times_a_new_batch_every_step(self, tiny_model_path, monkeypatch):
        from mofa_bench.data.synthetic import SyntheticFaces
        from mofa_bench.training.schedule import batch_indices

        drawn = []
        original = SyntheticFaces.batch

        def recorded(self, indices):
            if self.start == 0:  # the training split (validation is never drawn here)
                drawn.append(indices.tolist())
            return original(self, indices)

        monkeypatch.setattr(SyntheticFaces, "batch", recorded)
        spec = _spec(tiny_model_path, batches=(2,), repeats=2, data_in_step=True)
        rows = run_train_bench(spec, progress=False)
        assert [(r["status"], r["data_in_step"]) for r in rows] == [("ok", True)]
        # The probe step(s) and the two timed steps each drew their own batch: the trainer's order, in turn.
        config = spec.cell_config("per_vertex", "resnet18", 64, 2)
        order_seed = config.data.seed + 1_000_003 * config.seed
        assert len(drawn) >= 3
        assert drawn == [batch_indices(k, 2, config.data.train_size, order_seed).tolist() for k in range(len(drawn))]

    def test_cli_flag_sets_the_column(self, tiny_model_path, tmp_path):
        args = ["bench", "train", "--device", "cpu", "--renderers", "per_vertex", "--encoders", "resnet18",
                "--batches", "1", "--image-sizes", "64", "--warmup", "0", "--repeats", "1", "--no-progress",
                "--out", str(tmp_path), "--data-in-step"]
        for item in _overrides(tiny_model_path):
            args += ["--set", item]
        assert main(args) == 0
        rows = read_csv(tmp_path / "train_cpu.csv").to_dict("records")
        assert [(r["status"], r["data_in_step"]) for r in rows] == [("ok", True)]
        assert "| data in step |" in (tmp_path / "train_cpu.md").read_text()
