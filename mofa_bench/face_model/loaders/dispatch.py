"""Choose the face-model loader by name or file suffix."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

from mofa_bench.errors import InputError, ModelFileError
from mofa_bench.face_model.loaders.bfm2009 import load_bfm2009
from mofa_bench.face_model.loaders.bfm2017 import load_bfm2017
from mofa_bench.face_model.loaders.common import finalize
from mofa_bench.face_model.loaders.npz import load_npz
from mofa_bench.face_model.model import FaceModel

__all__ = ["load_face_model", "loader_for", "loader_options"]

#: File suffix (lower case) → loader.
FILE_LOADERS: dict[str, Callable[..., FaceModel]] = {
    ".npz": load_npz,
    ".mat": load_bfm2009,
    ".h5": load_bfm2017,
    ".hdf5": load_bfm2017,
}


def loader_for(source: str | Path) -> Callable[..., FaceModel]:
    """The loader :func:`load_face_model` uses for ``source`` (``"default"`` or a path).

    Raises:
        ModelFileError: a path with an unknown suffix.
    """
    if isinstance(source, str) and source == "default":
        # Imported on use: file loaders do not need the default model's builder.
        from mofa_bench.face_model.default_model import build_default_model

        return build_default_model
    path = Path(source).expanduser()
    suffix = path.suffix.lower()
    if suffix not in FILE_LOADERS:
        raise ModelFileError(
            f"{path}: unknown face-model format {path.suffix or '(no suffix)'!r}; expected "
            "'default', a native .npz, a Basel Face Model 2009 .mat or a BFM 2017/2019 .h5"
        )
    return FILE_LOADERS[suffix]


def loader_options(source: str | Path) -> list[str]:
    """The options (keyword arguments) the loader of ``source`` accepts."""
    parameters = inspect.signature(loader_for(source)).parameters.values()
    if isinstance(source, str) and source == "default":
        return [p.name for p in parameters]
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]


def load_face_model(source: str | Path = "default", **kwargs: Any) -> FaceModel:
    """Load a face model by name or path.

    Args:
        source: ``"default"`` for the built-in model
            (:func:`mofa_bench.face_model.default_model.build_default_model`), or a path
            whose suffix selects the format: ``.npz`` (native, :func:`load_npz`), ``.mat``
            (Basel Face Model 2009, :func:`load_bfm2009`) or ``.h5`` / ``.hdf5`` (Basel Face
            Model 2017/2019, :func:`load_bfm2017`); the suffix is matched case-insensitively.
        **kwargs: options of the selected loader (for ``"default"``: of
            ``build_default_model``).

    Returns:
        A float32 :class:`FaceModel` with 80 / 64 / 80 modes.

    Raises:
        ModelFileError: unknown suffix, missing or unreadable file, missing variables or
            wrong array shapes; the message names the file and what was expected.
        InputError: an option the selected loader does not accept.
    """
    if isinstance(source, str) and source == "default":
        try:
            inspect.signature(loader_for(source)).bind(**kwargs)
        except TypeError:
            unknown = sorted(set(kwargs) - set(loader_options(source)))
            raise InputError(f"load_face_model: option(s) {unknown} are not accepted for the default model; "
                             f"accepted: {loader_options(source)}") from None
        return finalize(loader_for(source)(**kwargs), fix_orientation=False)
    path = Path(source).expanduser()
    suffix = path.suffix.lower()
    loader = loader_for(path)
    try:
        inspect.signature(loader).bind(path, **kwargs)
    except TypeError:
        accepted = loader_options(path)
        unknown = sorted(set(kwargs) - set(accepted))
        raise InputError(
            f"load_face_model: option(s) {unknown} are not accepted for {suffix} files "
            f"({path}); accepted: {accepted or 'none'}"
        ) from None
    return loader(path, **kwargs)
