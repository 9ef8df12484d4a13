"""Suite files: checked key by key; the grid expands into cells with run ids and configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from evaluation.suite.evaluate import bootstrap_ci
from evaluation.suite.expand import expand_suite, select_cells, stage_config
from evaluation.suite.spec import load_suite_spec, suite_from_dict, suite_to_dict
from mofa_bench.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "mofa_bench" / "configs"


def _suite(model_path: Path, **changes) -> dict:
    suite = {
        "name": "tiny",
        "set": {"model.source": str(model_path), "camera.image_size": 64, "device": "cpu",
                "loss.landmark": 1.0e-3, "data.test_size": 4},
        "grid": {"method": ["mofa"], "renderer": ["per_vertex"], "encoder": ["resnet18"],
                 "landmark_loss": [0, 1], "seed": [0, 1]},
    }
    suite.update(changes)
    return suite


def _cells(model_path: Path, **changes):
    return expand_suite(suite_from_dict(_suite(model_path, **changes)))


class TestLoad:
    def test_shipped_smoke_suite_loads_and_expands(self):
        spec = load_suite_spec("smoke")
        assert spec.base == (CONFIGS / "synthetic.yaml").resolve()
        cells = expand_suite(spec)
        assert [c.run_id for c in cells] == ["mofa-per_vertex-resnet18-land0-s0", "mofa-per_vertex-resnet18-land1-s0"]
        assert all(c.protocol == "synthetic-64px-L1" and c.test_size == 16 for c in cells)

    def test_base_is_found_next_to_the_suite_file(self, tmp_path, tiny_model_path):
        (tmp_path / "train.yaml").write_text(yaml.safe_dump({"optim": {"iterations": 7}}))
        path = tmp_path / "suite.yaml"
        path.write_text(yaml.safe_dump(_suite(tiny_model_path, base="train.yaml")))
        spec = load_suite_spec(path)
        assert spec.base == (tmp_path / "train.yaml").resolve()
        assert expand_suite(spec)[0].config["optim"]["iterations"] == 7

    def test_name_defaults_to_the_file_stem_and_exponent_floats_are_numbers(self, tmp_path, tiny_model_path):
        data = _suite(tiny_model_path)
        del data["name"]
        path = tmp_path / "my_suite.yaml"
        path.write_text(yaml.safe_dump(data).replace("0.001", "1e-3"))
        spec = load_suite_spec(path)
        assert spec.name == "my_suite"
        assert spec.overrides["loss.landmark"] == pytest.approx(1e-3)

    def test_resolved_suite_reads_back_equal(self, tiny_model_path):
        spec = suite_from_dict(_suite(tiny_model_path, cells=[
            {"match": {"landmark_loss": 1, "seed": [0, 1]}, "set": {"optim.lr": 0.01}},
            {"match": {"method": "mofa"}, "stages": [{"name": "a"}, {"name": "b", "set": {"optim.iterations": 3}}]},
        ], executor="local_submitit", slurm={"timeout_min": 5}))
        assert suite_from_dict(yaml.safe_load(yaml.safe_dump(suite_to_dict(spec)))) == spec


BAD_KEYS = [
    ({"colour": 1}, r"colour: unknown key; known keys: name, base, set, renderers, grid"),
    ({"grid": {"renderr": ["per_vertex"]}}, r"grid\.renderr: unknown axis; known axes: method, renderer"),
    ({"grid": {"renderer": ["per_vertex", "mesa"]}}, r"grid\.renderer\[1\]: unknown renderer 'mesa'"),
    ({"grid": {"encoder": ["resnet19"]}}, r"grid\.encoder\[0\]: unknown encoder 'resnet19'"),
    ({"grid": {"method": ["mofa", "vae"]}}, r"grid\.method\[1\]: unknown method 'vae'"),
    ({"grid": {"seed": 0}}, r"grid\.seed: expected a non-empty list"),
    ({"grid": {"seed": [0, -1]}}, r"grid\.seed\[1\]: expected an integer ≥ 0"),
    ({"grid": {"landmark_loss": [0, 2]}}, r"grid\.landmark_loss\[1\]: expected 0/1 or false/true"),
    ({"grid": {"seed": [0, 0]}}, r"grid\.seed: a value is given twice"),
    ({"cells": [{"mach": {"seed": 0}, "set": {}}]}, r"cells\[0\]\.mach: unknown key; known keys: match, set, stages"),
    ({"cells": [{"match": {"colour": 0}, "set": {}}]}, r"cells\[0\]\.match\.colour: unknown axis"),
    ({"cells": [{"match": {"seed": "one"}, "set": {}}]}, r"cells\[0\]\.match\.seed: expected an integer"),
    ({"cells": [{"match": {"seed": 0}}]}, r"cells\[0\]: expected 'set' and/or 'stages'"),
    ({"cells": [{"match": {"seed": 0}, "stages": [{"name": "a", "previous_checkpoint": "method_options.x"}]}]},
     r"cells\[0\]\.stages\[0\]\.previous_checkpoint: the first stage has no previous stage"),
    ({"cells": [{"match": {"seed": 0}, "stages": [{"name": "a", "sett": {}}]}]},
     r"cells\[0\]\.stages\[0\]\.sett: unknown key"),
    ({"set": {"optim..lr": 1}}, r"set\.optim\.\.lr: expected a dotted config key"),
    ({"samples": 0}, r"samples: expected an integer ≥ 1"),
    ({"executor": "cloud"}, r"executor: expected one of local, slurm, local_submitit"),
    ({"slurm": {"slurm_partitio": "gpu"}}, r"slurm\.slurm_partitio: unknown submitit option"),
    ({"slurm": {"timeout_min": "1h"}}, r"slurm\.timeout_min: expected int"),
    ({"base": "no/such/train.yaml"}, r"base: no/such/train\.yaml not found"),
]

BAD_CONFIGS = [
    ({"set": {"optim.iterationz": 3}}, r"^set: optim\.iterationz: unknown key"),
    ({"set": {"optim.lr": "fast"}}, r"^set: optim\.lr: expected a number"),
    ({"set": {"renderer.options": {"blur": 1}}}, r"^set: renderer\.options\.blur: unknown option"),
    ({"cells": [{"match": {"seed": 1}, "set": {"data.train_sise": 3}}]},
     r"^cells\[0\]\.set \(.*seed=1\): data\.train_sise: unknown key"),
    ({"cells": [{"match": {"seed": 1}, "stages": [{"name": "a", "set": {"optim.batch_size": 0}}]}]},
     r"^cells\[0\]\.stages\[0\]\.set \(.*seed=1\): optim\.batch_size: expected"),
    ({"set": {"loss.landmark": 0.0}}, r"^grid\.landmark_loss: 'on' uses the suite config's loss\.landmark"),
    ({"cells": [{"match": {"seed": 1}, "set": {"seed": 0}}]}, r"^grid: the cells .* both make run"),
]


class TestBadKeys:
    @pytest.mark.parametrize("changes, message", BAD_KEYS, ids=[m for _, m in BAD_KEYS])
    def test_bad_suite_key_is_named(self, tiny_model_path, changes, message):
        with pytest.raises(ConfigError, match=message):
            suite_from_dict(_suite(tiny_model_path, **changes))

    @pytest.mark.parametrize("changes, message", BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
    def test_bad_config_key_is_named_with_its_layer(self, tiny_model_path, changes, message):
        data = _suite(tiny_model_path, **{k: v for k, v in changes.items() if k != "set"})
        data["set"].update(changes.get("set", {}))
        with pytest.raises(ConfigError, match=message):
            expand_suite(suite_from_dict(data))

    def test_file_errors_name_the_file(self, tmp_path, tiny_model_path):
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(_suite(tiny_model_path, grid={"sed": [0]})))
        with pytest.raises(ConfigError, match=r"suite file .*bad\.yaml: grid\.sed: unknown axis"):
            load_suite_spec(path)
        with pytest.raises(ConfigError, match="does not exist"):
            load_suite_spec(tmp_path / "missing.yaml")


class TestExpand:
    def test_grid_product_in_axis_order_with_readable_run_ids(self, tiny_model_path):
        cells = _cells(tiny_model_path)
        assert [c.run_id for c in cells] == [
            "mofa-per_vertex-resnet18-land0-s0", "mofa-per_vertex-resnet18-land0-s1",
            "mofa-per_vertex-resnet18-land1-s0", "mofa-per_vertex-resnet18-land1-s1",
        ]
        assert cells[1].grid == {"method": "mofa", "renderer": "per_vertex", "encoder": "resnet18",
                                 "landmark_loss": False, "seed": 1}

    def test_landmark_on_uses_the_suite_weight_and_off_is_zero(self, tiny_model_path):
        cells = _cells(tiny_model_path)
        assert [c.config["loss"]["landmark"] for c in cells] == [0.0, 0.0, 1e-3, 1e-3]
        assert [c.values["landmark_loss"] for c in cells] == [0.0, 0.0, 1e-3, 1e-3]

    def test_seed_sets_the_run_seed_and_keeps_the_faces(self, tiny_model_path):
        cells = _cells(tiny_model_path)
        assert [(c.config["seed"], c.config["data"]["seed"]) for c in cells[:2]] == [(0, 1234), (1, 1234)]
        assert {c.test_seed for c in cells} == {1234}

    def test_missing_axes_keep_the_base_values(self, tiny_model_path):
        cells = _cells(tiny_model_path, grid={"seed": [3]})
        assert [c.run_id for c in cells] == ["mofa-per_vertex-alexnet-land1-s3"]

    def test_every_matching_rule_applies_in_file_order(self, tiny_model_path):
        cells = _cells(tiny_model_path, cells=[
            {"match": {"landmark_loss": 1}, "set": {"optim.lr": 0.01, "optim.iterations": 5}},
            {"match": {"seed": [1]}, "set": {"optim.lr": 0.02}},
        ])
        lr = {c.run_id[-8:]: (c.config["optim"]["lr"], c.config["optim"]["iterations"]) for c in cells}
        assert lr == {"land0-s0": (0.1, 300), "land0-s1": (0.02, 300), "land1-s0": (0.01, 5), "land1-s1": (0.02, 5)}
        assert cells[3].rules == (0, 1)
        assert cells[3].overrides["optim.lr"] == 0.02

    def test_a_mapping_value_replaces_the_option_dict(self, tiny_model_path):
        options = {"blur_radius": 2.0, "faces_per_pixel": 4, "sigma": 0.5}
        cells = _cells(tiny_model_path, grid={"renderer": ["per_vertex", "pytorch3d"]},
                       cells=[{"match": {"renderer": "pytorch3d"}, "set": {"renderer.options": options}}])
        assert [c.config["renderer"]["options"] for c in cells] == [{}, options]

    def test_learned_decoder_gets_its_two_stages(self, tiny_model_path):
        cell = _cells(tiny_model_path, grid={"method": ["learned_decoder"]})[0]
        assert [s.name for s in cell.stages] == ["decoder", "encoder"]
        first = stage_config(cell, cell.stages[0])
        second = stage_config(cell, cell.stages[1], "/runs/x/stage_decoder/checkpoints/last.pt")
        assert first["method_options"] == {"stage": "decoder"}
        assert second["method_options"] == {"stage": "encoder",
                                             "decoder_checkpoint": "/runs/x/stage_decoder/checkpoints/last.pt"}

    def test_a_rule_gives_its_own_stages(self, tiny_model_path):
        cells = _cells(tiny_model_path, grid={"seed": [0]}, cells=[
            {"match": {"seed": 0}, "stages": [{"name": "warm", "set": {"optim.iterations": 2}}, {"name": "main"}]}])
        assert [s.name for s in cells[0].stages] == ["warm", "main"]
        assert stage_config(cells[0], cells[0].stages[0])["optim"]["iterations"] == 2

    def test_only_selects_by_glob(self, tiny_model_path):
        cells = _cells(tiny_model_path)
        assert [c.run_id for c in select_cells(cells, "*-land1-*")] == [c.run_id for c in cells[2:]]
        with pytest.raises(ConfigError, match=r"--only \*pytorch3d\*: matches no run id"):
            select_cells(cells, "*pytorch3d*")


class TestBootstrap:
    def test_interval_brackets_the_mean_and_is_seeded(self):
        values = {"photometric": torch.linspace(0.0, 1.0, 50)}
        low, high = bootstrap_ci(values)["photometric"]
        assert low < 0.5 < high
        assert bootstrap_ci(values) == bootstrap_ci(values)
        assert bootstrap_ci(values, seed=1) != bootstrap_ci(values)

    def test_normal_mean_interval_matches_the_textbook_width(self):
        generator = torch.Generator().manual_seed(0)
        values = {"x": torch.randn(400, generator=generator, dtype=torch.float64)}
        low, high = bootstrap_ci(values)["x"]
        half = 1.96 * float(values["x"].std()) / 20.0
        assert (high - low) / 2 == pytest.approx(half, rel=0.15)

    def test_constant_metric_has_a_point_interval_and_nan_stays_nan(self):
        ci = bootstrap_ci({"c": torch.full((10,), 3.0), "n": torch.full((10,), float("nan"))}, resamples=20)
        assert ci["c"] == (3.0, 3.0)
        assert all(v != v for v in ci["n"])


class TestExclude:
    def test_excluded_points_are_left_out(self, tiny_model_path):
        cells = _cells(tiny_model_path, grid={"method": ["mofa", "conv_autoencoder"],
                                              "renderer": ["per_vertex", "pytorch3d"], "seed": [0]},
                       exclude=[{"method": "conv_autoencoder", "renderer": ["pytorch3d"]}])
        assert sorted(c.run_id.rsplit("-", 3)[0] for c in cells) == [
            "conv_autoencoder-per_vertex", "mofa-per_vertex", "mofa-pytorch3d"]

    def test_bad_exclude_names_the_key(self, tiny_model_path):
        with pytest.raises(ConfigError, match=r"exclude\[0\].renderr: unknown axis"):
            _cells(tiny_model_path, exclude=[{"renderr": "pytorch3d"}])
        with pytest.raises(ConfigError, match="exclude: expected a list"):
            _cells(tiny_model_path, exclude={"renderer": "pytorch3d"})

    def test_round_trip_keeps_exclude(self, tiny_model_path):
        spec = suite_from_dict(_suite(tiny_model_path, exclude=[{"seed": 1}]))
        assert suite_from_dict(suite_to_dict(spec)).exclude == spec.exclude


def test_shipped_quick_suite_has_every_cpu_renderer_and_each_baseline_once():
    cells = expand_suite(load_suite_spec("quick"))
    ids = [c.run_id for c in cells]
    assert ids == ["mean_face-per_vertex-resnet18-land1-s0", "mofa-per_vertex-resnet18-land1-s0",
                   "mofa-pytorch3d-resnet18-land1-s0", "conv_autoencoder-per_vertex-resnet18-land1-s0",
                   "learned_decoder-per_vertex-resnet18-land1-s0", "fit-per_vertex-resnet18-land1-s0"]
    assert cells[2].config["renderer"]["options"] == {"blur_radius": 0.25, "faces_per_pixel": 8}
    assert {c.test_size for c in cells} == {256}
    steps = {c.run_id.split("-")[0] + "-" + c.config["renderer"]["name"]: c.config["optim"]["iterations"]
             for c in cells}
    assert steps["mofa-per_vertex"] == 400 and steps["mofa-pytorch3d"] < steps["mofa-per_vertex"] / 4
    learned = cells[4]
    assert [s.name for s in learned.stages] == ["decoder", "encoder"]
    assert learned.stages[1].previous_checkpoint == "method_options.decoder_checkpoint"


@pytest.mark.parametrize("path", sorted((CONFIGS / "suites").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_suite_expands(path):
    assert expand_suite(load_suite_spec(path))
