"""``data.kind: mixed``: batches drawn from prepared photos and synthetic renders by weight."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from mofa_bench.scoring.validation import validate
from helpers import tiny_train_config
from mofa_bench.data.batch import FaceBatch
from mofa_bench.data.mixed import MixedFaces
from mofa_bench.data.synthetic import SyntheticFaces
from mofa_bench.errors import ConfigError, InputError
from mofa_bench.data.prepared import PreparedFaces
from mofa_bench.training import Trainer
from mofa_bench.training.schedule import batch_indices
from prepared_folders import rendered_prepared_folder


class _Numbered:
    """A dataset whose batches say which source they came from (images filled with its number)."""

    def __init__(self, number: int, size: int) -> None:
        self.number, self.size = number, size

    def __len__(self) -> int:
        return self.size

    def batch(self, indices: torch.Tensor) -> FaceBatch:
        return FaceBatch(images=torch.full((len(indices), 3, 2, 2), float(self.number)), indices=indices)


@pytest.fixture
def prepared(tmp_path: Path, tiny_model_path: Path) -> Path:
    return rendered_prepared_folder(tmp_path / "prepared", tiny_model_path, count=3)


def _mixed(tmp_path: Path, model: Path, prepared: Path, *overrides: str):
    return tiny_train_config(tmp_path / "runs", model, "data.kind=mixed",
                             f"data.sources=[{{kind: prepared, path: {prepared}, weight: 1}}, "
                             f"{{kind: synthetic, weight: 3}}]", *overrides)


class TestMixedFaces:
    def test_batch_shares_follow_the_weights_over_many_draws(self):
        mixed = MixedFaces([_Numbered(0, 10), _Numbered(1, 50), _Numbered(2, 7)], [1.0, 2.0, 1.0], seed=5)
        drawn = [int(mixed.batch(batch_indices(step, 4, len(mixed), 11)).images[0, 0, 0, 0])
                 for step in range(4000)]
        shares = torch.bincount(torch.tensor(drawn), minlength=3).double() / len(drawn)
        assert torch.allclose(shares, torch.tensor([0.25, 0.5, 0.25], dtype=torch.float64), atol=0.025)

    def test_each_batch_comes_from_one_source_deterministically(self):
        mixed = MixedFaces([_Numbered(0, 10), _Numbered(1, 50)], [1.0, 1.0], seed=5)
        again = MixedFaces([_Numbered(0, 10), _Numbered(1, 50)], [1.0, 1.0], seed=5)
        other = MixedFaces([_Numbered(0, 10), _Numbered(1, 50)], [1.0, 1.0], seed=6)
        steps = [batch_indices(step, 4, len(mixed), 0) for step in range(64)]
        choices = [mixed.source_of(idx) for idx in steps]
        assert choices == [again.source_of(idx) for idx in steps]      # a resumed run draws the same sources
        assert choices != [other.source_of(idx) for idx in steps]      # the seed matters
        for idx, choice in zip(steps, choices):
            batch = mixed.batch(idx)
            assert batch.images.unique().tolist() == [float(choice)]   # never a mixture
            assert torch.equal(batch.indices, idx)

    def test_length_lets_each_source_be_covered_per_epoch(self):
        mixed = MixedFaces([_Numbered(0, 10), _Numbered(1, 50)], [1.0, 4.0])
        assert len(mixed) == max(math.ceil(10 / 0.2), math.ceil(50 / 0.8)) == 63

    @pytest.mark.parametrize("weights, message", [([1.0], "2 weights"), ([1.0, 0.0], "finite weights > 0"),
                                                  ([1.0, math.nan], "finite weights > 0")])
    def test_bad_weights_are_input_errors(self, weights, message):
        with pytest.raises(InputError, match=message):
            MixedFaces([_Numbered(0, 3), _Numbered(1, 3)], weights)


class TestMixedConfig:
    def test_sources_are_read_and_built(self, tmp_path, tiny_model_path, prepared):
        trainer = Trainer(_mixed(tmp_path, tiny_model_path, prepared))
        data = trainer.train_data
        assert isinstance(data, MixedFaces)
        assert isinstance(data.sources[0], PreparedFaces) and isinstance(data.sources[1], SyntheticFaces)
        assert data.probabilities.tolist() == [0.25, 0.75]
        assert isinstance(trainer.val_data, SyntheticFaces) and len(trainer.val_data) == 4

    @pytest.mark.parametrize("sources, message", [
        ("[]", r"data\.sources: data\.kind='mixed' needs at least one source"),
        ("[{kind: mixed, weight: 1}]", r"data\.sources\[0\]\.kind: expected one of"),
        ("[{kind: synthetic, weight: -1}]", r"data\.sources\[0\]\.weight: expected a finite weight > 0"),
        ("[{kind: prepared, weight: 1}]", r"data\.sources\[0\]\.path: required"),
        ("[{kind: prepared, path: /no/such/folder}]", r"data\.sources\[0\]\.path: /no/such/folder does not exist"),
        ("[{kind: synthetic, path: x}]", r"data\.sources\[0\]\.path: a synthetic source has no path"),
        ("[{kind: synthetic, wieght: 1}]", r"data\.sources\[0\]\.wieght: unknown key"),
    ])
    def test_bad_sources_name_the_key(self, tmp_path, tiny_model_path, sources, message):
        with pytest.raises(ConfigError, match=message):
            tiny_train_config(tmp_path, tiny_model_path, "data.kind=mixed", f"data.sources={sources}")

    def test_sources_need_kind_mixed_and_mixed_has_no_path(self, tmp_path, tiny_model_path, prepared):
        with pytest.raises(ConfigError, match=r"data\.sources: only used with data\.kind='mixed'"):
            tiny_train_config(tmp_path, tiny_model_path, "data.sources=[{kind: synthetic}]")
        with pytest.raises(ConfigError, match=r"data\.val_path: not used with data\.kind='mixed'"):
            _mixed(tmp_path, tiny_model_path, prepared, f"data.val_path={prepared}")


def test_a_mixed_config_trains_on_photos_and_renders(tmp_path, tiny_model_path, prepared):
    config = _mixed(tmp_path, tiny_model_path, prepared, "loss.landmark=1.0", "optim.iterations=2")
    trainer = Trainer(config, validator=validate)
    bs = config.optim.batch_size
    sources = [trainer.train_data.source_of(batch_indices(s, bs, len(trainer.train_data), trainer.order_seed))
               for s in range(40)]
    assert set(sources) == {0, 1}                   # both sources feed this run's first steps
    photo = trainer.train_data.batch(batch_indices(sources.index(0), bs, len(trainer.train_data),
                                                   trainer.order_seed))
    render = trainer.train_data.batch(batch_indices(sources.index(1), bs, len(trainer.train_data),
                                                    trainer.order_seed))
    assert photo.codes is None and photo.landmarks is not None and photo.landmark_confidence is not None
    assert render.codes is not None and render.landmarks is not None
    result = trainer.fit()
    assert result.steps == 2 and math.isfinite(result.final_loss)
    metrics = pd.read_csv(result.run_dir / "metrics.csv")
    assert len(metrics) == 2 and (metrics["landmark"] > 0).all()
    validation = pd.read_csv(result.run_dir / "validation.csv")
    assert "geometric_mm" in validation.columns      # validation keeps the synthetic ground truth
