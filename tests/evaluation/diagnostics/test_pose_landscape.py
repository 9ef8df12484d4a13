"""evaluation.diagnostics.pose_landscape: the photometric loss of the mean face around the true pose."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from helpers import renderer_or_skip, synthetic_test_setting
from mofa_bench.code_vector import CODE_SLICES
from mofa_bench.losses import photometric_loss
from evaluation.diagnostics import pose_landscape


def test_mean_face_keeps_the_true_pose_and_the_named_light_entries():
    true = torch.randn(3, 257)
    code = pose_landscape.mean_face_at_true_pose(true, 3)
    for part in ("rotation", "translation"):
        assert torch.equal(code[:, CODE_SLICES[part]], true[:, CODE_SLICES[part]])
    gamma = CODE_SLICES["gamma"]
    assert torch.equal(code[:, gamma][:, :3], true[:, gamma][:, :3])
    assert int((code[:, gamma][:, 3:] != 0).sum()) == 0
    for part in ("alpha", "delta", "beta"):
        assert int((code[:, CODE_SLICES[part]] != 0).sum()) == 0


@pytest.fixture(scope="module")
def frame(tmp_path_factory, tiny_model_path):
    _, decoder, batch = synthetic_test_setting(tmp_path_factory.mktemp("runs"), tiny_model_path, 8)
    return pd.DataFrame(pose_landscape.landscape(decoder, batch))


def test_one_row_per_light_normalization_axis_and_offset(frame):
    expected = len(pose_landscape.LIGHTS) * len(pose_landscape.NORMALIZATIONS) * sum(
        len(offsets) for _, _, offsets in pose_landscape.AXES.values())
    assert len(frame) == expected
    assert frame["photometric"].notna().all() and (frame["photometric"] > 0).all()


def test_true_light_over_visible_vertices_is_lowest_at_the_true_pose(frame):
    part = frame[(frame["light"] == "true light") & (frame["normalization"] == "weights")]
    for axis, curve in part.groupby("axis"):
        at_truth = float(curve.loc[curve["offset"] == 0.0, "photometric"].iloc[0])
        assert at_truth == pytest.approx(curve["photometric"].min()), axis
    # The same faces with every sample counted (÷ all vertices) score a face turned far away lower.
    paper = frame[(frame["light"] == "true light") & (frame["normalization"] == "paper") & (frame["axis"] == "yaw")]
    assert float(paper.loc[paper["offset"].abs() == 1.5, "photometric"].min()) < \
        float(paper.loc[paper["offset"] == 0.0, "photometric"].iloc[0])


def test_figure_is_written(frame, tmp_path):
    path = tmp_path / "landscape.png"
    pose_landscape.plot(frame, path)
    assert path.stat().st_size > 10_000


def test_gradient_alignment_is_the_correlation_of_the_negative_gradient_with_the_truth(tiny_model_path, tmp_path):
    _, decoder, batch = synthetic_test_setting(tmp_path, tiny_model_path, 16)
    rows = pose_landscape.gradient_alignment(decoder, batch)
    assert {(r["light"], r["parameter"]) for r in rows} == {
        (light, name) for light in pose_landscape.LIGHTS for name in pose_landscape.POSE_PARAMETERS}
    assert all(-1.0 <= r["correlation"] <= 1.0 for r in rows)
    # Images of faces shifted sideways: the gradient at x = 0 points towards each face's shift.
    shifted = batch.codes.clone()
    shifted[:, CODE_SLICES["rotation"]] = 0.0
    shifted[:, CODE_SLICES["translation"].start] = torch.linspace(-10.0, 10.0, 16)
    images, _ = decoder.with_renderer("per_vertex").render(shifted)
    moved = type(batch)(**{**batch.__dict__, "images": images, "codes": shifted})
    x = {r["light"]: r["correlation"] for r in pose_landscape.gradient_alignment(decoder, moved)
         if r["parameter"] == "x"}
    assert x["true light"] > 0.5


def test_gradient_alignment_through_a_soft_rasterizer(tmp_path, tiny_model_path):
    """``--set renderer.name=pytorch3d``: the gradient a PyTorch3D run gets, on the same faces."""
    renderer_or_skip("pytorch3d", "cpu", {})
    _, decoder, batch = synthetic_test_setting(tmp_path, tiny_model_path, 6)
    soft = decoder.with_renderer("pytorch3d", blur_radius=0.5, faces_per_pixel=4)
    code = pose_landscape.mean_face_at_true_pose(batch.codes, 27)
    per_vertex = photometric_loss(decoder.photometric_samples(decoder.form(code), batch.images))
    rasterized = photometric_loss(soft.photometric_samples(soft.form(code), batch.images))
    assert float(rasterized) != pytest.approx(float(per_vertex))  # a different loss, not a relabelled one
    rows = pose_landscape.gradient_alignment(soft, batch)
    assert len(rows) == len(pose_landscape.LIGHTS) * len(pose_landscape.POSE_PARAMETERS)
    assert all(-1.0 <= row["correlation"] <= 1.0 for row in rows)
