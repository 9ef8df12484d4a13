"""Analysis-by-synthesis breeding (InverseFaceNet, Kim et al. arXiv:1703.10956, Sec. 5).

The synthetic training corpus starts from the model prior; after each round of training
the encoder is run on a *target* image set (real photos, or a synthetic split from another
distribution), a Gaussian is fitted to its predicted codes, and the corpus is redrawn from
that Gaussian for the next round, so the synthetic faces move towards the target's.

- :class:`BreedingSchedule`: which round a training step belongs to (``rounds + 1`` equal
  phases of the run: phase 0 on the prior corpus, phase k on the corpus bred at its start).
- :func:`fit_code_distribution`: mean and Cholesky factor of the predicted codes, shrunk
  towards the prior (``Σ = (1 − w) Σ_codes + w Σ_prior``, ``μ = (1 − w) μ_codes``; the prior
  has zero mean and the per-entry spread of
  :func:`~mofa_bench.methods.code_regression.prior_scale`), so a small or degenerate set of
  predictions still gives a proper distribution.
- :class:`BredFaces`: the synthetic corpus of one round: sample ``i``'s code is
  ``μ + L z`` with ``z ~ N(0, I)`` from the sample's own seeded stream, rendered like
  :class:`~mofa_bench.data.synthetic.SyntheticFaces` (backgrounds included).
- :func:`target_images`: the images a round encodes (a ``prepare``d folder, or the
  config's synthetic ``target`` split, :mod:`mofa_bench.data.splits`).

Departures from the paper: one Gaussian over the whole code (the paper resamples its
parameters from the distribution of the predictions; how it models that distribution is
not pinned down here), and every round redraws the whole corpus rather than adding to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mofa_bench.code_vector import CODE_DIM
from mofa_bench.config import DataConfig
from mofa_bench.data.splits import synthetic_split
from mofa_bench.data.synthetic import SyntheticFaces, sample_seed
from mofa_bench.decoder import MoFADecoder
from mofa_bench.errors import ConfigError
from mofa_checks import check_tensor

__all__ = ["BREED_STREAM", "BredFaces", "BreedingSchedule", "fit_code_distribution", "target_images"]

#: Stream of :func:`~mofa_bench.data.synthetic.sample_seed` that seeds each round's corpus.
BREED_STREAM = 11


@dataclass(frozen=True)
class BreedingSchedule:
    """``rounds`` breeding rounds over a run of ``total_steps`` steps.

    Round k (1 ≤ k ≤ rounds) starts at step ``k · total_steps // (rounds + 1)``: the run is
    cut into ``rounds + 1`` phases of (nearly) equal length.
    """

    rounds: int

    def round_at(self, step: int, total_steps: int) -> int:
        """The round training step ``step`` (0-based) belongs to, in ``[0, rounds]``."""
        if self.rounds == 0 or total_steps <= 0:
            return 0
        return min(max(step, 0) * (self.rounds + 1) // total_steps, self.rounds)

    def start_of(self, round_: int, total_steps: int) -> int:
        """The first step of round ``round_``."""
        return -(-round_ * total_steps // (self.rounds + 1))


def fit_code_distribution(codes: torch.Tensor, prior_scale: torch.Tensor,
                          prior_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and Cholesky factor of predicted codes, shrunk towards the prior (module docstring).

    Args:
        codes: ``(n, 257)`` predicted codes, n ≥ 1.
        prior_scale: ``(257,)`` the prior's spread per entry (σ, rad, mm, SH units).
        prior_weight: w in (0, 1]: how much of the covariance (and of the mean's pull to
            zero) is the prior's.

    Returns:
        ``(mean (257,), factor (257, 257))`` float64 on the CPU, ``factor`` lower
        triangular with ``factor @ factor.T`` the shrunk covariance.
    """
    check_tensor("codes", codes, f"n {CODE_DIM}", floating=True, finite=True)
    x = codes.detach().double().cpu()
    mean = x.mean(0)
    centred = x - mean
    covariance = centred.T @ centred / max(x.shape[0] - 1, 1)
    shrunk = (1.0 - prior_weight) * covariance + prior_weight * torch.diag(prior_scale.double().cpu() ** 2)
    return (1.0 - prior_weight) * mean, torch.linalg.cholesky(0.5 * (shrunk + shrunk.T))


class BredFaces(SyntheticFaces):
    """One breeding round's synthetic corpus: codes from a fitted Gaussian (module docstring).

    Args:
        decoder: draws the images (the data's drawing renderer).
        size: number of samples (any index of the trainer's training set must fit).
        seed: the round's seed (each sample's code and background streams derive from it).
        mean: ``(257,)`` the Gaussian's mean.
        factor: ``(257, 257)`` its Cholesky factor.
        backgrounds: background augmentation, as :class:`SyntheticFaces`.
        generator: ``"cpu"`` or ``"counter"`` (the config's ``data.generator``), as
            :class:`SyntheticFaces`: with ``"counter"`` the codes' normals and the
            backgrounds are drawn batched on the decoder's device.
    """

    def __init__(self, decoder: MoFADecoder, size: int, seed: int, mean: torch.Tensor, factor: torch.Tensor,
                 backgrounds: Any = None, generator: str = "cpu") -> None:
        super().__init__(decoder, size, seed=seed, backgrounds=backgrounds, generator=generator)
        self.mean = mean.detach().double().cpu()
        self.factor = factor.detach().double().cpu()

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        """``(B, 257)`` float32 codes ``μ + L z`` of samples, each from its own stream (on the CPU;
        ``generator="counter"``: on :attr:`device`)."""
        from mofa_bench.data.synthetic import CODE_STREAM, check_indices

        indices = check_indices(indices, self.size)
        if self.generator == "counter":
            z = self.counter_stream(indices, CODE_STREAM).normal(CODE_DIM, dtype=torch.float64)
            mean, factor = self.mean.to(z.device), self.factor.to(z.device)
            return (mean + z @ factor.T).float()
        z = torch.cat([torch.randn(1, CODE_DIM, generator=self._generator(int(i), CODE_STREAM), dtype=torch.float64)
                       for i in indices])
        return (self.mean + z @ self.factor.T).float()


def round_seed(data_seed: int, round_: int) -> int:
    """The seed of round ``round_``'s corpus (a SplitMix64 mix of the data seed and the round)."""
    return sample_seed(data_seed, round_, BREED_STREAM)


def target_dataset(target: str, data: DataConfig, decoder: MoFADecoder, image_size: int, size: int) -> Any:
    """The target image set of a breeding method.

    Args:
        target: ``"synthetic"`` (the config's synthetic ``target`` split: codes from
            ``data.target_prior``, or ``data.prior`` without one) or the path of a folder
            written by ``mofa-bench prepare``.
        data: the config's ``data`` section.
        decoder: the training decoder (its model and camera draw a synthetic target).
        image_size: the crops' side, px.
        size: images the synthetic split holds.

    Raises:
        ConfigError: named ``method_options.target``: a path that is not a prepared folder.
    """
    if target == "synthetic":
        drawer = decoder.with_renderer(data.synthetic_renderer)
        return synthetic_split(drawer, data, "target", size)
    from mofa_bench.data.prepared import PreparedFaces
    from mofa_bench.errors import DatasetError

    path = Path(target)
    if not path.is_dir():
        raise ConfigError(f"method_options.target: expected 'synthetic' or a folder written by mofa-bench prepare; "
                          f"{target} is not a folder")
    try:
        return PreparedFaces(path, image_size)
    except (DatasetError, OSError) as err:
        raise ConfigError(f"method_options.target: {err}") from err


def target_images(dataset: Any, round_: int, count: int) -> torch.Tensor:
    """``(count,)`` int64 indices of the target images round ``round_`` (≥ 1) encodes: the
    ``count`` after the previous round's, wrapping around a smaller set."""
    start = (round_ - 1) * count
    return (torch.arange(start, start + count) % len(dataset)).long()
