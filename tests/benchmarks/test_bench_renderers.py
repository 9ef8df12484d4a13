import math
import time

import pandas as pd
import pytest
import torch

from evaluation.bench import measure
from evaluation.bench import renderers as bench_renderers
from evaluation.bench.measure import BenchSpecError, CellMeasurement, PeakMemory, Timing, time_callable
from evaluation.bench.renderers import (
    RENDERER_COLUMNS,
    ReferenceSpec,
    RendererBenchSpec,
    run_renderer_bench,
    setup_cell,
    target_summary,
)
from evaluation.bench.reports import write_bench_report
from evaluation.results.budget import BatchPlanner, CellBudget, CostHistory, Deadline
from evaluation.results.report import Column, markdown_table
from evaluation.results.rows import read_csv, write_csv
from mofa_bench.cli import main
from renderers import available_renderers

CPU = torch.device("cpu")
ENV_COLUMNS = ("device_name", "commit", "threads", "timestamp", "version_torch", "version_kornia",
               "version_easypytorch3d", "version_diffrp-nvdiffrast")


def _spec(**changes) -> RendererBenchSpec:
    base = dict(device="cpu", backends=("per_vertex",), batches=(1, 2), resolutions=(32, 64), levels=(0,),
                warmup=0, repeats=1, budget_s=60.0, reference=None)
    base.update(changes)
    return RendererBenchSpec(**base)


@pytest.fixture(scope="module")
def tiny_rows(tiny_model):
    """One small real run: per_vertex (2 batches × 2 resolutions), nvdiffrast, a resnet18 reference."""
    spec = _spec(backends=("per_vertex", "nvdiffrast"), reference=ReferenceSpec("resnet18", batch=2, resolution=64))
    return run_renderer_bench(spec, model_loader=lambda level: tiny_model, progress=False)


class TestTiming:
    def test_positive_median_of_the_timed_calls(self):
        calls = []

        def fn():
            calls.append(1)
            time.sleep(0.002)

        timing = time_callable(fn, CPU, warmup=2, repeats=3)
        assert len(calls) == 5 and len(timing.samples_ms) == 3
        assert all(t >= 2.0 for t in timing.samples_ms)
        assert timing.min_ms <= timing.median_ms < 1000.0

    def test_cuda_timing_synchronizes_after_warmup_and_after_every_timed_call(self, monkeypatch):
        events = []
        monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append("sync"))
        time_callable(lambda: events.append("call"), torch.device("cuda"), warmup=2, repeats=3)
        assert events == ["call", "call", "sync"] + ["call", "sync"] * 3

    def test_cpu_timing_never_synchronizes_cuda(self, monkeypatch):
        events = []
        monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append("sync"))
        time_callable(lambda: None, CPU, warmup=1, repeats=2)
        assert events == []

    def test_bad_repeats_is_a_clear_error(self):
        with pytest.raises(BenchSpecError, match="repeats"):
            time_callable(lambda: None, CPU, warmup=0, repeats=0)

    @pytest.mark.cuda
    def test_cuda_cell_reports_time_and_allocated_memory(self):
        device = torch.device("cuda")
        x = torch.randn(1024, 1024, device=device)
        m = measure.measure_cell({"matmul": lambda: x @ x}, device, warmup=1, repeats=3)
        assert m.median_ms("matmul") > 0
        assert m.peak_mem_kind == "cuda max_memory_allocated" and m.peak_mem_mb >= 4.0


class TestPeakMemory:
    def test_cpu_peak_rss_sees_an_allocation_and_resets(self):
        memory = PeakMemory(CPU)
        memory.reset()
        before = memory.read_mb()
        block = torch.ones(50_000_000)  # 191 MiB, touched
        with_block = memory.read_mb()
        del block
        memory.reset()
        after_reset = memory.read_mb()
        assert memory.kind == "cpu process peak RSS (VmHWM)"
        assert with_block - before > 150
        assert after_reset < with_block - 100

    def test_unavailable_reset_gives_nan_and_says_why(self, monkeypatch, tmp_path):
        monkeypatch.setattr(measure, "CLEAR_REFS", tmp_path / "missing" / "clear_refs")
        memory = PeakMemory(CPU)
        memory.reset()
        assert math.isnan(memory.read_mb())
        assert memory.kind.startswith("unavailable: cannot reset the peak RSS")


class TestBudget:
    def test_estimate_is_linear_in_batch_and_calls(self):
        budget = CellBudget(seconds=10.0, calls_per_cell=4)
        assert budget.estimate_s(0.5, 3) == pytest.approx(6.0)
        assert budget.skip_note(6.0) is None
        assert budget.skip_note(12.0) == "estimated 12 s > budget 10 s"

    def test_planner_uses_the_latest_measured_cell(self):
        planner = BatchPlanner(CellBudget(seconds=1.0, calls_per_cell=2), per_item_s=0.1)
        assert planner.skip_note(5) is None and "estimated 2 s" in planner.skip_note(10)
        planner.observe(5, 0.25)  # 0.05 s per item
        assert planner.skip_note(10) is None and planner.basis == "from batch 5"

    def test_planner_follows_the_line_through_the_two_largest_cells(self):
        planner = BatchPlanner(CellBudget(seconds=1.0, calls_per_cell=2), per_item_s=0.04)
        # Launch-bound: 0.04 s at batch 1 and 0.042 s at batch 8 → ~0.06 s at batch 64, not 2.6 s.
        planner.observe(1, 0.040)
        planner.observe(8, 0.042)
        assert planner.seconds_per_call(64) == pytest.approx(0.042 + 0.002 / 7 * 56)
        assert planner.skip_note(64) is None and planner.basis == "line through batches 1 and 8"
        # A slope is never negative: a faster larger batch does not predict faster still.
        planner.observe(64, 0.030)
        assert planner.seconds_per_call(256) == pytest.approx(0.030)
        # Compute-bound growth is followed: 0.1 s at 8, 0.8 s at 64 → 3.2 s at 256 > budget.
        steep = BatchPlanner(CellBudget(seconds=1.0, calls_per_cell=2), per_item_s=0.0125)
        steep.observe(8, 0.1)
        steep.observe(64, 0.8)
        assert steep.seconds_per_call(256) == pytest.approx(3.2)
        assert "estimated 6.4 s > budget 1 s" in steep.skip_note(256)

    def test_history_lower_bound_only_from_smaller_points(self):
        history = CostHistory()
        history.record("a", (128, 1000), 0.5)
        history.record("a", (240, 500), 2.0)
        assert history.lower_bound("a", (240, 2000)) == (2.0, (240, 500))
        assert history.lower_bound("a", (128, 5000)) == (0.5, (128, 1000))
        assert history.lower_bound("a", (64, 5000)) == (0.0, None)
        assert history.lower_bound("b", (240, 2000)) == (0.0, None)

    def test_confirming_probe_uses_the_warm_second_call(self):
        def make_fn():
            calls = []

            def fn():
                time.sleep(0.05 if not calls else 0.001)
                calls.append(1)

            return fn, calls

        # A slow first call is replaced by the warm one.
        fn, calls = make_fn()
        assert measure.probe_seconds(fn, CPU, confirm=True) < 0.02 and len(calls) == 2
        fn, calls = make_fn()
        assert measure.probe_seconds(fn, CPU, confirm=False) >= 0.05 and len(calls) == 1

    def test_zero_budget_is_rejected(self):
        with pytest.raises(BenchSpecError, match="budget"):
            CellBudget(0.0, 1)


class TestRendererBench:
    def test_commit_column_is_git_unless_overridden(self, monkeypatch):
        from evaluation.results.rows import environment_columns

        monkeypatch.delenv("MOFA_BENCH_COMMIT", raising=False)
        assert environment_columns(CPU)["commit"] != "abc1234"
        monkeypatch.setenv("MOFA_BENCH_COMMIT", "abc1234")
        assert environment_columns(CPU)["commit"] == "abc1234"

    def test_one_row_per_cell_with_measurements_and_environment(self, tiny_rows, tiny_model):
        cells = [r for r in tiny_rows if r["backend"] == "per_vertex"]
        assert sorted((r["resolution"], r["batch"]) for r in cells) == [(32, 1), (32, 2), (64, 1), (64, 2)]
        for row in cells:
            assert set(RENDERER_COLUMNS + ENV_COLUMNS) <= set(row)
            assert row["status"] == "ok" and row["device"] == "cpu" and row["bench"] == "renderers"
            assert row["vertices"] == tiny_model.num_vertices and row["faces"] == tiny_model.num_triangles
            assert row["fwd_ms"] > 0 and row["fwdbwd_ms"] > 0
            assert row["images_per_s"] == pytest.approx(row["batch"] / row["fwdbwd_ms"] * 1000.0)
            assert row["peak_mem_mb"] > 0 and math.isnan(row["render_ms"])

    def test_unavailable_backend_is_one_row_with_the_reason(self, tiny_rows):
        if available_renderers("cpu")["nvdiffrast"].available:
            pytest.skip("nvdiffrast runs on this CPU")
        rows = [r for r in tiny_rows if r["backend"] == "nvdiffrast"]
        assert len(rows) == 1
        assert rows[0]["status"] == "unavailable" and "CUDA" in rows[0]["note"]
        assert math.isnan(rows[0]["fwdbwd_ms"])

    def test_ratio_to_reference_step_at_its_batch_and_resolution(self, tiny_rows):
        reference = tiny_rows[0]
        assert reference["backend"] == "reference:resnet18" and reference["status"] == "ok"
        assert reference["fwdbwd_ms"] > 0
        for row in tiny_rows[1:]:
            if row["status"] == "ok" and (row["batch"], row["resolution"]) == (2, 64):
                assert row["ratio_to_alexnet_step"] == pytest.approx(row["fwdbwd_ms"] / reference["fwdbwd_ms"])
            else:
                assert math.isnan(row["ratio_to_alexnet_step"])

    def test_tiny_budget_skips_without_timing(self, tiny_model):
        rows = run_renderer_bench(_spec(budget_s=1e-6), model_loader=lambda level: tiny_model, progress=False)
        assert len(rows) == 4
        for row in rows:
            assert row["status"] == "skipped" and "> budget 1e-06 s" in row["note"]
            assert math.isnan(row["fwdbwd_ms"])

    def test_budget_extrapolates_measured_cells_and_skips_dominated_groups(self, tiny_model, monkeypatch):
        probes = []

        def fake_probe(fn, device, confirm=True):
            probes.append(fn)
            return 0.01

        def fake_measure(fns, device, warmup, repeats):
            batch = fake_measure.batch
            return CellMeasurement({name: Timing((10.0 * batch,)) for name in fns}, 1.0, "fake")

        real_setup = bench_renderers.setup_cell

        def spy_setup(model, backend, batch, *args, **kwargs):
            fake_measure.batch = batch
            return real_setup(model, backend, batch, *args, **kwargs)

        monkeypatch.setattr(bench_renderers, "probe_seconds", fake_probe)
        monkeypatch.setattr(bench_renderers, "measure_cell", fake_measure)
        monkeypatch.setattr(bench_renderers, "setup_cell", spy_setup)
        # 2 calls per cell at 0.01 s per image: batch 1 → 0.02 s, 8 → 0.16 s, 64 → 1.28 s > 1 s.
        rows = run_renderer_bench(_spec(batches=(1, 8, 64), resolutions=(32,), budget_s=1.0),
                                  model_loader=lambda level: tiny_model, progress=False)
        assert [r["status"] for r in rows] == ["ok", "ok", "skipped"]
        assert rows[2]["note"] == "estimated 1.28 s > budget 1 s (line through batches 1 and 8)"

        probes.clear()
        def slow_probe(fn, device, confirm=True):
            probes.append(fn)
            return 1.0

        monkeypatch.setattr(bench_renderers, "probe_seconds", slow_probe)
        rows = run_renderer_bench(_spec(resolutions=(32, 64), budget_s=1.0), model_loader=lambda level: tiny_model,
                                  progress=False)
        assert [r["status"] for r in rows] == ["skipped"] * 4
        assert len(probes) == 1, "the larger resolution must be skipped without a probe"
        assert "lower bound from 32 px" in rows[2]["note"]

    @pytest.mark.cuda
    def test_cuda_grid_measures_every_available_backend(self, tiny_model):
        spec = _spec(device="cuda", backends=tuple(bench_renderers.BACKEND_VARIANTS), warmup=1, repeats=2)
        rows = run_renderer_bench(spec, model_loader=lambda level: tiny_model, progress=False)
        states = available_renderers("cuda")
        for row in rows:
            backend = bench_renderers.BACKEND_VARIANTS[row["backend"]][0]
            assert row["status"] == ("ok" if states[backend].available else "unavailable"), row["note"]
            if row["status"] == "ok":
                assert row["fwdbwd_ms"] > 0 and row["peak_mem_kind"] == "cuda max_memory_allocated"
                assert row["peak_mem_mb"] > 0

    def test_cell_closures_compute_a_differentiable_loss(self, tiny_model):
        closures = setup_cell(tiny_model.to(CPU, torch.float32), "per_vertex", 2, 32, CPU, time_render=True)
        loss = closures["forward"]()
        assert loss.dim() == 0 and loss.requires_grad and float(loss.detach()) > 0
        closures["forward_backward"]()
        closures["render"]()

    def test_unknown_backend_is_a_clear_error(self):
        with pytest.raises(BenchSpecError, match="unknown 'opengl'"):
            _spec(backends=("opengl",)).validate()

    def test_quick_preset_is_smaller_than_the_full_grid(self):
        quick = RendererBenchSpec.preset("cpu", quick=True)
        full = RendererBenchSpec.preset("cpu")
        assert quick.num_cells < full.num_cells
        assert full.levels == (1, 2, 3, 4) and full.batches == (1, 8, 64, 256)
        assert RendererBenchSpec.preset("cpu", quick=True, batches=(3,)).batches == (3,)


class TestReport:
    def test_csv_round_trips_into_markdown_and_plot(self, tiny_rows, tmp_path):
        csv_path = write_csv(tiny_rows, tmp_path / "renderers_cpu.csv", RENDERER_COLUMNS)
        frame = read_csv(csv_path)
        assert list(frame.columns[:len(RENDERER_COLUMNS)]) == list(RENDERER_COLUMNS)
        assert len(frame) == len(tiny_rows)
        md, png = write_bench_report(csv_path, tmp_path / "again")
        lines = md.read_text().splitlines()
        table = [line for line in lines if line.startswith("|")]
        assert table[0].startswith("| backend | batch |") and set(table[1]) <= set("|-: ")
        assert len(table) == 2 + len(tiny_rows)
        assert any(line.startswith("**Target**") for line in lines)
        from PIL import Image

        assert png.exists() and Image.open(png).size[0] > 200

    def test_markdown_formats_numbers_missing_values_and_pipes(self):
        text = markdown_table([{"a": "x|y", "b": 1234.5}, {"a": "z", "b": float("nan")}],
                              [Column("a", "name"), Column("b", "ms", ",.1f")])
        assert text.splitlines() == ["| name | ms |", "|:---|---:|", "| x\\|y | 1,234.5 |", "| z | – |"]

    def test_target_check_passes_and_fails_by_ratio(self):
        base = dict(status="ok", note="", batch=64, resolution=240, level=3, vertices=28881)
        frame = pd.DataFrame([
            dict(base, backend="reference:alexnet", level=float("nan"), fwdbwd_ms=100.0, ratio_to_alexnet_step=None),
            dict(base, backend="fast", fwdbwd_ms=5.0, ratio_to_alexnet_step=0.05),
            dict(base, backend="slow", fwdbwd_ms=20.0, ratio_to_alexnet_step=0.2),
            dict(base, backend="small", level=2, fwdbwd_ms=1.0, ratio_to_alexnet_step=0.01),
        ])
        text = "\n".join(target_summary(frame))
        assert "- fast: PASS" in text and "5.0% of the step" in text
        assert "- slow: FAIL" in text
        assert "- small: not measured (cell not in the grid)" in text
        assert "not checked" in "\n".join(target_summary(frame[frame["backend"] != "reference:alexnet"]))


class TestCli:
    def test_help(self, capsys):
        with pytest.raises(SystemExit) as info:
            main(["bench", "renderers", "--help"])
        assert info.value.code == 0
        assert "--budget-s" in capsys.readouterr().out

    def test_tiny_run_writes_csv_markdown_and_plot_and_report_remakes_them(self, tmp_path, capsys):
        out = tmp_path / "bench"
        assert main(["bench", "renderers", "--device", "cpu", "--backends", "per_vertex", "--levels", "0",
                     "--resolutions", "32", "--batches", "1", "--warmup", "0", "--repeats", "1", "--no-reference",
                     "--no-progress", "--out", str(out)]) == 0
        frame = read_csv(out / "renderers_cpu.csv")
        assert len(frame) == 1 and frame["status"].iloc[0] == "ok" and frame["vertices"].iloc[0] == 468
        assert (out / "renderers_cpu.md").exists() and (out / "renderers_cpu.png").exists()
        assert main(["bench", "report", str(out / "renderers_cpu.csv"), "--out", str(tmp_path / "re")]) == 0
        assert (tmp_path / "re" / "renderers_cpu.md").read_text() == (out / "renderers_cpu.md").read_text()

    def test_bad_backend_is_a_message_not_a_traceback(self, capsys):
        assert main(["bench", "renderers", "--device", "cpu", "--backends", "opengl"]) == 1
        assert "unknown 'opengl'" in capsys.readouterr().err


class TestRunLimits:
    def test_time_limit_skips_later_groups(self, tiny_model):
        reported = []
        rows = run_renderer_bench(_spec(time_limit_s=1e-9), model_loader=lambda level: tiny_model, progress=False,
                                  on_rows=lambda r: reported.append(len(r)))
        assert len(rows) == 4 and all(r["status"] == "skipped" for r in rows)
        assert all(r["note"] == "run time limit 1e-09 s reached" for r in rows)
        assert reported == [2, 4], "the partial rows are reported after every group"


class TestProfile:
    def test_profile_writes_stages_and_operators(self, tmp_path):
        from evaluation.bench.profile import ProfileSpec, profile_cell

        path, text = profile_cell(ProfileSpec(batch=1, resolution=32, level=0, device="cpu", steps=1, warmup=0,
                                              rows=5), tmp_path)
        assert path == tmp_path / "profile_per_vertex_cpu.txt" and path.read_text().strip() == text.strip()
        assert "468 vertices" in text and "wall time per forward+backward step" in text
        for stage in ("| form |", "| photometric_samples |", "| loss |", "| backward |"):
            line = next(line for line in text.splitlines() if line.startswith(stage))
            assert float(line.split("|")[2]) > 0
        assert "top 5 operators by CPU time" in text


class TestCellErrors:
    def test_a_backend_that_fails_to_load_is_error_rows_and_the_run_goes_on(self, tiny_model, monkeypatch):
        real_setup = bench_renderers.setup_cell

        def failing_setup(model, backend, batch, resolution, *args, **kwargs):
            if resolution == 32:
                raise OSError("libcudart.so.13: cannot open shared object file")
            return real_setup(model, backend, batch, resolution, *args, **kwargs)

        monkeypatch.setattr(bench_renderers, "setup_cell", failing_setup)
        rows = run_renderer_bench(_spec(), model_loader=lambda level: tiny_model, progress=False)
        assert [(r["resolution"], r["status"]) for r in rows] == [(32, "error"), (32, "error"), (64, "ok"), (64, "ok")]
        assert rows[0]["note"].startswith("OSError: libcudart.so.13")


class TestGroupOrder:
    def test_target_group_first_then_ascending(self):
        spec = RendererBenchSpec(levels=(1, 2, 3, 4), resolutions=(128, 240, 512))
        assert bench_renderers.group_order(spec) == [
            (3, [240, 128, 512]), (1, [128, 240, 512]), (2, [128, 240, 512]), (4, [128, 240, 512])]

    def test_without_the_target_cell_the_grid_runs_ascending(self):
        spec = RendererBenchSpec(levels=(2, 1), resolutions=(240, 128), reference=None)
        assert bench_renderers.group_order(spec) == [(1, [128, 240]), (2, [128, 240])]
        spec = RendererBenchSpec(levels=(3, 1), resolutions=(512, 128), reference=None)
        assert bench_renderers.group_order(spec) == [(3, [128, 512]), (1, [128, 512])]

    def test_a_run_cut_short_measured_the_target_group(self, tiny_model, monkeypatch):
        probed = []

        class ExpiresAfterFirstProbe(Deadline):
            """The limit passes during the first group's probe, however fast the machine is."""

            def note(self):
                return "run time limit 1 s reached" if probed else None

        def probe(fn, device, confirm=True):
            probed.append(True)
            return 1e-4

        monkeypatch.setattr(bench_renderers, "probe_seconds", probe)
        monkeypatch.setattr(bench_renderers, "Deadline", ExpiresAfterFirstProbe)
        monkeypatch.setattr(bench_renderers, "_reference_row",
                            lambda spec, ref, env: {"backend": "reference:resnet18", "status": "skipped"})
        spec = _spec(levels=(1, 3), resolutions=(32, 240), time_limit_s=1.0,
                     reference=ReferenceSpec("resnet18", batch=1, resolution=240))
        rows = run_renderer_bench(spec, model_loader=lambda level: tiny_model, progress=False)
        done = {(r["level"], r["resolution"]) for r in rows if r["status"] == "ok"}
        assert done == {(3, 240)}
