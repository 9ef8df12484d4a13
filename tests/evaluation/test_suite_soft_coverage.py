"""The shipped suites' PyTorch3D soft settings cover the face they draw.

The photometric loss of a rasterizer weights each pixel by the soft silhouette, so a
silhouette well below 1 inside the face makes covering less pay. On the default model the
triangles are about a pixel across; a wide blur with few faces per pixel fills the slots
with nearer triangles that miss the pixel. This holds the suites' settings to a silhouette
near 1 inside the face, and checks the measure tells the two apart.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from evaluation.suite.expand import expand_suite
from evaluation.suite.spec import load_suite_spec
from helpers import renderer_or_skip
from mofa_bench import Camera, MoFADecoder
from mofa_bench.face_model.default_model.build import build_default_model
from mofa_bench.sampling import CodePrior, sample_codes

#: The settings the quick study used before (2 px blur, 4 faces per pixel).
WIDE_FEW = {"blur_radius": 2.0, "faces_per_pixel": 4, "sigma": 0.5}


@pytest.fixture(scope="module")
def scene():
    """Level-1 default model at 64 px: the zero code and three prior faces, and their inner pixels."""
    model = build_default_model(subdivisions=1).to(dtype=torch.float32)
    codes = torch.cat([torch.zeros(1, 257), sample_codes(3, CodePrior(), torch.Generator().manual_seed(0))])
    hard = MoFADecoder(model, Camera(64), renderer=renderer_or_skip("pytorch3d", "cpu", {}))
    with torch.no_grad():
        _, mask = hard.render(codes)
    inside = -F.max_pool2d(-(mask > 0.5).float(), 5, 1, 2) > 0.5  # 2 px inside the silhouette
    assert int(inside.sum()) > 3000
    return model, codes, inside


def _inner_silhouette(scene, options: dict) -> torch.Tensor:
    model, codes, inside = scene
    decoder = MoFADecoder(model, Camera(64), renderer=renderer_or_skip("pytorch3d", "cpu", options))
    with torch.no_grad():
        _, alpha = decoder.render(codes)
    return alpha[inside]


@pytest.mark.parametrize("suite", ["quick", "paper"])
def test_suite_soft_settings_cover_the_face(scene, suite):
    cells = [c for c in expand_suite(load_suite_spec(suite))
             if c.config["renderer"]["name"] == "pytorch3d"]
    assert cells, f"the {suite} suite has no PyTorch3D run"
    options = cells[0].config["renderer"]["options"]
    assert options.get("blur_radius", 0) > 0, "hard rasterization has no coverage gradients"
    alpha = _inner_silhouette(scene, options)
    assert float(alpha.mean()) > 0.8 and float(alpha.quantile(0.05)) >= 0.7


def test_a_wide_blur_with_few_faces_leaves_holes(scene):
    assert float(_inner_silhouette(scene, WIDE_FEW).mean()) < 0.3
