"""Suite files: a YAML grid of training runs, read into frozen dataclasses and checked key by key.

A suite file::

    name: quick
    base: synthetic      # the train config every cell starts from (a packaged name or a path)
    set: {optim.iterations: 200, data.test_size: 64}
    grid:
      method: [mofa]
      renderer: [per_vertex, pytorch3d]
      encoder: [resnet18]
      landmark_loss: [0, 1]
      seed: [0, 1]
    cells:
      - match: {renderer: pytorch3d}
        set: {renderer.options: {blur_radius: 0.5, faces_per_pixel: 16}}
    samples: 6
    executor: local
    slurm: {timeout_min: 120, gpus_per_node: 1, slurm_partition: gpu}

Keys (every other key is an error naming it):

- ``name``: the suite's name (default: the file's stem).
- ``base``: a train config (:func:`mofa_bench.config.load_config`): a path, looked up
  relative to the suite file, then the working directory; else the name of a packaged train
  config (``quick``, ``converge``: :func:`mofa_bench.configs.config_path`); absent: the defaults.
- ``set``: dotted config keys applied to every cell (``optim.iterations: 200``); a mapping
  value replaces the whole section or option dict it names (``renderer.options: {...}``).
- ``grid``: lists of values per axis (:data:`AXES`); the cells are their product (see
  :mod:`evaluation.suite.expand` for what each axis sets). An axis left out keeps the
  base config's value.
- ``exclude``: grid points to leave out, ``[{axis: value or [values]}, ...]``: a point is
  dropped when every axis of one entry has one of its values (e.g. ``{method:
  conv_autoencoder, renderer: pytorch3d}``: a method that renders nothing needs one
  renderer only).
- ``renderers``: named renderer set-ups the ``renderer`` axis may list beside the registry's
  names, ``{label: {name: BACKEND, options: {...}}}`` (e.g. ``pytorch3d_soft: {name: pytorch3d,
  options: {blur_radius: 0.5, faces_per_pixel: 16}}``): a cell of that label trains with that
  backend and options, and the label is its renderer in run ids, rules and results.
- ``cells``: per-cell overrides, ``{match: {axis: value or [values]}, set: {...}, stages:
  [...]}``. **Every** rule whose ``match`` holds applies, in file order (a later rule wins
  on a key both set); of the matching rules with ``stages``, the last one gives them.
- ``stages``: train a cell in steps, ``[{name, set, previous_checkpoint}]``: each stage
  trains with its ``set`` on top of the cell's config; ``previous_checkpoint`` names the
  dotted key that receives the previous stage's ``checkpoints/last.pt`` (see
  :data:`DEFAULT_STAGES` for the learned decoder's two stages).
- ``samples``: test images kept for the report's qualitative grid (default 6).
- ``real_test``: real photos every run is also scored on, ``{path: PREPARED, limit: N}``:
  a folder written by ``mofa-bench prepare`` (looked up like ``base``) and at most N of
  its faces (default: all); see :mod:`evaluation.suite.real` for the metrics. Adding
  ``real_test`` to a suite makes it another suite and test set for a folder that holds
  runs (:mod:`evaluation.suite.folder`): give it a new ``--out``, or ``--replace``.
- ``executor``: ``local`` (one run after another in this process), ``slurm`` (submitit's
  ``AutoExecutor`` on a Slurm cluster) or ``local_submitit`` (submitit's ``LocalExecutor``:
  one subprocess per run, all at once).
- ``slurm``: submitit options — its shared ones (``timeout_min``, ``mem_gb``,
  ``gpus_per_node``, ``cpus_per_task``, ``nodes``, ``tasks_per_node``, ``name``,
  ``stderr_to_stdout``) and ``slurm_<option>`` (``slurm_partition``,
  ``slurm_array_parallelism``, …). ``local_submitit`` uses ``timeout_min`` (default 60)
  and ``gpus_per_node`` (default 0: the subprocesses see no GPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from mofa_bench.config_yaml import read_yaml_file
from mofa_bench.configs import config_name, config_names, config_path
from mofa_bench.errors import ConfigError
from mofa_bench.methods import method_names

__all__ = [
    "AXES",
    "DEFAULT_STAGES",
    "EXECUTORS",
    "CellRule",
    "RealTest",
    "Stage",
    "SuiteSpec",
    "load_suite_spec",
    "suite_from_dict",
    "suite_to_dict",
    "write_suite",
]

#: Grid axes, in run-id order: method, renderer backend, encoder, landmark loss on/off, seed.
AXES: tuple[str, ...] = ("method", "renderer", "encoder", "landmark_loss", "seed")
#: Where runs execute (see the module docstring).
EXECUTORS: tuple[str, ...] = ("local", "slurm", "local_submitit")
_TOP_KEYS = ("name", "base", "set", "renderers", "grid", "exclude", "cells", "samples", "executor", "slurm",
             "real_test")
_VARIANT_KEYS = ("name", "options")
_REAL_TEST_KEYS = ("path", "limit")
_RULE_KEYS = ("match", "set", "stages")
_STAGE_KEYS = ("name", "set", "previous_checkpoint")


@dataclass(frozen=True)
class Stage:
    """One training stage of a cell.

    Attributes:
        name: the stage's name (a stage before the last trains in ``stage_<name>/`` of the
            run directory; the last one in the run directory itself).
        overrides: dotted config keys set for this stage (the YAML ``set``).
        previous_checkpoint: dotted config key that receives the path of the previous
            stage's ``checkpoints/last.pt``, or ``None``.
    """

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    previous_checkpoint: str | None = None


#: Stages a method gets when no matching cell rule gives its own: the learned decoder
#: trains its decoder on (code → render) pairs, then an encoder through the frozen decoder.
DEFAULT_STAGES: dict[str, tuple[Stage, ...]] = {
    "learned_decoder": (
        Stage("decoder", {"method_options.stage": "decoder"}),
        Stage("encoder", {"method_options.stage": "encoder"}, previous_checkpoint="method_options.decoder_checkpoint"),
    ),
}


@dataclass(frozen=True)
class CellRule:
    """Overrides for the cells a rule matches (an entry of ``cells``).

    Attributes:
        match: ``{axis: allowed values}``; a cell matches when each named axis has one of them.
        overrides: dotted config keys to set (the YAML ``set``).
        stages: the matched cells' training stages, or ``None`` to leave them as they are.
    """

    match: dict[str, tuple[Any, ...]]
    overrides: dict[str, Any] = field(default_factory=dict)
    stages: tuple[Stage, ...] | None = None

    def matches(self, values: Mapping[str, Any]) -> bool:
        """Whether a cell with axis ``values`` (all of :data:`AXES`) matches this rule."""
        return all(values[axis] in allowed for axis, allowed in self.match.items())


@dataclass(frozen=True)
class RealTest:
    """Real photos every run of a suite is also scored on (the YAML ``real_test``).

    Attributes:
        path: absolute path of a folder written by ``mofa-bench prepare``.
        limit: at most this many of its faces (manifest order), or ``None`` for all.
    """

    path: Path
    limit: int | None = None


@dataclass(frozen=True)
class SuiteSpec:
    """A suite file, checked (see the module docstring for each field's meaning).

    Attributes:
        name: the suite's name.
        base: absolute path of the base train config, or ``None`` for the defaults.
        overrides: dotted config keys set for every cell (the YAML ``set``).
        grid: ``{axis: values}`` of the axes given, in :data:`AXES` order;
        exclude: grid points left out (``{axis: allowed values}`` each);
            ``landmark_loss`` values are ``False``/``True``.
        cells: per-cell override rules, in file order.
        samples: test images kept for the report (≥ 1).
        executor: one of :data:`EXECUTORS`.
        slurm: submitit options.
        real_test: real photos every run is also scored on, or ``None``.
        renderers: named renderer set-ups, ``{label: {"name": backend, "options": {...}}}``.
    """

    name: str
    base: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    exclude: tuple[dict[str, tuple[Any, ...]], ...] = ()
    cells: tuple[CellRule, ...] = ()
    samples: int = 6
    executor: str = "local"
    slurm: dict[str, Any] = field(default_factory=dict)
    real_test: RealTest | None = None
    renderers: dict[str, dict[str, Any]] = field(default_factory=dict)


# ---------------------------------------------------------------------------- checks
def _mapping(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping, got {value!r}")
    for name in value:
        if not isinstance(name, str):
            raise ConfigError(f"{key}: expected string keys, got {name!r}")
    return dict(value)


def _known(key: str, data: Mapping[str, Any], known: tuple[str, ...]) -> None:
    for name in data:
        if name not in known:
            where = f"{key}.{name}" if key else name
            raise ConfigError(f"{where}: unknown key; known keys: {', '.join(known)}")


def _overrides(key: str, value: Any) -> dict[str, Any]:
    data = _mapping(key, value)
    for name in data:
        if not name or any(not part for part in name.split(".")):
            raise ConfigError(f"{key}.{name}: expected a dotted config key such as optim.iterations")
    return data


def _renderer_variants(value: Any) -> dict[str, dict[str, Any]]:
    """The suite's ``renderers``: ``{label: {name, options}}``, each backend name checked."""
    from renderers import renderer_names

    variants: dict[str, dict[str, Any]] = {}
    for label, entry in _mapping("renderers", value).items():
        where = f"renderers.{label}"
        if label in renderer_names():
            raise ConfigError(f"{where}: the label is a renderer's own name; choose another (e.g. {label}_soft)")
        data = _mapping(where, entry)
        _known(where, data, _VARIANT_KEYS)
        if data.get("name") not in renderer_names():
            raise ConfigError(f"{where}.name: expected one of {', '.join(renderer_names())}, got {data.get('name')!r}")
        variants[label] = {"name": data["name"], "options": _mapping(f"{where}.options", data.get("options", {}))}
    return variants


def _axis_value(key: str, axis: str, value: Any, variants: tuple[str, ...] = ()) -> Any:
    """One value of an axis, checked (``landmark_loss`` becomes a bool)."""
    if axis == "landmark_loss":
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return bool(value)
        raise ConfigError(f"{key}: expected 0/1 or false/true (landmark loss off/on), got {value!r}")
    if axis == "seed":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{key}: expected an integer ≥ 0, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a name, got {value!r}")
    known: tuple[str, ...] | list[str]
    if axis == "method":
        known = method_names()
    elif axis == "renderer":
        from renderers import renderer_names

        known = tuple(renderer_names()) + variants
    else:
        from mofa_bench.encoders import encoder_names

        known = encoder_names()
    if value not in known:
        raise ConfigError(f"{key}: unknown {axis} {value!r}; known: {', '.join(known)}")
    return value


def _grid(value: Any, variants: tuple[str, ...] = ()) -> dict[str, tuple[Any, ...]]:
    data = _mapping("grid", value)
    for axis in data:
        if axis not in AXES:
            raise ConfigError(f"grid.{axis}: unknown axis; known axes: {', '.join(AXES)}")
    grid: dict[str, tuple[Any, ...]] = {}
    for axis in AXES:
        if axis not in data:
            continue
        values = data[axis]
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid.{axis}: expected a non-empty list of values, got {values!r}")
        checked = tuple(_axis_value(f"grid.{axis}[{i}]", axis, v, variants) for i, v in enumerate(values))
        if len(set(checked)) != len(checked):
            raise ConfigError(f"grid.{axis}: a value is given twice: {values!r}")
        grid[axis] = checked
    return grid


def _stages(key: str, value: Any) -> tuple[Stage, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key}: expected a non-empty list of stages, got {value!r}")
    stages = []
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        data = _mapping(where, item)
        _known(where, data, _STAGE_KEYS)
        name = data.get("name")
        if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"{where}.name: expected a name of letters, digits, '-' or '_', got {name!r}")
        previous = data.get("previous_checkpoint")
        if previous is not None and (not isinstance(previous, str) or not previous):
            raise ConfigError(f"{where}.previous_checkpoint: expected a dotted config key, got {previous!r}")
        if previous is not None and i == 0:
            raise ConfigError(f"{where}.previous_checkpoint: the first stage has no previous stage")
        stages.append(Stage(name, _overrides(f"{where}.set", data.get("set", {})), previous))
    names = [stage.name for stage in stages]
    if len(set(names)) != len(names):
        raise ConfigError(f"{key}: stage names must differ, got {names}")
    return tuple(stages)


def _axis_match(where: str, value: Any, variants: tuple[str, ...] = ()) -> dict[str, tuple[Any, ...]]:
    """``{axis: value or [values]}`` → ``{axis: (values, ...)}``, each axis and value checked."""
    match: dict[str, tuple[Any, ...]] = {}
    for axis, allowed in _mapping(where, value).items():
        if axis not in AXES:
            raise ConfigError(f"{where}.{axis}: unknown axis; known axes: {', '.join(AXES)}")
        options = allowed if isinstance(allowed, list) else [allowed]
        match[axis] = tuple(_axis_value(f"{where}.{axis}", axis, v, variants) for v in options)
    return match


def _exclude(value: Any, variants: tuple[str, ...] = ()) -> tuple[dict[str, tuple[Any, ...]], ...]:
    if not isinstance(value, list):
        raise ConfigError(f"exclude: expected a list of {{axis: values}} mappings, got {value!r}")
    return tuple(_axis_match(f"exclude[{i}]", item, variants) for i, item in enumerate(value))


def _rules(value: Any, variants: tuple[str, ...] = ()) -> tuple[CellRule, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"cells: expected a list of {{match, set, stages}} rules, got {value!r}")
    rules = []
    for i, item in enumerate(value):
        where = f"cells[{i}]"
        data = _mapping(where, item)
        _known(where, data, _RULE_KEYS)
        if "match" not in data:
            raise ConfigError(f"{where}.match: required (the axis values the rule applies to)")
        match = _axis_match(f"{where}.match", data["match"], variants)
        if "set" not in data and "stages" not in data:
            raise ConfigError(f"{where}: expected 'set' and/or 'stages'")
        stages = _stages(f"{where}.stages", data["stages"]) if "stages" in data else None
        rules.append(CellRule(match, _overrides(f"{where}.set", data.get("set", {})), stages))
    return tuple(rules)


def _slurm(value: Any) -> dict[str, Any]:
    """submitit options, checked against ``AutoExecutor``'s shared and Slurm's own."""
    from submitit import AutoExecutor, SlurmExecutor

    data = _mapping("slurm", value)
    shared = AutoExecutor._typed_parameters()
    own = SlurmExecutor._valid_parameters()
    for key, option in data.items():
        if key in shared:
            kind = shared[key]
            ok = isinstance(option, (int, float)) if kind is float else isinstance(option, kind)
            if not ok or (kind is not bool and isinstance(option, bool)):
                raise ConfigError(f"slurm.{key}: expected {kind.__name__}, got {option!r}")
        elif not (key.startswith("slurm_") and key[len("slurm_"):] in own):
            raise ConfigError(f"slurm.{key}: unknown submitit option; shared options: {', '.join(shared)}, "
                              f"or slurm_<option> with <option> one of: {', '.join(sorted(own))}")
    return data


def _real_test(value: Any, folder: Path | None) -> RealTest | None:
    """``{path, limit}`` → :class:`RealTest`, the folder looked up like ``base`` and checked for a manifest."""
    from mofa_bench.photos.prepare import MANIFEST

    if value is None:
        return None
    data = _mapping("real_test", value)
    _known("real_test", data, _REAL_TEST_KEYS)
    raw = data.get("path")
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"real_test.path: expected the folder of `mofa-bench prepare`, got {raw!r}")
    limit = data.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"real_test.limit: expected an integer ≥ 1, got {limit!r}")
    path = Path(raw).expanduser()
    candidates = [path] if path.is_absolute() else [d / path for d in (folder, Path.cwd()) if d is not None]
    for candidate in candidates:
        if (candidate / MANIFEST).is_file():
            return RealTest(candidate.resolve(), limit)
    raise ConfigError(f"real_test.path: no {MANIFEST} in {raw} (looked in {', '.join(str(c) for c in candidates)}; "
                      f"write one with `mofa-bench prepare folder PHOTOS --out {raw}`)")


def _base_path(value: Any, folder: Path | None) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"base: expected the path of a train config, got {value!r}")
    path = Path(value).expanduser()
    candidates = [path] if path.is_absolute() else [d / path for d in (folder, Path.cwd()) if d is not None]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    if config_name(value) is not None:
        try:
            return config_path(config_name(value), "train").resolve()
        except ConfigError:
            pass
    raise ConfigError(f"base: {value} not found (looked in {', '.join(str(c.parent) for c in candidates)}; "
                      f"packaged train configs, by name: {', '.join(config_names('train'))})")


# ---------------------------------------------------------------------------- reading
def suite_from_dict(data: Any, name: str = "suite", folder: Path | None = None) -> SuiteSpec:
    """Check a suite's mapping and build its :class:`SuiteSpec`.

    Args:
        data: the parsed YAML.
        name: the suite's name when ``data`` has none.
        folder: where a relative ``base`` is looked up first (the suite file's folder).

    Raises:
        ConfigError: an unknown key, a wrong type or a bad value, named by its key path
            (``grid.renderer[1]``, ``cells[0].match.seed``, ``slurm.slurm_partitio``).
    """
    data = _mapping("suite", data)
    _known("", data, _TOP_KEYS)
    suite_name = data.get("name", name)
    if not isinstance(suite_name, str) or not suite_name:
        raise ConfigError(f"name: expected a non-empty string, got {suite_name!r}")
    samples = data.get("samples", 6)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ConfigError(f"samples: expected an integer ≥ 1, got {samples!r}")
    executor = data.get("executor", "local")
    if executor not in EXECUTORS:
        raise ConfigError(f"executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")
    renderer_variants = _renderer_variants(data.get("renderers", {}))
    labels = tuple(renderer_variants)
    return SuiteSpec(
        name=suite_name,
        base=_base_path(data.get("base"), folder),
        overrides=_overrides("set", data.get("set", {})),
        grid=_grid(data.get("grid", {}), labels),
        exclude=_exclude(data.get("exclude", []), labels),
        cells=_rules(data.get("cells", []), labels),
        samples=samples,
        executor=executor,
        slurm=_slurm(data.get("slurm", {})),
        real_test=_real_test(data.get("real_test"), folder),
        renderers=renderer_variants,
    )


def load_suite_spec(path: str | Path) -> SuiteSpec:
    """Read and check a suite file (see the module docstring).

    Args:
        path: a suite file, or the name of a packaged suite (``quick``, ``smoke``; see
            :func:`mofa_bench.configs.config_path`).

    Raises:
        ConfigError: a missing or unparsable file, an unknown name (the message lists the
            packaged suites), or a bad key (the message names the file and the key path).
    """
    path = config_path(path, "suite")
    data = read_yaml_file(path, "suite file")
    try:
        return suite_from_dict(data, name=path.stem, folder=path.resolve().parent)
    except ConfigError as err:
        raise ConfigError(f"suite file {path}: {err}") from err


def suite_to_dict(spec: SuiteSpec) -> dict[str, Any]:
    """The YAML mapping of a spec (``base`` absolute), which :func:`suite_from_dict` reads back."""

    def stages(items: tuple[Stage, ...]) -> list[dict[str, Any]]:
        return [{"name": s.name, "set": dict(s.overrides), **({"previous_checkpoint": s.previous_checkpoint}
                                                             if s.previous_checkpoint else {})} for s in items]

    def plain(axis: str, value: Any) -> Any:
        return int(value) if axis == "landmark_loss" else value

    rules = []
    for rule in spec.cells:
        entry: dict[str, Any] = {"match": {a: [plain(a, v) for v in vs] for a, vs in rule.match.items()}}
        if rule.overrides:
            entry["set"] = dict(rule.overrides)
        if rule.stages is not None:
            entry["stages"] = stages(rule.stages)
        rules.append(entry)
    out: dict[str, Any] = {
        "name": spec.name,
        "base": str(spec.base) if spec.base else None,
        "set": dict(spec.overrides),
        "grid": {axis: [plain(axis, v) for v in values] for axis, values in spec.grid.items()},
        "exclude": [{a: [plain(a, v) for v in vs] for a, vs in item.items()} for item in spec.exclude],
        "cells": rules,
        "samples": spec.samples,
        "executor": spec.executor,
        "slurm": dict(spec.slurm),
    }
    if spec.real_test is not None:
        out["real_test"] = {"path": str(spec.real_test.path), "limit": spec.real_test.limit}
    if spec.renderers:
        out["renderers"] = {label: {"name": v["name"], "options": dict(v["options"])}
                            for label, v in spec.renderers.items()}
    return out


def write_suite(spec: SuiteSpec, path: str | Path) -> Path:
    """Write the resolved suite file (re-runnable from anywhere: ``base`` is absolute)."""
    path = Path(path)
    path.write_text(yaml.safe_dump(suite_to_dict(spec), sort_keys=False))
    return path

