"""A suite's named renderer set-ups (``renderers:``): one backend under several settings in one grid."""

from __future__ import annotations

import pytest

from evaluation.suite.expand import expand_suite
from evaluation.suite.spec import load_suite_spec, suite_from_dict, suite_to_dict
from mofa_bench.errors import ConfigError

SOFT = {"blur_radius": 0.5, "faces_per_pixel": 16}


def _suite(model_path, **changes) -> dict:
    suite = {
        "name": "variants",
        "set": {"model.source": str(model_path), "camera.image_size": 64, "device": "cpu", "data.test_size": 4},
        "renderers": {"pytorch3d_soft": {"name": "pytorch3d", "options": SOFT}},
        "grid": {"method": ["mofa"], "renderer": ["per_vertex", "pytorch3d", "pytorch3d_soft"], "seed": [0]},
        "cells": [{"match": {"renderer": "pytorch3d_soft"}, "set": {"optim.iterations": 7}}],
    }
    suite.update(changes)
    return suite


def test_a_named_set_up_trains_its_backend_with_its_options_under_its_label(tiny_model_path):
    cells = {c.values["renderer"]: c for c in expand_suite(suite_from_dict(_suite(tiny_model_path)))}
    soft, hard = cells["pytorch3d_soft"], cells["pytorch3d"]
    assert soft.run_id.startswith("mofa-pytorch3d_soft-") and hard.run_id.startswith("mofa-pytorch3d-")
    assert soft.config["renderer"] == {"name": "pytorch3d", "options": SOFT}
    assert soft.values["renderer"] == "pytorch3d_soft" and soft.record()["values"]["renderer"] == "pytorch3d_soft"
    assert hard.config["renderer"]["options"] == {} and hard.values["renderer"] == "pytorch3d"
    # Rules match the label, not the backend name.
    assert soft.config["optim"]["iterations"] == 7 and hard.config["optim"]["iterations"] != 7


def test_named_set_ups_survive_the_written_suite_file(tiny_model_path):
    spec = suite_from_dict(_suite(tiny_model_path))
    again = suite_from_dict(suite_to_dict(spec))
    assert again.renderers == spec.renderers
    assert [c.run_id for c in expand_suite(again)] == [c.run_id for c in expand_suite(spec)]


@pytest.mark.parametrize("renderers, message", [
    ({"pytorch3d": {"name": "pytorch3d"}}, "renderers.pytorch3d: the label is a renderer's own name"),
    ({"soft": {"name": "pytorch4d"}}, "renderers.soft.name: expected one of"),
    ({"soft": {"name": "pytorch3d", "opts": {}}}, "renderers.soft.opts: unknown key"),
])
def test_bad_set_ups_are_named(tiny_model_path, renderers, message):
    with pytest.raises(ConfigError, match=message):
        suite_from_dict(_suite(tiny_model_path, renderers=renderers))


def test_an_unknown_label_in_the_grid_lists_the_known_ones(tiny_model_path):
    with pytest.raises(ConfigError, match="grid.renderer.2.: unknown renderer 'pytorch3d_sharp'.*pytorch3d_soft"):
        suite_from_dict(_suite(tiny_model_path, grid={"renderer": ["per_vertex", "pytorch3d", "pytorch3d_sharp"]}))


def test_the_shipped_renderer_comparison_gives_every_cell_the_same_time():
    cells = expand_suite(load_suite_spec("renderers_cpu"))
    trained = [c for c in cells if c.values["method"] == "mofa"]
    assert {c.values["renderer"] for c in trained} == {"per_vertex", "pytorch3d", "pytorch3d_soft"}
    seeds = {}
    for c in trained:
        seeds.setdefault((c.values["renderer"], c.values["landmark_loss"] > 0), set()).add(c.values["seed"])
    assert all(len(s) >= 2 for s in seeds.values()) and len(seeds[("per_vertex", True)]) == 3
    # Each renderer validates ten times over its own steps.
    assert all(c.config["optim"]["iterations"] == 10 * c.config["val_every"] for c in trained)
