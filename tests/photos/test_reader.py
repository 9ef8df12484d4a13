"""The one photo reader: every format Pillow reads, one grey rule, reasons for every refusal."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mofa_bench.errors import DatasetError, InputError
from mofa_bench.photos.reader import GREY_NOTE, PhotoReadError, image_suffixes, open_photo

#: One file per format: (name, Pillow save options); lossless ones must read back exactly.
FORMATS = {
    "photo.png": {}, "photo.jpg": {"quality": 95}, "photo.ppm": {}, "photo.bmp": {}, "photo.tif": {},
    "photo.webp": {"lossless": True}, "photo.gif": {}, "photo.tga": {},
}
LOSSLESS = {"photo.png", "photo.ppm", "photo.bmp", "photo.tif", "photo.webp", "photo.tga"}


def smooth_rgb(height: int = 40, width: int = 48) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 5, y * 6, (x + y) * 2], -1).clip(0, 255).astype(np.uint8)


@pytest.fixture
def formats(tmp_path: Path) -> Path:
    rgb = smooth_rgb()
    for name, options in FORMATS.items():
        Image.fromarray(rgb).save(tmp_path / name, **options)
    return tmp_path


class TestFormats:
    @pytest.mark.parametrize("name", sorted(FORMATS))
    def test_each_format_reads_as_rgb(self, formats: Path, name: str):
        photo = open_photo(formats / name)
        assert photo.pixels.shape == (40, 48, 3) and photo.pixels.dtype == np.uint8
        assert photo.source_size == (48, 40) and photo.scale == 1.0 and not photo.grey
        if name in LOSSLESS:
            assert np.array_equal(photo.pixels, smooth_rgb())
        else:  # JPEG, and GIF's 256-colour palette
            assert np.abs(photo.pixels.astype(int) - smooth_rgb()).mean() < 8

    def test_pgm_and_16_bit_grey_are_converted_with_a_note(self, tmp_path: Path):
        grey = smooth_rgb()[..., 0]
        Image.fromarray(grey).save(tmp_path / "g.pgm")
        photo = open_photo(tmp_path / "g.pgm")
        assert photo.grey and photo.notes == (GREY_NOTE,)
        assert np.array_equal(photo.pixels, np.repeat(grey[..., None], 3, axis=2))
        Image.fromarray((grey.astype(np.uint16) * 257)).save(tmp_path / "g16.png")
        wide = open_photo(tmp_path / "g16.png")
        assert wide.pixels.dtype == np.float32 and wide.grey
        assert np.allclose(wide.rgb8(), photo.pixels)

    def test_rgb_file_with_equal_channels_is_grey(self, tmp_path: Path):
        grey = np.repeat(smooth_rgb()[..., :1], 3, axis=2)
        Image.fromarray(grey).save(tmp_path / "g.png")
        assert open_photo(tmp_path / "g.png").grey
        with pytest.raises(PhotoReadError) as info:
            open_photo(tmp_path / "g.png", grey="skip")
        assert info.value.kind == "grey" and info.value.reason.startswith("greyscale image")
        assert isinstance(info.value, DatasetError) and str(info.value).startswith(str(tmp_path / "g.png"))

    def test_animated_gif_gives_its_first_frame(self, tmp_path: Path):
        frames = [Image.fromarray(smooth_rgb()), Image.fromarray(255 - smooth_rgb())]
        frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
        photo = open_photo(tmp_path / "a.gif")
        assert "2 frames: the first is used" in photo.notes
        assert np.abs(photo.pixels.astype(int) - smooth_rgb()).mean() < 8

    def test_large_photo_is_downscaled_with_a_note(self, tmp_path: Path):
        Image.fromarray(np.tile(smooth_rgb(), (3, 3, 1))).save(tmp_path / "big.png")   # 144 × 120
        photo = open_photo(tmp_path / "big.png", max_side=72)
        assert photo.pixels.shape == (60, 72, 3) and photo.scale == 0.5
        assert photo.notes == ("downscaled by 0.5 while reading",)

    def test_tensor_and_rgb8_agree(self, formats: Path):
        photo = open_photo(formats / "photo.png")
        image = photo.tensor()
        assert image.shape == (3, 40, 48) and image.dtype == torch.float32
        assert torch.equal((image * 255).round().to(torch.uint8).permute(1, 2, 0), torch.from_numpy(photo.rgb8()))

    def test_common_formats_are_listed_as_image_suffixes(self):
        assert {".jpg", ".png", ".ppm", ".pgm", ".bmp", ".tif", ".webp", ".gif"} <= set(image_suffixes())
        assert ".h5" not in image_suffixes()          # a stub format that needs an external handler


class TestRefusals:
    def test_each_refusal_has_its_kind_and_reason(self, tmp_path: Path, formats: Path):
        (tmp_path / "notes.txt").write_text("hello")
        (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
        data = (formats / "photo.png").read_bytes()
        (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
        Image.fromarray(np.full((20, 20, 3), 7, np.uint8)).save(tmp_path / "flat.png")
        Image.fromarray(smooth_rgb(5, 40)).save(tmp_path / "thin.png")
        os.mkfifo(tmp_path / "pipe.jpg")
        (tmp_path / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
        expected = {"notes.txt": ("not_image", "not an image"), "broken.png": ("unreadable", "unreadable image"),
                    "cut.png": ("unreadable", "unreadable image"), "flat.png": ("blank", "blank image"),
                    "thin.png": ("too_small", "image too small (40 × 5 px"),
                    "pipe.jpg": ("not_regular", "not a regular file (a FIFO)"),
                    "dangling.jpg": ("missing", "dangling symbolic link"),
                    "absent.png": ("missing", "no such file or folder")}
        for name, (kind, reason) in expected.items():
            with pytest.raises(PhotoReadError) as info:
                open_photo(tmp_path / name)
            assert (info.value.kind, info.value.reason[: len(reason)]) == (kind, reason), name
        with pytest.raises(PhotoReadError, match=r"image too large \(48 × 40 px > 0 MP\)"):
            open_photo(formats / "photo.png", max_pixels=1000)

    def test_unknown_grey_rule(self, formats: Path):
        with pytest.raises(InputError, match="grey: expected one of convert, skip"):
            open_photo(formats / "photo.png", grey="drop")
