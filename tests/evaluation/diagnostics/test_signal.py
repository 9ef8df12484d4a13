"""evaluation.diagnostics.signal: the loss gradient at the mean face against the truth, per code part."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest
import torch

from evaluation.diagnostics import signal
from evaluation.diagnostics.stats import bootstrap_interval, correlation
from helpers import renderer_or_skip, synthetic_test_setting
from mofa_bench.cli import main
from mofa_bench.code_vector import CODE_DIM, CODE_SLICES
from mofa_bench.config import save_config
from mofa_checks import InputError


def test_directions_are_pose_entries_leading_modes_and_white_sh_bands():
    names, basis = signal.directions(modes=2)
    assert names[:6] == [("rotation", "pitch"), ("rotation", "yaw"), ("rotation", "roll"),
                         ("translation", "x"), ("translation", "y"), ("translation", "z")]
    assert names[6:12] == [("alpha", "0"), ("alpha", "1"), ("delta", "0"), ("delta", "1"), ("beta", "0"), ("beta", "1")]
    assert names[12:] == [("gamma", f"band {b}") for b in range(9)]
    assert basis.shape == (len(names), CODE_DIM)
    assert int(basis[1].argmax()) == CODE_SLICES["rotation"].start + 1  # yaw is the second Euler angle
    assert int(basis[8].argmax()) == CODE_SLICES["delta"].start
    gamma = CODE_SLICES["gamma"].start
    band2 = names.index(("gamma", "band 2"))
    assert basis[band2].nonzero().flatten().tolist() == [gamma + 6, gamma + 7, gamma + 8]  # band-major γ
    assert (basis.sum(1)[:12] == 1).all() and (basis.sum(1)[12:] == 3).all()


def _quadratic(true: torch.Tensor, weights: torch.Tensor):
    """A loss whose per-image term is Σ_j w_j (x_j − true_j)², batch mean."""
    return lambda code: (weights * (code - true) ** 2).sum(-1).mean()


def test_a_quadratic_loss_gives_signal_one_and_shuffled_truths_none():
    generator = torch.Generator().manual_seed(0)
    true = torch.randn(400, CODE_DIM, generator=generator)
    weights = torch.rand(CODE_DIM, generator=generator) + 0.5
    gamma = CODE_SLICES["gamma"]
    weights[gamma] = weights[gamma].view(9, 3)[:, :1].expand(9, 3).reshape(27)  # one weight per SH band
    names, basis = signal.directions(modes=5)
    code = torch.zeros_like(true)
    grad = signal.loss_gradient(_quadratic(true, weights), code)
    assert torch.allclose(grad, -2 * weights * true, atol=1e-5)  # each image's own gradient, not the batch mean's
    rows = signal.signal_rows(grad, true - code, names, basis, resamples=200)
    assert [(r["part"], r["entry"]) for r in rows] == names
    assert all(r["correlation"] == pytest.approx(1.0) and r["ci_low"] == pytest.approx(1.0) for r in rows)
    assert all(r["n_images"] == 400 for r in rows)
    shuffled = true[torch.randperm(400, generator=generator)]
    rows = signal.signal_rows(grad, shuffled, names, basis, resamples=200)
    assert all(abs(r["correlation"]) < 0.2 for r in rows)
    assert sum(r["ci_low"] < 0 < r["ci_high"] for r in rows) >= 0.8 * len(rows)


def test_a_part_the_loss_ignores_has_no_signal():
    """Only yaw in the loss: yaw's signal is 1, every other direction's gradient is zero on every face (NaN)."""
    true = torch.randn(50, CODE_DIM, generator=torch.Generator().manual_seed(1))
    weights = torch.zeros(CODE_DIM)
    weights[CODE_SLICES["rotation"].start + 1] = 1.0
    names, basis = signal.directions(modes=1)
    grad = signal.loss_gradient(_quadratic(true, weights), torch.zeros_like(true))
    correlations = dict(zip(names, signal.gradient_signal(grad, true, basis).tolist()))
    assert correlations.pop(("rotation", "yaw")) == pytest.approx(1.0)
    assert all(math.isnan(value) for value in correlations.values())


def test_bootstrap_interval_covers_a_mean_and_keeps_pairs():
    values = torch.arange(100, dtype=torch.float64)
    low, high = bootstrap_interval(lambda x: x.mean(0), values, resamples=500)
    assert float(low) < 49.5 < float(high) and float(high - low) < 25
    # Paired resampling: a perfect correlation stays perfect in every resample.
    low, high = bootstrap_interval(correlation, values, 3 * values + 1, resamples=100)
    assert float(low) == pytest.approx(1.0) and float(high) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        bootstrap_interval(lambda x: x.mean(0), values, values[:5])


def test_the_landmark_settings_are_the_learning_protocols():
    """NO_LANDMARKS and the soft options are what learning_cpu.yaml's cells set (they must not drift)."""
    from evaluation.suite.expand import expand_suite
    from evaluation.suite.spec import load_suite_spec
    from mofa_bench.config import config_from_dict

    cells = {cell.run_id: config_from_dict(cell.config)
             for cell in expand_suite(load_suite_spec("learning_cpu"))}
    with_landmarks = cells["mofa-per_vertex-resnet18-land1-s0"].loss
    assert signal.setting_loss(with_landmarks, True) == with_landmarks
    assert signal.setting_loss(with_landmarks, False) == cells["mofa-per_vertex-resnet18-land0-s0"].loss
    soft = cells["mofa-pytorch3d-resnet18-land1-s0"].renderer
    assert ("pytorch3d (soft)", soft.name, soft.options) == signal.RENDERERS["pytorch3d-soft"]
    with pytest.raises(InputError, match="loss.landmark"):
        signal.setting_loss(dataclasses.replace(with_landmarks, landmark=0.0), True)


@pytest.fixture(scope="module")
def setting(tmp_path_factory, tiny_model_path):
    config, decoder, batch = synthetic_test_setting(tmp_path_factory.mktemp("signal"), tiny_model_path, 32)
    return dataclasses.replace(config.loss, landmark=2e-3), decoder, batch


def test_the_landmark_loss_points_per_vertex_yaw_at_the_truth(setting):
    loss, decoder, batch = setting
    on = {(r["part"], r["entry"]): r for r in signal.measure(decoder, batch, loss, True, modes=2, resamples=200)}
    off = {(r["part"], r["entry"]): r for r in signal.measure(decoder, batch, loss, False, modes=2, resamples=200)}
    yaw = on[("rotation", "yaw")]
    assert yaw["correlation"] > 0.8 and yaw["ci_low"] > 0.5 and yaw["ci_low"] <= yaw["correlation"] <= yaw["ci_high"]
    assert off[("rotation", "yaw")]["correlation"] < yaw["correlation"] - 0.3  # the landmarks carry it
    # The light does not enter the landmark term: its signal is the photometric term's in both settings
    # (at the mean face every image has the same visible vertices, so ÷ visible is a common factor).
    assert on[("gamma", "band 2")]["correlation"] == pytest.approx(off[("gamma", "band 2")]["correlation"], abs=1e-6)
    # The same gradients against other faces' truths: no signal left.
    names, basis = signal.directions(modes=2)
    grad = signal.loss_gradient(signal.training_loss(decoder, batch, loss, True), torch.zeros_like(batch.codes))
    shuffled = batch.codes[torch.randperm(32, generator=torch.Generator().manual_seed(0))]
    assert abs(float(signal.gradient_signal(grad, shuffled, basis)[1])) < 0.3


def test_pytorch3d_soft_gives_its_own_signal(setting):
    renderer_or_skip("pytorch3d", "cpu", {})
    loss, decoder, batch = setting
    few = dataclasses.replace(batch, **{name: getattr(batch, name)[:8] for name in
                                        ("images", "indices", "codes", "vertices", "landmarks", "landmark_confidence",
                                         "masks") if getattr(batch, name) is not None})
    soft = signal.renderer_decoders(decoder, ["pytorch3d-soft"])["pytorch3d (soft)"]
    rows = signal.measure(soft, few, loss, False, modes=1, resamples=50)
    per_vertex = signal.measure(decoder, few, loss, False, modes=1, resamples=50)
    assert all(-1 <= r["correlation"] <= 1 for r in rows)
    assert [r["correlation"] for r in rows] != pytest.approx([r["correlation"] for r in per_vertex])


def test_heat_map_is_written(tmp_path):
    names, _ = signal.directions(modes=1)
    frame = pd.DataFrame([{"setting": signal.setting_label(renderer, landmarks), "part": part, "entry": entry,
                           "correlation": (0.5 if landmarks else -0.5) if part != "beta" else float("nan")}
                          for landmarks in (True, False) for renderer in ("per_vertex", "pytorch3d (soft)")
                          for part, entry in names])
    path = signal.plot(frame, tmp_path / "heat" / "signal.png")
    assert path.stat().st_size > 10_000


@pytest.fixture(scope="module")
def config_file(tmp_path_factory, tiny_model_path):
    """The synthetic test setting with the protocol's landmark weight, as YAML."""
    folder = tmp_path_factory.mktemp("signal_cli")
    config, _, _ = synthetic_test_setting(folder, tiny_model_path, 4)
    config = dataclasses.replace(config, loss=dataclasses.replace(config.loss, landmark=2e-3))
    return save_config(config, folder / "config.yaml")


def test_signal_end_to_end(config_file, tmp_path, capsys):
    out, figure = tmp_path / "tables" / "signal.csv", tmp_path / "signal.png"
    argv = ["diagnose", "signal", str(config_file), "--size", "6", "--modes", "2", "--renderers", "per_vertex",
            "--resamples", "50", "--out", str(out), "--figure", str(figure)]
    assert main(argv) == 0, capsys.readouterr().err
    frame = pd.read_csv(out)
    assert list(frame.columns[:8]) == ["renderer", "landmarks", "part", "entry", "correlation", "ci_low", "ci_high",
                                       "n_images"]
    assert len(frame) == 2 * (6 + 3 * 2 + 9) and set(frame["landmarks"]) == {True, False}
    assert (frame["n_images"] == 6).all() and (frame["renderer"] == "per_vertex").all()
    assert figure.stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "6 test faces" in printed and "per_vertex, no landmarks" in printed and "yaw" in printed
