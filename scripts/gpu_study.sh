#!/usr/bin/env bash
# The study at full length on a GPU (`make gpu-study`), in calls of bounded length that resume:
#   1. suite gpu_study (mofa_bench/configs/suites/gpu_study.yaml): MoFA through per_vertex,
#      nvdiffrast and PyTorch3D soft, with and without landmarks, on the learning protocol
#      (the converge config), training faces drawn on the GPU (data.generator: counter);
#   2. suite gpu_fig10 (suites/gpu_fig10.yaml): the paper's Fig. 10 set-up (AlexNet, 240 px,
#      level-3 model, 1M samples) for the same renderers, started once gpu_study is complete.
# Each suite writes OUT/<suite>/ (mofa-bench suite: runs/, results.csv, results.parquet); once
# all of its runs are ok its report goes to OUT/<suite>_report/ (mofa-bench report) and
# OUT/<suite>.done marks it finished, so later calls skip it.
#
# A call stops within LIMIT_S seconds: the suite gets what is left of them less REPORT_S (kept
# for the report) and is then interrupted (SIGINT, then SIGKILL 30 s later). Its runs
# checkpoint as they train, so the next call — the same command on the same OUT — skips the
# finished runs and continues the others from their last checkpoints. A cut-off call exits
# 0 saying so; a call whose suite has failed runs exits 1 naming them (they are retried, from
# their checkpoints, on the next call); the call that completes the last suite exits 0.
#
# Usage: scripts/gpu_study.sh [OUT]   (default: out/gpu_study)
# Environment: PYTHON (default: .venv/bin/python, else python3); LIMIT_S (default 540, inside
# a 10-minute slot); REPORT_S (default 90); MIN_SUITE_S (default 30: no suite starts with less
# time than this); DEVICE (default cuda); SUITES (default "gpu_study gpu_fig10": packaged suite
# names or suite files, run in this order). For a check on a CPU:
#   DEVICE=cpu SUITES=smoke LIMIT_S=60 scripts/gpu_study.sh out/smoke_study   (cut, then resumed)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-out/gpu_study}"
LIMIT_S="${LIMIT_S:-540}"
REPORT_S="${REPORT_S:-90}"
MIN_SUITE_S="${MIN_SUITE_S:-30}"
DEVICE="${DEVICE:-cuda}"
SUITES="${SUITES:-gpu_study gpu_fig10}"
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONUNBUFFERED=1
# nvdiffrast's plugin (compiled on first use): for this GPU only, with every core.
if [ "$DEVICE" != cpu ] && [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
    TORCH_CUDA_ARCH_LIST=$("$PYTHON" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())' 2>/dev/null)
    export TORCH_CUDA_ARCH_LIST
fi
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
MOFA=("$PYTHON" -m mofa_bench.cli)
mkdir -p "$OUT"

left() { echo $((LIMIT_S - SECONDS)); }

for suite in $SUITES; do
    name=$(basename "$suite" .yaml)
    folder="$OUT/$name"
    report="$OUT/${name}_report"
    if [ -f "$OUT/$name.done" ]; then
        echo "== $name: complete (report: $report)"
        continue
    fi
    budget=$(( $(left) - REPORT_S ))
    if [ "$budget" -lt "$MIN_SUITE_S" ]; then
        echo "== $name: not started, $(left) s of this call left; run the same command again to go on"
        exit 0
    fi
    echo "== $name: suite into $folder for at most $budget s (device $DEVICE)"
    timeout -s INT --kill-after=30 "$budget" "${MOFA[@]}" suite "$suite" --out "$folder" --device "$DEVICE" \
        --no-progress
    rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        echo "== $name: cut off after $budget s; finished runs are kept and the others resume from their"
        echo "   checkpoints: run the same command again to go on"
        exit 0
    fi
    if [ $rc -ne 0 ]; then
        echo "== $name: the suite exited with status $rc (failed runs are listed above and in $folder/results.csv;"
        echo "   a failed run is retried from its last checkpoint when the same command runs again)"
        exit 1
    fi
    echo "== $name: every run is ok; report into $report"
    timeout -s INT --kill-after=30 "$(( $(left) > 30 ? $(left) : 30 ))" "${MOFA[@]}" report "$folder" --out "$report"
    rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        echo "== $name: the report was cut off; run the same command again to make it"
        exit 0
    elif [ $rc -ne 0 ]; then
        echo "== $name: the report failed (status $rc)"
        exit 1
    fi
    date -u +%Y-%m-%dT%H:%M:%SZ >"$OUT/$name.done"
done
echo "== every suite is complete: ${SUITES// /, } (reports in $OUT/*_report)"
exit 0
