"""Evaluation: metrics, baselines, suites and reports.

Metrics (one value per sample, ``(B,)``)::

    from evaluation import geometric_error, photometric_error, landmark_error
"""

from evaluation.metrics import geometric_error, geometric_error_reference, landmark_error, photometric_error

__all__ = [
    "geometric_error",
    "geometric_error_reference",
    "landmark_error",
    "photometric_error",
]
