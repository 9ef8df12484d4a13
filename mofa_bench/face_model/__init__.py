"""Face models: the dataclass, the built-in default and loaders for user-owned models.

Importing this package registers :func:`~mofa_bench.face_model.loaders.load_face_model`
as the function behind :meth:`FaceModel.load`.
"""

from mofa_bench.face_model.loaders.dispatch import load_face_model
from mofa_bench.face_model.model import (
    LANDMARKS_46,
    N_EXPRESSION,
    N_REFLECTANCE,
    N_SHAPE,
    FaceModel,
    register_loader,
)

register_loader(load_face_model)

__all__ = ["FaceModel", "LANDMARKS_46", "N_SHAPE", "N_EXPRESSION", "N_REFLECTANCE", "load_face_model"]
