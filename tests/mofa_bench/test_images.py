"""Real photos: loading, face crops, folder datasets."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mofa_bench.data import FaceBatch, ImageFolder, crop_face, load_image
from mofa_bench.data import images as images_module
from mofa_bench.data.images import CROP_SCALE, CROP_SHIFT, face_detector_available
from mofa_bench.errors import DatasetError, InputError

needs_detector = pytest.mark.skipif(not face_detector_available(),
                                    reason="OpenCV Haar cascade unavailable (pip install opencv-python-headless)")


def smooth_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """``(H, W, 3)`` uint8 smooth colour image (gradients plus mild noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([x / width, y / height, 0.5 + 0.3 * np.sin(x / 5.0)], -1) * 200
    img = img + rng.uniform(0, 40, (height, width, 3))
    return img.clip(0, 255).astype(np.uint8)


def write_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(array, mode=mode).save(path)
    return path


@pytest.fixture
def no_opencv(monkeypatch: pytest.MonkeyPatch):
    """Pretend OpenCV is not installed (detector cache reset around the test)."""
    images_module._haar_status.cache_clear()
    monkeypatch.setitem(sys.modules, "cv2", None)
    yield
    images_module._haar_status.cache_clear()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """skimage photos as PNG files: a face (astronaut) and no face (coffee)."""
    skdata = pytest.importorskip("skimage.data")
    folder = tmp_path_factory.mktemp("photos")
    return {
        "astronaut": write_png(folder / "astronaut.png", skdata.astronaut()),
        "coffee": write_png(folder / "coffee.png", skdata.coffee()),
    }


class TestLoadImage:
    def test_native_size_and_values(self, tmp_path):
        array = smooth_rgb(30, 40)
        image = load_image(write_png(tmp_path / "a.png", array))
        assert image.shape == (3, 30, 40) and image.dtype == torch.float32
        torch.testing.assert_close(image, torch.from_numpy(array).permute(2, 0, 1).float() / 255)

    def test_int_size_takes_the_centre_square(self, tmp_path):
        array = smooth_rgb(32, 64)
        image = load_image(write_png(tmp_path / "a.png", array), 32)
        assert image.shape == (3, 32, 32)
        torch.testing.assert_close(image, torch.from_numpy(array[:, 16:48]).permute(2, 0, 1).float() / 255)

    def test_tuple_size_resizes(self, tmp_path):
        image = load_image(write_png(tmp_path / "a.jpg", smooth_rgb(40, 60)), (20, 30))
        assert image.shape == (3, 20, 30)
        assert float(image.min()) >= 0 and float(image.max()) <= 1

    def test_grey_image_converted_to_rgb_with_warning(self, tmp_path):
        grey = smooth_rgb(24, 24)[..., 0]
        with pytest.warns(UserWarning, match="greyscale"):
            image = load_image(write_png(tmp_path / "g.png", grey, mode="L"))
        assert image.shape == (3, 24, 24)
        assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])

    def test_sixteen_bit_grey_is_scaled(self, tmp_path):
        grey = (np.linspace(0, 65535, 20 * 20).reshape(20, 20)).astype(np.uint16)
        with pytest.warns(UserWarning, match="greyscale"):
            image = load_image(write_png(tmp_path / "g16.png", grey))
        assert abs(float(image.max()) - 1.0) < 1e-4 and float(image.min()) == 0.0

    def test_alpha_channel_dropped(self, tmp_path):
        rgba = np.concatenate([smooth_rgb(16, 16), np.full((16, 16, 1), 128, np.uint8)], -1)
        assert load_image(write_png(tmp_path / "a.png", rgba)).shape == (3, 16, 16)

    @pytest.mark.parametrize("value", [(0, 0, 0), (200, 30, 30)])
    def test_blank_image_rejected(self, tmp_path, value):
        flat = np.broadcast_to(np.array(value, np.uint8), (20, 20, 3)).copy()
        with pytest.raises(DatasetError, match="blank image"):
            load_image(write_png(tmp_path / "flat.png", flat))

    def test_unreadable_file_rejected_naming_it(self, tmp_path):
        path = tmp_path / "broken.jpg"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8).tobytes())
        with pytest.raises(DatasetError, match="broken.jpg"):
            load_image(path)

    def test_missing_file_named(self, tmp_path):
        with pytest.raises(DatasetError, match="absent.png"):
            load_image(tmp_path / "absent.png")


class TestCropFace:
    def test_no_detector_falls_back_to_centre_square_with_warning(self, no_opencv):
        image = torch.rand(3, 30, 50)
        with pytest.warns(UserWarning, match="pip install opencv-python-headless"):
            crop, box = crop_face(image, 16, return_box=True)
        assert crop.shape == (3, 16, 16) and box == (10, 0, 30)

    def test_haar_without_opencv_raises(self, no_opencv):
        with pytest.raises(DatasetError, match="opencv"):
            crop_face(torch.rand(3, 20, 20), 16, detector="haar")

    def test_none_detector_is_silent_centre_square(self, recwarn):
        crop, box = crop_face(torch.rand(3, 40, 30), 24, detector="none", return_box=True)
        assert crop.shape == (3, 24, 24) and box == (0, 5, 30)
        assert not [w for w in recwarn if issubclass(w.category, UserWarning)]

    def test_convention_crop_margin_around_the_detection(self):
        """Crop side = CROP_SCALE · box side, centre CROP_SHIFT · side below the box centre."""
        image = torch.rand(3, 200, 200)
        _, box = crop_face(image, 32, detector=lambda rgb: [(60, 50, 40, 40), (0, 0, 10, 10)], return_box=True)
        side = round(CROP_SCALE * 40)
        assert box == (round(80 - side / 2), round(70 + CROP_SHIFT * 40 - side / 2), side)

    def test_crop_outside_the_photo_repeats_the_border(self):
        image = torch.zeros(3, 50, 50)
        image[:, :, :5] = 1.0
        crop = crop_face(image, 20, detector=lambda rgb: [(0, 10, 30, 30)])
        assert crop.shape == (3, 20, 20)
        assert torch.allclose(crop[:, :, 0], torch.ones(3, 20))

    def test_no_face_raises_naming_the_file(self):
        with pytest.raises(DatasetError, match="no face found in photo.jpg"):
            crop_face(torch.rand(3, 20, 20), 16, detector=lambda rgb: [], source="photo.jpg")

    def test_no_face_allowed_uses_centre_with_warning(self):
        with pytest.warns(UserWarning, match="no face found in photo.jpg"):
            crop = crop_face(torch.rand(3, 20, 30), 16, detector=lambda rgb: [], allow_no_face=True,
                             source="photo.jpg")
        assert crop.shape == (3, 16, 16)

    def test_unknown_detector_rejected(self):
        with pytest.raises(InputError, match="detector"):
            crop_face(torch.rand(3, 20, 20), 16, detector="dlib")

    @needs_detector
    def test_haar_finds_the_astronaut_face(self, photos):
        image = load_image(photos["astronaut"])
        crop, (x0, y0, side) = crop_face(image, 48, detector="haar", return_box=True)
        assert crop.shape == (3, 48, 48)
        # The face of skimage's astronaut is centred near (225, 115) px and ~95 px wide.
        assert abs(x0 + side / 2 - 225) < 15 and abs(y0 + side / 2 - 120) < 20
        assert 1.4 * 95 < side < 2.0 * 95

    @needs_detector
    def test_photo_without_face_raises(self, photos):
        with pytest.raises(DatasetError, match="no face found in .*coffee.png"):
            crop_face(load_image(photos["coffee"]), 48, detector="auto", source=photos["coffee"])


class TestImageFolder:
    def test_sorted_images_and_batch(self, tmp_path):
        for name in ("b.png", "a.JPG", "c.bmp"):
            Image.fromarray(smooth_rgb(40, 30, seed=len(name))).save(tmp_path / name)
        (tmp_path / "notes.txt").write_text("not an image")
        folder = ImageFolder(tmp_path, image_size=24, detector="none")
        assert len(folder) == 3 and [p.name for p in folder.files] == ["a.JPG", "b.png", "c.bmp"]
        batch = folder.batch(torch.tensor([2, 0]))
        assert isinstance(batch, FaceBatch) and batch.images.shape == (2, 3, 24, 24)
        assert batch.codes is None and batch.vertices is None and batch.landmarks is None and batch.masks is None
        assert torch.equal(batch.indices, torch.tensor([2, 0]))
        torch.testing.assert_close(batch.images[1], load_image(tmp_path / "a.JPG", 24))

    def test_any_pillow_format_and_one_grey_rule(self, tmp_path):
        Image.fromarray(smooth_rgb(40, 30)).save(tmp_path / "a.ppm")
        Image.fromarray(smooth_rgb(40, 30)[..., 0]).save(tmp_path / "g.pgm")
        converted = ImageFolder(tmp_path, image_size=24, detector="none")
        assert [p.name for p in converted.files] == ["a.ppm", "g.pgm"]
        with pytest.warns(UserWarning, match="g.pgm: greyscale image converted to RGB"):
            grey = converted.image(1)
        assert torch.equal(grey[0], grey[2])
        with pytest.warns(UserWarning, match="1 greyscale photo left out \\(grey: skip\\): g.pgm"):
            skipping = ImageFolder(tmp_path, image_size=24, detector="none", grey="skip")
        assert [p.name for p in skipping.files] == ["a.ppm"] and [p.name for p in skipping.skipped_grey] == ["g.pgm"]
        assert len(skipping) == 1 and skipping.image(0).shape == (3, 24, 24)
        with pytest.raises(InputError, match="grey: expected one of convert, skip"):
            ImageFolder(tmp_path, image_size=24, detector="none", grey="drop")
        (tmp_path / "a.ppm").unlink()
        with pytest.warns(UserWarning, match="left out"), pytest.raises(DatasetError, match="every photo .* greyscale"):
            ImageFolder(tmp_path, image_size=24, detector="none", grey="skip")

    def test_config_data_grey_skip_leaves_grey_photos_out_of_training(self, tmp_path):
        from mofa_bench.config import config_from_dict
        from mofa_bench.data.splits import build_datasets
        from mofa_bench.errors import ConfigError

        Image.fromarray(smooth_rgb(40, 30)).save(tmp_path / "a.png")
        Image.fromarray(smooth_rgb(40, 30, seed=1)).convert("L").convert("RGB").save(tmp_path / "g.png")  # grey as RGB
        data = {"kind": "images", "path": str(tmp_path)}
        kept, _ = build_datasets(config_from_dict({"data": data}).data, None, 24)
        assert [p.name for p in kept.files] == ["a.png", "g.png"]
        config = config_from_dict({"data": {**data, "grey": "skip"}})
        with pytest.warns(UserWarning, match="1 greyscale photo left out"):
            train, val = build_datasets(config.data, None, 24)
        assert [p.name for p in train.files] == ["a.png"] and val is None
        with pytest.raises(ConfigError, match="data.grey: expected one of convert, skip, got 'drop'"):
            config_from_dict({"data": {**data, "grey": "drop"}})

    def test_detector_runs_once_per_photo(self, tmp_path):
        write_png(tmp_path / "a.png", smooth_rgb(40, 40))
        calls = []

        def detector(rgb):
            calls.append(rgb.shape)
            return [(10, 10, 20, 20)]

        folder = ImageFolder(tmp_path, image_size=16, detector=detector, cache_size=0)
        first, second = folder.batch(torch.tensor([0])), folder.batch(torch.tensor([0]))
        assert len(calls) == 1 and torch.equal(first.images, second.images)
        assert folder.crop_box(0) == (20 - round(CROP_SCALE * 20) // 2, 21 - round(CROP_SCALE * 20) // 2,
                                      round(CROP_SCALE * 20))

    def test_empty_folder_rejected(self, tmp_path):
        (tmp_path / "readme.txt").write_text("no photos")
        with pytest.raises(DatasetError, match="no images"):
            ImageFolder(tmp_path, 24)

    def test_missing_folder_rejected(self, tmp_path):
        with pytest.raises(DatasetError, match="missing_dir"):
            ImageFolder(tmp_path / "missing_dir", 24)

    def test_bad_photo_named_in_batch(self, tmp_path):
        write_png(tmp_path / "good.png", smooth_rgb(20, 20))
        (tmp_path / "zz_bad.jpg").write_bytes(b"\x00" * 100)
        folder = ImageFolder(tmp_path, 16, detector="none")
        with pytest.raises(DatasetError, match="zz_bad.jpg"):
            folder.batch(torch.tensor([0, 1]))

    def test_out_of_range_index_rejected(self, tmp_path):
        write_png(tmp_path / "a.png", smooth_rgb(20, 20))
        with pytest.raises(InputError, match="indices"):
            ImageFolder(tmp_path, 16, detector="none").batch(torch.tensor([1]))

    @needs_detector
    def test_folder_of_real_photos(self, photos):
        folder = ImageFolder(photos["astronaut"].parent, image_size=32, detector="haar", allow_no_face=True)
        with pytest.warns(UserWarning, match="no face found in .*coffee.png"):
            batch = folder.batch(torch.arange(len(folder)))
        assert batch.images.shape == (2, 3, 32, 32)


def _mediapipe_or_skip() -> None:
    from mofa_bench.photos.detection import mediapipe_availability

    state = mediapipe_availability()
    if not state.available:
        pytest.skip(f"MediaPipe unavailable: {state.reason} (fix: {state.fix})")


class TestImageFolderFraming:
    def test_auto_crops_like_prepare_and_reconstruct(self, photos):
        _mediapipe_or_skip()
        from mofa_bench.photos.faces import PhotoFramer

        folder = ImageFolder(photos["astronaut"].parent, image_size=32, allow_no_face=True)
        assert folder.framing == "landmarks"
        with PhotoFramer("mediapipe") as framer:
            crop, box = framer.crop(load_image(photos["astronaut"]), 32)
        assert folder.crop_box(0) == box
        torch.testing.assert_close(folder.image(0), crop)
        haar = crop_face(load_image(photos["astronaut"]), 32, "none", return_box=True)[1]
        assert box != haar                                   # not the centre square
        # no face, or a false detection of the small-face search that the landmarker then rejects
        with pytest.warns(UserWarning, match="coffee.png: (no face|the landmarker found no face)"):
            folder.image(1)

    def test_without_mediapipe_auto_uses_haar_and_says_why_once(self, photos, monkeypatch, caplog):
        from renderers.base import Availability

        monkeypatch.setattr("mofa_bench.photos.detection.mediapipe_availability",
                            lambda: Availability(False, "the MediaPipe runtime does not import (test)", "pip install x"))
        monkeypatch.setattr(images_module, "_FALLBACK_LOGGED", set())
        with caplog.at_level("WARNING", logger="mofa_bench.data.images"):
            first = ImageFolder(photos["astronaut"].parent, image_size=32, allow_no_face=True)
            ImageFolder(photos["astronaut"].parent, image_size=32, allow_no_face=True)
        notes = [r.getMessage() for r in caplog.records if "MediaPipe is unavailable" in r.getMessage()]
        assert len(notes) == 1 and "does not import (test)" in notes[0] and "pip install x" in notes[0]
        assert first.framing == "box"
        if face_detector_available():
            expected = crop_face(load_image(photos["astronaut"]), 32, "haar", return_box=True)[1]
            assert first.crop_box(0) == expected

    def test_unknown_detector_is_named(self, photos):
        with pytest.raises(InputError, match="detector: expected 'auto', 'mediapipe'.*got 'blaze'"):
            ImageFolder(photos["astronaut"].parent, image_size=32, detector="blaze")
