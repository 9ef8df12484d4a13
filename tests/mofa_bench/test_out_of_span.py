"""The out-of-span and domain-gap protocols: held-out detail, its splits and its scoring."""

import dataclasses

import pytest
import torch

from helpers import assert_close
from mofa_bench.camera import Camera
from mofa_bench.config import DataConfig, load_config
from mofa_bench.data.out_of_span import (OutOfSpanConfig, OutOfSpanFaces, held_out_modes, mesh_edges, model_span,
                                         neighbour_average)
from mofa_bench.data.splits import synthetic_split
from mofa_bench.data.synthetic import SyntheticFaces
from mofa_bench.decoder import MoFADecoder
from mofa_bench.errors import ConfigError, InputError
from mofa_bench.sampling import CodePrior
from mofa_bench.scoring.protocol import evaluate_codes

DETAIL = OutOfSpanConfig(shape_modes=6, shape_std_mm=3.0, reflectance_modes=5, reflectance_std=0.05, smoothing=5)


@pytest.fixture(scope="module")
def decoder(tiny_model):
    return MoFADecoder(tiny_model, Camera(64))


def _data(**changes) -> DataConfig:
    return dataclasses.replace(DataConfig(backgrounds=DataConfig().backgrounds.disabled()), **changes)


def test_held_out_modes_are_orthonormal_and_outside_the_model(tiny_model):
    for kind, count in (("shape", 6), ("reflectance", 5)):
        modes = held_out_modes(tiny_model, count, kind, smoothing=5, seed=3)
        flat = modes.reshape(-1, count)
        assert_close(flat.T @ flat, torch.eye(count, dtype=flat.dtype), atol=1e-10, rtol=0)
        q, _ = torch.linalg.qr(model_span(tiny_model, kind))
        assert float((q.T @ flat).abs().max()) < 1e-10
        assert torch.equal(modes, held_out_modes(tiny_model, count, kind, smoothing=5, seed=3))
        assert not torch.equal(modes, held_out_modes(tiny_model, count, kind, smoothing=5, seed=4))


def test_smoothing_averages_the_one_ring(tiny_model):
    edges = mesh_edges(tiny_model.triangles)
    assert bool((edges[:, 0] < edges[:, 1]).all()) and len(edges) == 3 * tiny_model.num_triangles // 2
    values = torch.randn(tiny_model.num_vertices, 2, dtype=torch.float64)
    averaged = neighbour_average(values, edges)
    i = 5
    ring = torch.cat([edges[edges[:, 0] == i, 1], edges[edges[:, 1] == i, 0]])
    assert_close(averaged[i], values[ring].mean(0))


def test_out_of_span_faces_add_detail_to_the_in_span_faces(decoder):
    data = _data(out_of_span=DETAIL)
    detailed = synthetic_split(decoder, data, "test", 8)
    plain = synthetic_split(decoder, _data(), "test", 8)
    assert isinstance(detailed, OutOfSpanFaces) and type(plain) is SyntheticFaces
    a, b = detailed.batch(torch.arange(8)), plain.batch(torch.arange(8))
    assert torch.equal(a.codes, b.codes)
    offset = a.vertices - b.vertices
    rms = float(offset.pow(2).sum(-1).mean().sqrt())
    assert 1.0 < rms < 6.0  # about shape_std_mm = 3 over 8 faces
    assert float((a.images - b.images).abs().mean()) > 1e-3
    # A sample is the same in any batch, and the detail depends on the held-out space's own seed.
    assert_close(detailed.batch(torch.tensor([3])).vertices[0], a.vertices[3])
    reseeded = synthetic_split(decoder, _data(out_of_span=dataclasses.replace(DETAIL, seed=1)), "test", 8)
    assert not torch.equal(reseeded.batch(torch.arange(2)).vertices, a.vertices[:2])
    assert detailed.describe()["out_of_span"]["shape_modes"] == 6


def test_the_true_code_scores_the_held_out_detail_and_the_true_face_scores_zero(decoder):
    batch = synthetic_split(decoder, _data(out_of_span=DETAIL), "test", 4).batch(torch.arange(4))
    by_code = evaluate_codes(decoder, batch.codes, batch)
    assert float(by_code["geometric_model_mm"].min()) > 0.5
    assert float(by_code["geometric_mm"].min()) > 0.5
    exact = decoder.form_geometry(batch.vertices, decoder.form(batch.codes).reflectance, batch.codes)
    scored = evaluate_codes(decoder, batch.codes, batch, formed=exact)
    for name in ("geometric_mm", "geometric_model_mm", "geometric_procrustes_mm", "landmark_px"):
        assert float(scored[name].max()) < 1e-4, name
    in_span = synthetic_split(decoder, _data(), "test", 4).batch(torch.arange(4))
    assert float(evaluate_codes(decoder, in_span.codes, in_span)["geometric_mm"].max()) < 1e-4


def test_target_prior_draws_validation_test_and_target_but_not_training(decoder):
    wide = CodePrior(yaw_deg=80.0, expression_std=1.5)
    data = _data(target_prior=wide)
    assert synthetic_split(decoder, data, "train").prior == CodePrior()
    for split in ("val", "test", "target"):
        assert synthetic_split(decoder, data, split, 4).prior == wide
    target, test = synthetic_split(decoder, data, "target", 4), synthetic_split(decoder, data, "test", 4)
    assert not torch.equal(target.codes(torch.arange(4)), test.codes(torch.arange(4)))


def test_config_keys_and_their_errors(tiny_model_path):
    config = load_config(None, [f"model.source={tiny_model_path}", "data.out_of_span={shape_modes: 4}",
                                "data.target_prior={yaw_deg: 60}"])
    assert config.data.out_of_span.enabled and config.data.target_prior.yaw_deg == 60
    assert not load_config(None, []).data.out_of_span.enabled
    with pytest.raises(ConfigError, match="data.out_of_span: shape_modes: expected an integer >= 0"):
        load_config(None, ["data.out_of_span={shape_modes: -1}"])
    with pytest.raises(ConfigError, match="data.out_of_span.colour: unknown key"):
        load_config(None, ["data.out_of_span={colour: 1}"])
    with pytest.raises(InputError, match="do not fit"):
        held_out_modes(__import__("helpers").tiny_face_model(subdivisions=1), 4, "shape")
