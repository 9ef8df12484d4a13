"""The PyTorch3D backend's earlier module path: it is the package :mod:`renderers.pytorch3d`.

``from renderers.pytorch3d_backend import X`` still works for every public name of the
package, with a ``DeprecationWarning``; import from :mod:`renderers.pytorch3d` instead.
"""

from __future__ import annotations

import warnings
from typing import Any

import renderers.pytorch3d as _package


def __getattr__(name: str) -> Any:
    if name not in _package.__all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"renderers.pytorch3d_backend.{name} is now renderers.pytorch3d.{name}",
                  DeprecationWarning, stacklevel=2)
    return getattr(_package, name)
