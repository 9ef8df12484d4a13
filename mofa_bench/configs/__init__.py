"""The configs that ship with the package, addressed by name.

Train configs are the ``*.yaml`` files of this folder (``quick``, ``synthetic``,
``converge``, ``paper``); suite files are in ``suites/`` (``smoke``, ``quick``,
``learning_cpu``, ``paper``). :func:`config_path` turns a command-line argument into a
file: an existing file is used as it is, a bare name (``quick``, ``quick.yaml``) is looked
up here. ``mofa-bench train --config quick`` and ``mofa-bench suite quick`` use it
(through :func:`mofa_bench.config.load_config` and
:func:`evaluation.suite.spec.load_suite_spec`), and so does a suite's ``base:`` key.

The files are package data (``pyproject.toml``), found next to this module, so a wheel
installed anywhere has them.
"""

from __future__ import annotations

from pathlib import Path

from mofa_bench.errors import ConfigError

__all__ = ["CONFIG_KINDS", "config_name", "config_names", "config_path"]

#: Kinds of packaged config and their folders, relative to this package's folder.
CONFIG_KINDS: dict[str, str] = {"train": ".", "suite": "suites"}
#: How errors name a file of each kind (as :func:`mofa_bench.config_yaml.read_yaml_file` does).
_KIND_FILES = {"train": "config file", "suite": "suite file"}
_SUFFIX = ".yaml"


def _config_dir(kind: str) -> Path:
    if kind not in CONFIG_KINDS:
        raise ValueError(f"kind: expected one of {', '.join(CONFIG_KINDS)}, got {kind!r}")
    return (Path(__file__).resolve().parent / CONFIG_KINDS[kind]).resolve()


def config_names(kind: str = "train") -> list[str]:
    """Names of the packaged configs of ``kind`` (``"train"`` or ``"suite"``), sorted."""
    return sorted(path.stem for path in _config_dir(kind).glob(f"*{_SUFFIX}"))


def config_name(text: str | Path) -> str | None:
    """The packaged-config name ``text`` would be (``quick`` and ``quick.yaml`` → ``quick``),
    or ``None`` when it is a path (it has a folder part) rather than a bare name."""
    text = str(text)
    if not text or "/" in text or "\\" in text or text in (".", ".."):
        return None
    return text[: -len(_SUFFIX)] if text.endswith(_SUFFIX) else text


def config_path(name_or_path: str | Path, kind: str = "train") -> Path:
    """The file a ``--config`` (``kind="train"``) or suite (``kind="suite"``) argument names.

    An existing file is used as it is; otherwise a bare name (no folder part, ``.yaml``
    optional) names one of the package's configs of ``kind``: train configs in
    ``mofa_bench/configs/``, suites in ``mofa_bench/configs/suites/``. A path with a folder
    part that exists but is not a file (a folder) is returned as it is, for the reader's
    own error.

    Raises:
        ConfigError: neither an existing file nor a packaged name (``config file X does not
            exist ...``, ``suite file X ...``); the message lists the known names.
        ValueError: ``kind`` is not one of :data:`CONFIG_KINDS`.
    """
    what = _KIND_FILES.get(kind)
    if what is None:
        raise ValueError(f"kind: expected one of {', '.join(CONFIG_KINDS)}, got {kind!r}")
    path = Path(name_or_path).expanduser()
    name = config_name(name_or_path)
    if path.is_file() or (name is None and path.exists()):
        return path
    if name:
        packaged = _config_dir(kind) / f"{name}{_SUFFIX}"
        if packaged.is_file():
            return packaged
    known = ", ".join(config_names(kind)) or "none"
    if name is None:
        raise ConfigError(f"{what} {path} does not exist (packaged {kind} configs, by name: {known})")
    state = "is not a file" if path.exists() else "does not exist"
    raise ConfigError(f"{what} {name_or_path} {state} and is not a packaged {kind} config; known names: {known}")
