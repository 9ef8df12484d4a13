"""The jaw on the visible outline: candidate lines, outline choice under yaw, confidences (no MediaPipe needed)."""

from __future__ import annotations

import numpy as np
import pytest

from mofa_bench.photos.contour import JAW_CHAINS, candidate_lines, contour_landmarks, snap_to_edges
from mofa_bench.photos.landmarks68 import mesh_landmarks, point_confidence, vertex_facing


def _posed_mesh(yaw_deg: float) -> np.ndarray:
    """The canonical mesh turned by ``yaw_deg`` about the vertical axis, as a detected mesh: (468, 3) px, y down, z away."""
    from mofa_bench.face_model.mediapipe_mesh import load_canonical_mesh

    v = load_canonical_mesh().vertices.copy()        # mm, x right, y up, z to the viewer
    a = np.radians(yaw_deg)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    v = v @ rot.T
    return np.stack([200 + 2 * v[:, 0], 200 - 2 * v[:, 1], -2 * v[:, 2]], axis=1)


def _hull_distance(points: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """Distance of each point to the boundary of the projected mesh's convex hull (its outline), px."""
    from scipy.spatial import ConvexHull

    hull = mesh[ConvexHull(mesh[:, :2]).vertices, :2]
    a, b = hull, np.roll(hull, -1, axis=0)
    seg = b - a
    t = np.clip(np.einsum("pkc,kc->pk", points[:, None] - a[None], seg) / np.einsum("kc,kc->k", seg, seg), 0, 1)
    return np.linalg.norm(points[:, None] - (a[None] + t[..., None] * seg[None]), axis=2).min(1)


def test_candidate_lines_start_at_the_chain_and_run_inward():
    lines = candidate_lines()
    assert set(lines) == set(JAW_CHAINS[0]) | set(JAW_CHAINS[1])
    assert all(line[0] == vertex and len(line) >= 3 for vertex, line in lines.items())


def test_frontal_jaw_stays_on_the_face_oval():
    mesh = _posed_mesh(0.0)
    jaw, conf, brows = contour_landmarks(mesh, point_confidence(mesh), vertex_facing(mesh), outset=(0.0,) * 9)
    assert jaw.shape == (17, 2) and conf.shape == (17,) and brows.shape == (2, 3)
    assert np.allclose(jaw[:8, 0], 400 - jaw[16:8:-1, 0], atol=1.0)          # left/right mirror images
    assert _hull_distance(jaw, mesh).max() < 3.0
    # the brows' outer ends: halfway between the brow's upper and lower edge at its tail
    assert np.allclose(brows[:, :2], (mesh[[70, 300], :2] + mesh[[46, 276], :2]) / 2)


@pytest.mark.parametrize("yaw", [-40.0, 40.0])
def test_turned_head_far_side_jaw_moves_onto_the_silhouette(yaw: float):
    mesh = _posed_mesh(yaw)
    fixed = mesh_landmarks(mesh, None, contour=False)
    contour = mesh_landmarks(mesh, None, contour=True)
    # which side is far: the one whose ear-level oval vertex faces away from the camera
    far = slice(0, 8) if vertex_facing(mesh)[127] < vertex_facing(mesh)[356] else slice(9, 17)
    before = _hull_distance(fixed.ibug68[far], mesh).mean()
    after = _hull_distance(contour.ibug68[far], mesh).mean()
    assert after < 0.5 * before and before > 3.0
    assert np.array_equal(contour.ibug68[28:], fixed.ibug68[28:])           # nose, eyes, mouth untouched
    assert np.array_equal(contour.ibug68[27], mesh[168, :2])               # the bridge's top between the eyes
    assert ((contour.confidence >= 0) & (contour.confidence <= 1)).all()


def _disc_photo(radius: float, size: int = 240) -> np.ndarray:
    """A skin-coloured disc of ``radius`` px centred in a mid-grey ``size``-px photo."""
    ys, xs = np.mgrid[:size, :size] + 0.5
    inside = np.hypot(xs - size / 2, ys - size / 2) < radius
    rgb = np.full((size, size, 3), 128, np.uint8)
    rgb[inside] = (205, 150, 120)
    return rgb


def _arc(radius: float, centre: float = 120.0) -> np.ndarray:
    """17 points on the lower half of a circle, image left to right through its bottom (a jaw)."""
    a = np.linspace(np.pi, 0.0, 17)
    return np.stack([centre + radius * np.cos(a), centre + radius * np.sin(a)], axis=1)


def test_snap_to_edges_moves_the_jaw_onto_a_visible_outline():
    rgb = _disc_photo(80.0)
    jaw, centre, scale = _arc(72.0), np.array([120.0, 120.0]), 70.0       # 8 px inside the face's edge
    moved, moves = snap_to_edges(rgb, jaw, centre, scale)
    radii = np.linalg.norm(moved - centre, axis=1)
    assert np.abs(radii - 80.0).max() < 1.5 and (moves > 6).all()
    # no edge within reach (EDGE_REACH × 70 px = 8.4 px): a flat photo or a far outline leaves the points
    assert np.array_equal(snap_to_edges(np.full_like(rgb, 128), jaw, centre, scale)[0], jaw)
    assert np.allclose(snap_to_edges(_disc_photo(100.0), jaw, centre, scale)[1], 0.0)


def test_snap_to_edges_keeps_points_whose_search_line_leaves_the_photo():
    rgb = _disc_photo(80.0)[:190]                                         # the chin cut off by the border
    jaw, centre = _arc(72.0), np.array([120.0, 120.0])
    moved, moves = snap_to_edges(rgb, jaw, centre, 70.0)
    line_out = jaw[:, 1] + 8.4 > 190
    assert line_out.any() and (~line_out).any()
    assert np.allclose(moves[line_out][1:-1], 0.0)                        # (the median filter may carry an end)
    assert (moves[:3] > 6).all() and (moves[-3:] > 6).all()


def test_detected_jaw_follows_the_photo_only_when_given_it():
    mesh = _posed_mesh(0.0)
    conf, facing = point_confidence(mesh), vertex_facing(mesh)
    alone = contour_landmarks(mesh, conf, facing)[0]
    assert np.array_equal(contour_landmarks(mesh, conf, facing, rgb=np.full((400, 400, 3), 90, np.uint8))[0], alone)
    assert np.array_equal(mesh_landmarks(mesh, None, True, None).ibug68[:17], alone)


def test_bad_mesh_is_refused():
    from mofa_bench.errors import InputError

    with pytest.raises(InputError, match="mesh"):
        contour_landmarks(np.zeros((10, 3)), np.zeros(468), np.zeros(468))
