#!/usr/bin/env bash
# The checks that need an NVIDIA GPU, in one bounded run (`make gpu-checks`):
#   1. `mofa-bench info`: each renderer backend's state on this machine;
#   2. nvdiffrast's CUDA plugin, compiled once (timed; later runs load it from torch's
#      extension cache);
#   3. the test suite on CPU and CUDA (`pytest --device all`): PyTorch3D CPU vs CUDA,
#      PyTorch3D vs nvdiffrast, per_vertex vs both, gradients, fits;
#   4. `mofa-bench bench renderers --device cuda` (full grid, bounded by RENDER_LIMIT_S);
#   5. `mofa-bench bench profile` of each backend at batch 64, 240 px, level 3 (where the
#      renderer benchmark's target cell spends its time), and `mofa-bench bench
#      pytorch3d-bins` on that cell (PyTorch3D's bin size × bin capacity);
#   6. `mofa-bench bench train --device cuda` (renderers × AlexNet/ResNet-18 × fp32/AMP,
#      batches 5 (the paper's)/16/64, 240 px, level 3; bounded by TRAIN_LIMIT_S), then
#      torch.compile rows — the encoder alone, and the encoder plus the decoder's loss
#      path — for per_vertex and nvdiffrast with AlexNet (appended, bounded by COMPILE_LIMIT_S);
#   7. (capture) the captured-step tests (tests/mofa_bench/test_capture.py: CUDA graphs of the
#      loss against the eager step) and `bench train` rows of modes fp32, capture and
#      amp+capture+nhwc for per_vertex and nvdiffrast with AlexNet at batches 5 and 64, once
#      with the batch made before timing and once with --data-in-step (appended, bounded by
#      CAPTURE_LIMIT_S);
#   8. (ddp) with two or more GPUs: `torchrun --nproc_per_node <GPUs> -m mofa_bench.cli train`
#      (nccl, per_vertex, AlexNet, 64 samples per GPU, 40 steps; samples/s from its metrics.csv);
#      with one GPU: the two-process gloo tests (tests/mofa_bench/test_distributed.py, slow ones
#      included), since NCCL needs a GPU per rank.
# Each step's log goes to RESULTS_DIR; the benchmark CSV/Markdown/plots go to BENCH_OUT.
# A failing step is reported and the next one still runs; the exit status is the number
# of failed steps.
#
# Usage: scripts/gpu_checks.sh [RESULTS_DIR]   (default: out/gpu)
# Environment: PYTHON (default: .venv/bin/python, else python3), BENCH_OUT
# (default: reports/bench), RENDER_LIMIT_S, TRAIN_LIMIT_S, COMPILE_LIMIT_S, TEST_LIMIT_S,
# PYTEST_WORKERS (pytest-xdist workers when it is installed; default 8), TEST_PATHS
# (default: tests), GPU_STEPS (the steps to run, of info build tests renderers profile
# train compile, and capture ddp, which run only when named; default: the first seven).
# CAPTURE_LIMIT_S (default 150). The defaults take about 12 minutes on an H200; to fit 10,
# e.g. RENDER_LIMIT_S=100 TRAIN_LIMIT_S=80 COMPILE_LIMIT_S=60 (the renderer grid measures
# the target's cells first), or split the steps over two runs with GPU_STEPS. On a copy of
# the tree whose git metadata is missing or stale, set MOFA_BENCH_COMMIT to the commit
# that runs, so that benchmark rows name it.
set -uo pipefail
cd "$(dirname "$0")/.."
RESULTS="${1:-out/gpu}"
BENCH_OUT="${BENCH_OUT:-reports/bench}"
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
mkdir -p "$RESULTS" "$BENCH_OUT"
export PYTHONUNBUFFERED=1
# nvdiffrast's plugin: build for this GPU only, with every core.
if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
    TORCH_CUDA_ARCH_LIST=$("$PYTHON" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())' 2>/dev/null)
    export TORCH_CUDA_ARCH_LIST
fi
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
MOFA=("$PYTHON" -m mofa_bench.cli)
failed=0
STEPS=" ${GPU_STEPS:-info build tests renderers profile train compile} "
GPUS=$(nvidia-smi --list-gpus 2>/dev/null | wc -l)

step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, log to RESULTS/NAME.log
    local name=$1 limit=$2
    shift 2
    local group=${name%%_*}
    case $name in nvdiffrast_build) group=build ;; bench_*) group=${name#bench_}; group=${group%%_*} ;; esac
    case $STEPS in *" $group "*) ;; *) return 0 ;; esac
    local start=$SECONDS
    echo "== $name (limit ${limit} s)"
    timeout --kill-after=10 "$limit" "$@" >"$RESULTS/$name.log" 2>&1
    local rc=$?
    echo "   rc=$rc in $((SECONDS - start)) s  (log: $RESULTS/$name.log)"
    tail -n 25 "$RESULTS/$name.log" | sed 's/^/   | /'
    [ $rc -eq 0 ] || failed=$((failed + 1))
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | sed 's/^/gpu: /'
step info 60 "${MOFA[@]}" info
step nvdiffrast_build 300 "$PYTHON" -c '
import time, torch
from renderers.nvdiffrast_backend import _context
t = time.perf_counter()
_context(torch.device("cuda"))
print(f"nvdiffrast plugin compiled (or loaded from the cache) in {time.perf_counter() - t:.1f} s")
'
xdist=()
if "$PYTHON" -c "import xdist" 2>/dev/null; then xdist=(-n "${PYTEST_WORKERS:-8}"); fi
# shellcheck disable=SC2086
step tests "${TEST_LIMIT_S:-240}" "$PYTHON" -m pytest -q --device all -m "not slow" "${xdist[@]}" -p no:cacheprovider \
    ${TEST_PATHS:-tests}
step bench_renderers "$((${RENDER_LIMIT_S:-150} + 60))" "${MOFA[@]}" bench renderers --device cuda --no-progress \
    --backends per_vertex,pytorch3d,pytorch3d-soft,nvdiffrast --budget-s 10 \
    --time-limit-s "${RENDER_LIMIT_S:-150}" --out "$BENCH_OUT"
for backend in per_vertex pytorch3d nvdiffrast; do
    step "profile_$backend" 120 "${MOFA[@]}" bench profile --device cuda --backend "$backend" --out "$BENCH_OUT"
done
step profile_pytorch3d_bins 120 "${MOFA[@]}" bench pytorch3d-bins --device cuda --out "$BENCH_OUT"
step bench_train "$((${TRAIN_LIMIT_S:-120} + 60))" "${MOFA[@]}" bench train --device cuda --no-progress \
    --renderers per_vertex,pytorch3d,pytorch3d-soft,nvdiffrast --encoders alexnet,resnet18 --modes fp32,amp \
    --batches 5,16,64 --image-sizes 240 --levels 3 --warmup 3 --repeats 10 --budget-s 10 \
    --time-limit-s "${TRAIN_LIMIT_S:-120}" --out "$BENCH_OUT"
step bench_compile "$((${COMPILE_LIMIT_S:-120} + 60))" "${MOFA[@]}" bench train --device cuda --no-progress \
    --renderers per_vertex,nvdiffrast --encoders alexnet --modes compile,compile-all,amp+compile-all \
    --batches 5,16,64 --image-sizes 240 --levels 3 --warmup 3 --repeats 10 --budget-s 60 \
    --time-limit-s "${COMPILE_LIMIT_S:-120}" --out "$BENCH_OUT" --append
step capture_tests 300 "$PYTHON" -m pytest -q -p no:cacheprovider tests/mofa_bench/test_capture.py
for in_step in "" "--data-in-step"; do
    # shellcheck disable=SC2086
    step "bench_capture${in_step:+_data}" "$((${CAPTURE_LIMIT_S:-150} + 60))" "${MOFA[@]}" bench train --device cuda \
        --no-progress --renderers per_vertex,nvdiffrast --encoders alexnet --modes fp32,capture,amp+capture+nhwc \
        --batches 5,64 --image-sizes 240 --levels 3 --warmup 5 --repeats 10 --budget-s 60 $in_step \
        --time-limit-s "${CAPTURE_LIMIT_S:-150}" --out "$BENCH_OUT" --append
done
if [ "$GPUS" -ge 2 ]; then
    step ddp_train 400 "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node "$GPUS" -m mofa_bench.cli \
        train --device cuda --encoder alexnet --renderer per_vertex --iterations 40 --out "$RESULTS/runs" \
        --name "ddp_$GPUS" --set optim.batch_size=$((64 * GPUS)) --set model.subdivisions=3 --set log_every=10 \
        --set val_every=40 --set sample_every=40 --set checkpoint_every=40 --set progress=false
    [[ $STEPS == *" ddp "* && -f "$RESULTS/runs/ddp_$GPUS/metrics.csv" ]] && sed 's/^/   | /' "$RESULTS/runs/ddp_$GPUS/metrics.csv"
else
    step ddp_gloo_tests 400 "$PYTHON" -m pytest -q -p no:cacheprovider -m "slow or not slow" \
        tests/mofa_bench/test_distributed.py
fi
echo "failed steps: $failed"
exit "$failed"
