"""A short training with the landmark surrogate learns the pose: the posed error falls below the mean face's."""

from __future__ import annotations

import pytest

from mofa_bench.scoring.validation import validate
from helpers import tiny_train_config
from mofa_bench.training import Trainer


@pytest.mark.slow
def test_short_training_lowers_the_posed_geometric_error(tmp_path, tiny_model_path):
    # The CPU learning protocol (the converge config: level-1 default model, 64 px,
    # strong face-part prior, landmark surrogate) for its first 300 steps.
    cfg = tiny_train_config(
        tmp_path, tiny_model_path, "model.source=default", "model.subdivisions=1", "optim.iterations=300",
        "optim.batch_size=16", "optim.lr=0.0003", "optim.z_translation_lr=0.0003", "data.train_size=4800",
        "data.val_size=32", "val_every=300", "checkpoint_every=300", "sample_every=300", "log_every=50",
        "loss.landmark=0.001", "loss.reg=0.029", "loss.reg_beta=1.0", name="learns")
    result = Trainer(cfg, validator=validate).fit()
    import pandas as pd

    curve = pd.read_csv(result.run_dir / "validation.csv")
    start, end = curve.iloc[0], curve.iloc[-1]
    assert start["step"] == 0 and end["step"] == 300
    assert end["geometric_mm"] < 0.85 * start["geometric_mm"], (start["geometric_mm"], end["geometric_mm"])
    assert end["landmark_px"] < 0.7 * start["landmark_px"]
    assert end["rotation_rms_ratio"] < 0.8
    # The strong prior holds the face parts at the mean unless the images support a change.
    assert end["alpha_rms_ratio"] < 1.02 and end["beta_rms_ratio"] < 1.02
