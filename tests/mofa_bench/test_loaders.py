"""Face-model loaders on small synthetic files written in the real on-disk formats."""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from mofa_bench.errors import InputError, ModelFileError
from mofa_bench.face_model.loaders import (
    load_bfm2009,
    load_bfm2017,
    load_face_model,
    load_npz,
    read_exp_pca_bin,
)
from mofa_bench.face_model.model import FaceModel

ROWS, COLS = 5, 6  # 30 vertices


# ---------------------------------------------------------------------------- fixtures
def cap_mesh() -> tuple[np.ndarray, np.ndarray]:
    """A 5 x 6 grid on a sphere cap bulging towards +z (mm) and its CCW-from-outside triangles."""
    xs = np.linspace(-60.0, 60.0, COLS)
    ys = np.linspace(-70.0, 70.0, ROWS)
    x, y = np.meshgrid(xs, ys)  # row i: y, column j: x
    z = np.sqrt(150.0**2 - x**2 - y**2) - 100.0
    vertices = np.stack([x, y, z], axis=-1).reshape(-1, 3)
    tris = []
    for i in range(ROWS - 1):
        for j in range(COLS - 1):
            p00, p01 = i * COLS + j, i * COLS + j + 1
            p10, p11 = (i + 1) * COLS + j, (i + 1) * COLS + j + 1
            tris += [(p00, p01, p11), (p00, p11, p10)]
    return vertices, np.asarray(tris, dtype=np.int64)


def orthonormal(rows: int, cols: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(rows, cols)))
    return q


def as_matrix(basis: torch.Tensor) -> np.ndarray:
    """(N, 3, K) -> (3N, K) in interleaved x y z order."""
    return basis.double().numpy().reshape(-1, basis.shape[-1])


@pytest.fixture
def bfm2009_arrays() -> dict[str, np.ndarray]:
    vertices_mm, tris = cap_mesh()
    n = vertices_mm.shape[0]
    rng = np.random.default_rng(0)
    return {
        "shapeMU": (vertices_mm * 1000.0).reshape(-1, 1),  # µm
        "shapePC": orthonormal(3 * n, 85, 1),
        "shapeEV": np.linspace(60000.0, 500.0, 85).reshape(-1, 1),  # σ in µm
        "texMU": rng.uniform(40.0, 220.0, size=(3 * n, 1)),
        "texPC": orthonormal(3 * n, 85, 2),
        "texEV": np.linspace(80.0, 1.0, 85).reshape(-1, 1),
        "tl": (tris + 1).astype(np.float64),  # the released file stores doubles, 1-based
    }


def write_exp_pca_bin(path: Path, exp_mu: np.ndarray, exp_pc: np.ndarray) -> None:
    """int32 K, float32 expMU (3M), float32 expPC written component after component."""
    with open(path, "wb") as f:
        np.asarray([exp_pc.shape[1]], dtype="<i4").tofile(f)
        exp_mu.astype("<f4").tofile(f)
        exp_pc.T.astype("<f4").tofile(f)


def write_bfm2017(path: Path, *, n_shape=90, n_color=90, n_exp=79, transpose_cells=False,
                  exp_mean_mm=0.0, drop: str | None = None) -> dict[str, np.ndarray]:
    import h5py

    vertices, tris = cap_mesh()
    n = vertices.shape[0]
    arrays = {
        "shape/model/mean": vertices.reshape(-1),
        "shape/model/pcaBasis": orthonormal(3 * n, n_shape, 3),
        "shape/model/pcaVariance": np.linspace(30.0, 0.5, n_shape) ** 2,
        "color/model/mean": np.random.default_rng(4).uniform(0.2, 0.8, 3 * n),
        "color/model/pcaBasis": orthonormal(3 * n, n_color, 5),
        "color/model/pcaVariance": np.linspace(0.1, 0.001, n_color) ** 2,
        "expression/model/mean": np.full(3 * n, exp_mean_mm),
        "expression/model/pcaBasis": orthonormal(3 * n, n_exp, 6),
        "expression/model/pcaVariance": np.linspace(8.0, 0.1, n_exp) ** 2,
        "shape/representer/points": vertices.T,
        "shape/representer/cells": tris if transpose_cells else tris.T,
    }
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            if key != drop:
                dtype = np.int32 if key.endswith("cells") else np.float32
                f.create_dataset(key, data=np.asarray(value, dtype=dtype))
    return arrays


def make_model(seed: int = 0) -> FaceModel:
    vertices, tris = cap_mesh()
    n = vertices.shape[0]
    g = torch.Generator().manual_seed(seed)
    return FaceModel(
        mean_shape=torch.tensor(vertices, dtype=torch.float32),
        shape_basis=torch.randn(n, 3, 80, generator=g),
        expression_basis=torch.randn(n, 3, 64, generator=g),
        mean_reflectance=torch.rand(n, 3, generator=g),
        reflectance_basis=0.01 * torch.randn(n, 3, 80, generator=g),
        triangles=torch.tensor(tris),
        landmark_indices=torch.randint(0, n, (68,), generator=g),
        landmark_subset=torch.arange(20, 60),
        name="mine",
    )


# ---------------------------------------------------------------------------- native npz
def test_npz_round_trip_equals_original(tmp_path):
    model = make_model()
    path = model.save_npz(tmp_path / "my_model.npz")
    loaded = load_face_model(path)
    for name in FaceModel._TENSOR_FIELDS:
        expected, got = getattr(model, name), getattr(loaded, name)
        assert got.dtype == expected.dtype, name
        assert torch.equal(got, expected), name
    assert loaded.name == "mine"
    assert loaded.metadata["format"] == "npz"
    assert loaded.metadata["triangles_flipped"] is False


def test_npz_minimal_keys_are_cast_and_padded(tmp_path):
    vertices, tris = cap_mesh()
    n = vertices.shape[0]
    path = tmp_path / "hand_made.npz"
    np.savez(path, mean_shape=vertices, shape_basis=np.ones((n, 3, 5)),
             expression_basis=np.ones((n, 3, 70)), mean_reflectance=np.full((n, 3), 0.5),
             reflectance_basis=np.ones((n, 3, 3)), triangles=tris.astype(np.int32),
             landmark_indices=np.arange(68) % n)
    model = load_npz(path)
    assert model.name == "hand_made"
    assert model.mean_shape.dtype == torch.float32
    assert model.triangles.dtype == torch.int64
    assert tuple(model.shape_basis.shape) == (n, 3, 80)
    assert tuple(model.expression_basis.shape) == (n, 3, 64)
    assert tuple(model.reflectance_basis.shape) == (n, 3, 80)
    assert torch.all(model.shape_basis[..., 5:] == 0) and torch.all(model.shape_basis[..., :5] == 1)
    assert len(model.landmark_subset) == 46  # the paper's default subset


def test_npz_inward_triangles_are_reversed(tmp_path, caplog):
    model = make_model()
    model.triangles = model.triangles[:, [0, 2, 1]].contiguous()
    path = model.save_npz(tmp_path / "cw.npz")
    with caplog.at_level(logging.WARNING):
        loaded = load_npz(path)
    assert torch.equal(loaded.triangles, make_model().triangles)
    assert loaded.metadata["triangles_flipped"] is True
    assert "reversing" in caplog.text


def test_npz_missing_key(tmp_path):
    data = make_model().to_numpy_dict()
    del data["expression_basis"]
    path = tmp_path / "incomplete.npz"
    np.savez(path, **data)
    with pytest.raises(ModelFileError, match=r"incomplete\.npz.*missing key.*expression_basis"):
        load_face_model(path)


def test_npz_wrong_shape(tmp_path):
    data = make_model().to_numpy_dict()
    data["mean_reflectance"] = data["mean_reflectance"][:, :2]
    path = tmp_path / "bad_shape.npz"
    np.savez(path, **data)
    with pytest.raises(ModelFileError, match=r"bad_shape\.npz.*mean_reflectance"):
        load_face_model(path)


def test_npz_unreadable(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(ModelFileError, match=r"garbage\.npz.*cannot read"):
        load_face_model(path)


# ---------------------------------------------------------------------------- BFM 2009
def test_bfm2009_units_scaling_truncation(tmp_path, bfm2009_arrays, caplog):
    a = bfm2009_arrays
    path = tmp_path / "01_MorphableModel.mat"
    scipy.io.savemat(path, a)
    with caplog.at_level(logging.WARNING):
        model = load_face_model(path)
    vertices_mm, tris = cap_mesh()
    n = vertices_mm.shape[0]
    assert model.name == "bfm2009" and model.dtype == torch.float32
    # µm -> mm
    np.testing.assert_allclose(model.mean_shape.numpy(), vertices_mm, rtol=1e-6, atol=1e-4)
    # E = PC diag(EV) / 1000, truncated to 80: EᵀE = diag(σ²) (mm²)
    sigma_mm = a["shapeEV"].ravel()[:80] / 1000.0
    e = as_matrix(model.shape_basis)
    assert e.shape == (3 * n, 80)
    np.testing.assert_allclose(e.T @ e, np.diag(sigma_mm**2), rtol=1e-4, atol=1e-6 * sigma_mm[0] ** 2)
    np.testing.assert_allclose(e, a["shapePC"][:, :80] * sigma_mm, rtol=1e-5, atol=1e-5)
    # reflectance /255
    np.testing.assert_allclose(model.mean_reflectance.numpy(), a["texMU"].reshape(n, 3) / 255.0, rtol=1e-6)
    r = as_matrix(model.reflectance_basis)
    tex_sigma = a["texEV"].ravel()[:80] / 255.0
    np.testing.assert_allclose(r.T @ r, np.diag(tex_sigma**2), rtol=1e-4, atol=1e-6 * tex_sigma[0] ** 2)
    # no expression file: zeros, warned
    assert tuple(model.expression_basis.shape) == (n, 3, 64)
    assert torch.all(model.expression_basis == 0)
    assert model.metadata["expression"] == "missing"
    # triangles 0-based, unchanged (already outward)
    assert torch.equal(model.triangles, torch.tensor(tris))
    assert model.metadata["triangles_flipped"] is False
    # no landmark file: placeholder, warned
    assert model.metadata["landmarks"] == "missing"
    assert torch.all(model.landmark_indices == 0)
    assert "landmarks_path" in caplog.text and "expression" in caplog.text


def test_bfm2009_clockwise_triangles_are_reversed(tmp_path, bfm2009_arrays):
    a = dict(bfm2009_arrays)
    a["tl"] = a["tl"][:, [0, 2, 1]]
    path = tmp_path / "cw.mat"
    scipy.io.savemat(path, a)
    model = load_bfm2009(path)
    assert torch.equal(model.triangles, torch.tensor(cap_mesh()[1]))
    assert model.metadata["triangles_flipped"] is True


def test_bfm2009_expression_bin_and_landmarks(tmp_path, bfm2009_arrays):
    path = tmp_path / "01_MorphableModel.mat"
    scipy.io.savemat(path, bfm2009_arrays)
    n = 30
    exp_pc = orthonormal(3 * n, 79, 7)
    exp_mu = np.random.default_rng(8).normal(size=3 * n)
    write_exp_pca_bin(tmp_path / "Exp_Pca.bin", exp_mu, exp_pc)
    std = np.linspace(20000.0, 100.0, 79)  # same units as shapePC·shapeEV (µm)
    np.savetxt(tmp_path / "std_exp.txt", std)
    landmarks = np.arange(68) % n
    np.savetxt(tmp_path / "lm68.txt", landmarks, fmt="%d")

    model = load_face_model(path, expression_path=tmp_path / "Exp_Pca.bin",
                            landmarks_path=tmp_path / "lm68.txt")
    e = as_matrix(model.expression_basis)
    sigma_mm = std[:64] / 1000.0
    assert e.shape == (3 * n, 64)
    np.testing.assert_allclose(e, exp_pc[:, :64] * sigma_mm, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(e.T @ e, np.diag(sigma_mm**2), rtol=1e-4, atol=1e-6 * sigma_mm[0] ** 2)
    assert model.metadata["expression_std"].endswith("std_exp.txt")  # found next to the .bin
    assert torch.equal(model.landmark_indices, torch.tensor(landmarks))
    assert model.metadata["landmarks"].endswith("lm68.txt")

    # exp_std overrides the file
    model2 = load_bfm2009(path, expression_path=tmp_path / "Exp_Pca.bin", exp_std=np.full(79, 1000.0))
    np.testing.assert_allclose(as_matrix(model2.expression_basis), exp_pc[:, :64], rtol=1e-5, atol=1e-6)


def test_read_exp_pca_bin_layout(tmp_path):
    m, k = 7, 4
    exp_pc = np.arange(3 * m * k, dtype=np.float64).reshape(3 * m, k)
    exp_mu = -np.arange(3 * m, dtype=np.float64)
    write_exp_pca_bin(tmp_path / "Exp_Pca.bin", exp_mu, exp_pc)
    raw = np.fromfile(tmp_path / "Exp_Pca.bin", dtype="<f4", offset=4)
    assert np.fromfile(tmp_path / "Exp_Pca.bin", dtype="<i4", count=1)[0] == k
    assert raw.size == 3 * m * (k + 1)
    np.testing.assert_array_equal(raw[3 * m:3 * m + 3 * m], exp_pc[:, 0])  # first component first
    mu, pc = read_exp_pca_bin(tmp_path / "Exp_Pca.bin")
    np.testing.assert_array_equal(mu, exp_mu)
    np.testing.assert_array_equal(pc, exp_pc)


def test_read_exp_pca_bin_trailing_bytes_and_override(tmp_path, caplog):
    from mofa_bench.face_model.loaders import EXP_PCA_BIN_VERTICES

    m, k = EXP_PCA_BIN_VERTICES, 1
    exp_pc = np.random.default_rng(11).normal(size=(3 * m, k))
    path = tmp_path / "Exp_Pca.bin"
    write_exp_pca_bin(path, np.zeros(3 * m), exp_pc)
    with open(path, "ab") as f:
        f.write(b"\0" * 8)
    with caplog.at_level(logging.WARNING):
        _, pc = read_exp_pca_bin(path)
    assert "8 bytes" in caplog.text
    np.testing.assert_array_equal(pc, exp_pc.astype(np.float32))
    small = tmp_path / "small.bin"
    write_exp_pca_bin(small, np.zeros(12), np.ones((12, 3)))
    _, pc = read_exp_pca_bin(small, num_vertices=2)  # 2 of the 4 stored vertices
    assert pc.shape == (6, 3)
    with pytest.raises(ModelFileError, match=r"small\.bin.*fewer"):
        read_exp_pca_bin(small, num_vertices=5)


def test_bfm2009_expression_without_std_warns(tmp_path, bfm2009_arrays, caplog):
    path = tmp_path / "01_MorphableModel.mat"
    scipy.io.savemat(path, bfm2009_arrays)
    sub = tmp_path / "exp"
    sub.mkdir()
    exp_pc = orthonormal(90, 10, 9)
    write_exp_pca_bin(sub / "Exp_Pca.bin", np.zeros(90), exp_pc)
    with caplog.at_level(logging.WARNING):
        model = load_bfm2009(path, expression_path=sub / "Exp_Pca.bin")
    assert model.metadata["expression_std"] == "missing"
    assert "unscaled" in caplog.text
    e = as_matrix(model.expression_basis)
    np.testing.assert_allclose(e[:, :10], exp_pc / 1000.0, rtol=1e-5, atol=1e-8)
    assert np.all(e[:, 10:] == 0)  # padded from 10 to 64


def test_bfm2009_expression_on_vertex_subset(tmp_path, bfm2009_arrays):
    """Exp_Pca.bin covers fewer vertices than the BFM; trimIndex maps them (1-based)."""
    path = tmp_path / "01_MorphableModel.mat"
    scipy.io.savemat(path, bfm2009_arrays)
    vertices_mm, tris = cap_mesh()
    keep = np.array([v for v in range(30) if v not in (0, 5, 29)])[::-1].copy()  # 27, reordered
    m = keep.size
    exp_pc = orthonormal(3 * m, 79, 10)
    write_exp_pca_bin(tmp_path / "Exp_Pca.bin", np.zeros(3 * m), exp_pc)
    np.savetxt(tmp_path / "std_exp.txt", np.full(79, 2000.0))
    np.save(tmp_path / "lm.npy", np.full(68, keep[3]))

    with pytest.raises(ModelFileError, match=r"Exp_Pca\.bin.*27 vertices.*30.*BFM_exp_idx\.mat"):
        load_bfm2009(path, expression_path=tmp_path / "Exp_Pca.bin")

    scipy.io.savemat(tmp_path / "BFM_exp_idx.mat", {"trimIndex": (keep + 1).reshape(-1, 1)})
    model = load_bfm2009(path, expression_path=tmp_path / "Exp_Pca.bin", landmarks_path=tmp_path / "lm.npy")
    assert model.num_vertices == m
    np.testing.assert_allclose(model.mean_shape.numpy(), vertices_mm[keep], rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(as_matrix(model.expression_basis), exp_pc[:, :64] * 2.0, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.metadata["source_vertex_indices"], keep)
    # triangles: those with all corners kept, re-indexed, same geometry
    kept = tris[np.isin(tris, keep).all(axis=1)]
    assert model.num_triangles == len(kept)
    back = keep[model.triangles.numpy()]
    np.testing.assert_array_equal(back, kept)
    assert torch.all(model.landmark_indices == 3)

    np.save(tmp_path / "lm_bad.npy", np.zeros(68, dtype=np.int64))  # vertex 0 is not kept
    with pytest.raises(ModelFileError, match=r"lm_bad\.npy.*not covered"):
        load_bfm2009(path, expression_path=tmp_path / "Exp_Pca.bin", landmarks_path=tmp_path / "lm_bad.npy")


def test_bfm2009_missing_variable(tmp_path, bfm2009_arrays):
    a = dict(bfm2009_arrays)
    del a["shapeEV"]
    path = tmp_path / "01_MorphableModel.mat"
    scipy.io.savemat(path, a)
    with pytest.raises(ModelFileError) as info:
        load_face_model(path)
    message = str(info.value)
    assert "01_MorphableModel.mat" in message
    assert "missing variable 'shapeEV'" in message
    assert "Basel Face Model 2009" in message and "texEV" in message


@pytest.mark.parametrize("key,value,pattern", [
    ("shapePC", np.zeros((89, 85)), r"shapePC.*\(89, 85\).*\(90, K\)"),
    ("texMU", np.zeros((60, 1)), r"texMU.*60 entries.*90"),
    ("shapeEV", np.ones((84, 1)), r"shapeEV.*84 entries.*85"),
    ("tl", np.array([[1, 2, 31]]), r"'tl'.*\[1, 31\].*1-based"),
    ("tl", np.array([[0, 1, 2]]), r"'tl'.*\[0, 2\].*1-based"),
    ("shapeMU", np.zeros((91, 1)), r"shapeMU.*91 entries.*3N"),
])
def test_bfm2009_wrong_shapes(tmp_path, bfm2009_arrays, key, value, pattern):
    a = dict(bfm2009_arrays)
    a[key] = value
    path = tmp_path / "broken_bfm.mat"
    scipy.io.savemat(path, a)
    with pytest.raises(ModelFileError, match=r"broken_bfm\.mat.*" + pattern):
        load_face_model(path)


def test_bfm2009_bad_side_files(tmp_path, bfm2009_arrays):
    path = tmp_path / "01_MorphableModel.mat"
    scipy.io.savemat(path, bfm2009_arrays)
    (tmp_path / "Exp_Pca.bin").write_bytes(np.asarray([79], "<i4").tobytes() + b"\0" * 17)
    with pytest.raises(ModelFileError, match=r"Exp_Pca\.bin.*K=79"):
        load_bfm2009(path, expression_path=tmp_path / "Exp_Pca.bin")
    with pytest.raises(ModelFileError, match=r"nowhere\.bin.*no such file"):
        load_bfm2009(path, expression_path=tmp_path / "nowhere.bin")
    np.savetxt(tmp_path / "lm67.txt", np.arange(67), fmt="%d")
    with pytest.raises(ModelFileError, match=r"lm67\.txt.*67 values.*68"):
        load_bfm2009(path, landmarks_path=tmp_path / "lm67.txt")
    np.savetxt(tmp_path / "lm_range.txt", np.arange(68) + 10, fmt="%d")
    with pytest.raises(ModelFileError, match=r"lm_range\.txt.*\[10, 77\]"):
        load_bfm2009(path, landmarks_path=tmp_path / "lm_range.txt")


def test_bfm2009_unreadable(tmp_path):
    path = tmp_path / "corrupt.mat"
    path.write_bytes(b"\x00\x01garbage" * 20)
    with pytest.raises(ModelFileError, match=r"corrupt\.mat.*Basel Face Model 2009"):
        load_face_model(path)


# ---------------------------------------------------------------------------- BFM 2017
def test_bfm2017_loads(tmp_path):
    pytest.importorskip("h5py")
    path = tmp_path / "model2017-1_bfm_nomouth.h5"
    a = write_bfm2017(path, exp_mean_mm=0.25)
    model = load_face_model(path)
    vertices, tris = cap_mesh()
    n = vertices.shape[0]
    assert model.name == "model2017-1_bfm_nomouth"
    # mm already; the expression mean is added to the mean shape
    np.testing.assert_allclose(model.mean_shape.numpy(), vertices + 0.25, rtol=1e-6, atol=1e-4)
    for field, part, k in (("shape_basis", "shape", 80), ("expression_basis", "expression", 64),
                           ("reflectance_basis", "color", 80)):
        e = as_matrix(getattr(model, field))
        sigma = np.sqrt(a[f"{part}/model/pcaVariance"][:k])
        assert e.shape == (3 * n, k)
        np.testing.assert_allclose(e.T @ e, np.diag(sigma**2), rtol=1e-4, atol=1e-6 * sigma[0] ** 2)
        np.testing.assert_allclose(e, a[f"{part}/model/pcaBasis"][:, :k] * sigma,
                                   rtol=1e-4, atol=1e-5 * sigma[0])
    np.testing.assert_allclose(model.mean_reflectance.numpy(), a["color/model/mean"].reshape(n, 3), rtol=1e-6)
    assert torch.equal(model.triangles, torch.tensor(tris))
    assert model.metadata["landmarks"] == "missing"


def test_bfm2017_transposed_cells_and_padding(tmp_path):
    pytest.importorskip("h5py")
    path = tmp_path / "small.h5"
    a = write_bfm2017(path, n_shape=5, n_color=7, n_exp=3, transpose_cells=True)
    np.save(tmp_path / "lm.npy", np.arange(68) % 30)
    model = load_bfm2017(path, landmarks_path=tmp_path / "lm.npy")
    assert torch.equal(model.triangles, torch.tensor(cap_mesh()[1]))
    assert tuple(model.shape_basis.shape[1:]) == (3, 80)
    assert torch.all(model.shape_basis[..., 5:] == 0)
    assert torch.all(model.expression_basis[..., 3:] == 0)
    assert torch.all(model.reflectance_basis[..., 7:] == 0)
    e = as_matrix(model.shape_basis)[:, :5]
    variance = a["shape/model/pcaVariance"]
    np.testing.assert_allclose(e.T @ e, np.diag(variance), rtol=1e-4, atol=1e-6 * variance[0])
    assert torch.equal(model.landmark_indices, torch.arange(68) % 30)


def test_bfm2017_transposed_basis_and_unnormalised_columns(tmp_path, caplog):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "odd_layout.h5"
    a = write_bfm2017(path, n_shape=85)  # (3N, K) = (90, 85): a transposed copy is unambiguous
    with h5py.File(path, "a") as f:
        basis = np.asarray(f["shape/model/pcaBasis"])
        del f["shape/model/pcaBasis"]
        f.create_dataset("shape/model/pcaBasis", data=basis.T)  # (K, 3N)
        color = np.asarray(f["color/model/pcaBasis"])
        del f["color/model/pcaBasis"]
        f.create_dataset("color/model/pcaBasis", data=2.0 * color)
    with caplog.at_level(logging.WARNING):
        model = load_bfm2017(path)
    sigma = np.sqrt(a["shape/model/pcaVariance"][:80])
    np.testing.assert_allclose(as_matrix(model.shape_basis), a["shape/model/pcaBasis"][:, :80] * sigma,
                               rtol=1e-4, atol=1e-5 * sigma[0])
    csigma = np.sqrt(a["color/model/pcaVariance"][:80])
    np.testing.assert_allclose(as_matrix(model.reflectance_basis), a["color/model/pcaBasis"][:, :80] * csigma,
                               rtol=1e-4, atol=1e-5 * csigma[0])
    assert "not unit length" in caplog.text


def test_bfm2017_without_expression_group(tmp_path, caplog):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "no_expr.h5"
    write_bfm2017(path)
    with h5py.File(path, "a") as f:
        del f["expression"]
    with caplog.at_level(logging.WARNING):
        model = load_bfm2017(path)
    assert torch.all(model.expression_basis == 0)
    assert model.metadata["expression"] == "missing"


@pytest.mark.parametrize("drop", ["shape/model/pcaVariance", "color/model/mean", "shape/representer/cells"])
def test_bfm2017_missing_dataset(tmp_path, drop):
    pytest.importorskip("h5py")
    path = tmp_path / "partial.h5"
    write_bfm2017(path, drop=drop)
    with pytest.raises(ModelFileError, match=r"partial\.h5.*missing dataset.*" + drop.split("/")[-1]):
        load_face_model(path)


def test_bfm2017_wrong_shape(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "mismatch.h5"
    write_bfm2017(path)
    with h5py.File(path, "a") as f:
        del f["color/model/mean"]
        f.create_dataset("color/model/mean", data=np.zeros(87, dtype=np.float32))
    with pytest.raises(ModelFileError, match=r"mismatch\.h5.*color/model/mean.*87 entries.*90"):
        load_face_model(path)


def test_bfm2017_unreadable(tmp_path):
    pytest.importorskip("h5py")
    path = tmp_path / "not_hdf5.h5"
    path.write_text("plain text")
    with pytest.raises(ModelFileError, match=r"not_hdf5\.h5.*HDF5"):
        load_face_model(path)


# ---------------------------------------------------------------------------- dispatch
def test_missing_file_names_the_file(tmp_path):
    for name in ("absent.npz", "absent.mat", "absent.h5"):
        with pytest.raises(ModelFileError, match=rf"absent\.{name.split('.')[-1]}: no such file"):
            load_face_model(tmp_path / name)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "face.obj"
    path.write_text("v 0 0 0\n")
    with pytest.raises(ModelFileError, match=r"face\.obj.*unknown face-model format '\.obj'"):
        load_face_model(path)
    with pytest.raises(ModelFileError, match="no suffix"):
        load_face_model(tmp_path / "face")


def test_unknown_option_is_input_error(tmp_path):
    path = make_model().save_npz(tmp_path / "m.npz")
    with pytest.raises(InputError, match=r"expression_path.*\.npz"):
        load_face_model(path, expression_path="Exp_Pca.bin")


def test_default_dispatches_to_builder(monkeypatch):
    calls = {}
    small = make_model().truncated(10, 3, 5).to(dtype=torch.float64)

    def build_default_model(**kwargs):
        calls.update(kwargs)
        return small

    fake = types.ModuleType("mofa_bench.face_model.default_model")
    fake.build_default_model = build_default_model
    monkeypatch.setitem(sys.modules, "mofa_bench.face_model.default_model", fake)
    model = load_face_model("default", subdivisions=2)
    assert calls == {"subdivisions": 2}
    assert model.dtype == torch.float32
    assert tuple(model.shape_basis.shape[1:]) == (3, 80)
    assert tuple(model.expression_basis.shape[1:]) == (3, 64)
    assert tuple(model.reflectance_basis.shape[1:]) == (3, 80)
    assert torch.equal(model.triangles, small.triangles)
    assert FaceModel.load("default").num_vertices == small.num_vertices


def test_face_model_load_goes_through_the_registered_dispatcher(tmp_path):
    path = make_model().save_npz(tmp_path / "m.npz")
    via_class = FaceModel.load(path)
    direct = load_face_model(path)
    for name in FaceModel._TENSOR_FIELDS:
        assert torch.equal(getattr(via_class, name), getattr(direct, name)), name
    assert via_class.name == direct.name


def test_face_model_load_without_registered_loader_says_so(monkeypatch):
    import mofa_bench.face_model.model as model_module

    monkeypatch.setattr(model_module, "_loader", None)
    with pytest.raises(RuntimeError, match="no loader registered"):
        FaceModel.load("default")
