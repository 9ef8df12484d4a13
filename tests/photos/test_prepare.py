"""``mofa-bench prepare folder``: crops, manifest rows for every file, resuming, and reading it back."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mofa_bench.errors import DatasetError, InputError
from mofa_bench.photos.faces import PhotoSkipped, read_photo_array
from mofa_bench.photos.framing import frame_from_landmarks68
from mofa_bench.data.prepared import PreparedFaces
from mofa_bench.photos.prepare import MANIFEST_COLUMNS, PrepareSettings, prepare_folder

SMALL = PrepareSettings(size=64, max_pixels=600_000)


@pytest.fixture
def photo_folder(tmp_path: Path, astronaut: np.ndarray) -> Path:
    """Two usable photos (one in a subfolder) and one bad file of each kind."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(astronaut).save(folder / "astronaut.jpg", quality=92)
    pair = np.ascontiguousarray(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)[::2, ::2])
    Image.fromarray(pair).save(folder / "sub" / "pair.png")
    (folder / "corrupt.jpg").write_bytes(b"not an image")
    data = (folder / "astronaut.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    Image.fromarray(astronaut[..., 0]).save(folder / "grey.png")
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(folder / "blank.png")
    Image.fromarray(np.zeros((800, 1000, 3), np.uint8) + np.arange(1000, dtype=np.uint8)[None, :, None]).save(
        folder / "huge.png")                                         # 0.8 MP > SMALL.max_pixels
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(folder / "noise.png")
    (folder / "notes.txt").write_text("not a photo: listed as such")
    return folder


class TestReadPhoto:
    def test_bad_files_raise_with_reasons(self, photo_folder: Path):
        reasons = {}
        for name in ("corrupt.jpg", "truncated.jpg", "grey.png", "blank.png", "huge.png", "notes.txt"):
            with pytest.raises(PhotoSkipped) as info:
                read_photo_array(photo_folder / name, max_pixels=SMALL.max_pixels, grey="skip")
            reasons[name] = str(info.value)
        assert reasons["corrupt.jpg"].startswith("unreadable image")
        assert reasons["notes.txt"].startswith("not an image")
        assert reasons["truncated.jpg"].startswith("unreadable image") and "truncated" in reasons["truncated.jpg"]
        assert reasons["grey.png"].startswith("greyscale image")
        assert reasons["blank.png"].startswith("blank image")
        assert reasons["huge.png"].startswith("image too large (1000 × 800 px")

    def test_grey_is_replicated_by_default(self, photo_folder: Path):
        rgb = read_photo_array(photo_folder / "grey.png")
        assert rgb.shape == (512, 512, 3) and np.array_equal(rgb[..., 0], rgb[..., 2])


@pytest.mark.usefixtures("needs_mediapipe")
class TestPrepareFolder:
    def test_every_file_gets_a_row_and_faces_get_crops(self, photo_folder: Path, tmp_path: Path):
        out = tmp_path / "prepared"
        frame = prepare_folder(photo_folder, out, SMALL, progress=False)
        assert list(frame.columns) == list(MANIFEST_COLUMNS)
        rows = frame.set_index("source")
        assert set(rows.index) == {"astronaut.jpg", "sub/pair.png", "corrupt.jpg", "truncated.jpg", "grey.png",
                                   "blank.png", "huge.png", "noise.png", "notes.txt"}
        assert set(rows.index[rows["status"] == "ok"]) == {"astronaut.jpg", "sub/pair.png", "grey.png"}
        assert rows.loc["grey.png", "note"].startswith("greyscale image converted to RGB")
        assert rows.loc["astronaut.jpg", "note"] == ""
        assert rows.loc["notes.txt", "reason"].startswith("not an image")
        assert rows.loc["noise.png", "reason"] == "no face detected"
        assert rows.loc["huge.png", "reason"].startswith("image too large")
        ok = rows.loc["astronaut.jpg"]
        assert ok["crop"] == "crops/astronaut.png" and ok["framed_by"] == "landmarks" and ok["faces"] == 1
        crop = np.asarray(Image.open(out / ok["crop"]))
        assert crop.shape == (64, 64, 3)
        landmarks = np.stack([np.asarray(p) for p in ok["landmarks_68"]])
        assert landmarks.shape == (68, 2) and len(ok["landmark_confidence"]) == 68
        # the stored box is the framing rule applied to the stored landmarks (source px)
        assert frame_from_landmarks68(landmarks) == (ok["crop_x0"], ok["crop_y0"], ok["crop_side"])
        assert rows.loc["sub/pair.png", "faces"] == 2 and (out / "crops" / "sub" / "pair.png").is_file()
        # the manifest on disk is the returned one
        import pandas as pd

        assert pd.read_parquet(out / "manifest.parquet")["source"].tolist() == frame["source"].tolist()

    def test_rerun_resumes_without_redoing_finished_files(self, photo_folder: Path, tmp_path: Path, monkeypatch):
        out = tmp_path / "prepared"
        prepare_folder(photo_folder, out, SMALL, progress=False, limit=3)
        first = PreparedFaces(out) if (out / "crops").exists() else None
        crop = out / "crops" / "astronaut.png"
        stamp = crop.stat().st_mtime_ns
        seen: list[str] = []
        from mofa_bench.photos import prepare as module

        original = module._process
        monkeypatch.setattr(module, "_process", lambda job: (seen.append(job[0].source), original(job))[1])
        frame = prepare_folder(photo_folder, out, SMALL, progress=False)
        assert len(frame) == 9 and sorted(seen) == sorted(set(frame["source"]) - {"astronaut.jpg", "blank.png",
                                                                                  "corrupt.jpg"})
        assert crop.stat().st_mtime_ns == stamp
        seen.clear()
        assert len(prepare_folder(photo_folder, out, SMALL, progress=False)) == 9 and seen == []
        assert first is not None and len(first) == 1

    def test_other_settings_are_refused(self, photo_folder: Path, tmp_path: Path):
        out = tmp_path / "prepared"
        prepare_folder(photo_folder, out, SMALL, progress=False, limit=1)
        with pytest.raises(InputError, match="prepared with size=64, now size=128"):
            prepare_folder(photo_folder, out, PrepareSettings(size=128, max_pixels=SMALL.max_pixels), progress=False)

    def test_prepared_folder_loads_as_a_dataset(self, photo_folder: Path, tmp_path: Path):
        out = tmp_path / "prepared"
        prepare_folder(photo_folder, out, SMALL, progress=False)
        data = PreparedFaces(out)
        assert len(data) == 3 and data.image_size == 64
        batch = data.batch(torch.tensor([0, 2]))
        assert batch.images.shape == (2, 3, 64, 64) and batch.images.dtype == torch.float32
        assert batch.landmarks.shape == (2, 68, 2) and batch.landmark_confidence.shape == (2, 68)
        # crop-pixel landmarks: the eyes sit where the zero code's do (x ≈ 0.36 / 0.64, y ≈ 0.38 of the side)
        eyes = torch.stack([batch.landmarks[:, 36:42].mean(1), batch.landmarks[:, 42:48].mean(1)], 1) / 64
        assert torch.allclose(eyes[:, :, 1], torch.full((2, 2), 0.384), atol=0.04)
        assert torch.allclose(eyes[:, 0, 0], torch.full((2,), 0.359), atol=0.04)
        bigger = PreparedFaces(out, image_size=128).batch(torch.tensor([0]))
        assert bigger.images.shape == (1, 3, 128, 128)
        assert torch.allclose(bigger.landmarks[0], batch.landmarks[0] * 2, atol=1e-4)

    def test_cli_prepares_and_reports(self, photo_folder: Path, tmp_path: Path, capsys):
        from mofa_bench.cli import main

        out = tmp_path / "cli"
        assert main(["prepare", "folder", str(photo_folder), "--out", str(out), "--size", "64",
                     "--max-megapixels", "0.6", "--no-progress"]) == 0
        printed = capsys.readouterr().out
        assert "3 faces from 9 files" in printed and "no face detected" in printed and "not an image" in printed
        assert "1 with a note:" in printed and "greyscale image converted to RGB" in printed
        skip = tmp_path / "skip"
        assert main(["prepare", "folder", str(photo_folder), "--out", str(skip), "--size", "64",
                     "--max-megapixels", "0.6", "--no-progress", "--skip-grey"]) == 0
        assert "2 faces from 9 files" in capsys.readouterr().out


def test_missing_folder_and_manifest_are_dataset_errors(tmp_path: Path):
    with pytest.raises(DatasetError, match="photo folder does not exist"):
        prepare_folder(tmp_path / "nope", tmp_path / "out", progress=False)
    with pytest.raises(DatasetError, match="no manifest"):
        PreparedFaces(tmp_path)


@pytest.mark.usefixtures("needs_mediapipe")
class TestPrepareCsvAndOptions:
    def test_csv_boxes_pick_each_face_of_a_photo(self, photo_folder: Path, tmp_path: Path):
        from mofa_bench.photos.prepare import prepare_csv

        table = photo_folder / "list.csv"
        # pair.png is 512 × 256: the astronaut at x ≈ 90-140 and her mirror image at x ≈ 370-420
        table.write_text("path,x,y,w,h\nsub/pair.png,80,30,70,70\nsub/pair.png,360,30,70,70\n"
                         "astronaut.jpg,,,,\nmissing.jpg,,,,\n")
        frame = prepare_csv(table, tmp_path / "csv", SMALL, progress=False).set_index("source")
        assert list(frame.index) == ["sub/pair.png#1", "sub/pair.png#2", "astronaut.jpg", "missing.jpg"]
        left, right = frame.loc["sub/pair.png#1"], frame.loc["sub/pair.png#2"]
        assert left["status"] == right["status"] == "ok"
        assert left["crop"] == "crops/sub/pair_1.png" and right["crop"] == "crops/sub/pair_2.png"
        assert left["crop_x0"] + left["crop_side"] / 2 < 256 < right["crop_x0"] + right["crop_side"] / 2
        assert frame.loc["astronaut.jpg", "status"] == "ok"
        assert frame.loc["missing.jpg", "reason"] == "no such file or folder"

    def test_csv_without_path_column_is_a_dataset_error(self, tmp_path: Path):
        from mofa_bench.photos.prepare import prepare_csv

        (tmp_path / "bad.csv").write_text("file\na.jpg\n")
        with pytest.raises(DatasetError, match="no 'path' column"):
            prepare_csv(tmp_path / "bad.csv", tmp_path / "out", progress=False)

    def test_without_landmarks_crops_are_framed_by_keypoints(self, photo_folder: Path, tmp_path: Path):
        settings = PrepareSettings(size=64, max_pixels=600_000, landmarker=None)
        frame = prepare_folder(photo_folder, tmp_path / "nolm", settings, progress=False).set_index("source")
        ok = frame.loc["astronaut.jpg"]
        assert ok["framed_by"] == "keypoints" and len(ok["landmarks_68"]) == 0
        with_landmarks = prepare_folder(photo_folder, tmp_path / "lm", SMALL, progress=False,
                                        limit=1).set_index("source").loc["astronaut.jpg"]
        # keypoint framing lands within 10 % of the landmark framing on a real face
        assert abs(ok["crop_side"] / with_landmarks["crop_side"] - 1) < 0.1
        data = PreparedFaces(tmp_path / "nolm")
        batch = data.batch(torch.tensor([0]))
        assert float(batch.landmark_confidence.abs().sum()) == 0.0

    def test_haar_detector_with_landmark_framing(self, photo_folder: Path, tmp_path: Path):
        from mofa_bench.photos.detection import available_detectors

        if not available_detectors()["haar"].available:
            pytest.skip("OpenCV's Haar cascade is unavailable")
        settings = PrepareSettings(size=64, max_pixels=600_000, detector="haar")
        frame = prepare_folder(photo_folder, tmp_path / "haar", settings, progress=False).set_index("source")
        row = frame.loc["astronaut.jpg"]
        assert row["framed_by"] == "landmarks" and row["detector"] == "haar"


def test_crop_names_stay_inside_the_output_folder():
    from mofa_bench.photos.prepare import _crop_name

    assert _crop_name("sub/a.jpg") == Path("crops/sub/a.png")
    assert _crop_name("/data/x/../a.jpg#2") == Path("crops/data/x/__/a_2.png")


@pytest.mark.usefixtures("needs_mediapipe")
def test_a_prepared_folder_trains_with_its_landmarks(photo_folder: Path, tmp_path: Path, tiny_model_path: Path):
    from mofa_bench.scoring.validation import validate
    from helpers import tiny_train_config
    from mofa_bench.training import Trainer

    prepared = tmp_path / "prepared"
    prepare_folder(photo_folder, prepared, SMALL, progress=False)
    config = tiny_train_config(tmp_path / "runs", tiny_model_path, "data.kind=prepared", f"data.path={prepared}",
                               f"data.val_path={prepared}", "loss.landmark=1.0", "optim.iterations=2")
    trainer = Trainer(config, validator=validate)
    assert len(trainer.train_data) == 3 and trainer.train_data.image_size == config.camera.image_size
    result = trainer.fit()
    assert result.steps == 2 and math.isfinite(result.final_loss)
    import pandas as pd

    metrics = pd.read_csv(result.run_dir / "metrics.csv")
    assert (metrics["landmark"] > 0).all()          # the prepared landmarks reach the loss


@pytest.mark.usefixtures("needs_mediapipe")
def test_worker_processes_give_the_same_manifest(photo_folder: Path, tmp_path: Path):
    one = prepare_folder(photo_folder, tmp_path / "one", SMALL, progress=False)
    two = prepare_folder(photo_folder, tmp_path / "two", SMALL, progress=False, workers=2)
    columns = ["source", "status", "reason", "crop_x0", "crop_y0", "crop_side"]
    assert one[columns].equals(two[columns])
    assert np.array_equal(np.asarray(Image.open(tmp_path / "one" / "crops" / "astronaut.png")),
                          np.asarray(Image.open(tmp_path / "two" / "crops" / "astronaut.png")))


@pytest.mark.usefixtures("needs_mediapipe")
def test_a_folder_of_every_format_gives_one_row_per_file(tmp_path: Path, astronaut: np.ndarray, capsys):
    """One photo per readable format, a non-image, a grey photo and a face-less one: the summary matches."""
    from mofa_bench.cli import main

    folder = tmp_path / "formats"
    folder.mkdir()
    face = np.ascontiguousarray(astronaut[:256, 64:320])
    formats = {"a.jpg": {"quality": 90}, "a.png": {}, "a.ppm": {}, "a.bmp": {}, "a.tiff": {}, "a.webp": {},
               "a.gif": {}, "a.tga": {}}
    for name, options in formats.items():
        Image.fromarray(face).save(folder / name, **options)
    Image.fromarray(face[..., 1]).save(folder / "grey.pgm")
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (160, 200, 3), dtype=np.uint8)).save(
        folder / "noise.png")
    (folder / "readme.md").write_text("# not a photo\n")
    out = tmp_path / "out"
    assert main(["prepare", "folder", str(folder), "--out", str(out), "--size", "64", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    frame = pd_read(out).set_index("source")
    assert len(frame) == len(list(folder.iterdir())) == 11
    ok = set(frame.index[frame["status"] == "ok"])
    assert ok == set(formats) | {"grey.pgm"}
    assert frame.loc["grey.pgm", "note"].startswith("greyscale image converted to RGB")
    assert frame.loc["noise.png", "reason"] == "no face detected"
    assert frame.loc["readme.md", "reason"].startswith("not an image")
    assert "9 faces from 11 files" in printed and "2 skipped:" in printed and "1 with a note:" in printed


def pd_read(out: Path):
    import pandas as pd

    return pd.read_parquet(out / "manifest.parquet")
