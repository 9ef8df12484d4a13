"""Run configuration: dataclasses, YAML loading with a validated schema, overrides.

A config is a tree of dataclasses (:class:`TrainConfig` at the root). YAML files give
any subset of fields; unknown keys and wrong types are errors that name the key
(``ConfigError: data.sise: unknown key; known keys: kind, size, ...``). Command-line
overrides use dotted keys (``--set optim.lr=0.05``) parsed as YAML scalars.

The package ships its configs (``mofa_bench/configs/``: train configs; ``suites/``: suite
files), addressed by name (:func:`mofa_bench.configs.config_path`): ``mofa-bench train
--config quick``, ``mofa-bench suite quick``; a path to a YAML file of one's own works as
well. ``renderer: nvdiffrast`` is short for ``renderer: {name: nvdiffrast}``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mofa_bench.configs import CONFIG_KINDS, config_name, config_names, config_path  # noqa: F401 - re-exported
from mofa_bench.config_yaml import parse_yaml, read_yaml_file  # noqa: F401 - re-exported
from mofa_bench.data.backgrounds import BackgroundConfig
from mofa_bench.data.mixed import DataSource, check_sources
from mofa_bench.data.out_of_span import OutOfSpanConfig
from mofa_bench.data.streams import GENERATORS
from mofa_bench.errors import ConfigError
from mofa_bench.losses import LossWeights
from mofa_bench.methods.registry import method_names
from mofa_bench.photos.reader import GREY_RULES
from mofa_bench.sampling import CodePrior

if TYPE_CHECKING:
    from mofa_bench.camera import Camera
    from mofa_bench.face_model.model import FaceModel


#: Largest ``camera.image_size``, px (one 4096² RGB float image is 200 MB; larger sides only
#: reach the allocator's out-of-memory error).
MAX_IMAGE_SIZE = 4096
#: ``optim.schedule`` values (:func:`mofa_bench.training.schedule.lr_factor`).
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")

#: Values of ``capture``: ``none`` (eager step) or ``compile`` (CUDA graphs through
#: ``torch.compile(mode="reduce-overhead")``; eager on the CPU).
CAPTURE_MODES: tuple[str, ...] = ("none", "compile")


@dataclass
class ModelConfig:
    """Face model: ``source`` is ``"default"`` or a path (.npz, BFM2009 .mat, BFM2017 .h5)."""

    source: str = "default"
    subdivisions: int = 2
    options: dict[str, Any] = field(default_factory=dict)

    def check_options(self) -> None:
        """Check ``options`` against the selected loader's options (without loading).

        Raises:
            ConfigError: an option the loader does not have, or a source of unknown format.
        """
        from mofa_bench.errors import ModelFileError
        from mofa_bench.face_model.loaders.dispatch import loader_options

        try:
            known = [name for name in loader_options(self.source) if name != "subdivisions"]
        except ModelFileError as err:
            raise ConfigError(f"model.source: {err}") from err
        for key in self.options:
            if key not in known:
                raise ConfigError(f"model.options.{key}: unknown option of the {self.source!r} model loader; "
                                  f"known options: {', '.join(known) or 'none'}")

    def load(self) -> "FaceModel":
        """The face model this section names (``subdivisions`` applies to the default model only)."""
        from mofa_bench.face_model.model import FaceModel

        if self.source == "default":
            return FaceModel.load("default", subdivisions=self.subdivisions, **self.options)
        return FaceModel.load(self.source, **self.options)


@dataclass
class CameraConfig:
    """Camera (see :mod:`mofa_bench.camera`): pixels, focal length px (null = 2.5·W), mm."""

    image_size: int = 240
    focal_length: float | None = None
    head_distance: float = 600.0

    def build(self) -> "Camera":
        """The :class:`~mofa_bench.camera.Camera` this section describes."""
        from mofa_bench.camera import Camera

        return Camera(self.image_size, self.focal_length, head_distance=self.head_distance)


@dataclass
class RendererConfig:
    """Renderer backend by registry name, with backend options."""

    name: str = "per_vertex"
    options: dict[str, Any] = field(default_factory=dict)

    def check_options(self) -> None:
        """Check ``options`` against the backend's own (names and values) without running it.

        Raises:
            ConfigError: an option the backend does not have, or a value it refuses,
                named as ``renderer.options.<key>``.
        """
        from renderers import renderer_class, renderer_options

        known = renderer_options(self.name)
        for key in self.options:
            if key not in known:
                raise ConfigError(f"renderer.options.{key}: unknown option of the {self.name} renderer; "
                                  f"known options: {', '.join(known) or 'none'}")
        try:
            renderer_class(self.name)(**self.options)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"renderer.options: {err}") from err


@dataclass
class EncoderConfig:
    """Encoder: ``alexnet``, ``vgg16``, ``resnet18`` or ``resnet50``; optional local weights."""

    name: str = "alexnet"
    pretrained: str | None = None


@dataclass
class DataConfig:
    """Training data.

    ``kind``: ``synthetic`` (rendered on the fly with ground truth), ``sharded`` (a
    dataset written by ``mofa-bench data write``; ``path`` is its folder), ``images``
    (a folder of photos; ``path``) or ``prepared`` (a folder written by ``mofa-bench
    prepare``: its crops with their landmarks and confidences; ``path``) or ``mixed``
    (``sources``: a list of ``{kind, path, weight}``, each batch drawn from one source by
    weight; :mod:`mofa_bench.data.mixed`). ``train_size`` /
    ``val_size`` / ``test_size`` size the synthetic splits, which are disjoint index ranges
    of one seeded stream
    (:mod:`mofa_bench.data.splits`). ``synthetic_renderer`` is the backend that draws the
    synthetic images (independent of the renderer being trained), ``prior`` the ranges
    of their codes (:class:`mofa_bench.sampling.CodePrior`) and ``backgrounds`` their
    background augmentation (:class:`mofa_bench.data.backgrounds.BackgroundConfig`).
    ``preload`` draws the whole training set once at the start of a run and holds it in
    memory as uint8 images (:class:`mofa_bench.data.preload.PreloadedFaces`): on the CPU
    this takes a quarter off a 64 px training step, for about 16 KiB per sample.

    Protocols of the synthetic data (:mod:`mofa_bench.data.splits`): ``out_of_span`` adds
    held-out geometry and albedo detail outside the decoder's 3DMM to every synthetic
    face (:class:`mofa_bench.data.out_of_span.OutOfSpanConfig`; all zero: in-span);
    ``target_prior`` (domain gap) draws the validation and test splits, and a breeding
    method's synthetic target, from another code prior than the training split's
    ``prior`` (null: the same prior).

    ``grey`` (``data.kind: images``, and the ``images`` sources of ``mixed``): a greyscale
    photo in the folder is ``convert``-ed to RGB with a note (default), or with ``skip``
    left out when the folder is opened (``prepare`` and ``reconstruct``: ``--skip-grey``),
    since a grey photo cannot constrain the colour of reflectance and light.

    ``generator``: how the synthetic training split draws codes and backgrounds, ``cpu``
    (default: a CPU generator per sample) or ``counter`` (:mod:`mofa_bench.data.counter_rng`:
    a batch at once on the training device, for GPUs); validation and test always use ``cpu``.
    """

    kind: str = "synthetic"
    path: str | None = None
    val_path: str | None = None
    train_size: int = 2000
    val_size: int = 50
    test_size: int = 5000
    seed: int = 1234
    synthetic_renderer: str = "per_vertex"
    prior: CodePrior = field(default_factory=CodePrior)
    backgrounds: BackgroundConfig = field(default_factory=BackgroundConfig)
    sources: tuple[DataSource, ...] = ()
    preload: bool = False
    out_of_span: OutOfSpanConfig = field(default_factory=OutOfSpanConfig)
    target_prior: CodePrior | None = None
    grey: str = "convert"
    generator: str = "cpu"


@dataclass
class OptimConfig:
    """Optimiser: ``adadelta`` (the paper: lr 0.1, 0.0005 on z-translation) or ``adamw``.

    ``schedule`` scales every group's rate by step: ``constant`` (the paper) or ``cosine``
    (half a cosine from the full rate at the end of ``warmup_steps`` to zero at
    ``iterations``); ``warmup_steps`` ramps the rate up linearly from zero first
    (:func:`~mofa_bench.training.schedule.lr_factor`).
    """

    optimizer: str = "adadelta"
    lr: float = 0.1
    z_translation_lr: float = 0.0005
    weight_decay: float = 0.0
    batch_size: int = 5
    iterations: int = 300
    grad_clip: float | None = None
    schedule: str = "constant"
    warmup_steps: int = 0


@dataclass
class TrainConfig:
    """Root of a training config. ``out_dir``/``name`` locate the run directory.

    Speed switches (the results do not depend on them beyond floating-point rounding):
    ``amp`` runs the encoder under bfloat16 autocast (on CUDA, and on CPUs with native
    bfloat16 arithmetic such as AMX or AVX-512 BF16, where it takes about a third off
    a ResNet-18's forward and backward at 64 px; elsewhere it is slower); ``compile`` wraps the encoder in
    ``torch.compile`` (CUDA only); ``compile_decoder`` wraps the loss path —
    image formation, the renderer's photometric samples and the MoFA loss — in
    ``torch.compile`` on any device, fusing the many small per-vertex operations that
    otherwise bound a GPU step by kernel launches.

    ``capture`` captures the whole loss computation of a training step — encoder,
    image formation, renderer and loss, forward and backward — into CUDA graphs:
    ``none`` (default) runs it eagerly; ``compile`` runs ``method.loss_terms`` under
    ``torch.compile(mode="reduce-overhead", dynamic=False)`` (every step has the same
    shapes), which replays the recorded kernels with one launch each. It replaces
    ``compile`` and ``compile_decoder`` (setting them too is an error). On the CPU, where
    there are no CUDA graphs, ``compile`` falls back to the eager step with one logged
    warning (a config written for a GPU runs anywhere). ``channels_last`` stores the
    encoder's weights and input images in NHWC order (the layout of the GPU's fastest
    convolutions; any device).

    Under ``torchrun`` (:mod:`mofa_bench.training.distributed`) ``optim.batch_size`` is the
    global batch, split evenly over the processes.

    ``method`` names what is trained, one of the registry's names
    (:func:`mofa_bench.methods.method_names`): ``mofa`` (the config's encoder through the
    analytic decoder and renderer), or one of the study's baselines (each checks its own
    ``method_options`` when it is built).

    ``best_metric`` names the validation metric (lower is better) whose best value
    writes ``checkpoints/best.pt``; without validation data the training loss is used.
    """

    name: str = "run"
    out_dir: str = "runs"
    method: str = "mofa"
    method_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    compile: bool = False
    compile_decoder: bool = False
    capture: str = "none"
    channels_last: bool = False
    log_every: int = 10
    val_every: int = 100
    sample_every: int = 100
    checkpoint_every: int = 100
    keep_every: int = 0
    max_nonfinite: int = 5
    num_val_images: int = 6
    best_metric: str = "photometric"
    progress: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    renderer: RendererConfig = field(default_factory=RendererConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def validate(self, check_paths: bool = True) -> "TrainConfig":
        """Value checks beyond types; raises :class:`ConfigError` naming the key.

        ``check_paths=False`` skips the check that ``data.path`` exists.
        """
        def check(key: str, value: float | int | None, low: float, strict: bool = True,
                  optional: bool = False, high: float = math.inf) -> None:
            if value is None and optional:
                return
            ok = value is not None and math.isfinite(value) and (value > low if strict else value >= low)
            if not ok or value >= high:
                bound = f"> {low}" if strict else f">= {low}"
                limit = f" and < {high:g}" if math.isfinite(high) else ""
                raise ConfigError(f"{key}: expected a finite value {bound}{limit}, got {value}")

        for key, value in {
            "optim.batch_size": self.optim.batch_size, "optim.iterations": self.optim.iterations,
            "optim.lr": self.optim.lr, "optim.z_translation_lr": self.optim.z_translation_lr,
            "camera.image_size": self.camera.image_size, "camera.head_distance": self.camera.head_distance,
            "data.train_size": self.data.train_size, "data.val_size": self.data.val_size,
            "data.test_size": self.data.test_size, "log_every": self.log_every, "val_every": self.val_every,
            "sample_every": self.sample_every, "checkpoint_every": self.checkpoint_every,
            "max_nonfinite": self.max_nonfinite, "num_val_images": self.num_val_images,
        }.items():
            check(key, value, 0)
        if self.camera.image_size > MAX_IMAGE_SIZE:
            raise ConfigError(f"camera.image_size: expected at most {MAX_IMAGE_SIZE} px, got {self.camera.image_size}")
        check("camera.focal_length", self.camera.focal_length, 0, optional=True)
        check("optim.grad_clip", self.optim.grad_clip, 0, optional=True)
        check("optim.weight_decay", self.optim.weight_decay, 0, strict=False)
        check("optim.warmup_steps", self.optim.warmup_steps, 0, strict=False)
        if self.optim.schedule not in LR_SCHEDULES:
            raise ConfigError(f"optim.schedule: expected one of {', '.join(LR_SCHEDULES)}, got {self.optim.schedule!r}")
        check("keep_every", self.keep_every, 0, strict=False)
        for key, value in (("seed", self.seed), ("data.seed", self.data.seed)):
            check(key, value, 0, strict=False, high=2**63)
        if self.model.source == "default":
            from mofa_bench.face_model.default_model.build import MAX_SUBDIVISIONS
        if self.model.source == "default" and not 0 <= self.model.subdivisions <= MAX_SUBDIVISIONS:
            raise ConfigError(f"model.subdivisions: expected an integer in [0, {MAX_SUBDIVISIONS}], "
                              f"got {self.model.subdivisions}")
        if self.optim.optimizer not in ("adadelta", "adamw"):
            raise ConfigError(f"optim.optimizer: expected 'adadelta' or 'adamw', got {self.optim.optimizer!r}")
        if self.data.kind not in ("synthetic", "sharded", "images", "prepared", "mixed"):
            raise ConfigError(f"data.kind: expected 'synthetic', 'sharded', 'images', 'prepared' or 'mixed', "
                              f"got {self.data.kind!r}")
        check_sources(self.data.kind, self.data.sources, check_paths)
        if self.data.grey not in GREY_RULES:
            raise ConfigError(f"data.grey: expected one of {', '.join(GREY_RULES)}, got {self.data.grey!r}")
        if self.data.generator not in GENERATORS:
            raise ConfigError(f"data.generator: expected one of {', '.join(GENERATORS)}, got {self.data.generator!r}")
        for key in ("path", "val_path"):
            if self.data.kind == "mixed" and getattr(self.data, key):
                raise ConfigError(f"data.{key}: not used with data.kind='mixed' (each source's path is in "
                                  f"data.sources; validation is the synthetic validation split)")
        if self.data.kind not in ("synthetic", "mixed") and not self.data.path:
            raise ConfigError(f"data.path: required for data.kind={self.data.kind!r}")
        if check_paths and self.data.kind not in ("synthetic", "mixed") and not Path(self.data.path).exists():
            raise ConfigError(f"data.path: {self.data.path} does not exist")
        from renderers import renderer_names

        for key, name in (("renderer.name", self.renderer.name), ("data.synthetic_renderer", self.data.synthetic_renderer)):
            if name not in renderer_names():
                raise ConfigError(f"{key}: unknown renderer {name!r}; known renderers: {', '.join(renderer_names())}")
        self.renderer.check_options()
        self.model.check_options()
        if self.method not in method_names():
            raise ConfigError(f"method: expected one of {', '.join(method_names())}, got {self.method!r}")
        from mofa_bench.encoders.base import MIN_IMAGE_SIZE

        if self.method in ("mofa", "code_regression", "inversefacenet", "multilevel") and self.camera.image_size < MIN_IMAGE_SIZE:
            raise ConfigError(f"camera.image_size: the {self.encoder.name} encoder needs images of at least "
                              f"{MIN_IMAGE_SIZE} px, got {self.camera.image_size}")
        if self.method == "mofa" and self.method_options:
            raise ConfigError(f"method_options: the mofa method has no options (its settings are the encoder, "
                              f"renderer, loss and optim sections), got {sorted(self.method_options)}")
        if self.capture not in CAPTURE_MODES:
            raise ConfigError(f"capture: expected one of {', '.join(CAPTURE_MODES)}, got {self.capture!r}")
        if self.capture != "none" and (self.compile or self.compile_decoder):
            raise ConfigError(f"capture: {self.capture!r} compiles the whole loss computation; set compile and "
                              f"compile_decoder to false (got compile={self.compile}, "
                              f"compile_decoder={self.compile_decoder})")
        if not self.best_metric:
            raise ConfigError("best_metric: expected the name of a validation metric, got an empty string")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ConfigError(f"device: expected 'auto', 'cpu' or 'cuda[:i]', got {self.device!r}")
        return self


# ---------------------------------------------------------------------------- parsing
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against annotation ``tp``; returns the (possibly converted) value."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{key}: expected {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        return _from_dict(tp, value, key + ".")
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        item = args[0] if args else Any
        return tuple(_coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


#: Keys renamed since they were first written, ``"section.old": "new"``: configs and
#: checkpoints that use the old name still load (with a warning).
RENAMED_KEYS = {"data.render_renderer": "synthetic_renderer"}


def _from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    data = dict(data)
    for key in list(data):
        new = RENAMED_KEYS.get(prefix + key)
        if new is not None:
            if new in data:
                raise ConfigError(f"{prefix}{key}: renamed to {prefix}{new}, and both are given")
            warnings.warn(f"config key {prefix}{key} is now {prefix}{new}", DeprecationWarning, stacklevel=4)
            data[new] = data.pop(key)
    for key in data:
        if key not in known:
            raise ConfigError(f"{prefix}{key}: unknown key; known keys: {', '.join(known)}")
    kwargs = {key: _coerce(prefix + key, value, hints[key]) for key, value in data.items()}
    try:
        return cls(**kwargs)
    except ValueError as err:  # value checks of the section's own dataclass (ConfigError included)
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {err}") from err


def config_from_dict(data: dict[str, Any], check_paths: bool = True) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a nested dict.

    Args:
        data: the nested mapping (a YAML file's, or a checkpoint's ``config``).
        check_paths: require ``data.path`` to exist; ``False`` for a config that will
            not read its training data (a checkpoint restored for reconstruction, whose
            dataset may have moved since).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"config: expected a mapping at the top level, got {type(data).__name__}")
    return _from_dict(TrainConfig, expand_shorthands(data)).validate(check_paths)


#: Sections that may be given as a bare string meaning ``{<key>: string}``: ``renderer:
#: nvdiffrast`` is ``renderer: {name: nvdiffrast}`` (a one-line renderer swap).
SHORTHAND_SECTIONS: dict[str, str] = {"renderer": "name"}


def expand_shorthands(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with each section of :data:`SHORTHAND_SECTIONS` given as a string made a mapping.

    Returns ``data`` itself when there is nothing to expand, else a shallow copy.
    """
    short = {key: value for key, value in data.items() if key in SHORTHAND_SECTIONS and isinstance(value, str)}
    if not short:
        return data
    return {**data, **{key: {SHORTHAND_SECTIONS[key]: value} for key, value in short.items()}}


def config_to_dict(config: Any) -> dict[str, Any]:
    """Nested plain dict (YAML-serialisable: tuples become lists) of a config dataclass."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        return value

    return plain(dataclasses.asdict(config))


def load_config(path: str | Path | None, overrides: list[str] | None = None,
                **direct: Any) -> TrainConfig:
    """Load a YAML config, apply ``key=value`` overrides and direct keyword overrides.

    Args:
        path: YAML file, or the name of a packaged train config (``quick``, see
            :func:`mofa_bench.configs.config_path`), or ``None`` for the defaults.
        overrides: ``["optim.lr=0.05", "renderer.name=pytorch3d"]`` (values parsed as YAML).
        **direct: dotted keys with ``__`` for dots, e.g. ``renderer__name="pytorch3d"``;
            ``None`` values are ignored.

    Raises:
        ConfigError: missing or unparsable file, unknown key, wrong type or bad value.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = config_path(path, "train")
        data = read_yaml_file(path, "config file") or {}
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path}: expected a mapping at the top level")
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        try:
            value = parse_yaml(raw)
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: value is not valid YAML") from err
        set_dotted(data, key.strip(), value)
    for key, value in direct.items():
        if value is not None:
            set_dotted(data, key.replace("__", "."), value)
    return config_from_dict(data)


def set_dotted(data: dict[str, Any], key: str, value: Any, where: str = "") -> None:
    """Set dotted ``key`` (``optim.lr``) of nested dict ``data`` to a copy of ``value``, in place.

    Missing sections are created. A section given as a string (``renderer: nvdiffrast``,
    :data:`SHORTHAND_SECTIONS`) is expanded first, so ``renderer.options`` can follow it.

    Args:
        where: how errors name the layer (``"set"``, ``"run <id>: stage <name>"``); empty
            for a command-line override.

    Raises:
        ConfigError: a part of ``key`` before the last names a value that is not a section
            (``override optim.lr.x: lr is not a section``, or ``<where>: <key>: lr is not a
            section``).
    """
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if depth == 0 and isinstance(child, str) and part in SHORTHAND_SECTIONS:
            child = node[part] = {SHORTHAND_SECTIONS[part]: child}
        if not isinstance(child, dict):
            raise ConfigError(f"{where}: {key}: {part} is not a section" if where
                              else f"override {key}: {part} is not a section")
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def save_config(config: TrainConfig, path: str | Path) -> Path:
    """Write the resolved config as YAML."""
    path = Path(path)
    path.write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))
    return path
