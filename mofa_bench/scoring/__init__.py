"""Scoring: the metrics, the protocol that scores codes, code-part diagnostics, validation.

Metrics give one value per sample, ``(B,)``; the protocol scores a batch of codes
against ground truth with all of them; validation scores any method over a dataset::

    from mofa_bench.scoring import geometric_error, photometric_error, landmark_error
    from mofa_bench.scoring import evaluate_codes   # (decoder, codes, FaceBatch) -> {metric: (B,)}
    from mofa_bench.scoring import validate         # (method, dataset, device) -> {metric: value}
"""

from mofa_bench.scoring.code_parts import code_part_errors, summarize_code_part_errors
from mofa_bench.scoring.fidelity import decoder_fidelity
from mofa_bench.scoring.metrics import aligned_distances, geometric_error, landmark_error, photometric_error
from mofa_bench.scoring.protocol import evaluate_codes, vertex_errors
from mofa_bench.scoring.validation import SCORING_RENDERER, evaluate_batch, summarize, validate

__all__ = [
    "SCORING_RENDERER",
    "aligned_distances",
    "code_part_errors",
    "decoder_fidelity",
    "evaluate_batch",
    "evaluate_codes",
    "geometric_error",
    "landmark_error",
    "photometric_error",
    "summarize",
    "summarize_code_part_errors",
    "validate",
    "vertex_errors",
]
