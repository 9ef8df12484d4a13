"""Face models: the dataclass, the built-in default and loaders for user-owned models."""

from mofa_bench.face_model.model import LANDMARKS_46, N_EXPRESSION, N_REFLECTANCE, N_SHAPE, FaceModel

__all__ = ["FaceModel", "LANDMARKS_46", "N_SHAPE", "N_EXPRESSION", "N_REFLECTANCE"]
