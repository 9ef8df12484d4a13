"""``reconstruct`` crops photos with the same detector and framing as ``mofa-bench prepare``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mofa_bench.photos.faces import FacePipeline, PhotoFramer


@pytest.fixture
def code_model(tiny_model):
    from mofa_bench import Camera, MoFADecoder
    from mofa_bench.code_vector import CODE_DIM
    from mofa_bench.reconstruct import CodeModel

    decoder = MoFADecoder(tiny_model.to(dtype=torch.float32), Camera(image_size=48))
    return CodeModel(encode=lambda images: torch.zeros(images.shape[0], CODE_DIM), decoder=decoder,
                     image_size=48, device=torch.device("cpu"))


def _boxes(out: Path) -> dict[str, tuple[int, int, int]]:
    with (out / "reconstructions.csv").open() as handle:
        return {Path(r["source"]).name: (int(r["crop_x0"]), int(r["crop_y0"]), int(r["crop_side"]))
                for r in csv.DictReader(handle) if r["status"] == "ok"}


@pytest.mark.usefixtures("needs_mediapipe")
class TestReconstructCrops:
    def test_auto_and_mediapipe_frame_like_prepare(self, code_model, astronaut, tmp_path: Path):
        from mofa_bench.reconstruct import reconstruct

        photo = tmp_path / "astronaut.png"
        Image.fromarray(astronaut).save(photo)
        with FacePipeline() as pipeline:
            expected = pipeline.find(astronaut).box
        for detector in ("auto", "mediapipe"):
            out = tmp_path / detector
            [result] = reconstruct(code_model, [photo], out, detector=detector, progress=False)
            assert result.status == "ok" and _boxes(out)["astronaut.png"] == expected

    def test_face_less_photo_fails_with_the_reason_or_takes_the_centre(self, code_model, tmp_path: Path):
        from mofa_bench.reconstruct import reconstruct

        photo = tmp_path / "noise.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(photo)
        [failed] = reconstruct(code_model, [photo], tmp_path / "a", detector="mediapipe", progress=False)
        assert failed.status == "failed" and "no face detected" in failed.message
        with pytest.warns(UserWarning, match="no face detected; using the centre square"):
            [ok] = reconstruct(code_model, [photo], tmp_path / "b", detector="mediapipe", allow_no_face=True,
                               progress=False)
        assert ok.status == "ok" and tuple(ok.crop_box) == (20, 0, 120)

    def test_framer_crop_is_the_box_resampled(self, astronaut):
        image = torch.from_numpy(astronaut).permute(2, 0, 1).float() / 255
        with PhotoFramer() as framer:
            crop, box = framer.crop(image, 64)
        x0, y0, side = box
        direct = Image.fromarray(astronaut[y0:y0 + side, x0:x0 + side]).resize((64, 64), Image.Resampling.BICUBIC)
        assert crop.shape == (3, 64, 64)
        assert torch.allclose(crop, torch.from_numpy(np.asarray(direct) / 255.0).permute(2, 0, 1).float(), atol=1e-6)
