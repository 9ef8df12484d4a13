"""Face detectors: the registry, MediaPipe and Haar on real photos, and the rule that picks one face."""

from __future__ import annotations

import numpy as np
import pytest

from mofa_bench.errors import InputError
from mofa_bench.photos import detection
from mofa_bench.photos.detection import (
    Availability,
    DetectorUnavailableError,
    FaceDetection,
    available_detectors,
    check_rgb,
    detector_names,
    get_detector,
)
from mofa_bench.photos.selection import select_face


def _face(x: float, y: float, side: float, score: float = 0.9) -> FaceDetection:
    return FaceDetection(box=(x, y, side, side), score=score)


class TestRegistry:
    def test_names_include_default_and_paper_detector(self):
        assert {"mediapipe", "haar"} <= set(detector_names())
        assert detection.DEFAULT_DETECTOR == "mediapipe"
        assert all(isinstance(v, Availability) for v in available_detectors().values())

    def test_unknown_name_lists_known_ones(self):
        with pytest.raises(InputError, match="unknown face detector 'dlib2'.*haar.*mediapipe"):
            get_detector("dlib2")

    def test_unavailable_detector_names_reason_and_fix(self, monkeypatch):
        cls = detection._REGISTRY["mediapipe"]
        monkeypatch.setattr(cls, "availability", classmethod(lambda c: Availability(False, "no runtime", "pip x")))
        with pytest.raises(DetectorUnavailableError, match="'mediapipe' is unavailable: no runtime. Fix: pip x"):
            get_detector("mediapipe")

    def test_check_rgb_rejects_float_and_grey_arrays(self):
        with pytest.raises(InputError, match=r"rgb: expected an \(H, W, 3\) uint8"):
            check_rgb(np.zeros((8, 8, 3), np.float32))
        with pytest.raises(InputError, match="uint8"):
            check_rgb(np.zeros((8, 8), np.uint8))


class TestSelectFace:
    def test_largest_face_wins(self):
        faces = [_face(10, 10, 40), _face(100, 50, 80), _face(200, 10, 60)]
        chosen = select_face(faces, (300, 300))
        assert chosen.detection is faces[1] and chosen.reason == "" and chosen.candidates == 3

    def test_near_box_picks_the_overlapping_face_not_the_largest(self):
        faces = [_face(10, 10, 40), _face(100, 50, 80)]
        chosen = select_face(faces, (300, 300), near=(12, 8, 38, 44))
        assert chosen.detection is faces[0]

    def test_near_box_without_overlap_is_skipped(self):
        chosen = select_face([_face(10, 10, 40)], (300, 300), near=(200, 200, 30, 30))
        assert chosen.detection is None and "overlaps the given box" in chosen.reason

    def test_no_face_tiny_face_and_cut_off_face_are_skipped_with_reasons(self):
        assert select_face([], (100, 100)).reason == "no face detected"
        tiny = select_face([_face(10, 10, 20)], (100, 100), min_side=32)
        assert tiny.detection is None and tiny.reason.startswith("face too small (20 px < 32 px)")
        cut = select_face([_face(-40, 10, 80)], (200, 200))
        assert cut.detection is None and "cut off" in cut.reason and "50 %" in cut.reason
        # A little outside is fine (MediaPipe boxes often reach past a tight crop's border).
        assert select_face([_face(-10, 10, 80)], (200, 200)).detection is not None

    def test_bad_near_box_is_an_input_error(self):
        with pytest.raises(InputError, match="near"):
            select_face([_face(0, 0, 40)], (100, 100), near=(0, 0, 0, 10))


@pytest.mark.usefixtures("needs_mediapipe")
class TestMediaPipeDetector:
    def test_finds_the_astronaut_with_keypoints_in_order(self, astronaut):
        with get_detector("mediapipe") as det:
            faces = det.detect(astronaut)
        assert len(faces) == 1
        face = faces[0]
        x, y, w, h = face.box
        assert face.score > 0.8 and 60 < w < 140 and 60 < h < 140
        # Her face is at x ≈ 180-275, y ≈ 80-180 px in the 512 px photo.
        assert 160 < x + w / 2 < 280 and 90 < y + h / 2 < 170
        right_eye, left_eye, nose, mouth = face.keypoints[:4]
        assert right_eye[0] < nose[0] < left_eye[0]          # subject's right eye is image left
        assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]

    def test_finds_both_faces_of_a_wide_group_photo(self, astronaut):
        # Two half-size faces side by side (each ≈ 47 px in a 512 px wide photo): the whole
        # photo letterboxed to 128 px hides them; the windows find both.
        pair = np.ascontiguousarray(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)[::2, ::2])
        with get_detector("mediapipe") as det:
            faces = det.detect(pair)
        centres = sorted(f.box[0] + f.box[2] / 2 for f in faces)
        assert len(faces) == 2 and centres[0] < 256 < centres[1]
        with get_detector("mediapipe", windows=False) as det:
            assert len(det.detect(pair)) < 2

    def test_recheck_confirms_a_low_scoring_face_and_not_texture(self, astronaut):
        # A find scoring under sure_score is re-checked at the detector's own scale (a square
        # twice its box): the astronaut's face passes, a box of her suit does not.
        with get_detector("mediapipe") as det:
            true = det.detect(astronaut)[0]
            low = FaceDetection(box=true.box, score=0.55, keypoints=true.keypoints)
            confirmed = det.confirm(astronaut, low)
            assert confirmed is not None and confirmed.score >= det.sure_score and confirmed.box == true.box
            assert det.confirm(astronaut, FaceDetection(box=(300.0, 380.0, 100.0, 100.0), score=0.55)) is None
            assert det.confirm(astronaut, FaceDetection(box=(0.0, 0.0, 10.0, 10.0), score=0.3)) is None
        with get_detector("mediapipe", recheck=False) as det:
            assert det.confirm(astronaut, low) is None

    def test_a_doubtful_whole_photo_find_does_not_stop_the_windows(self, astronaut, monkeypatch):
        # A false, low-scoring box of the whole photo (a background texture) used to end the
        # search; the windows now still run, and their confirmed faces replace it.
        pair = np.ascontiguousarray(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)[::2, ::2])
        with get_detector("mediapipe") as det:
            real = det._detect_view

            def with_false_find(rgb, x0, y0, scale=1.0):
                found = real(rgb, x0, y0, scale)
                if rgb.shape == pair.shape:
                    found.append(FaceDetection(box=(100.0, 20.0, 230.0, 230.0), score=0.55, detector="mediapipe"))
                return found

            monkeypatch.setattr(det, "_detect_view", with_false_find)
            faces = det.detect(pair)
        assert len(faces) == 2 and all(f.score >= 0.7 and f.side < 100 for f in faces)

    def test_finds_no_face_in_a_photo_without_one(self):
        skimage_data = pytest.importorskip("skimage.data")
        with get_detector("mediapipe", windows=False) as det:
            assert det.detect(np.ascontiguousarray(skimage_data.rocket())) == []


class TestHaarDetector:
    def test_finds_the_astronaut(self, astronaut):
        state = available_detectors()["haar"]
        if not state.available:
            pytest.skip(f"Haar unavailable: {state.reason} (fix: {state.fix})")
        with get_detector("haar") as det:
            faces = det.detect(astronaut)
        assert len(faces) >= 1 and np.isnan(faces[0].score) and faces[0].keypoints is None
        x, y, w, h = faces[0].box
        assert 160 < x + w / 2 < 280 and 80 < y + h / 2 < 170


def test_quiet_native_logs_holds_back_stderr_unless_the_block_fails():
    import subprocess
    import sys

    script = ("import os, sys\n"
              "from mofa_bench.photos.detection import quiet_native_logs\n"
              "with quiet_native_logs():\n"
              "    os.write(2, b'start-up chatter\\n')\n"
              "try:\n"
              "    with quiet_native_logs():\n"
              "        os.write(2, b'why it failed\\n')\n"
              "        raise RuntimeError('boom')\n"
              "except RuntimeError:\n"
              "    pass\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "start-up chatter" not in done.stderr and "why it failed" in done.stderr
