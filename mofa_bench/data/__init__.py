"""Datasets: synthetic renders with ground truth, their on-disk shards, real photos, and mixtures.

Every dataset has ``__len__`` and ``batch(indices) -> FaceBatch``; the trainer builds
them from the config and draws index batches itself.
"""

from mofa_bench.data.backgrounds import BACKGROUND_KINDS, BackgroundConfig, sample_backgrounds
from mofa_bench.data.batch import FaceBatch
from mofa_bench.data.images import ImageFolder, crop_face, detect_faces, face_detector_available, load_image
from mofa_bench.data.mixed import DataSource, MixedFaces
from mofa_bench.data.synthetic import ShardedFaces, SyntheticFaces, sample_seed, write_synthetic_dataset

__all__ = [
    "BACKGROUND_KINDS",
    "BackgroundConfig",
    "DataSource",
    "FaceBatch",
    "ImageFolder",
    "MixedFaces",
    "ShardedFaces",
    "SyntheticFaces",
    "crop_face",
    "detect_faces",
    "face_detector_available",
    "load_image",
    "sample_backgrounds",
    "sample_seed",
    "write_synthetic_dataset",
]
