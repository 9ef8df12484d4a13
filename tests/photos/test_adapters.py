"""Dataset adapters: CelebA, LFW and 300-VW layouts → photos with the annotated face's box and points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mofa_bench.errors import DatasetError
from mofa_bench.photos.adapters import celeba_items, lfw_items, read_celeba_list, read_pts, vw300_items
from mofa_bench.photos.prepare import PrepareSettings, prepare_photos

SMALL = PrepareSettings(size=64)


def _pair(astronaut: np.ndarray) -> np.ndarray:
    """512 × 256: the astronaut (face at x ≈ 90-140) and her mirror image (x ≈ 370-420)."""
    return np.ascontiguousarray(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)[::2, ::2])


def _write_pts(path: Path, points: np.ndarray) -> None:
    lines = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points)
    path.write_text(f"version: 1\nn_points: {len(points)}\n{{\n{lines}\n}}\n")


class TestCelebA:
    def test_box_list_picks_the_annotated_face(self, tmp_path: Path, astronaut, needs_mediapipe):
        (tmp_path / "Img" / "img_celeba").mkdir(parents=True)
        (tmp_path / "Anno").mkdir()
        Image.fromarray(_pair(astronaut)).save(tmp_path / "Img" / "img_celeba" / "000001.jpg", quality=95)
        (tmp_path / "Anno" / "list_bbox_celeba.txt").write_text(
            "1\nimage_id x_1 y_1 width height\n000001.jpg 360 30 70 70\n")
        (tmp_path / "Anno" / "list_landmarks_celeba.txt").write_text(
            "1\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x "
            "rightmouth_y\n000001.jpg 380 55 405 55 393 65 383 72 402 72\n")
        [item] = celeba_items(tmp_path)
        assert item.source == "000001.jpg" and item.near == (360.0, 30.0, 70.0, 70.0) and len(item.reference) == 5
        frame = prepare_photos([item], tmp_path / "out", SMALL, progress=False)
        row = frame.iloc[0]
        assert row["status"] == "ok" and row["faces"] == 2
        assert row["crop_x0"] + row["crop_side"] / 2 > 256            # the right-hand face
        assert np.allclose(np.stack(row["reference_points"]), np.asarray(item.reference))

    def test_aligned_images_take_their_box_from_the_five_points(self, tmp_path: Path):
        (tmp_path / "img_align_celeba").mkdir()
        (tmp_path / "list_landmarks_align_celeba.txt").write_text(
            "2\nlefteye_x lefteye_y ...\n000001.jpg 69 109 106 113 77 142 73 152 108 154\n"
            "000002.jpg 1 2 3 4 5 6 7 8 9 10\n")
        first, second = celeba_items(tmp_path, aligned=True)
        x, y, w, h = first.near
        assert w == h == pytest.approx(2 * 45.0)                        # twice the points' larger extent (45 px)
        assert (x + w / 2, y + h / 2) == pytest.approx((86.6, 134.0))   # centred on their mean
        assert second.path == tmp_path / "img_align_celeba" / "000002.jpg"

    def test_malformed_list_and_missing_layout_are_dataset_errors(self, tmp_path: Path):
        bad = tmp_path / "list_bbox_celeba.txt"
        bad.write_text("1\nheader\n000001.jpg 1 two 3 4\n")
        with pytest.raises(DatasetError, match=r"list_bbox_celeba.txt:3: expected 'image_id' and numbers"):
            read_celeba_list(bad)
        with pytest.raises(DatasetError, match="no img_celeba folder"):
            celeba_items(tmp_path / "nowhere")


class TestLfw:
    def test_names_and_central_boxes(self, tmp_path: Path, astronaut, needs_mediapipe):
        person = tmp_path / "Eileen_Collins"
        person.mkdir()
        Image.fromarray(astronaut[5:255, 100:350]).save(person / "Eileen_Collins_0001.jpg")   # her face in the middle
        [item] = lfw_items(tmp_path)
        assert item.source == "Eileen_Collins/Eileen_Collins_0001.jpg" and item.near == (75.0, 75.0, 100.0, 100.0)
        frame = prepare_photos([item], tmp_path / "out", SMALL, progress=False)
        assert frame.iloc[0]["status"] == "ok"

    def test_no_photos_is_a_dataset_error(self, tmp_path: Path):
        with pytest.raises(DatasetError, match="no LFW photos"):
            lfw_items(tmp_path)

    def test_cli(self, tmp_path: Path, astronaut, capsys, needs_mediapipe):
        from mofa_bench.cli import main

        (tmp_path / "lfw" / "A_B").mkdir(parents=True)
        Image.fromarray(astronaut[5:255, 100:350]).save(tmp_path / "lfw" / "A_B" / "A_B_0001.jpg")
        assert main(["prepare", "lfw", str(tmp_path / "lfw"), "--out", str(tmp_path / "out"), "--size", "64",
                     "--no-progress"]) == 0
        assert "1 faces from 1 files" in capsys.readouterr().out
        assert (tmp_path / "out" / "crops" / "A_B" / "A_B_0001.png").is_file()


class Test300VW:
    def test_pts_reader(self, tmp_path: Path):
        good = tmp_path / "a.pts"
        _write_pts(good, np.array([[1.0, 2.0], [3.5, 4.25]]))
        assert np.array_equal(read_pts(good), [[1.0, 2.0], [3.5, 4.25]])
        (tmp_path / "b.pts").write_text("version: 1\nn_points: 2\n1 2\n")
        with pytest.raises(DatasetError, match="b.pts: not an iBUG .pts file"):
            read_pts(tmp_path / "b.pts")

    def test_annotated_frames_are_written_once_and_measured(self, tmp_path: Path, astronaut, needs_mediapipe):
        cv2 = pytest.importorskip("cv2")
        from mofa_bench.photos.landmarks68 import MediaPipeLandmarker

        video = tmp_path / "300VW" / "001"
        (video / "annot").mkdir(parents=True)
        base = np.ascontiguousarray(astronaut[:256, 96:352])
        with MediaPipeLandmarker() as lm:
            truth = lm.detect(base)[0].ibug68
        writer = cv2.VideoWriter(str(video / "vid.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256))
        for k in range(1, 5):                                    # the face moves 4 px right per frame
            writer.write(np.ascontiguousarray(np.roll(base, 4 * k, axis=1)[..., ::-1]))
            _write_pts(video / "annot" / f"{k:06d}.pts", truth + [4 * k, 0])
        writer.release()
        frames = tmp_path / "out" / "frames"
        items = vw300_items(tmp_path / "300VW", frames, every=2)
        assert [i.source for i in items] == ["001/000001", "001/000003"]
        assert sorted(p.name for p in (frames / "001").iterdir()) == ["000001.png", "000003.png"]
        stamp = (frames / "001" / "000003.png").stat().st_mtime_ns
        vw300_items(tmp_path / "300VW", frames, every=2)
        assert (frames / "001" / "000003.png").stat().st_mtime_ns == stamp      # reused, not decoded again
        frame = prepare_photos(items, tmp_path / "out", SMALL, progress=False)
        assert (frame["status"] == "ok").all()
        for _, row in frame.iterrows():
            found, reference = np.stack(row["landmarks_68"]), np.stack(row["reference_points"])
            eyes = np.linalg.norm(reference[36] - reference[45])
            assert np.linalg.norm(found - reference, axis=1).mean() / eyes < 0.05
