"""Methods: what the trainer trains and the study compares, each a :class:`Method` by name.

- ``mofa`` (:mod:`~mofa_bench.methods.mofa`): the paper's model-based autoencoder, CNN
  encoder → analytic decoder → renderer, photometric (+ landmark) loss.
- ``conv_autoencoder`` (:mod:`~mofa_bench.methods.conv_autoencoder`): the paper's
  convolutional autoencoder, photometric error only (no geometry).
- ``learned_decoder`` (:mod:`~mofa_bench.methods.learned_decoder`): a deconvolutional
  decoder trained on (code → render) pairs, then an encoder trained through it (paper
  Fig. 13); :func:`mofa_bench.scoring.decoder_fidelity` scores the network against the
  analytic decoder.
- ``fit`` (:mod:`~mofa_bench.methods.fit`): per-image optimisation of the code from
  zero, MoFA's loss, any renderer (Adam or Levenberg-Marquardt); nothing to train.
- ``code_regression`` (:mod:`~mofa_bench.methods.code_regression`): the supervised upper
  bound, the MoFA encoder regressing the true codes of synthetic faces.
- ``mean_face`` (:mod:`~mofa_bench.methods.mean_face`): the zero code for every image,
  where every learnt method starts; nothing to train.
- ``inversefacenet`` (:mod:`~mofa_bench.methods.inversefacenet`): Kim et al.'s encoder on
  true codes with a model-space loss (:mod:`~mofa_bench.methods.model_space`), optionally
  breeding its synthetic corpus towards a target set (:mod:`~mofa_bench.methods.breeding`).
- ``multilevel`` (:mod:`~mofa_bench.methods.multilevel`): Tewari et al.'s multi-level model,
  MoFA plus a learned corrective level (:mod:`~mofa_bench.methods.correctives`).

The registry (:mod:`~mofa_bench.methods.registry`) maps a config's ``method`` to its
builder; the trainer builds ``build_method(config, decoder)``. Each method's classes
live in its own module; this package gives them by name too (``from mofa_bench.methods
import fit_codes``), importing a method's module only when one of its names is used.
"""

import importlib
from typing import Any


from mofa_bench.methods.base import Method, MethodBuilder, NonFiniteBatch, Reconstruction, code_decoder
from mofa_bench.methods.registry import (BUILTIN_METHODS, build_method, method_builder, method_names,
                                         register_method)

#: Name → module of the methods' public classes and functions (imported on first use).
_LAZY: dict[str, str] = {
    **dict.fromkeys(("CodeRegression", "build_code_regression", "prior_scale"), "code_regression"),
    **dict.fromkeys(("ConvAutoencoder", "build_conv_autoencoder"), "conv_autoencoder"),
    **dict.fromkeys(("DEFAULT_LR", "DEFAULT_STEPS", "FitMethod", "FitResult", "build_fit", "code_loss", "fit_codes"),
                    "fit"),
    **dict.fromkeys(("COVERAGE_THRESHOLD", "DecoderStage", "EncoderStage", "LearnedDecoder", "build_learned_decoder",
                     "load_learned_decoder", "prior_codes"), "learned_decoder"),
    **dict.fromkeys(("MeanFace", "build_mean_face"), "mean_face"),
    **dict.fromkeys(("InverseFaceNet", "build_inversefacenet"), "inversefacenet"),
    **dict.fromkeys(("MultiLevelMethod", "build_multilevel"), "multilevel"),
    **dict.fromkeys(("MoFAMethod", "build_mofa_method"), "mofa"),
    **dict.fromkeys(("ConvEncoder", "DeconvDecoder", "PassThroughClamp"), "networks"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"mofa_bench.methods.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'mofa_bench.methods' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BUILTIN_METHODS",
    "Method",
    "MethodBuilder",
    "NonFiniteBatch",
    "Reconstruction",
    "build_method",
    "code_decoder",
    "method_builder",
    "method_names",
    "register_method",
]
