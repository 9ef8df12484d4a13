"""The study's baselines, each a :class:`~mofa_bench.training.method.Method` on the same data and metrics.

- ``conv_autoencoder`` (:mod:`~evaluation.baselines.conv_autoencoder`): the paper's
  convolutional autoencoder, photometric error only (no geometry).
- ``learned_decoder`` (:mod:`~evaluation.baselines.learned_decoder`): a deconvolutional
  decoder trained on (code → render) pairs, then an encoder trained through it (paper
  Fig. 13); :func:`decoder_fidelity` scores the network against the analytic decoder.
- ``fit`` (:mod:`~evaluation.baselines.fit`): per-image optimisation of the code from
  zero, MoFA's loss, any renderer; nothing to train.
- ``code_regression`` (:mod:`~evaluation.baselines.code_regression`): the supervised upper
  bound, the MoFA encoder regressing the true codes of synthetic faces.
- ``mean_face`` (:mod:`~evaluation.baselines.mean_face`): the zero code for every image,
  where every learnt method starts; nothing to train.

:func:`method_builder` gives the trainer's builder for a config's ``method``::

    Trainer(config, method_builder=method_builder(config.method))
"""

from evaluation.baselines.code_regression import CodeRegression, build_code_regression, prior_scale
from evaluation.baselines.conv_autoencoder import ConvAutoencoder, build_conv_autoencoder
from evaluation.baselines.fit import DEFAULT_LR, DEFAULT_STEPS, FitMethod, FitResult, build_fit, code_loss, fit_codes
from evaluation.baselines.learned_decoder import (
    COVERAGE_THRESHOLD,
    DecoderStage,
    EncoderStage,
    LearnedDecoder,
    build_learned_decoder,
    decoder_fidelity,
    load_learned_decoder,
    prior_codes,
)
from evaluation.baselines.mean_face import MeanFace, build_mean_face
from evaluation.baselines.networks import ConvEncoder, DeconvDecoder
from mofa_bench.errors import ConfigError
from mofa_bench.training.mofa import MoFAMethod, build_mofa_method
from mofa_bench.training.trainer import MethodBuilder

__all__ = [
    "COVERAGE_THRESHOLD",
    "DEFAULT_LR",
    "DEFAULT_STEPS",
    "BUILDERS",
    "CodeRegression",
    "ConvAutoencoder",
    "ConvEncoder",
    "DecoderStage",
    "DeconvDecoder",
    "EncoderStage",
    "FitMethod",
    "FitResult",
    "LearnedDecoder",
    "MeanFace",
    "MoFAMethod",
    "build_code_regression",
    "build_conv_autoencoder",
    "build_fit",
    "build_learned_decoder",
    "build_mean_face",
    "build_mofa_method",
    "code_loss",
    "decoder_fidelity",
    "fit_codes",
    "load_learned_decoder",
    "method_builder",
    "prior_codes",
    "prior_scale",
]

#: Method name (a config's ``method``) → the builder of that method.
BUILDERS: dict[str, MethodBuilder] = {
    "mofa": build_mofa_method,
    "conv_autoencoder": build_conv_autoencoder,
    "learned_decoder": build_learned_decoder,
    "fit": build_fit,
    "code_regression": build_code_regression,
    "mean_face": build_mean_face,
}


def method_builder(name: str) -> MethodBuilder:
    """The builder ``(config, decoder) -> Method`` of a method name.

    Raises:
        ConfigError: an unknown name (the message lists the known ones).
    """
    if name not in BUILDERS:
        raise ConfigError(f"method: unknown method {name!r}; known methods: {', '.join(BUILDERS)}")
    return BUILDERS[name]
