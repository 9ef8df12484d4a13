"""``reconstruct --method fit`` uses what was detected: landmarks with confidences, the face region, and writes 2-D points."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mofa_bench.code_vector import CODE_DIM
from mofa_bench.photos.face_region import face_region_mask
from mofa_bench.reconstruct_fit import LandmarkFit, RegionMaskedDecoder, build_landmark_fit
from mofa_bench.reconstruct_outputs import encode_crops, landmark_record, overlay_picture


class TestFaceRegion:
    def test_hull_of_points_is_filled(self):
        square = np.array([[2.0, 2.0], [10.0, 2.0], [10.0, 10.0], [2.0, 10.0], [6.0, 6.0]])
        mask = face_region_mask(square, 12)
        assert mask.shape == (12, 12) and mask.dtype == np.float32
        # pixel centres j + 0.5 inside [2, 10]: pixels 2..9 in both axes
        expected = np.zeros((12, 12), np.float32)
        expected[2:10, 2:10] = 1
        assert np.array_equal(mask, expected)

    def test_degenerate_and_bad_points(self):
        assert face_region_mask(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]), 4).sum() == 0
        from mofa_bench.errors import InputError

        with pytest.raises(InputError, match="points"):
            face_region_mask(np.zeros((2, 2)), 4)


def _decoder(tiny_model, size: int = 48):
    from mofa_bench import Camera, MoFADecoder

    return MoFADecoder(tiny_model.to(dtype=torch.float32), Camera(image_size=size))


class TestRegionMaskedDecoder:
    def test_samples_outside_the_region_weigh_nothing(self, tiny_model):
        decoder = RegionMaskedDecoder(_decoder(tiny_model))
        code = torch.zeros(1, CODE_DIM)
        images = torch.rand(1, 3, 48, 48)
        formed = decoder.form(code)
        plain = decoder.photometric_samples(formed, images)
        region = torch.zeros(1, 1, 48, 48)
        region[..., :24] = 1.0                               # the left half of the crop
        decoder.region = region
        masked = decoder.photometric_samples(formed, images)
        x = formed.uv[0, :, 0]
        inside, outside = x < 23.0, x > 25.0
        assert torch.equal(masked.predicted, plain.predicted) and torch.equal(masked.observed, plain.observed)
        assert torch.allclose(masked.weights[0, inside], plain.weights[0, inside])
        assert float(masked.weights[0, outside].abs().sum()) == 0.0 and float(plain.weights[0, outside].sum()) > 0
        decoder.region = None
        assert torch.equal(decoder.photometric_samples(formed, images).weights, plain.weights)


@pytest.fixture
def fit_config(tiny_model_path):
    from mofa_bench.config import load_config

    config = load_config(None, [f"model.source={tiny_model_path}", "camera.image_size=64"])
    return dataclasses.replace(config, method="fit", method_options={"steps": 40})


class TestLandmarkFit:
    def test_landmarks_pull_the_fit_to_them(self, fit_config):
        """On a posed render, the fit given its true landmarks ends nearer them than the mean face and than a colour-only fit."""
        from mofa_bench.reconstruct import build_decoder

        decoder = build_decoder(fit_config, torch.device("cpu"))
        truth = torch.zeros(1, CODE_DIM)
        truth[0, 224:227] = torch.tensor([0.1, 0.35, 0.05])     # pitch, yaw, roll (rad)
        truth[0, 227:229] = torch.tensor([15.0, -10.0])         # x, y translation (mm)
        with torch.no_grad():
            image, _ = decoder.render(truth, torch.full((1, 3, 64, 64), 0.5))
            target = decoder.form(truth).landmarks_uv
            start = decoder.form(torch.zeros(1, CODE_DIM)).landmarks_uv
        fit = build_landmark_fit(fit_config, decoder)
        assert isinstance(fit, LandmarkFit) and fit.fit.loss_weights.landmark > 0
        code = fit.encode(image, target, torch.ones(1, 68), torch.ones(1, 1, 64, 64))
        with torch.no_grad():
            ended = decoder.form(code).landmarks_uv
        error = lambda points: float((points - target).norm(dim=-1).mean())  # noqa: E731
        colour_only = build_landmark_fit(fit_config, decoder).encode(image, target, torch.zeros(1, 68))
        with torch.no_grad():
            colour = decoder.form(colour_only).landmarks_uv
        assert error(ended) < 0.5 * error(start) and error(ended) < error(colour)

    def test_weight_scales_with_the_crop(self, fit_config):
        from mofa_bench.reconstruct import build_decoder
        from mofa_bench.reconstruct_fit import FIT_LANDMARK_WEIGHT

        fit = build_landmark_fit(fit_config, build_decoder(fit_config, torch.device("cpu")))
        assert fit.fit.loss_weights.landmark == pytest.approx(FIT_LANDMARK_WEIGHT * (240 / 64) ** 2)
        given = dataclasses.replace(fit_config, loss=dataclasses.replace(fit_config.loss, landmark=0.5))
        assert build_landmark_fit(given, build_decoder(given, torch.device("cpu"))).fit.loss_weights.landmark == 0.5


class TestOutputs:
    def test_encode_crops_hands_detections_only_to_predictors_that_use_them(self):
        from mofa_bench.photos.faces import FramedCrop

        seen = {}

        class Plain:
            def encode(self, images):
                seen["plain"] = images.shape
                return torch.zeros(images.shape[0], CODE_DIM)

        class Uses(Plain):
            uses_landmarks = True

            def encode(self, images, landmarks, confidence, region):
                seen["uses"] = (landmarks.clone(), confidence.clone(), region.clone())
                return torch.zeros(images.shape[0], CODE_DIM)

        framed = FramedCrop(torch.zeros(3, 8, 8), (0, 0, 8), np.full((68, 2), 3.0), np.full(68, 0.5),
                            np.eye(8, dtype=np.float32))
        images = torch.zeros(2, 3, 8, 8)
        encode_crops(Plain(), images, [framed, None])
        assert seen["plain"] == (2, 3, 8, 8)
        encode_crops(Uses(), images, [framed, None])
        landmarks, confidence, region = seen["uses"]
        assert torch.all(landmarks[0] == 3.0) and torch.all(confidence[0] == 0.5)
        assert torch.all(confidence[1] == 0) and torch.all(region[1] == 1) and torch.equal(region[0, 0], torch.eye(8))

    def test_landmark_record_is_in_photo_pixels(self):
        crop = np.tile(np.arange(68, dtype=np.float64)[:, None], (1, 2))
        record = landmark_record(torch.from_numpy(crop), (100, 50, 200), 100, crop + 1.0)
        assert np.allclose(record.projected, crop * 2 + [100, 50])
        assert record.error_px == pytest.approx(2 * np.sqrt(2))
        assert record.nme == pytest.approx(2 * np.sqrt(2) / np.linalg.norm((crop[36] - crop[45]) * 2))
        assert np.isnan(landmark_record(crop, (0, 0, 100), 100, None).nme)

    def test_overlay_is_at_least_256_px_with_points(self):
        tiles = torch.zeros(3, 3, 64, 64)
        points = np.full((68, 2), 32.0)
        picture = overlay_picture(tiles, points, points + 10)
        assert picture.shape == (256 + 4, 3 * 256 + 8, 3)
        red = (picture[..., 0] > 200) & (picture[..., 1] < 80)
        green = (picture[..., 1] > 200) & (picture[..., 0] < 80)
        assert red[:, 256:].any() and green[:, :258].any() and not red[:, :258].any()


@pytest.mark.usefixtures("needs_mediapipe")
def test_reconstruct_fit_ends_nearer_the_detected_points(tmp_path: Path, astronaut, fit_config):
    """``reconstruct`` with the landmark fit: 2-D points in photo px in CSV and JSON, closer than the mean face."""
    from mofa_bench.reconstruct import CodeModel, build_decoder, reconstruct

    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    decoder = build_decoder(fit_config, torch.device("cpu"))
    fitted = reconstruct(build_landmark_fit(fit_config, decoder), [photo], tmp_path / "fit", detector="mediapipe",
                         progress=False)
    mean = reconstruct(CodeModel(lambda images: torch.zeros(images.shape[0], CODE_DIM), decoder, 64,
                                 torch.device("cpu")), [photo], tmp_path / "mean", detector="mediapipe",
                       progress=False)
    assert fitted[0].status == mean[0].status == "ok"
    assert fitted[0].landmarks.nme < mean[0].landmarks.nme
    record = json.loads((tmp_path / "fit" / "astronaut_code.json").read_text())
    points = np.asarray(record["landmarks_68"])
    x0, y0, side = record["crop_box"]
    assert points.shape == (68, 2) and (points[:, 0] > x0).all() and (points[:, 0] < x0 + side).all()
    assert np.asarray(record["detected_68"]).shape == (68, 2) and record["landmark_nme"] == pytest.approx(
        fitted[0].landmarks.nme, abs=1e-4)
    with (tmp_path / "fit" / "reconstructions.csv").open() as handle:
        [row] = list(csv.DictReader(handle))
    assert np.allclose(json.loads(row["landmarks_68"]), points, atol=1e-3)
    assert float(row["landmark_nme"]) == pytest.approx(fitted[0].landmarks.nme, abs=1e-4)
    overlay = np.asarray(Image.open(tmp_path / "fit" / "astronaut_overlay.png"))
    assert overlay.shape[0] >= 256
