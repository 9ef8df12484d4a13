"""Real photos: face detection, landmarks, crops framed like the training data, dataset preparation.

- :mod:`~mofa_bench.photos.reader`: the one photo reader (any format Pillow opens, one
  greyscale rule, a reason for every file it refuses) that ``prepare``, ``reconstruct``
  and ``data.kind: images`` share.
- :mod:`~mofa_bench.photos.detection`: detectors by name (``mediapipe`` default, ``haar``)
  and the rule that picks one face per photo.
- :mod:`~mofa_bench.photos.landmarks68`: MediaPipe's 478-point landmarker → iBUG-68 with
  per-point confidences and the 46-point training subset.
- :mod:`~mofa_bench.photos.framing`: one framing rule for every crop, calibrated on the
  face model's zero code.
- :mod:`~mofa_bench.photos.faces`: photo files → one framed face (:class:`FacePipeline`),
  and the cropper ``reconstruct`` uses (:class:`PhotoFramer`).
- :mod:`~mofa_bench.photos.prepare`: ``mofa-bench prepare``: crops, landmarks and a Parquet
  manifest; :class:`~mofa_bench.data.prepared.PreparedFaces` reads it back
  (``data.kind: prepared``). :mod:`~mofa_bench.photos.adapters`: CelebA, LFW, 300-VW.
"""

from mofa_bench.photos.detection import (
    DEFAULT_DETECTOR,
    DetectorUnavailableError,
    FaceDetection,
    FaceDetector,
    available_detectors,
    detector_names,
    get_detector,
    register_detector,
)
from mofa_bench.photos.selection import Selection, select_face
from mofa_bench.photos.framing import (
    DEFAULT_FRAMING,
    FramingRule,
    crop_square,
    frame_from_box,
    frame_from_keypoints,
    frame_from_landmarks68,
)
from mofa_bench.photos.landmarks68 import FaceLandmarks, MediaPipeLandmarker, available_landmarkers, get_landmarker

__all__ = [
    "DEFAULT_DETECTOR",
    "DEFAULT_FRAMING",
    "DetectorUnavailableError",
    "FaceDetection",
    "FaceDetector",
    "FaceLandmarks",
    "FramingRule",
    "MediaPipeLandmarker",
    "Selection",
    "available_detectors",
    "available_landmarkers",
    "crop_square",
    "detector_names",
    "frame_from_box",
    "frame_from_keypoints",
    "frame_from_landmarks68",
    "get_detector",
    "get_landmarker",
    "register_detector",
    "select_face",
]
