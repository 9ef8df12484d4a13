"""The table of bad and odd inputs: each case, the class of outcome it must have, and a
pattern its message must match (naming the cause: key path, file, array, argument).

Outcome classes: an exception class name (``ConfigError``, ``InputError``,
``ModelFileError``, ``CheckpointError``, ``DatasetError``, ``RunDirectoryBusyError``,
``RendererUnavailableError``); ``skipped`` / ``failed`` (a photo reported in
``reconstruct``'s results while the others go on); ``cli-error`` (exit status 1 and one
line on stderr, no traceback); ``ok`` (handled: the documented conversion or renaming
happened, and the message says so where the case has a pattern).

Each case is ``case(env, tmp) -> str | None``: it raises for exception outcomes, and
otherwise returns the message (a result's message or the CLI's stderr) or raises
:class:`Outcome` to name a non-exception class. This file holds the configs, model
files, checkpoints and API arguments; ``bad_inputs_files.py`` adds images, output paths
and the CLI to :data:`CASES`.
"""

from __future__ import annotations

import math
import os
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch


class Outcome(Exception):
    """A non-exception outcome: ``Outcome(kind, message)``."""

    def __init__(self, kind: str, message: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Case:
    id: str
    area: str
    outcome: str
    pattern: str
    run: Callable[[types.SimpleNamespace, Path], object]


CASES: list[Case] = []


def case(area: str, outcome: str, pattern: str, id: str | None = None):
    def register(fn: Callable) -> Callable:
        CASES.append(Case(id or fn.__name__.lstrip("_"), area, outcome, pattern, fn))
        return fn
    return register


# ----------------------------------------------------------------------------- configs
def _config(env, *overrides: str):
    from mofa_bench.config import load_config

    return load_config(None, [f"model.source={env.model_path}", *overrides])


CONFIG_CASES = [
    ("optim.lr=.nan", r"optim\.lr: expected a finite value > 0, got nan"),
    ("optim.lr=.inf", r"optim\.lr: .*got inf"),
    ("optim.lr=-0.1", r"optim\.lr: .*got -0\.1"),
    ("optim.weight_decay=-1", r"optim\.weight_decay: expected a finite value >= 0"),
    ("optim.weight_decay=.nan", r"optim\.weight_decay: .*nan"),
    ("optim.z_translation_lr=0", r"optim\.z_translation_lr"),
    ("seed=18446744073709551616", r"^seed: .*18446744073709551616"),
    ("data.seed=-1", r"data\.seed: .*>= 0"),
    ("num_val_images=-1", r"num_val_images: .*> 0"),
    ("keep_every=-1", r"keep_every: .*>= 0"),
    ("optim.grad_clip=-1", r"optim\.grad_clip: expected a finite value > 0"),
    ("optim.grad_clip=0", r"optim\.grad_clip: .*> 0"),
    ("data.val_size=0", r"data\.val_size: .*> 0"),
    ("optim.batch_size=0", r"optim\.batch_size: .*> 0"),
    ("optim.iterations=-5", r"optim\.iterations"),
    ("renderer.options={foo: 1}", r"renderer\.options\.foo: unknown option"),
    ("model.options={foo: 1}", r"model\.options\.foo: unknown option"),
    ("data.backgrounds={foo: 1}", r"data\.backgrounds\.foo: unknown key"),
    ("data.backgrounds={photos: [download_all]}", r"data\.backgrounds: .*photos.*download_all"),
    ("data.backgrounds={photos: [astronaut]}", r"data\.backgrounds: .*astronaut"),
    ("camera.image_size=1.5", r"camera\.image_size: expected an integer"),
    ("camera.focal_length=.nan", r"camera\.focal_length: .*nan"),
    ("camera.head_distance=.inf", r"camera\.head_distance: .*inf"),
    ("optim.optimizer=sgd", r"optim\.optimizer: expected 'adadelta' or 'adamw'"),
    ("name=5", r"^name: expected a string"),
    ("device=tpu", r"^device: expected 'auto', 'cpu' or 'cuda"),
    ("method=magic", r"^method: expected one of"),
    ("optim.learning_rate=0.1", r"optim\.learning_rate: unknown key"),
    ("data.kind=images", r"data\.path: required"),
    ("loss.photo=-1", r"^loss: .*photo"),
    ("loss.landmark=.nan", r"^loss: LossWeights\.landmark: expected a finite number"),
    ("loss.reg=.inf", r"^loss: LossWeights\.reg: expected a finite number"),
    ("model={source: default, subdivisions: 7}", r"^model\.subdivisions: expected an integer in \[0, 4\], got 7"),
]


def _config_case(override: str) -> Callable:
    return lambda env, tmp: _config(env, override)


for _override, _pattern in CONFIG_CASES:
    CASES.append(Case(f"config {_override}", "config", "ConfigError", _pattern, _config_case(_override)))


def _yaml_file(tmp: Path, data: bytes, name: str = "c.yaml") -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


@case("config", "ConfigError", r"c\.yaml is not a UTF-8 text file")
def _yaml_binary(env, tmp):
    from mofa_bench.config import load_config

    load_config(_yaml_file(tmp, bytes(range(128, 256)) * 3))


@case("config", "ConfigError", r"c\.yaml is not valid YAML: .*duplicate key 'lr'")
def _yaml_duplicate_key(env, tmp):
    from mofa_bench.config import load_config

    load_config(_yaml_file(tmp, b"optim:\n  lr: 0.1\n  lr: 0.2\n"))


@case("config", "ConfigError", r"c\.yaml: expected a mapping at the top level")
def _yaml_top_level_list(env, tmp):
    from mofa_bench.config import load_config

    load_config(_yaml_file(tmp, b"- 1\n- 2\n"))


@case("config", "ConfigError", r"c\.yaml is not valid YAML: .*python/object")
def _yaml_python_tag(env, tmp):
    from mofa_bench.config import load_config

    load_config(_yaml_file(tmp, b"name: !!python/object/apply:os.system ['echo owned']\n"))


@case("config", "ConfigError", r"config file .*absent\.yaml does not exist")
def _yaml_missing(env, tmp):
    from mofa_bench.config import load_config

    load_config(tmp / "absent.yaml")


@case("config", "ConfigError", r"config file .* is not a file")
def _yaml_is_a_folder(env, tmp):
    from mofa_bench.config import load_config

    load_config(tmp)


@case("config", "ConfigError", r"override 'optim\.lr': expected key=value")
def _override_without_value(env, tmp):
    _config(env, "optim.lr")


# ----------------------------------------------------------------------------- model files
def _npz(env, tmp: Path, **changes) -> Path:
    from mofa_bench.face_model.model import FaceModel

    arrays = dict(np.load(env.model_path))
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    path = tmp / "model.npz"
    np.savez(path, **arrays)
    return path


def _load(path: Path):
    from mofa_bench import FaceModel

    return FaceModel.load(path)


def _poison(value: float, index: tuple = (0, 0)):
    def fn(array: np.ndarray) -> np.ndarray:
        array = array.astype(np.float64)
        array[index] = value
        return array
    return fn


MODEL_CASES = [
    ("NaN in mean_shape", "mean_shape", _poison(math.nan), r"model\.npz: array 'mean_shape' has 1 NaN or infinite"),
    ("Inf in shape_basis", "shape_basis", _poison(math.inf, (0, 0, 0)), r"model\.npz: array 'shape_basis' has 1 NaN"),
    ("NaN in expression_basis", "expression_basis", _poison(math.nan, (1, 1, 1)), r"'expression_basis' has 1 NaN"),
    ("NaN in mean_reflectance", "mean_reflectance", _poison(math.nan), r"'mean_reflectance' has 1 NaN"),
    ("float32 overflow in reflectance_basis", "reflectance_basis", _poison(1e300, (0, 0, 0)),
     r"'reflectance_basis' has 1 NaN or infinite value\(s\) \(as float32\)"),
    ("zero vertices", "mean_shape", lambda a: a[:0], r"model\.npz: array 'mean_shape' is empty"),
    ("zero triangles", "triangles", lambda a: a[:0], r"model\.npz: array 'triangles' is empty"),
    ("triangle index out of range", "triangles", lambda a: a + 10_000, r"model\.npz: .*triangles"),
    ("name is a number", "name", lambda a: np.array(7), r"model\.npz: key 'name' must be one string"),
    ("name is a list", "name", lambda a: np.array(["a", "b"]), r"key 'name' must be one string"),
]


def _model_case(key: str, fn: Callable) -> Callable:
    def run(env, tmp):
        original = np.load(env.model_path)[key] if key in np.load(env.model_path).files else np.array("tiny")
        _load(_npz(env, tmp, **{key: fn(original.copy())}))
    return run


for _id, _key, _fn, _pattern in MODEL_CASES:
    CASES.append(Case(f"model {_id}", "model file", "ModelFileError", _pattern, _model_case(_key, _fn)))


@case("model file", "ModelFileError", r"model\.npz: missing key\(s\) \['triangles'\]")
def _model_missing_array(env, tmp):
    _load(_npz(env, tmp, triangles=None))


@case("model file", "ModelFileError", r"junk\.npz: cannot read as a NumPy \.npz archive")
def _model_not_an_archive(env, tmp):
    path = tmp / "junk.npz"
    path.write_bytes(b"not a zip file at all")
    _load(path)


@case("model file", "ModelFileError", r"mesh\.obj: unknown face-model format '\.obj'")
def _model_unknown_suffix(env, tmp):
    path = tmp / "mesh.obj"
    path.write_text("v 0 0 0\n")
    _load(path)


@case("model file", "ModelFileError", r"model\.npz: cannot read .*(pickle|Object arrays)")
def _model_pickled_array(env, tmp):
    arrays = dict(np.load(env.model_path))
    arrays["mean_shape"] = np.array([object()], dtype=object)
    path = tmp / "model.npz"
    np.savez(path, **arrays)
    _load(path)


# ----------------------------------------------------------------------------- checkpoints
def _checkpoint_with(env, tmp: Path, change: Callable[[dict], object]) -> Path:
    from mofa_bench.training import save_checkpoint

    state = torch.load(env.checkpoint, weights_only=True)
    change(state)
    return save_checkpoint(state, tmp / "checkpoints" / "last.pt")


def _resume(env, tmp: Path, *overrides: str):
    """Resume the tiny run from the checkpoint under ``tmp`` (a copy of the shared run's)."""
    from helpers import tiny_train_config
    from mofa_bench.training import Trainer

    config = tiny_train_config(tmp.parent, env.model_path, *env.run_overrides, *overrides, name=tmp.name)
    Trainer(config).fit(resume=True)


def _load_checkpoint(path: Path):
    from mofa_bench.training import load_checkpoint

    return load_checkpoint(path)


CHECKPOINT_CASES = [
    ("step -10", lambda s: s.update(step=-10), r"last\.pt: 'step' must be an integer >= 0, got -10"),
    ("step is a string", lambda s: s.update(step="7"), r"last\.pt: 'step' must be an integer >= 0"),
    ("missing optimizer", lambda s: s.pop("optimizer"), r"last\.pt: missing 'optimizer'"),
    ("missing rng_cpu", lambda s: s.pop("rng_cpu"), r"last\.pt: missing 'rng_cpu'"),
    ("garbage RNG state", lambda s: s.update(rng_cpu=torch.zeros(10, dtype=torch.uint8)),
     r"last\.pt: 'rng_cpu' must be a uint8 tensor of shape \(5056,\)"),
    ("RNG state of floats", lambda s: s.update(rng_cpu=torch.rand(5056)), r"'rng_cpu' must be a uint8 tensor"),
    ("optimizer not a mapping", lambda s: s.update(optimizer=[1, 2]), r"last\.pt: 'optimizer' must be a mapping"),
    ("negative skipped_total", lambda s: s.update(skipped_total=-1), r"'skipped_total' must be an integer >= 0"),
    ("encoder-only checkpoint", lambda s: [s.clear(), s.update(encoder={}, step=1)],
     r"last\.pt predates trainable methods"),
]


def _checkpoint_case(change: Callable) -> Callable:
    def run(env, tmp):
        _checkpoint_with(env, tmp, change)
        _resume(env, tmp)
    return run


for _id, _change, _pattern in CHECKPOINT_CASES:
    CASES.append(Case(f"checkpoint {_id}", "checkpoint", "CheckpointError", _pattern, _checkpoint_case(_change)))


@case("checkpoint", "CheckpointError", r"last\.pt is truncated or corrupted: its SHA-256 .* last\.pt\.sha256")
def _checkpoint_bit_flip(env, tmp):
    path = _checkpoint_with(env, tmp, lambda s: None)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    _load_checkpoint(path)


@case("checkpoint", "CheckpointError", r"last\.pt is truncated or corrupted")
def _checkpoint_truncated(env, tmp):
    path = _checkpoint_with(env, tmp, lambda s: None)
    path.write_bytes(path.read_bytes()[:1000])
    _load_checkpoint(path)


@case("checkpoint", "CheckpointError", r"evil\.pt is truncated or corrupted \(UnpicklingError")
def _checkpoint_runs_code(env, tmp):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    path = tmp / "evil.pt"
    torch.save({"method": Evil()}, path)
    _load_checkpoint(path)


@case("checkpoint", "CheckpointError", r"list\.pt is not a mofa-bench checkpoint")
def _checkpoint_not_a_dict(env, tmp):
    from mofa_bench.training import save_checkpoint

    _load_checkpoint(save_checkpoint([1, 2, 3], tmp / "list.pt"))


@case("checkpoint", "CheckpointError", r"checkpoint .*none\.pt does not exist")
def _checkpoint_missing(env, tmp):
    _load_checkpoint(tmp / "none.pt")


@case("checkpoint", "ConfigError", r"--resume: the requested config differs .*camera\.image_size: 64 → 96.*"
                                   r"--allow-config-change")
def _resume_other_image_size(env, tmp):
    _checkpoint_with(env, tmp, lambda s: None)
    _resume(env, tmp, "camera.image_size=96")


@case("checkpoint", "ConfigError", r"optim\.batch_size: 2 → 3")
def _resume_other_batch(env, tmp):
    _checkpoint_with(env, tmp, lambda s: None)
    _resume(env, tmp, "optim.batch_size=3")


@case("checkpoint", "RunDirectoryBusyError", r"run directory .* is in use by another training \(pid \d+")
def _second_trainer(env, tmp):
    from mofa_bench.training.lock import RunLock

    with RunLock(tmp):
        _resume(env, tmp)


# ----------------------------------------------------------------------------- API arguments
def _camera(*args, **kwargs):
    from mofa_bench.camera import Camera

    return Camera(*args, **kwargs)


API_CAMERA_CASES = [
    ("Camera(1.5)", (1.5,), {}, r"Camera\.image_size: expected a positive int .*1\.5"),
    ("Camera(None)", (None,), {}, r"Camera\.image_size: .*None"),
    ("Camera(3-tuple)", ((1, 2, 3),), {}, r"Camera\.image_size: .*\(1, 2, 3\)"),
    ("Camera('64')", ("64",), {}, r"Camera\.image_size: .*'64'"),
    ("Camera(True)", (True,), {}, r"Camera\.image_size: .*True"),
    ("Camera(0)", (0,), {}, r"Camera\.image_size"),
    ("Camera focal NaN", (64,), {"focal_length": math.nan}, r"Camera\.focal_length: .*nan"),
    ("Camera head distance inf", (64,), {"head_distance": math.inf}, r"Camera\.head_distance: .*inf"),
    ("Camera principal point 1 value", (64,), {"principal_point": (1.0,)}, r"Camera\.principal_point"),
]
for _id, _args, _kwargs, _pattern in API_CAMERA_CASES:
    CASES.append(Case(f"api {_id}", "API argument", "InputError", _pattern,
                      (lambda a, k: lambda env, tmp: _camera(*a, **k))(_args, _kwargs)))


def _code_case(make: Callable[[], object]) -> Callable:
    def run(env, tmp):
        try:
            env.decoder.form(make())
        finally:  # whatever the code, the decoder's model keeps its dtype
            assert env.decoder.model.dtype == torch.float32 and env.decoder.model.mean_shape.dtype == torch.float32
    return run


API_CODE_CASES = [
    ("code as a list", lambda: [[0.0] * 257], r"code: expected a torch\.Tensor .* got list"),
    ("code as numpy", lambda: np.zeros((1, 257), np.float32), r"code: expected a torch\.Tensor .* got ndarray"),
    ("int code", lambda: torch.zeros(1, 257, dtype=torch.int64), r"code: expected a floating-point tensor"),
    ("bool code", lambda: torch.zeros(1, 257, dtype=torch.bool), r"code: expected a floating-point tensor"),
    ("float16 code", lambda: torch.zeros(1, 257, dtype=torch.float16), r"code: dtype/device torch\.float16"),
    ("float64 code", lambda: torch.zeros(1, 257, dtype=torch.float64), r"code: dtype/device torch\.float64"),
    ("empty batch", lambda: torch.zeros(0, 257), r"code: expected at least one code \(B >= 1\)"),
    ("1-D code", lambda: torch.zeros(257), r"code: expected shape \(B 257\)"),
    ("256-d code", lambda: torch.zeros(1, 256), r"code: .*257"),
    ("NaN code", lambda: torch.full((1, 257), math.nan), r"code: contains NaN or Inf"),
]
for _id, _make, _pattern in API_CODE_CASES:
    CASES.append(Case(f"api {_id}", "API argument", "InputError", _pattern, _code_case(_make)))


@case("API argument", "InputError", r"batch_size: expected a positive int, got 0")
def _reconstruct_batch_zero(env, tmp):
    from mofa_bench.reconstruct import reconstruct

    reconstruct(env.code_model, [env.photo], tmp / "out", batch_size=0, progress=False)


@case("API argument", "InputError", r"mesh_formats: unknown \['stl'\]")
def _reconstruct_mesh_format(env, tmp):
    from mofa_bench.reconstruct import reconstruct

    reconstruct(env.code_model, [env.photo], tmp / "out", mesh_formats=["stl"], progress=False)
