"""Tests for mofa_bench.training.figures: run curves from the CSVs of any method."""

from __future__ import annotations

from PIL import Image

from mofa_bench.training.figures import plot_run_curves
from mofa_bench.training.run_files import append_row


def test_curves_of_a_method_without_regulariser(tmp_path):
    # A baseline logs only its own terms (here: photo); the figures must not need MoFA's.
    for step in range(1, 4):
        append_row(tmp_path / "metrics.csv", {"step": step, "loss": 1.0 / step, "photo": 1.0 / step,
                                               "samples_per_s": 10.0, "skipped": 0, "time_s": step})
        append_row(tmp_path / "validation.csv", {"step": step, "train_time_s": step, "photometric": 0.3 / step})
    written = plot_run_curves(tmp_path)
    assert [p.name for p in written] == ["loss_curve.png", "validation_curve.png"]
    for path in written:
        assert Image.open(path).size[0] > 100


def test_append_row_adds_columns_first_known_later(tmp_path):
    path = tmp_path / "metrics.csv"
    append_row(path, {"step": 1, "loss": float("nan")})
    append_row(path, {"step": 2, "loss": 0.5, "photo": 0.4})
    assert path.read_text().splitlines() == ["step,loss,photo", "1,nan,", "2,0.5,0.4"]
