"""Every bad input of the table in ``bad_inputs.py`` gets its class of outcome and a message naming the cause."""

from __future__ import annotations

import re
import sys
import types
from collections import Counter
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

import bad_inputs_files  # noqa: E402,F401 - adds its cases to CASES
import bad_inputs_study  # noqa: E402,F401 - adds its cases to CASES
from bad_inputs import CASES, Outcome  # noqa: E402

#: Overrides of the tiny run whose checkpoint the checkpoint cases start from.
RUN_OVERRIDES = ("camera.image_size=64", "optim.iterations=2", "data.train_size=4", "data.val_size=2",
                 "val_every=2", "checkpoint_every=2", "sample_every=2")


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_model_path) -> types.SimpleNamespace:
    import skimage.data
    from PIL import Image

    from helpers import tiny_train_config
    from mofa_bench import Camera, FaceModel, MoFADecoder
    from mofa_bench.reconstruct import CodeModel
    from mofa_bench.training import Trainer

    root = tmp_path_factory.mktemp("bad_inputs")
    photo, other = root / "astronaut.png", root / "coffee.png"
    Image.fromarray(skimage.data.astronaut()[::8, ::8]).save(photo)
    Image.fromarray(skimage.data.coffee()[::8, ::8]).save(other)
    decoder = MoFADecoder(FaceModel.load(tiny_model_path), Camera(32))
    code_model = CodeModel(encode=lambda images: torch.zeros(images.shape[0], 257), decoder=decoder,
                           image_size=32, device=torch.device("cpu"))
    trainer = Trainer(tiny_train_config(root, tiny_model_path, *RUN_OVERRIDES, name="base"))
    trainer.fit()
    return types.SimpleNamespace(model_path=tiny_model_path, photo=photo, other_photo=other, decoder=decoder,
                                 code_model=code_model, checkpoint=trainer.checkpoint_dir / "last.pt",
                                 run_overrides=RUN_OVERRIDES)


def outcome_of(case, env, tmp_path) -> tuple[str, str]:
    """``(outcome class, message)`` of running one case."""
    try:
        message = case.run(env, tmp_path)
    except Outcome as result:
        return result.kind, result.message
    except Exception as err:  # noqa: BLE001 - the class is what is checked
        return type(err).__name__, str(err)
    return "ok", str(message or "")


def test_the_table_is_large_and_covers_every_area():
    areas = Counter(case.area for case in CASES)
    assert len(CASES) >= 60
    assert set(areas) == {"config", "model file", "checkpoint", "API argument", "image", "output path", "CLI",
                          "study files"}
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case, env, tmp_path):
    if "nvdiffrast" in case.id and torch.cuda.is_available():
        pytest.skip("nvdiffrast runs here")
    kind, message = outcome_of(case, env, tmp_path)
    assert kind == case.outcome, f"{case.id}: expected {case.outcome}, got {kind}: {message}"
    assert "\n" not in message.strip(), f"{case.id}: message is not one line: {message!r}"
    assert re.search(case.pattern, message), f"{case.id}: message {message!r} does not match {case.pattern!r}"
