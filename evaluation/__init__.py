"""Evaluation: metrics, the protocol, validation, benchmarks (and the study's suites and reports).

Metrics (one value per sample, ``(B,)``) and the protocol that scores codes::

    from evaluation import geometric_error, photometric_error, landmark_error
    from evaluation import evaluate_codes      # (decoder, codes, FaceBatch) -> {metric: (B,)}
"""

from evaluation.code_parts import code_part_errors, summarize_code_part_errors
from evaluation.metrics import aligned_distances, geometric_error, landmark_error, photometric_error
from evaluation.protocol import evaluate_codes, vertex_errors
from evaluation.validation import validate

__all__ = [
    "aligned_distances",
    "code_part_errors",
    "evaluate_codes",
    "geometric_error",
    "landmark_error",
    "photometric_error",
    "summarize_code_part_errors",
    "validate",
    "vertex_errors",
]
