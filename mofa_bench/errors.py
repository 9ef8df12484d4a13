"""Errors raised by mofa_bench. Every user mistake maps to one of these with a clear message."""

from __future__ import annotations

from mofa_checks import InputError
from renderers.errors import RendererUnavailableError

__all__ = [
    "MofaBenchError",
    "InputError",
    "ModelFileError",
    "ConfigError",
    "CheckpointError",
    "DatasetError",
    "TrainingDivergedError",
    "RendererUnavailableError",
]


class MofaBenchError(RuntimeError):
    """Base class for mofa_bench runtime errors."""


class ModelFileError(MofaBenchError):
    """A face-model file is missing, unreadable or not in the expected format (names the file)."""


class ConfigError(MofaBenchError, ValueError):
    """A config is malformed: unknown key, wrong type or invalid value (names the key)."""


class CheckpointError(MofaBenchError):
    """A checkpoint is missing, truncated or corrupted (names the file)."""


class DatasetError(MofaBenchError):
    """A dataset path is missing, an image is unreadable, grey or has no face."""


class TrainingDivergedError(MofaBenchError):
    """Training produced non-finite losses repeatedly and was stopped."""
