"""MediaPipe's 478 points → iBUG-68: order on real photos, confidences, the 46 points, the vertex correspondence."""

from __future__ import annotations

import numpy as np
import pytest

from mofa_bench.face_model.landmarks import IBUG68_FROM_MEDIAPIPE
from mofa_bench.face_model.model import LANDMARKS_46
from mofa_bench.photos.landmarks68 import FaceLandmarks, MediaPipeLandmarker, get_landmarker, point_confidence


def assert_ibug68_in_order(points: np.ndarray) -> None:
    """The 68 points of an upright face looking roughly at the camera are in iBUG order."""
    p = np.asarray(points)
    right_eye, left_eye = p[36:42].mean(0), p[42:48].mean(0)
    nose_tip, mouth = p[30], p[48:60].mean(0)
    # eyes above the nose tip above the mouth above the chin; brows above the eyes
    assert max(right_eye[1], left_eye[1]) < nose_tip[1] < mouth[1] < p[8, 1]
    assert p[17:22, 1].mean() < right_eye[1] and p[22:27, 1].mean() < left_eye[1]
    # left/right: the subject's right features (image left) have smaller x than their partners
    assert right_eye[0] < nose_tip[0] < left_eye[0]
    assert p[48, 0] < p[51, 0] < p[54, 0] and p[36, 0] < p[39, 0] < p[42, 0] < p[45, 0]
    assert p[31, 0] < p[33, 0] < p[35, 0] and p[17, 0] < p[21, 0] < p[22, 0] < p[26, 0]
    # jaw contour: from the image-left ear down round the chin (8) to the other ear: seen from
    # the top of the nose bridge (27), its direction turns one way all along (y is down, so
    # the angle falls from ≈ π at the left ear through π/2 at the chin towards 0)
    angles = np.unwrap(np.arctan2(p[0:17, 1] - p[27, 1], p[0:17, 0] - p[27, 0]))
    assert np.all(np.diff(angles) < 0) and p[0, 0] < p[8, 0] < p[16, 0]
    # the nose bridge runs down to the tip; upper lids above lower lids
    assert np.all(np.diff(p[27:31, 1]) > 0)
    assert p[37:39, 1].mean() < p[40:42, 1].mean() and p[43:45, 1].mean() < p[46:48, 1].mean()


class TestConfidence:
    def _canonical(self):
        from mofa_bench.face_model.mediapipe_mesh import load_canonical_mesh

        return np.asarray(load_canonical_mesh().vertices)

    def test_frontal_mesh_is_confident_at_the_centre_and_on_the_contour_less(self):
        v = self._canonical() * np.array([1.0, -1.0, -1.0])   # model frame → image frame (y down, z away)
        conf = point_confidence(v)
        ibug = conf[list(IBUG68_FROM_MEDIAPIPE)]
        assert ibug[30] == 1.0 and ibug[36:48].min() == 1.0 and ibug[48:60].min() > 0.9
        assert ibug[0] < 0.7 and ibug[16] < 0.7

    def test_turned_head_loses_confidence_on_its_far_side_only(self):
        v = self._canonical()
        yaw = np.radians(70)
        rot = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        turned = (v @ rot.T) * np.array([1.0, -1.0, -1.0])
        ibug = point_confidence(turned)[list(IBUG68_FROM_MEDIAPIPE)]
        near, far = ibug[0:4].mean(), ibug[13:17].mean()   # the jaw's two ends
        assert far == 0.0 and near > 0.5

    def test_points_outside_the_photo_get_zero(self):
        v = self._canonical() * np.array([1.0, -1.0, -1.0]) + np.array([100.0, 100.0, 0.0])
        conf = point_confidence(v, image_size=(200, 100))       # x beyond 100 px is outside
        assert conf[v[:468, 0] > 100].max() == 0.0 and conf[v[:468, 0] < 95].max() == 1.0


@pytest.mark.usefixtures("needs_mediapipe")
class TestMediaPipeLandmarker:
    def test_astronaut_68_points_in_order(self, astronaut):
        with MediaPipeLandmarker() as lm:
            faces = lm.detect(astronaut)
        assert len(faces) == 1
        face = faces[0]
        assert face.mesh.shape == (478, 3) and face.ibug68.shape == (68, 2) and face.confidence.shape == (68,)
        assert_ibug68_in_order(face.ibug68)
        assert np.all((face.confidence >= 0) & (face.confidence <= 1))
        assert face.confidence[36:68].min() > 0.9
        # the face lies where the detector boxed it (x 177-272, y 82-177 px)
        assert 177 < face.ibug68[30, 0] < 272 and 82 < face.ibug68[30, 1] < 177

    def test_region_gives_source_pixels(self, astronaut):
        with MediaPipeLandmarker() as lm:
            whole = lm.detect(astronaut)[0]
            region = lm.detect(astronaut, region=(130, 35, 190))[0]
        assert np.abs(region.ibug68 - whole.ibug68).max() < 3.0

    def test_lfw_subset_faces_in_order(self, lfw_faces):
        found = 0
        with get_landmarker("mediapipe") as lm:
            for rgb in lfw_faces:
                faces = lm.detect(rgb)
                if faces:
                    found += 1
                    assert_ibug68_in_order(faces[0].ibug68)
        assert found >= 85, f"landmarks on only {found} of 100 LFW faces"

    def test_training_subset_and_vertex_correspondence(self, renders):
        rgb, landmarks, _, decoder = renders
        with MediaPipeLandmarker() as lm:
            face = lm.detect(rgb[0])[0]
        points, conf = face.training_subset()
        assert points.shape == (46, 2) and np.array_equal(points, face.ibug68[list(LANDMARKS_46)])
        assert np.array_equal(conf, face.confidence[list(LANDMARKS_46)])
        # mesh point i is the default model's vertex i: on the zero-code render they agree to a few px
        import torch

        from mofa_bench.code_vector import CODE_DIM

        with torch.no_grad():
            uv = decoder.form(torch.zeros(1, CODE_DIM)).uv[0, :468].double().numpy()
        err = np.linalg.norm(face.mesh_vertices - uv, axis=1)
        assert np.median(err) < 4.0, f"median vertex error {np.median(err):.1f} px"
        # the model's landmark vertices (fixed); the jaw and brow ends follow the outline instead, and
        # the nose bridge's top is 300-W's (test_contour.py)
        from mofa_bench.photos.landmarks68 import mesh_landmarks

        fixed = mesh_landmarks(face.mesh, None, contour=False).ibug68
        assert np.linalg.norm(fixed - landmarks[0], axis=1).mean() < 5.0
        inner = [i for i in range(17, 68) if i not in (17, 26, 27)]
        assert np.array_equal(face.ibug68[inner], fixed[inner])

    def test_unknown_landmarker_is_an_input_error(self):
        from mofa_bench.errors import InputError

        with pytest.raises(InputError, match="unknown landmarker 'openface'; known landmarkers: dlib, mediapipe"):
            get_landmarker("openface")


def test_face_landmarks_mesh_vertices_are_the_first_468_points():
    mesh = np.arange(478 * 3, dtype=np.float64).reshape(478, 3)
    face = FaceLandmarks(mesh=mesh, ibug68=mesh[list(IBUG68_FROM_MEDIAPIPE), :2], confidence=np.ones(68))
    assert np.array_equal(face.mesh_vertices, mesh[:468, :2])


class TestDlib:
    @pytest.fixture(autouse=True)
    def _needs_dlib(self):
        from mofa_bench.photos.landmarks68 import available_landmarkers

        state = available_landmarkers()["dlib"]
        if not state.available:
            pytest.skip(f"dlib unavailable: {state.reason} (fix: {state.fix})")

    def test_dlib_detector_finds_the_astronaut_not_her_suit(self, astronaut):
        from mofa_bench.photos.detection import get_detector

        with get_detector("dlib") as det:
            faces = det.detect(astronaut)
            loose = det.__class__(min_score=0.0).detect(astronaut)
        assert len(faces) == 1 and faces[0].score > 0.8
        x, y, w, h = faces[0].box
        assert 177 < x + w / 2 < 272 and 82 < y + h / 2 < 177
        assert len(loose) == 2          # the suit's false face (score ≈ 0.12) is what min_score removes

    def test_dlib_68_points_in_order_and_close_to_mediapipe(self, astronaut, needs_mediapipe):
        with get_landmarker("dlib") as dl, get_landmarker("mediapipe") as mp:
            ours, theirs = dl.detect(astronaut)[0], mp.detect(astronaut)[0]
        assert ours.mesh is None and np.all(ours.confidence == 1.0)
        assert_ibug68_in_order(ours.ibug68)
        iod = np.linalg.norm(ours.ibug68[36] - ours.ibug68[45])
        gap = np.linalg.norm(ours.ibug68 - theirs.ibug68, axis=1) / iod
        assert gap[[36, 39, 42, 45, 48, 54]].mean() < 0.05 and gap[list(LANDMARKS_46)].mean() < 0.06
        with pytest.raises(Exception, match="no mesh"):
            ours.mesh_vertices
