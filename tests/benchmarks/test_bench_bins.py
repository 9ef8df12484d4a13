"""``mofa-bench bench pytorch3d-bins``: spec checks, CLI errors, and the CUDA sweep."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from evaluation.bench.bins import BIN_COLUMNS, BinSweepSpec, run_bin_sweep
from evaluation.bench.measure import BenchSpecError, bench_row
from evaluation.results.rows import write_csv
from mofa_bench.cli import main
from renderers.pytorch3d import PyTorch3DRenderer


class TestSpec:
    @pytest.mark.parametrize("changes, message", [
        (dict(backend="nvdiffrast"), "pytorch3d or pytorch3d-soft"),
        (dict(batch=0), "batch"),
        (dict(bin_sizes=(None, 0)), "bin_sizes"),
        (dict(max_faces=(-5,)), "max_faces"),
        (dict(max_faces=("many",)), "max_faces"),
    ])
    def test_bad_values_are_rejected(self, changes, message):
        with pytest.raises(BenchSpecError, match=message):
            BinSweepSpec(**changes)

    def test_cpu_is_refused_since_only_cuda_has_bins(self, tmp_path):
        with pytest.raises(BenchSpecError, match="CUDA only"):
            run_bin_sweep(BinSweepSpec(device="cpu", level=0, batch=1, resolution=32), tmp_path)


def test_native_output_is_silenced_and_restored(capfd):
    import os

    from evaluation.bench.bins import native_output_silenced

    with native_output_silenced():
        os.write(1, b"from native code\n")
        os.write(2, b"warning from native code\n")
    os.write(1, b"after\n")
    out, err = capfd.readouterr()
    assert out == "after\n" and err == ""


class TestCli:
    def test_help_names_both_settings(self, capsys):
        with pytest.raises(SystemExit):
            main(["bench", "pytorch3d-bins", "--help"])
        out = capsys.readouterr().out
        assert "--bin-sizes" in out and "--max-faces" in out

    def test_cpu_device_is_a_message_not_a_traceback(self, capsys):
        assert main(["bench", "pytorch3d-bins", "--device", "cpu", "--level", "0"]) == 1
        assert "CUDA only" in capsys.readouterr().err

    def test_bad_list_is_an_argparse_error(self, capsys):
        with pytest.raises(SystemExit):
            main(["bench", "pytorch3d-bins", "--max-faces", "default,lots"])
        assert "integers, 'default' or 'auto'" in capsys.readouterr().err


class TestReport:
    def test_report_remakes_the_table_from_the_csv_alone(self, tmp_path, capsys):
        env = {"device_name": "cuda: Test GPU", "commit": "abc1234"}
        cell = dict(bench="pytorch3d-bins", backend="pytorch3d", device="cuda", batch=64, resolution=240, level=3,
                    vertices=28881, faces=57472, warmup=2, repeats=5)
        rows = [
            bench_row(BIN_COLUMNS, env, **cell, bin_size="default", max_faces_per_bin="default", fwdbwd_ms=200.0,
                      speedup=1.0, max_abs_diff=0.0, mismatched_pixels=0, status="ok"),
            bench_row(BIN_COLUMNS, env, **cell, bin_size=32, max_faces_per_bin=4000, max_abs_diff=0.5,
                      mismatched_pixels=1006, status="mismatch", note="differs from the reference; not timed"),
            bench_row(BIN_COLUMNS, env, **cell, bin_size=64, max_faces_per_bin="auto", status="error",
                      note="RuntimeError: out of memory"),
        ]
        csv_path = write_csv(rows, tmp_path / "pytorch3d_bins_cuda.csv", BIN_COLUMNS)
        assert main(["bench", "report", str(csv_path), "--out", str(tmp_path / "re")]) == 0
        assert not (tmp_path / "re" / "pytorch3d_bins_cuda.png").exists(), "the sweep has no plot"
        assert (tmp_path / "re" / "pytorch3d_bins_cuda.md").read_text().splitlines() == [
            "PyTorch3D bin settings, pytorch3d, batch 64, 240² px, level 3 (28,881 vertices), cuda: Test GPU; "
            "forward+backward of the loss path.",
            "",
            "| bin_size | max_faces_per_bin | fwd+bwd ms | × defaults | pixels ≠ reference | status |",
            "|:---|:---|---:|---:|---:|:---|",
            "| default | default | 200.0 | 1.00 | 0 | ok |",
            "| 32 | 4000 | – | – | 1,006 | mismatch |",
            "| 64 | auto | – | – | – | error |",
        ]


@pytest.mark.cuda
class TestCudaSweep:
    def test_rows_time_each_pair_and_flag_an_overflowing_capacity(self, tmp_path):
        state = PyTorch3DRenderer.availability("cuda")
        if not state.available:
            pytest.skip(f"PyTorch3D on CUDA: {state.reason}")
        spec = BinSweepSpec(batch=2, resolution=64, level=1, bin_sizes=(None, 32), max_faces=(None, 1, "auto"),
                            warmup=1, repeats=2)
        rows, csv_path, md_path = run_bin_sweep(spec, tmp_path)
        assert [(r["bin_size"], r["max_faces_per_bin"]) for r in rows] == [
            ("default", "default"), ("default", 1), ("default", "auto"), (32, "default"), (32, 1), (32, "auto")]
        by_pair = {(r["bin_size"], r["max_faces_per_bin"]): r for r in rows}
        baseline = by_pair["default", "default"]
        assert baseline["status"] == "ok" and baseline["mismatched_pixels"] == 0
        assert baseline["speedup"] == pytest.approx(1.0)
        # 32 px bins hold every triangle of a 1.8k-vertex face at 64 px within the default capacity.
        assert by_pair[32, "default"]["status"] == "ok"
        # Capacities sized from the triangles never drop one.
        assert by_pair["default", "auto"]["status"] == "ok" and by_pair[32, "auto"]["status"] == "ok"
        # One triangle per bin cannot hold a face: pixels are lost, and the row says so.
        for key in (("default", 1), (32, 1)):
            assert by_pair[key]["status"] == "mismatch" and by_pair[key]["mismatched_pixels"] > 0
        for row in rows:
            if row["status"] == "ok":
                assert row["fwdbwd_ms"] > 0 and row["speedup"] > 0
            else:  # an overflowing setting is not timed
                assert math.isnan(row["fwdbwd_ms"]) and math.isnan(row["speedup"]) and "not timed" in row["note"]
        frame = pd.read_csv(csv_path)
        assert len(frame) == 6 and frame["device_name"].str.len().min() > 0
        assert "pixels ≠ reference" in md_path.read_text()
