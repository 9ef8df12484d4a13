"""evaluation.diagnostics.fit_curves: test errors of the per-image Adam fit along its steps."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from evaluation.diagnostics import fit_curves, signal
from helpers import renderer_or_skip, synthetic_test_setting
from mofa_bench.cli import main
from mofa_bench.config import save_config
from mofa_bench.methods.fit import fit_codes
from mofa_bench.scoring.protocol import evaluate_codes
from mofa_checks import InputError


@pytest.fixture(scope="module")
def setting(tmp_path_factory, tiny_model_path):
    config, decoder, batch = synthetic_test_setting(tmp_path_factory.mktemp("fit_curves"), tiny_model_path, 6)
    return dataclasses.replace(config.loss, landmark=2e-3), decoder, batch


def test_fit_codes_hands_each_steps_codes_to_on_step(setting):
    loss, decoder, batch = setting
    seen = []
    fit = fit_codes(decoder, batch.images, loss, 3, on_step=lambda step, code: seen.append((step, code.clone())))
    assert [step for step, _ in seen] == [0, 1, 2, 3] and len(fit.losses) == 4
    assert torch.equal(seen[0][1], torch.zeros_like(fit.code)) and torch.equal(seen[-1][1], fit.code)
    with pytest.raises(InputError, match="on_step"):
        fit_codes(decoder, batch.images, loss, 1, solver="lm", on_step=lambda step, code: None)


@pytest.fixture(scope="module")
def curve(setting):
    loss, decoder, batch = setting
    rows = fit_curves.fit_curve(decoder, decoder, batch, signal.setting_loss(loss, True), True, at=(0, 3, 10))
    return pd.DataFrame(rows)


def test_the_first_point_is_the_mean_face(setting, curve):
    _, decoder, batch = setting
    with torch.no_grad():
        mean_face = evaluate_codes(decoder, torch.zeros_like(batch.codes), batch)
    start = curve[curve["step"] == 0].set_index("image").sort_index()
    assert list(start.index) == batch.indices.tolist()
    for metric in fit_curves.METRICS:
        assert start[metric].to_numpy() == pytest.approx(mean_face[metric].numpy(), rel=1e-5), metric
    assert (start["seconds_per_image"] < curve.loc[curve["step"] == 10, "seconds_per_image"].min()).all()


def test_the_fit_lowers_its_loss_and_the_errors_it_is_told_about(curve):
    by_step = curve.groupby("step").mean(numeric_only=True)
    assert list(by_step.index) == [0, 3, 10]
    assert by_step["batch_loss"].is_monotonic_decreasing
    assert by_step["seconds_per_image"].is_monotonic_increasing
    assert by_step.loc[10, "landmark_px"] < 0.8 * by_step.loc[0, "landmark_px"]
    assert by_step.loc[10, "photometric"] < by_step.loc[0, "photometric"]
    assert by_step.loc[10, "geometric_mm"] < by_step.loc[0, "geometric_mm"]


def test_a_faces_fit_does_not_depend_on_its_batch(setting, curve):
    """What lets a long measurement run as several calls (--faces, --append)."""
    loss, decoder, batch = setting
    halves = [fit_curves.fit_curve(decoder, decoder, fit_curves.take(batch, part), signal.setting_loss(loss, True),
                                   True, at=(10,)) for part in (slice(0, 3), slice(3, 6))]
    split = pd.DataFrame(halves[0] + halves[1]).set_index("image")
    whole = curve[curve["step"] == 10].set_index("image")
    for metric in fit_curves.METRICS:
        assert split[metric].to_numpy() == pytest.approx(whole[metric].to_numpy(), rel=1e-3, abs=1e-4), metric


def test_summary_is_the_mean_with_a_bootstrap_interval(curve):
    images = curve.assign(renderer="per_vertex", landmarks=True)
    frame = fit_curves.summarize(images, resamples=200)
    assert len(frame) == 3 * (len(fit_curves.METRICS) + 1)
    row = frame[(frame["step"] == 10) & (frame["metric"] == "geometric_mm")].iloc[0]
    assert row["mean"] == pytest.approx(curve.loc[curve["step"] == 10, "geometric_mm"].mean())
    assert row["ci_low"] < row["mean"] < row["ci_high"] and row["n_images"] == 6
    assert frame.loc[frame["metric"] == "loss", "ci_low"].isna().all()


def test_a_rasterized_fit_runs_through_its_renderer(setting):
    renderer_or_skip("pytorch3d", "cpu", {})
    loss, decoder, batch = setting
    few = fit_curves.take(batch, slice(0, 2))
    hard = signal.renderer_decoders(decoder, ["pytorch3d"])["pytorch3d (hard)"]
    rasterized = pd.DataFrame(fit_curves.fit_curve(hard, decoder, few, signal.setting_loss(loss, False), False,
                                                   at=(0, 2)))
    per_vertex = pd.DataFrame(fit_curves.fit_curve(decoder, decoder, few, signal.setting_loss(loss, False), False,
                                                   at=(0, 2)))
    assert rasterized.loc[rasterized["step"] == 0, "photometric"].tolist() == pytest.approx(
        per_vertex.loc[per_vertex["step"] == 0, "photometric"].tolist())  # scored alike ...
    assert rasterized["batch_loss"].tolist() != pytest.approx(per_vertex["batch_loss"].tolist())  # ... fitted apart


@pytest.fixture(scope="module")
def config_file(tmp_path_factory, tiny_model_path):
    folder = tmp_path_factory.mktemp("fit_curves_cli")
    config, _, _ = synthetic_test_setting(folder, tiny_model_path, 4)
    config = dataclasses.replace(config, loss=dataclasses.replace(config.loss, landmark=2e-3))
    return save_config(config, folder / "config.yaml")


def test_fit_curves_end_to_end_in_two_calls(config_file, tmp_path, capsys):
    out, figure = tmp_path / "tables" / "fit_curves.csv", tmp_path / "fit_curves.png"
    common = ["diagnose", "fit-curves", str(config_file), "--renderers", "per_vertex", "--at", "0", "2",
              "--batch-size", "2", "--resamples", "50", "--out", str(out)]
    assert main(common + ["--size", "3"]) == 0, capsys.readouterr().err
    assert main(common + ["--faces", "3:5", "--append", "--figure", str(figure)]) == 0, capsys.readouterr().err
    images = pd.read_csv(tmp_path / "tables" / "fit_curves_images.csv")
    assert sorted(set(images["image"])) == [0, 1, 2, 3, 4] and len(images) == 5 * 2 * 2
    frame = pd.read_csv(out)
    assert list(frame.columns[:9]) == ["renderer", "landmarks", "step", "seconds_per_image", "metric", "mean",
                                       "ci_low", "ci_high", "n_images"]
    assert len(frame) == 2 * 2 * (len(fit_curves.METRICS) + 1) and (frame["n_images"] == 5).all()
    start = frame[frame["step"] == 0].set_index(["landmarks", "metric"])["mean"]
    assert start[(True, "geometric_mm")] == pytest.approx(start[(False, "geometric_mm")])  # both start at the mean face
    assert figure.stat().st_size > 10_000
    assert "5 test faces" in capsys.readouterr().out
    assert main(common[:-2] + ["--append"]) == 1
    assert "--append" in capsys.readouterr().err
