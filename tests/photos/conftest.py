"""Shared photos and renders for the photo-pipeline tests (all made offline: scikit-image data, the default model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def _mediapipe_or_skip() -> None:
    from mofa_bench.photos.detection import mediapipe_availability

    state = mediapipe_availability()
    if not state.available:
        pytest.skip(f"MediaPipe unavailable: {state.reason} (fix: {state.fix})")


@pytest.fixture
def needs_mediapipe() -> None:
    """Skip the test, with the reason and the install line, where MediaPipe cannot run."""
    _mediapipe_or_skip()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut: (512, 512, 3) uint8, one frontal face."""
    skimage_data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(skimage_data.astronaut())


@pytest.fixture(scope="session")
def lfw_faces() -> np.ndarray:
    """The 100 face images of scikit-image's ``lfw_subset`` (25 × 25 grey), as (100, 200, 200, 3) uint8."""
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    try:
        faces = skimage_data.lfw_subset()[:100]
    except Exception as exc:  # the file is shipped in the wheel; a fetch would need the network
        pytest.skip(f"scikit-image's lfw_subset is not available offline: {exc}")
    out = []
    for face in faces:
        big = Image.fromarray((face * 255).round().astype(np.uint8)).resize((200, 200), Image.Resampling.BICUBIC)
        out.append(np.repeat(np.asarray(big)[..., None], 3, axis=2))
    return np.stack(out)


@pytest.fixture(scope="session")
def renders():
    """Renders of the default model (level 2, 240 px, per_vertex, grey background).

    Returns ``(rgb (B, 240, 240, 3) uint8, landmarks (B, 68, 2) px float64, codes (B, 257), decoder)``
    for the zero code and 6 posed random codes (yaw ±25°, pitch and roll ±10°, mild
    expressions).
    """
    from mofa_bench import CODE_DIM, Camera, FaceModel, MoFADecoder
    from mofa_bench.sampling import CodePrior, sample_codes

    model = FaceModel.load("default", subdivisions=2)
    decoder = MoFADecoder(model, Camera(image_size=240))
    prior = CodePrior(expression_std=0.3, yaw_deg=25.0, pitch_deg=10.0, roll_deg=10.0)
    codes = torch.cat([torch.zeros(1, CODE_DIM),
                       sample_codes(6, prior, generator=torch.Generator().manual_seed(1)).to(torch.float32)])
    with torch.no_grad():
        images, _ = decoder.render(codes, torch.full((len(codes), 3, 240, 240), 0.5))
        landmarks = decoder.form(codes).landmarks_uv.double().numpy()
    rgb = (images.permute(0, 2, 3, 1).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return rgb, landmarks, codes, decoder
