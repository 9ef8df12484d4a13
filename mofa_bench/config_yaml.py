"""Reading config and suite YAML: PyYAML's safe loader with YAML 1.2 floats and duplicate keys refused.

:func:`parse_yaml` parses text; :func:`read_yaml_file` reads a file and turns every way it
can fail (missing, unreadable, binary, invalid YAML) into a one-line
:class:`~mofa_bench.errors.ConfigError` naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from mofa_bench.errors import ConfigError

__all__ = ["parse_yaml", "read_yaml_file"]


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats (``1e-4`` is a number, not a string) that
    refuses a key given twice in one mapping (PyYAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """Parse config YAML: safe, YAML 1.2 floats, duplicate keys refused (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass


def read_yaml_file(path: str | Path, what: str) -> Any:
    """A YAML file parsed by :func:`parse_yaml`.

    Args:
        path: the file.
        what: how errors name it (``"config file"``, ``"suite file"``).

    Raises:
        ConfigError: the file is missing, unreadable, not UTF-8 text (a binary file) or
            not valid YAML (a key given twice included); one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist" if not path.exists() else f"{what} {path} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{what} {path} is not a UTF-8 text file (byte {err.start}: {err.reason})") from err
    except OSError as err:
        raise ConfigError(f"{what} {path} cannot be read ({err.strerror or err})") from err
    try:
        return parse_yaml(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} {path} is not valid YAML: {' '.join(str(err).split())}") from err
