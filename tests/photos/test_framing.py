"""The framing rule: calibrated on the zero code, equivariant, and where detectors put faces on renders."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mofa_bench.errors import InputError
from mofa_bench.photos.framing import (
    DEFAULT_FRAMING,
    FramingRule,
    crop_square,
    frame_from_box,
    frame_from_keypoints,
    frame_from_landmarks68,
    framing_points68,
    landmarks_to_crop,
)


def _centre(box):
    return np.array([box[0] + box[2] / 2.0, box[1] + box[2] / 2.0])


class TestRuleConstants:
    def test_convention_default_rule_is_the_zero_codes(self, renders):
        *_, decoder = renders
        derived = FramingRule.from_decoder(decoder)
        for name in ("centre_along", "side_per_eyes", "mouth_per_eyes"):
            assert getattr(derived, name) == pytest.approx(getattr(DEFAULT_FRAMING, name), rel=2e-3), name

    def test_zero_code_landmarks_frame_the_whole_render(self, renders):
        _, landmarks, _, _ = renders
        x0, y0, side = frame_from_landmarks68(landmarks[0])
        assert abs(x0) <= 1 and abs(y0) <= 1 and abs(side - 240) <= 1

    def test_rule_does_not_depend_on_the_image_size(self):
        from mofa_bench import Camera, FaceModel, MoFADecoder

        decoder = MoFADecoder(FaceModel.load("default", subdivisions=1), Camera(image_size=96))
        rule = FramingRule.from_decoder(decoder)
        assert rule.side_per_eyes == pytest.approx(DEFAULT_FRAMING.side_per_eyes, rel=5e-3)
        assert rule.centre_along == pytest.approx(DEFAULT_FRAMING.centre_along, rel=5e-3)


class TestRuleGeometry:
    points = (np.array([80.0, 90.0]), np.array([140.0, 90.0]), np.array([110.0, 156.0]))

    def test_translation_moves_the_box_and_scaling_scales_it(self):
        base = DEFAULT_FRAMING.box(*self.points)
        moved = DEFAULT_FRAMING.box(*(p + np.array([37.0, -12.0]) for p in self.points))
        assert np.allclose(moved, (base[0] + 37, base[1] - 12, base[2]), atol=1)   # integer px boxes
        doubled = DEFAULT_FRAMING.box(*(2 * p for p in self.points))
        assert abs(doubled[2] - 2 * base[2]) <= 1
        assert np.allclose(_centre(doubled), 2 * _centre(base), atol=1.0)

    def test_tilted_head_keeps_its_side_and_centre_on_the_face_axis(self):
        angle = math.radians(30)
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        pivot = self.points[0]
        tilted = [pivot + rot @ (p - pivot) for p in self.points]
        base, turned = DEFAULT_FRAMING.box(*self.points), DEFAULT_FRAMING.box(*tilted)
        assert abs(turned[2] - base[2]) <= 1
        expected = pivot + rot @ (_centre(base) - pivot)
        assert np.allclose(_centre(turned), expected, atol=1.0)

    def test_turned_head_is_sized_by_its_eye_to_mouth_distance(self):
        r, l, m = self.points
        squeezed = (r + np.array([20.0, 0.0]), l - np.array([20.0, 0.0]), m)   # eyes foreshortened by yaw
        assert abs(DEFAULT_FRAMING.box(*squeezed)[2] - DEFAULT_FRAMING.box(r, l, m)[2]) <= 2

    def test_coincident_points_and_wrong_shapes_are_input_errors(self):
        with pytest.raises(InputError):
            DEFAULT_FRAMING.box([0, 0], [0, 0], [0, 0])
        with pytest.raises(InputError, match=r"landmarks: expected shape \(68, 2\)"):
            framing_points68(np.zeros((46, 2)))
        with pytest.raises(InputError, match="finite"):
            DEFAULT_FRAMING.box([0, 0], [np.nan, 1], [0, 3])

    def test_box_rule_scales_and_shifts_the_detection_box(self):
        assert frame_from_box((100, 100, 50, 50), scale=2.0, shift=0.1) == (75, 80, 100)


class TestCrops:
    def test_crop_outside_the_photo_repeats_the_border(self):
        rgb = np.zeros((4, 4, 3), np.uint8)
        rgb[:, 0] = 200
        crop = crop_square(rgb, (-2, 0, 4), 4)
        assert (crop[:, :3] == 200).all() and (crop[:, 3] == 0).all()

    def test_landmarks_follow_the_crop(self):
        pts = np.array([[110.0, 60.0], [150.0, 100.0]])
        out = landmarks_to_crop(pts, (100, 50, 100), 240)
        assert np.allclose(out, [[24.0, 24.0], [120.0, 120.0]])


@pytest.mark.usefixtures("needs_mediapipe")
class TestDetectorsOnRenders:
    """The rule applied to what the detectors find on renders matches the rule on the projected landmarks."""

    def test_landmarker_frames_renders_like_their_projected_landmarks(self, renders):
        from mofa_bench.photos.landmarks68 import MediaPipeLandmarker

        rgb, landmarks, _, _ = renders
        centre_err, side_err = [], []
        with MediaPipeLandmarker() as lm:
            for image, truth in zip(rgb, landmarks):
                found = lm.detect(image)
                assert found, "no face found on a render"
                ref, got = frame_from_landmarks68(truth), frame_from_landmarks68(found[0].ibug68)
                centre_err.append(np.linalg.norm(_centre(got) - _centre(ref)) / ref[2])
                side_err.append(abs(got[2] / ref[2] - 1.0))
        # Zero code: within 1 % of the whole render.
        assert centre_err[0] < 0.01 and side_err[0] < 0.01
        # Posed random codes: each within 7 % (centre, of the side) and 10 % (side); 4 % on average.
        assert max(centre_err) < 0.07 and max(side_err) < 0.10
        assert np.mean(centre_err) < 0.04 and np.mean(side_err) < 0.04

    def test_detector_keypoints_frame_the_zero_code_render(self, renders):
        from mofa_bench.photos.detection import get_detector

        rgb, _, _, _ = renders
        with get_detector("mediapipe") as det:
            face = det.detect(rgb[0])[0]
        box = frame_from_keypoints(face)
        assert np.linalg.norm(_centre(box) - 120.0) < 0.03 * 240 and abs(box[2] / 240 - 1) < 0.03
