"""mofa-bench: model-based face autoencoders (MoFA) with interchangeable renderers.

Public API::

    from mofa_bench import FaceModel, Camera, MoFADecoder, CODE_DIM, split_code, join_code
"""

from mofa_bench.camera import Camera
from mofa_bench.code_vector import AMBIENT_OFFSET, CODE_DIM, CODE_LAYOUT, CodeParts, join_code, split_code, zero_code
from mofa_bench.decoder import MoFADecoder
from mofa_bench.face_model import FaceModel
from mofa_bench.formation import FormedFace, form_face

__version__ = "0.1.0"

__all__ = [
    "AMBIENT_OFFSET",
    "CODE_DIM",
    "CODE_LAYOUT",
    "Camera",
    "CodeParts",
    "FaceModel",
    "FormedFace",
    "MoFADecoder",
    "form_face",
    "join_code",
    "split_code",
    "zero_code",
    "__version__",
]
