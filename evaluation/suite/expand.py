"""A suite's grid → cells: run ids, overrides and a train config checked for each.

A cell's config is built in layers, each checked by the train config's own schema
(:func:`mofa_bench.config.config_from_dict`); an error names the layer's key:

1. the ``base`` config, then the suite's ``set`` (the *suite config*);
2. the grid point: ``method`` → ``method``, ``renderer`` → ``renderer.name``, ``encoder`` →
   ``encoder.name``, ``landmark_loss`` → ``loss.landmark`` (off: 0; on: the suite config's
   weight, which must be > 0), ``seed`` → ``seed`` (the initialisation and the order of
   the training batches; the training, validation and test faces follow ``data.seed``
   and are the same for every seed, so seeds differ only in what a run does with them);
3. the ``set`` of every matching cell rule, in file order;
4. at run time, each training stage's ``set`` (:func:`stage_config`).

Every cell is scored on the same test faces: the test split drawn with the suite
config's ``data.seed`` (the cell's ``test_seed``). The run id is
``{method}-{renderer}-{encoder}-land{0|1}-s{seed}`` of the cell's final config, e.g.
``mofa-per_vertex-resnet18-land1-s0``.
"""

from __future__ import annotations

import copy
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from evaluation.results.grid import expand_grid
from evaluation.suite.spec import DEFAULT_STAGES, Stage, SuiteSpec
from mofa_bench.config import TrainConfig, config_from_dict, config_to_dict, load_config, set_dotted
from mofa_bench.errors import ConfigError

__all__ = [
    "Cell",
    "expand_suite",
    "protocol_name",
    "select_cells",
    "stage_config",
    "suite_config",
]


@dataclass(frozen=True)
class Cell:
    """One run of a suite.

    Attributes:
        run_id: readable unique id (the run's folder name).
        grid: the grid point, ``{axis: value}`` for the axes the suite gives.
        values: the five axes (:data:`~evaluation.suite.spec.AXES`) as the final config has
            them; ``landmark_loss`` is the landmark weight.
        overrides: dotted keys set on the suite config: the grid's, then the rules'.
        rules: indices (in ``cells``) of the rules that matched.
        stages: training stages; empty for one plain training.
        config: the resolved train config (:func:`~mofa_bench.config.config_to_dict`).
        protocol: short name of the test protocol, e.g. ``"synthetic-64px-L1"``.
        test_seed: ``data.seed`` of the test split.
        test_size: number of test images.
    """

    run_id: str
    grid: dict[str, Any]
    values: dict[str, Any]
    overrides: dict[str, Any]
    rules: tuple[int, ...]
    stages: tuple[Stage, ...]
    config: dict[str, Any] = field(repr=False)
    protocol: str = ""
    test_seed: int = 0
    test_size: int = 0

    def record(self) -> dict[str, Any]:
        """The cell as JSON-ready data (``cell.json``, resolved config included); equal records: the same run."""
        return {
            "run_id": self.run_id,
            "grid": {k: (int(v) if isinstance(v, bool) else v) for k, v in self.grid.items()},
            "values": dict(self.values),
            "overrides": copy.deepcopy(self.overrides),
            "stages": [{"name": s.name, "set": copy.deepcopy(s.overrides),
                        "previous_checkpoint": s.previous_checkpoint} for s in self.stages],
            "protocol": self.protocol,
            "test_seed": self.test_seed,
            "test_size": self.test_size,
            "config": copy.deepcopy(self.config),
        }


# ---------------------------------------------------------------------------- layers
def _apply(data: dict[str, Any], overrides: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A copy of config dict ``data`` with dotted ``overrides`` set (errors named ``where: key``)."""
    out = copy.deepcopy(data)
    for key, value in overrides.items():
        set_dotted(out, key, value, where)
    return out


def _checked(data: dict[str, Any], where: str) -> TrainConfig:
    try:
        return config_from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from err


def suite_config(spec: SuiteSpec) -> dict[str, Any]:
    """The base config with the suite's ``set`` applied, checked (layer 1)."""
    try:
        base = config_to_dict(load_config(spec.base))
    except ConfigError as err:
        raise ConfigError(f"base: {err}") from err
    data = _apply(base, spec.overrides, "set")
    return config_to_dict(_checked(data, "set"))


def protocol_name(config: TrainConfig) -> str:
    """``synthetic-<size>px-L<subdivisions>`` (default model) or ``synthetic-<size>px-<model file stem>``."""
    model = config.model
    tag = f"L{model.subdivisions}" if model.source == "default" else Path(model.source).stem
    return f"synthetic-{config.camera.image_size}px-{tag}"


def _grid_overrides(point: Mapping[str, Any], base: dict[str, Any],
                    variants: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if "method" in point:
        overrides["method"] = point["method"]
    if point.get("renderer") in variants:  # a named set-up: its backend and options
        overrides["renderer.name"] = variants[point["renderer"]]["name"]
        overrides["renderer.options"] = copy.deepcopy(variants[point["renderer"]]["options"])
    elif "renderer" in point:
        overrides["renderer.name"] = point["renderer"]
    if "encoder" in point:
        overrides["encoder.name"] = point["encoder"]
    if "landmark_loss" in point:
        weight = float(base["loss"]["landmark"])
        if point["landmark_loss"] and weight <= 0:
            raise ConfigError("grid.landmark_loss: 'on' uses the suite config's loss.landmark, which is "
                              f"{weight}; set a weight > 0 (e.g. set: {{loss.landmark: 1.0e-3}})")
        overrides["loss.landmark"] = weight if point["landmark_loss"] else 0.0
    if "seed" in point:
        overrides["seed"] = point["seed"]
    return overrides


def _values(config: TrainConfig, point: Mapping[str, Any], variants: Mapping[str, Any]) -> dict[str, Any]:
    """The axes as the config has them; a named renderer set-up of the grid keeps its label."""
    renderer = point["renderer"] if point.get("renderer") in variants else config.renderer.name
    return {"method": config.method, "renderer": renderer, "encoder": config.encoder.name,
            "landmark_loss": float(config.loss.landmark), "seed": config.seed}


def _match_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Axis values as rules compare them (``landmark_loss`` on/off)."""
    return {**values, "landmark_loss": values["landmark_loss"] > 0}


def _run_id(values: Mapping[str, Any]) -> str:
    land = int(values["landmark_loss"] > 0)
    return f"{values['method']}-{values['renderer']}-{values['encoder']}-land{land}-s{values['seed']}"


def stage_config(cell: Cell, stage: Stage, previous: str | Path | None = None,
                 where: str | None = None) -> dict[str, Any]:
    """The config dict of one training stage of ``cell``, checked.

    Args:
        cell: the cell.
        stage: one of its stages.
        previous: the previous stage's checkpoint, set at ``stage.previous_checkpoint``.
        where: how errors name the stage (default ``run <run_id>: stage <name>``).

    Raises:
        ConfigError: the stage's overrides give an invalid config (named by ``where``).
    """
    where = where or f"run {cell.run_id}: stage {stage.name}"
    data = _apply(cell.config, stage.overrides, where)
    if stage.previous_checkpoint:
        set_dotted(data, stage.previous_checkpoint, str(previous or "<previous stage>/checkpoints/last.pt"), where)
    return config_to_dict(_checked(data, where))


# ---------------------------------------------------------------------------- cells
def expand_suite(spec: SuiteSpec) -> list[Cell]:
    """Every cell of a suite, in grid order (first axis of :data:`AXES` slowest).

    Raises:
        ConfigError: a layer gives an invalid config (named by layer and key), or two
            cells share a run id.
    """
    base = suite_config(spec)
    test_seed = int(base["data"]["seed"])
    cells: list[Cell] = []
    for point in expand_grid(spec.grid) if spec.grid else [{}]:
        if any(all(point.get(axis, object()) in allowed for axis, allowed in item.items()) for item in spec.exclude):
            continue
        label = ", ".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in point.items()) or "base"
        grid_overrides = _grid_overrides(point, base, spec.renderers)
        data = _apply(base, grid_overrides, f"grid ({label})")
        config = _checked(data, f"grid ({label})")
        overrides = dict(grid_overrides)
        matched: list[int] = []
        stages: tuple[Stage, ...] | None = None
        origin = ""
        for index, rule in enumerate(spec.cells):
            if not rule.matches(_match_values(_values(config, point, spec.renderers))):
                continue
            where = f"cells[{index}].set ({label})"
            data = _apply(config_to_dict(config), rule.overrides, where)
            config = _checked(data, where)
            overrides.update(rule.overrides)
            matched.append(index)
            if rule.stages is not None:
                stages, origin = rule.stages, f"cells[{index}].stages"
        if stages is None:
            stages, origin = DEFAULT_STAGES.get(config.method, ()), f"default stages of {config.method}"
        values = _values(config, point, spec.renderers)
        cell = Cell(run_id=_run_id(values), grid=dict(point), values=values, overrides=overrides,
                    rules=tuple(matched), stages=stages, config=config_to_dict(config),
                    protocol=protocol_name(config), test_seed=test_seed, test_size=config.data.test_size)
        for position, stage in enumerate(stages):
            stage_config(cell, stage, where=f"{origin}[{position}].set ({label})")
        cells.append(cell)
    seen: dict[str, Cell] = {}
    for cell in cells:
        if cell.run_id in seen:
            raise ConfigError(f"grid: the cells {seen[cell.run_id].grid} and {cell.grid} both make run "
                              f"{cell.run_id} (a cell rule sets an axis the grid varies)")
        seen[cell.run_id] = cell
    return cells


def select_cells(cells: list[Cell], pattern: str | None) -> list[Cell]:
    """The cells whose run id matches the glob ``pattern`` (all when ``None``).

    Raises:
        ConfigError: the pattern matches no run id.
    """
    if pattern is None:
        return list(cells)
    chosen = [cell for cell in cells if fnmatch.fnmatchcase(cell.run_id, pattern)]
    if not chosen:
        raise ConfigError(f"--only {pattern}: matches no run id; run ids: "
                          f"{', '.join(cell.run_id for cell in cells)}")
    return chosen

