"""The study: suites (grids of runs), reports, benchmarks, results tables and diagnostics.

Everything needed to train and score one model lives in :mod:`mofa_bench` (methods in
:mod:`mofa_bench.methods`, metrics, the protocol and validation in
:mod:`mofa_bench.scoring`); this package runs many of them and compares them. Its
commands (``suite``, ``report``, ``bench``, ``diagnose``) plug into ``mofa-bench``
through the command registry (the ``mofa_bench.commands`` entry points).

The modules that moved to :mod:`mofa_bench` in 0.1 keep their old names for one release,
with a :class:`DeprecationWarning`: ``evaluation.metrics``, ``evaluation.protocol``,
``evaluation.code_parts``, ``evaluation.validation`` (now under
:mod:`mofa_bench.scoring`), ``evaluation.baselines.*`` (now :mod:`mofa_bench.methods`),
and ``from evaluation import geometric_error`` and the other scoring names.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any

#: Old module name → where it lives now.
MOVED_MODULES: dict[str, str] = {
    "evaluation.metrics": "mofa_bench.scoring.metrics",
    "evaluation.protocol": "mofa_bench.scoring.protocol",
    "evaluation.code_parts": "mofa_bench.scoring.code_parts",
    "evaluation.validation": "mofa_bench.scoring.validation",
    "evaluation.baselines": "mofa_bench.methods",
    **{f"evaluation.baselines.{name}": f"mofa_bench.methods.{name}"
       for name in ("code_regression", "conv_autoencoder", "fit", "fit_lm", "learned_decoder", "mean_face",
                    "networks", "options")},
}

#: Names ``from evaluation import ...`` gave before 0.1; they come from :mod:`mofa_bench.scoring`.
MOVED_NAMES = ("aligned_distances", "code_part_errors", "evaluate_codes", "geometric_error", "landmark_error",
               "photometric_error", "summarize_code_part_errors", "validate", "vertex_errors")


def _warn_moved(old: str, new: str) -> None:
    warnings.warn(f"{old} moved to {new}; the old name goes in the next release", DeprecationWarning,
                  stacklevel=3)


class _MovedModuleLoader(importlib.abc.Loader):
    """Loads an old module name as the module it moved to (the same module object)."""

    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: Any) -> ModuleType:
        _warn_moved(spec.name, self.new)
        return importlib.import_module(self.new)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module it moved to is already imported."""


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old names of :data:`MOVED_MODULES`."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, _MovedModuleLoader(MOVED_MODULES[fullname]))


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _MovedModuleFinder())


def __getattr__(name: str) -> Any:
    if name in MOVED_NAMES:
        _warn_moved(f"evaluation.{name}", f"mofa_bench.scoring.{name}")
        return getattr(importlib.import_module("mofa_bench.scoring"), name)
    raise AttributeError(f"module 'evaluation' has no attribute {name!r}")
