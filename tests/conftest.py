"""pytest configuration: device/dtype fixtures, CUDA gating, shared models.

The face-model fixtures import ``mofa_bench`` when first used, so tests that do not use
them (the renderer tests) run without it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", action="store", default="cpu", help="cpu, cuda or all")
    parser.addoption("--dtype", action="store", default="float32", help="float32, float64 or all")


def _devices(config: pytest.Config) -> list[str]:
    opt = config.getoption("--device")
    return ["cpu", "cuda"] if opt == "all" else [opt]


def _dtypes(config: pytest.Config) -> list[str]:
    opt = config.getoption("--dtype")
    return ["float32", "float64"] if opt == "all" else [opt]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", _devices(metafunc.config), indirect=True)
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", _dtypes(metafunc.config), indirect=True)


@pytest.fixture
def device(request: pytest.FixtureRequest) -> torch.device:
    name = request.param
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("CUDA is not available on this machine")
    return torch.device(name)


@pytest.fixture
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return getattr(torch, request.param)


@pytest.fixture(scope="session")
def tiny_model():
    """A 162-vertex ellipsoid face model in float64 (fast gradchecks)."""
    from helpers import tiny_face_model

    return tiny_face_model(subdivisions=2)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny ellipsoid model (float32) saved as a native ``.npz`` (for configs)."""
    from helpers import tiny_face_model

    path = tmp_path_factory.mktemp("model") / "tiny.npz"
    tiny_face_model(subdivisions=2, dtype=torch.float32).save_npz(path)
    return path


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Build-cache of the default model in a per-session folder (never the user's)."""
    import os

    if "MOFA_BENCH_CACHE" not in os.environ:
        os.environ["MOFA_BENCH_CACHE"] = str(tmp_path_factory.mktemp("model_cache"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none is available here")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
