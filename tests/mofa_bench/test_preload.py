"""A training set drawn once and held in memory (``data.preload``), and CPU bfloat16 autocast."""

from __future__ import annotations

import time

import pandas as pd
import pytest
import torch

from helpers import assert_close, tiny_train_config
from mofa_bench import Camera, MoFADecoder
from mofa_bench.data import SyntheticFaces
from mofa_bench.data.preload import PreloadedFaces
from mofa_bench.errors import InputError
from mofa_bench.training.trainer import Trainer


@pytest.fixture(scope="module")
def dataset(tiny_model):
    return SyntheticFaces(MoFADecoder(tiny_model.to(dtype=torch.float32), Camera(40)), size=11, seed=3)


@pytest.fixture(scope="module")
def preloaded(dataset):
    return PreloadedFaces(dataset, chunk_size=4, progress=False)


class TestPreloadedFaces:
    def test_batches_equal_the_source_up_to_uint8_quantisation(self, dataset, preloaded):
        indices = torch.tensor([10, 0, 5, 4, 3])  # across the chunks of 4, in any order
        held, fresh = preloaded.batch(indices), dataset.batch(indices)
        assert len(preloaded) == 11
        assert torch.equal(held.indices, indices)
        assert torch.equal(held.codes, fresh.codes)
        assert_close(held.landmarks, fresh.landmarks)  # float noise between batch compositions
        assert torch.equal(held.landmark_confidence, fresh.landmark_confidence)
        assert_close(held.images, fresh.images, rtol=0, atol=0.5 / 255 + 1e-5)
        assert_close(held.masks, fresh.masks, rtol=0, atol=0.5 / 255)
        assert held.images.dtype == torch.float32 and held.vertices is None

    def test_holds_uint8_images_and_masks(self, preloaded):
        images, masks = preloaded.tensors["images"], preloaded.tensors["masks"]
        assert images.dtype == masks.dtype == torch.uint8
        assert images.shape == (11, 3, 40, 40) and masks.shape == (11, 1, 40, 40)
        assert preloaded.nbytes == 11 * (4 * 40 * 40 + 4 * (257 + 68 * 2 + 68))

    def test_fields_the_source_lacks_stay_none(self, dataset):
        class ImagesOnly:
            def __len__(self):
                return 3

            def batch(self, indices):
                full = dataset.batch(indices)
                return type(full)(images=full.images, indices=full.indices)

        batch = PreloadedFaces(ImagesOnly(), progress=False).batch(torch.tensor([2, 1]))
        assert batch.codes is None and batch.landmarks is None and batch.masks is None
        assert batch.images.shape == (2, 3, 40, 40)

    @pytest.mark.parametrize("bad", [torch.tensor([11]), torch.tensor([-1]), torch.tensor([0.5])])
    def test_bad_indices_rejected(self, preloaded, bad):
        with pytest.raises(InputError, match="indices"):
            preloaded.batch(bad)

    def test_bad_chunk_size_rejected(self, dataset):
        with pytest.raises(InputError, match="chunk_size"):
            PreloadedFaces(dataset, chunk_size=0)


def test_trainer_preloads_the_training_set_and_trains_on_it(tmp_path, tiny_model_path):
    trainer = Trainer(tiny_train_config(tmp_path, tiny_model_path, "data.preload=true", "optim.iterations=2"))
    assert isinstance(trainer.train_data, PreloadedFaces)
    assert len(trainer.train_data) == trainer.config.data.train_size
    assert not isinstance(trainer.val_data, PreloadedFaces)  # validation draws its own faces
    assert not trainer.train_data.loaded  # drawn when training starts
    assert trainer.fit().steps == 2
    assert trainer.train_data.loaded


def test_drawing_the_training_set_is_not_counted_as_training_time(tmp_path, tiny_model_path, monkeypatch):
    """The set is drawn before the step loop, so ``train_time_s`` and the first logged row's
    ``time_s`` measure steps only: a draw that takes 1,000 s on the clock does not show in
    them. The clock is the real one plus what the draw adds, so the test does not
    depend on how fast the machine runs the two tiny steps."""
    draw, real_clock, draw_s = PreloadedFaces._draw, time.perf_counter, 1000.0
    offset = [0.0]

    def slow_draw(self):
        offset[0] += draw_s
        return draw(self)

    monkeypatch.setattr(PreloadedFaces, "_draw", slow_draw)
    monkeypatch.setattr(time, "perf_counter", lambda: real_clock() + offset[0])
    trainer = Trainer(tiny_train_config(tmp_path, tiny_model_path, "data.preload=true", "optim.iterations=2",
                                        "log_every=2"))
    trainer.fit()
    assert trainer.train_data.loaded and offset[0] == draw_s
    assert trainer.train_time_s < draw_s
    assert pd.read_csv(trainer.run_dir / "metrics.csv").iloc[0]["time_s"] < draw_s


def test_a_finished_run_resumed_does_not_draw_its_training_set(tmp_path, tiny_model_path):
    config = tiny_train_config(tmp_path, tiny_model_path, "data.preload=true", "optim.iterations=2")
    Trainer(config).fit()
    resumed = Trainer(config)
    result = resumed.fit(resume=True)
    assert result.steps == 2 and result.new_steps == 0
    assert not resumed.train_data.loaded


def test_amp_runs_the_encoder_in_bfloat16_on_the_cpu(tmp_path, tiny_model_path):
    """``amp: true`` autocasts the encoder's convolutions on the CPU; codes stay float32."""
    trainer = Trainer(tiny_train_config(tmp_path, tiny_model_path, "amp=true"))
    method = trainer.method
    dtypes = []
    conv = next(m for m in method.encoder.modules() if isinstance(m, torch.nn.Conv2d))
    handle = conv.register_forward_hook(lambda module, args, output: dtypes.append(output.dtype))
    images = trainer.train_data.batch(torch.arange(2)).images
    with torch.no_grad():
        for name, param in method.encoder.named_parameters():  # a non-zero head, so the codes say something
            param.add_(0.01 * torch.randn_like(param))
        amp_code = method.encode(images)
        method.amp = False
        fp32_code = method.encode(images)
    handle.remove()
    assert dtypes == [torch.bfloat16, torch.float32]
    assert amp_code.dtype == torch.float32
    assert_close(amp_code, fp32_code, rtol=0.05, atol=0.05 * float(fp32_code.abs().max()))
