"""Shared test helpers: assert_close with dtype tolerances, tiny models, seeded data.

Only the renderer package is imported at module level, so the renderer tests run
without ``mofa_bench``; :func:`tiny_face_model` imports it when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from renderers import Renderer, available_renderers, get_renderer

if TYPE_CHECKING:
    from mofa_bench.face_model.model import FaceModel

#: (rtol, atol) per dtype.
TOLERANCES = {
    torch.float16: (1e-2, 1e-2),
    torch.bfloat16: (2e-2, 2e-2),
    torch.float32: (1e-4, 1e-5),
    torch.float64: (1e-7, 1e-9),
}


#: (renderer name, device, options) of every rasterizing backend case.
RASTERIZERS = [
    pytest.param("pytorch3d", "cpu", {}, id="pytorch3d-cpu"),
    pytest.param("pytorch3d", "cuda", {}, id="pytorch3d-cuda", marks=pytest.mark.cuda),
    pytest.param("nvdiffrast", "cuda", {}, id="nvdiffrast-cuda", marks=pytest.mark.cuda),
]


def renderer_or_skip(name: str, device: str, options: dict) -> Renderer:
    """The backend, or a skip carrying its availability reason."""
    state = available_renderers(device)[name]
    if not state.available:
        pytest.skip(f"{name} on {device}: {state}")
    return get_renderer(name, device, **options)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float | None = None,
                 atol: float | None = None, msg: str = "") -> None:
    """``torch.testing.assert_close`` with per-dtype defaults; reports max diff and index."""
    rt, at = TOLERANCES.get(actual.dtype, (1e-5, 1e-8))
    torch.testing.assert_close(
        actual, expected.to(actual.dtype) if isinstance(expected, torch.Tensor) else expected,
        rtol=rt if rtol is None else rtol, atol=at if atol is None else atol,
        msg=(lambda m: f"{msg} {m}") if msg else None,
    )


def tiny_face_model(subdivisions: int = 1, dtype: torch.dtype = torch.float64, seed: int = 0) -> FaceModel:
    """A small closed ellipsoid 'head' (42 or 162 vertices) with random orthogonal bases.

    Sizes are face-like (mm): radii 75 × 95 × 80. Bases are orthogonal with decaying σ.
    Landmark indices are the vertices nearest 68 fixed directions on the front half.
    """
    import trimesh

    from mofa_bench.face_model.model import FaceModel

    sphere = trimesh.creation.icosphere(subdivisions=subdivisions, radius=1.0)
    verts = np.asarray(sphere.vertices) * np.array([75.0, 95.0, 80.0])
    faces = np.asarray(sphere.faces, dtype=np.int64)
    n = verts.shape[0]
    rng = np.random.default_rng(seed)

    def basis(k: int, sigma0: float) -> np.ndarray:
        q, _ = np.linalg.qr(rng.standard_normal((3 * n, k)))
        sig = sigma0 / (1.0 + 0.1 * np.arange(k))
        return (q * sig).reshape(n, 3, k)

    dirs = rng.standard_normal((68, 3))
    dirs[:, 2] = np.abs(dirs[:, 2]) + 0.5
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    unit = np.asarray(sphere.vertices)
    landmarks = np.argmax(dirs @ unit.T, axis=1)
    t = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
    return FaceModel(
        mean_shape=t(verts),
        shape_basis=t(basis(80, 3.0)),
        expression_basis=t(basis(64, 2.0)),
        mean_reflectance=t(np.tile([0.7, 0.5, 0.4], (n, 1)) + 0.05 * rng.standard_normal((n, 3))),
        reflectance_basis=t(basis(80, 0.05)),
        triangles=torch.as_tensor(faces),
        landmark_indices=torch.as_tensor(landmarks, dtype=torch.int64),
        name="tiny",
    )


#: Overrides of :func:`tiny_train_config`: a training run of a few seconds on the CPU.
TINY_TRAIN_OVERRIDES = (
    "camera.image_size=64", "encoder.name=resnet18", "optim.optimizer=adamw", "optim.lr=0.001",
    "optim.batch_size=2", "optim.iterations=4", "data.train_size=16", "data.val_size=4",
    "data.backgrounds={photo: 0.0}", "log_every=1", "val_every=2", "sample_every=4", "checkpoint_every=2",
    "progress=false", "num_val_images=2",
)


def tiny_train_config(out_dir: Path, model_path: Path, *overrides: str, **direct):
    """A train config on the CPU for the face model at ``model_path`` (later ``overrides`` win)."""
    from mofa_bench.config import load_config

    base = [f"model.source={model_path}", *TINY_TRAIN_OVERRIDES]
    return load_config(None, base + list(overrides), device="cpu", out_dir=str(out_dir), **direct)


def synthetic_test_setting(out_dir: Path, model_path: Path, size: int):
    """``(config, decoder, batch)``: the first ``size`` test faces of a 64 px default-model config.

    The default model at subdivision 0 with a float32 per_vertex decoder on the CPU, as the
    protocol's diagnostics see it (:func:`mofa_bench.scoring.protocol.synthetic_test_batch`).
    """
    from mofa_bench.data.splits import synthetic_split
    from mofa_bench.decoder import MoFADecoder

    config = tiny_train_config(out_dir, model_path, "camera.image_size=64", "model.source=default",
                               "model.subdivisions=0")
    decoder = MoFADecoder(config.model.load().to(dtype=torch.float32), config.camera.build(), renderer="per_vertex")
    batch = synthetic_split(decoder, config.data, "test", size).batch(torch.arange(size))
    return config, decoder, batch


def save_render_png(decoder, codes: torch.Tensor, path: Path) -> Path:
    """Render the first of ``codes`` ``(B, 257)`` with ``decoder`` over mid-grey and save it as a PNG."""
    from PIL import Image

    size = decoder.camera.image_size
    with torch.no_grad():
        image, _ = decoder.render(codes[:1], background=torch.full((3, size, size), 0.5))
    Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
    return path
