"""Before/after cost of the CPU learning protocol's training step, two source trees measured side by side.

Each renderer set-up (per_vertex, PyTorch3D hard, PyTorch3D soft with the suites' 0.5 px /
16 faces) gets one worker process per tree (``PYTHONPATH`` = that tree) that builds the
``converge`` trainer (batch 64, 64 px, level-1 model, ResNet-18, bfloat16 autocast) and times
one training step per request; the driver alternates the two trees' steps (A B, B A, ...)
so that both see the same machine load, and writes the median wall and process-CPU seconds
per step of each tree and their ratios as CSV rows.

    git worktree add /tmp/before <commit>
    python tests/benchmarks/bm_training_step_ab.py --before /tmp/before --after . \\
        --out reports/bench/pytorch3d_cpu_path.csv --rounds 3

Run it from outside both trees' folders' import paths (it sets PYTHONPATH per worker).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SET_UPS = {
    "per_vertex": ["renderer.name=per_vertex"],
    "pytorch3d": ["renderer.name=pytorch3d"],
    "pytorch3d_soft": ["renderer.name=pytorch3d", "renderer.options={blur_radius: 0.5, faces_per_pixel: 16}"],
}


def worker(set_up: str) -> None:
    """Build the trainer, print ``ready``, then time one step per line read: ``wall cpu`` seconds."""
    import tempfile

    import torch

    from evaluation.bench.training_throughput import setup_trainer
    from mofa_bench.config import load_config

    torch.set_num_threads(2)
    config = load_config("converge", ["data.train_size=64", "data.preload=false", "progress=false", *SET_UPS[set_up]],
                         device="cpu")
    with tempfile.TemporaryDirectory() as run_dir:
        _, step_for = setup_trainer(config, run_dir)
        step = step_for(64)
        step()  # warm-up
        print("ready", flush=True)
        for _ in sys.stdin:
            wall, cpu = time.perf_counter(), time.process_time()
            step()
            print(time.perf_counter() - wall, time.process_time() - cpu, flush=True)


def _commit(tree: Path) -> str:
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return done.stdout.strip() + ("+dirty" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="source tree of the old code")
    parser.add_argument("--after", type=Path, required=True, help="source tree of the new code")
    parser.add_argument("--rounds", type=int, default=3, help="timed steps per tree and set-up")
    parser.add_argument("--set-ups", default=",".join(SET_UPS), help="of " + ", ".join(SET_UPS))
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    import torch

    from mofa_bench.environment import device_description, package_versions

    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    rows = []
    for set_up in args.set_ups.split(","):
        procs = {name: subprocess.Popen([sys.executable, __file__, "--worker", set_up, "--before", ".", "--after", ".",
                                         "--out", "-"], cwd="/", env={**os.environ, "PYTHONPATH": str(tree)},
                                        text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                 for name, tree in trees.items()}
        for name, proc in procs.items():
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit(f"{name} worker for {set_up} failed to start")
        wall: dict[str, list[float]] = {name: [] for name in trees}
        cpu: dict[str, list[float]] = {name: [] for name in trees}
        for r in range(args.rounds):
            for name in (("before", "after") if r % 2 == 0 else ("after", "before")):
                procs[name].stdin.write("step\n")
                procs[name].stdin.flush()
                w, c = map(float, procs[name].stdout.readline().split())
                wall[name].append(w)
                cpu[name].append(c)
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()
        b, a = statistics.median(wall["before"]), statistics.median(wall["after"])
        bc, ac = statistics.median(cpu["before"]), statistics.median(cpu["after"])
        rows.append({"renderer": set_up, "batch": 64, "image_size": 64, "level": 1, "encoder": "resnet18",
                     "mode": "amp+nhwc", "rounds": args.rounds, "before_commit": _commit(trees["before"]),
                     "after_commit": _commit(trees["after"]), "before_step_s": f"{b:.3f}", "after_step_s": f"{a:.3f}",
                     "speedup": f"{b / a:.2f}", "before_cpu_s": f"{bc:.3f}", "after_cpu_s": f"{ac:.3f}",
                     "cpu_speedup": f"{bc / ac:.2f}", "load_avg_1min": f"{os.getloadavg()[0]:.1f}",
                     "device": device_description("cpu"), "threads": 2, "torch": torch.__version__,
                     "pytorch3d": package_versions().get("easypytorch3d", "-")})
        print(rows[-1], flush=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
