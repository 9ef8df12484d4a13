"""``mofa-bench diagnose``: the analyses as subcommands (evaluation.diagnostics.command)."""

from __future__ import annotations

import pandas as pd
import pytest

from evaluation.diagnostics import partial_truth
from evaluation.diagnostics.command import ANALYSES
from helpers import synthetic_test_setting, tiny_train_config
from mofa_bench.cli import main
from mofa_bench.config import save_config
from mofa_bench.training import Trainer

NAMES = ("mode-signal", "generalization-gap", "pose-landscape", "loss-optimum", "partial-truth", "signal",
         "fit-curves")


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return exited.value.code


def test_diagnose_lists_the_analyses(capsys):
    assert tuple(ANALYSES) == NAMES
    assert _exit_code(["diagnose", "--help"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in NAMES)
    assert main(["diagnose"]) == 2  # no name: the same list, as `bench` alone does
    assert capsys.readouterr().out == listed


@pytest.mark.parametrize("name", NAMES)
def test_each_analysis_has_a_help(name, capsys):
    assert _exit_code(["diagnose", name, "--help"]) == 0
    text = capsys.readouterr().out
    assert f"mofa-bench diagnose {name}" in text and "--out" in text
    assert "Outputs" in text and "scripts/" not in text


@pytest.fixture(scope="module")
def config_file(tmp_path_factory, tiny_model_path):
    """A 64 px default-model config at subdivision 0, as YAML (the other tests' synthetic setting)."""
    folder = tmp_path_factory.mktemp("diagnose")
    config, _, _ = synthetic_test_setting(folder, tiny_model_path, 4)
    return save_config(config, folder / "config.yaml")


def test_partial_truth_end_to_end(config_file, tmp_path, capsys):
    out = tmp_path / "tables" / "partial_truth.csv"
    assert main(["diagnose", "partial-truth", str(config_file), "--size", "4", "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert list(frame["true parts"]) == [name for name, _ in partial_truth.ROWS]
    assert list(frame.columns[1:]) == list(partial_truth.METRICS)
    everything = frame.set_index("true parts").loc["everything"]
    assert everything["geometric_model_mm"] == pytest.approx(0.0, abs=1e-4)
    assert (frame.set_index("true parts").loc["mean face (nothing true)"] > everything).all()
    printed = capsys.readouterr().out
    assert "4 test faces" in printed and f"wrote {out}" in printed


def test_loss_optimum_takes_weight_pairs(config_file, tmp_path):
    out = tmp_path / "loss_optimum.csv"
    argv = ["diagnose", "loss-optimum", str(config_file), "--size", "2", "--steps", "2",
            "--weights", "1e-2:1.0", "1e-3:0.1", "--out", str(out)]
    assert main(argv) == 0
    frame = pd.read_csv(out)
    assert list(frame["face codes"]) == ["zero (true pose and light)", "fitted", "fitted"]
    assert list(frame["reg"].iloc[1:]) == [1e-2, 1e-3] and list(frame["reg_beta"].iloc[1:]) == [1.0, 0.1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_model_path):
    """A tiny run of two steps, trained without landmarks (the analyses of RUN need one)."""
    trainer = Trainer(tiny_train_config(tmp_path_factory.mktemp("runs"), tiny_model_path, "optim.iterations=2",
                                        "data.test_size=6"))
    trainer.fit()
    return trainer.run_dir


def test_mode_signal_and_its_swaps_end_to_end(run_dir, tmp_path, capsys):
    modes, swaps = tmp_path / "modes.csv", tmp_path / "swaps.csv"
    argv = ["diagnose", "mode-signal", str(run_dir), "--reference", str(run_dir), "--modes", "2",
            "--out", str(modes), "--swap-out", str(swaps)]
    assert main(argv) == 0, capsys.readouterr().err
    frame = pd.read_csv(modes)
    assert list(zip(frame["part"], frame["mode"])) == [("alpha", 0), ("alpha", 1), ("delta", 0), ("delta", 1)]
    assert (frame["learnt"] == frame["reference_learnt"]).all()
    assert frame["landmark_signal"].isna().all()  # no landmark term in this run's loss: no signal
    swapped = pd.read_csv(swaps)
    assert len(swapped) == 2 + 2 * 7 and "6 test faces" in capsys.readouterr().out


def test_generalization_gap_end_to_end(run_dir, tmp_path):
    out = tmp_path / "gap.csv"
    assert main(["diagnose", "generalization-gap", str(run_dir), "--size", "4", "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert list(zip(frame["split"], frame["coder"])) == [("train", "run"), ("train", "mean face"),
                                                         ("val", "run"), ("val", "mean face")]
    assert (frame.loc[frame["coder"] == "mean face", "photometric_change_pct"] == 0).all()


def test_errors_are_one_line(config_file, tmp_path, capsys):
    assert _exit_code(["diagnose", "loss-optimum", str(config_file), "--weights", "0.1"]) == 2
    assert "expected reg:reg_beta" in capsys.readouterr().err
    assert main(["diagnose", "mode-signal", str(tmp_path), "--swap-out", str(tmp_path / "swap.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "mofa-bench diagnose: error: --swap-out: the part swaps need --reference"
    assert main(["diagnose", "partial-truth", str(tmp_path / "missing.yaml")]) == 1
    assert "does not exist" in capsys.readouterr().err
