"""Small and tilted faces: tiles, the rotation search, and the landmarker on an upright view."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mofa_bench.photos.search import rotate_view, tiles, unrotate_points


class TestGeometry:
    @pytest.mark.parametrize("angle", [30.0, -45.0, 60.0])
    def test_unrotate_inverts_rotate_view(self, angle: float):
        rgb = np.zeros((60, 90, 3), np.uint8)
        rgb[10:14, 70:74] = 255                              # a white dot at (72, 12)
        view, centre, view_centre = rotate_view(rgb, angle)
        ys, xs = np.nonzero(view[..., 0] > 127)
        dot = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
        assert np.allclose(unrotate_points(dot, angle, centre, view_centre), [72.0, 12.0], atol=1.0)

    def test_tiles_cover_the_photo_half_overlapping(self):
        corners = tiles(300, 500, 200)
        xs, ys = sorted({x for x, _ in corners}), sorted({y for _, y in corners})
        assert xs[0] == 0 and xs[-1] == 300 and ys == [0, 100]
        assert all(b - a <= 100 for a, b in zip(xs, xs[1:]))
        assert tiles(100, 100, 200) == [(0, 0)]


def _scene(renders, width: int, roll: float) -> tuple[np.ndarray, tuple[float, float]]:
    """Render 1 (posed) scaled to a ``width``-px crop, rolled, pasted at (700, 450) into a 1000 × 700 photo."""
    import skimage.data

    rgb = renders[0][1]
    patch = Image.fromarray(rgb).resize((width, width), Image.Resampling.LANCZOS)
    patch = patch.rotate(roll, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(128, 128, 128))
    scene = Image.fromarray(skimage.data.coffee()).resize((1000, 700))
    scene.paste(patch, (700, 450))
    return np.asarray(scene), (700 + patch.size[0] / 2, 450 + patch.size[1] / 2)


@pytest.mark.usefixtures("needs_mediapipe")
class TestDetectorFallbacks:
    def test_small_face_is_found_by_the_recheck_and_the_tiles(self, renders):
        from mofa_bench.photos.detection import MediaPipeDetector

        scene, centre = _scene(renders, 90, 0.0)               # face ≈ 55 px wide in a 1000 × 700 photo
        with MediaPipeDetector(min_face=1e9, rotations=False, recheck=False) as before, \
                MediaPipeDetector(recheck=False) as tiles, \
                MediaPipeDetector(min_face=1e9, rotations=False) as rechecked:
            assert not before.detect(scene)                     # the windows alone: found at 0.5-0.7, dropped
            for after in (tiles, rechecked):
                found = after.detect(scene)
                assert found and np.linalg.norm(np.add(found[0].box[:2], np.divide(found[0].box[2:], 2)) - centre) < 20

    def test_small_tilted_face_is_found_and_measured(self, renders):
        from mofa_bench.photos.detection import MediaPipeDetector
        from mofa_bench.photos.faces import FacePipeline

        scene, centre = _scene(renders, 90, 45.0)               # face ≈ 55 px wide, rolled 45°
        with MediaPipeDetector(min_face=1e9, rotations=False, recheck=False) as before:
            assert not before.detect(scene)
        with FacePipeline() as pipeline:
            face = pipeline.find(scene)
        eyes = face.landmarks.ibug68[[36, 45]]
        roll = np.degrees(np.arctan2(*(eyes[1] - eyes[0])[::-1]))
        assert abs(roll + 45.0) < 12.0                           # the eye line turned with the face (y down)
        assert np.linalg.norm(face.landmarks.ibug68.mean(0) - centre) < 15


@pytest.mark.usefixtures("needs_mediapipe")
def test_pipeline_takes_the_next_face_when_the_landmarker_rejects_the_largest(astronaut, monkeypatch):
    from mofa_bench.photos.detection import FaceDetection
    from mofa_bench.photos.faces import FacePipeline

    with FacePipeline() as pipeline:
        true = pipeline.detector.detect(astronaut)[0]
        false = FaceDetection(box=(280.0, 330.0, 160.0, 160.0), score=0.8, detector="mediapipe")  # her suit
        monkeypatch.setattr(pipeline.detector, "detect", lambda rgb: [false, true])
        face = pipeline.find(astronaut)
        assert face.detection is true and face.candidates == 2
        assert 177 < face.landmarks.ibug68[30, 0] < 272 and 82 < face.landmarks.ibug68[30, 1] < 177
        monkeypatch.setattr(pipeline.detector, "detect", lambda rgb: [false])
        with pytest.raises(Exception, match="the landmarker found no face where the detector did"):
            pipeline.find(astronaut)
