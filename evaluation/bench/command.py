"""``mofa-bench bench``: ``renderers``, ``train``, ``profile``, ``pytorch3d-bins`` and ``report``.

Each ``renderers`` or ``train`` run writes ``<out>/<bench>_<device>.csv`` (overwritten, or extended with
``--append``; the source of truth) after every group of cells, then re-makes ``.md`` (a table for the README) and
``.png`` from that CSV, exactly as ``mofa-bench bench report <csv>`` does; ``pytorch3d-bins`` writes its CSV and
re-makes its ``.md`` the same way. :func:`register_cli` adds the subcommand to ``mofa-bench``'s parser.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from mofa_bench.output_paths import output_folder

DEFAULT_OUT = "reports/bench"


def _list_of(kind: Callable[[str], Any], what: str) -> Callable[[str], tuple[Any, ...]]:
    """argparse type: ``"1,8,64"`` → ``(1, 8, 64)``."""

    def parse(text: str) -> tuple[Any, ...]:
        try:
            values = tuple(kind(part.strip()) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected at least one of {what}")
        return values

    return parse


def _int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """argparse type: an integer in ``[low, high]`` (no upper bound when ``high`` is ``None``)."""
    what = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


#: Subdivision levels of the default face model.
_LEVEL = _int_in(0, 4)
_POSITIVE_INTS = _list_of(_int_in(1), "integers >= 1")
_LEVELS = _list_of(_LEVEL, "subdivision levels in [0, 4]")
_NAMES = _list_of(str, "names")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:i (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="the small CPU-sized preset (see the description)")
    p.add_argument("--batches", type=_POSITIVE_INTS, default=None, metavar="B,B,...", help="batch sizes")
    p.add_argument("--levels", type=_LEVELS, default=None, metavar="L,L,...",
                   help="default-model subdivision levels: 1≈1.8k, 2≈7.3k, 3≈29k, 4≈115k vertices")
    p.add_argument("--warmup", type=_int_in(0), default=None, help="untimed calls per cell")
    p.add_argument("--repeats", type=_int_in(1), default=None, help="timed calls per cell (the median is reported)")
    p.add_argument("--budget-s", type=float, default=None,
                   help="skip cells whose estimated wall time exceeds this many seconds (default: 20)")
    p.add_argument("--seed", type=int, default=None, help="seed of codes and images (default: 0)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op CPU threads for the run (default: torch's choice; recorded per row)")
    p.add_argument("--time-limit-s", type=float, default=None,
                   help="wall-clock limit of the whole run; groups of cells starting later are recorded as "
                        "skipped (default: none)")
    p.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--append", action="store_true",
                   help="add this run's rows to the existing <out>/<bench>_<device>.csv instead of replacing it")


def _add_cell(p: argparse.ArgumentParser, device: str, device_help: str) -> None:
    """The one-cell options of ``profile`` and ``pytorch3d-bins`` (defaults: the target cell)."""
    p.add_argument("--batch", type=_int_in(1), default=64, help="batch size (default: %(default)s)")
    p.add_argument("--resolution", type=_int_in(8, 4096), default=240, help="image side, px (default: %(default)s)")
    p.add_argument("--level", type=_LEVEL, default=3, help="default-model subdivision level (default: %(default)s)")
    p.add_argument("--device", default=device, help=f"{device_help} (default: %(default)s)")


def _set_threads(threads: int | None) -> None:
    """Apply ``--threads`` (torch.set_num_threads)."""
    import torch

    from evaluation.bench.measure import BenchSpecError

    if threads is None:
        return
    if threads < 1:
        raise BenchSpecError(f"--threads: expected ≥ 1, got {threads}")
    torch.set_num_threads(threads)


def _write_outputs(rows: list[dict[str, Any]], columns: tuple[str, ...], csv_path: Path) -> Path:
    from evaluation.bench.reports import write_bench_report
    from evaluation.results.rows import write_csv

    write_csv(rows, csv_path, columns)
    md, png = write_bench_report(csv_path)
    print(md.read_text())
    counts = Counter(row["status"] for row in rows)
    print("cells: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    for path in (csv_path, md, png):
        print(f"wrote {path}")
    return csv_path


def _run(bench: str, spec: Any, run: Callable[..., list[dict[str, Any]]], columns: tuple[str, ...],
         args: argparse.Namespace) -> int:
    """Run a validated benchmark spec and write ``<out>/<bench>_<device>.{csv,md,png}``
    (the CSV after every group of cells, then the table and plot)."""
    import torch

    from evaluation.results.rows import earlier_rows, partial_writer

    _set_threads(args.threads)
    csv_path = output_folder(args.out, "--out") / f"{bench}_{torch.device(spec.device).type}.csv"
    earlier = earlier_rows(csv_path, args.append)
    print(f"bench {bench} on {spec.device}: {spec.num_cells} cells, budget {spec.budget_s:g} s per cell")
    rows = run(spec, progress=not args.no_progress, on_rows=partial_writer(csv_path, columns, earlier))
    _write_outputs(earlier + rows, columns, csv_path)
    return 0


def _cmd_renderers(args: argparse.Namespace) -> int:
    from evaluation.bench.renderers import RENDERER_COLUMNS, ReferenceSpec, RendererBenchSpec, run_renderer_bench

    reference = None if args.no_reference else ReferenceSpec(batch=args.reference_batch,
                                                             resolution=args.reference_size)
    spec = RendererBenchSpec.preset(
        args.device, args.quick, backends=args.backends, batches=args.batches, resolutions=args.resolutions,
        levels=args.levels, warmup=args.warmup, repeats=args.repeats, budget_s=args.budget_s, seed=args.seed,
        time_render=args.render or None, time_limit_s=args.time_limit_s,
    )
    spec = dataclasses.replace(spec, reference=reference).validate()
    return _run("renderers", spec, run_renderer_bench, RENDERER_COLUMNS, args)


def _cmd_train(args: argparse.Namespace) -> int:
    from evaluation.bench.training_throughput import TRAIN_COLUMNS, TrainBenchSpec, run_train_bench

    spec = TrainBenchSpec.preset(
        args.device, args.quick, renderers=args.renderers, encoders=args.encoders, batches=args.batches,
        image_sizes=args.image_sizes, levels=args.levels, warmup=args.warmup, repeats=args.repeats,
        budget_s=args.budget_s, seed=args.seed, config=args.config, overrides=tuple(args.set) or None,
        modes=args.modes, time_limit_s=args.time_limit_s, data_in_step=args.data_in_step or None,
    )
    return _run("train", spec, run_train_bench, TRAIN_COLUMNS, args)


def _cmd_profile(args: argparse.Namespace) -> int:
    from evaluation.bench.profile import ProfileSpec, profile_cell
    from evaluation.bench.renderers import check_backends

    check_backends([args.backend])
    spec = ProfileSpec(backend=args.backend, batch=args.batch, resolution=args.resolution, level=args.level,
                       device=args.device, steps=args.steps, rows=args.rows)
    path, text = profile_cell(spec, output_folder(args.out, "--out"))
    print(text)
    print(f"wrote {path}")
    return 0


def _cmd_bins(args: argparse.Namespace) -> int:
    from evaluation.bench.bins import BinSweepSpec, run_bin_sweep
    from evaluation.bench.renderers import check_backends

    check_backends([args.backend])
    spec = BinSweepSpec(backend=args.backend, batch=args.batch, resolution=args.resolution, level=args.level,
                        device=args.device, bin_sizes=args.bin_sizes, max_faces=args.max_faces,
                        repeats=args.repeats)
    _, csv_path, md_path = run_bin_sweep(spec, output_folder(args.out, "--out"))
    print(md_path.read_text())
    print(f"wrote {csv_path}\nwrote {md_path}")
    return 0


def _bin_setting(text: str) -> int | str | None:
    """``"default"`` → None (PyTorch3D's choice), ``"auto"`` as is, else an int."""
    text = text.strip()
    return None if text == "default" else text if text == "auto" else int(text)


def _cmd_report(args: argparse.Namespace) -> int:
    from evaluation.bench.reports import write_bench_report

    md, png = write_bench_report(args.csv, output_folder(args.out, "--out") if args.out is not None else None)
    print(md.read_text())
    for path in (md, png):
        if path is not None:
            print(f"wrote {path}")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``bench`` with its subcommands (see the module docstring)."""
    from evaluation.bench.renderers import BACKEND_VARIANTS, DEFAULT_BACKENDS

    bench = sub.add_parser("bench", help="benchmarks: renderer timings, training throughput (CSV, table, plot)",
                           description="Benchmarks with CSV rows tagged by device, versions and commit.")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="<benchmark>")

    def show_help(args: argparse.Namespace) -> int:
        bench.print_help()
        return 2

    bench.set_defaults(func=show_help)

    p = bench_sub.add_parser(
        "renderers", help="forward / forward+backward time, images/s and peak memory per renderer backend",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Time the loss path of each renderer backend: image formation of random prior codes, the backend's\n"
            "photometric samples against a random image and the photometric loss (fwd), plus backward to the\n"
            "code (fwd+bwd), over batch × resolution × model level. Also times one encoder-only AlexNet training\n"
            "step (forward, backward, AdaDelta step) and reports each cell's fwd+bwd as a ratio of it at the\n"
            "reference batch and resolution; the target is ≤ 0.10 at batch 64, 240 px, level 3 on a GPU.\n\n"
            "Full grid (default): batches 1,8,64,256; 128,240,512 px; levels 1-4.\n"
            "--quick: batches 1,8,64; 128,240 px; levels 1-3; 1 warm-up, 3 repeats.\n"
            "Cells whose estimate (batch-1 probe, extrapolated linearly) exceeds --budget-s are skipped.\n"
            "peak_mem_mb: CUDA max_memory_allocated in the cell; CPU: process peak RSS (VmHWM) in the cell."
        ),
    )
    _add_common(p)
    p.add_argument("--backends", type=_NAMES, default=None, metavar="NAME,...",
                   help=f"of {', '.join(BACKEND_VARIANTS)} (default: {','.join(DEFAULT_BACKENDS)}); "
                        "pytorch3d-soft = pytorch3d with blur_radius 2, faces_per_pixel 4, sigma 0.5")
    p.add_argument("--resolutions", type=_POSITIVE_INTS, default=None, metavar="PX,...", help="image sides, px")
    p.add_argument("--render", action="store_true", help="also time render() (render_ms)")
    p.add_argument("--no-reference", action="store_true", help="skip the AlexNet reference step")
    p.add_argument("--reference-batch", type=int, default=64, help="batch of the reference step (default: 64)")
    p.add_argument("--reference-size", type=int, default=240, help="image side of the reference step (default: 240)")
    p.set_defaults(func=_cmd_renderers)

    p = bench_sub.add_parser(
        "train", help="training samples/s and peak memory per renderer × encoder × batch",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Time Trainer.train_step (encoder, image formation, renderer, loss, backward, optimiser step) on\n"
            "synthetic batches, per renderer × encoder × batch × image size × level.\n\n"
            "Full grid (default): per_vertex, pytorch3d, pytorch3d-soft, nvdiffrast × alexnet, vgg16, resnet18,\n"
            "resnet50; batches 5,16,64; 240 px; level 3.\n"
            "--quick: per_vertex, pytorch3d-soft × resnet18, alexnet; batches 5,16; 128 px; level 2."
        ),
    )
    _add_common(p)
    p.add_argument("--renderers", type=_NAMES, default=None, metavar="NAME,...",
                   help=f"of {', '.join(BACKEND_VARIANTS)}")
    p.add_argument("--encoders", type=_NAMES, default=None, metavar="NAME,...",
                   help="of alexnet, vgg16, resnet18, resnet50")
    p.add_argument("--image-sizes", type=_POSITIVE_INTS, default=None, metavar="PX,...", help="image sides, px")
    p.add_argument("--modes", type=_NAMES, default=None, metavar="MODE,...",
                   help="speed modes, of fp32, amp (bfloat16 autocast of the encoder), amp+nhwc (with "
                        "channels-last encoder weights and images), compile (torch.compile of the encoder), "
                        "amp+compile, compile-all (encoder and the decoder's loss path), amp+compile-all, capture "
                        "(CUDA graphs of the whole loss computation), amp+capture+nhwc; fp32, amp and amp+nhwc "
                        "run on any device, the others on CUDA only (default: fp32)")
    p.add_argument("--config", default=None, help="base YAML training config (default: built-in defaults)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. --set optim.optimizer=adamw (repeatable; the grid's keys win)")
    p.add_argument("--data-in-step", action="store_true",
                   help="make each step's synthetic batch inside the timed step, as training does (draw codes "
                        "and backgrounds, render); default: one batch rendered before timing (column data_in_step)")
    p.set_defaults(func=_cmd_train)

    p = bench_sub.add_parser(
        "profile", help="torch.profiler breakdown of one renderer cell's forward+backward",
        description="Profile the loss path of one bench-renderers cell (formation, photometric samples, loss, "
                    "backward) and write the per-stage and per-operator tables to "
                    "<out>/profile_<backend>_<device>.txt.",
    )
    p.add_argument("--backend", default="per_vertex", help=f"of {', '.join(BACKEND_VARIANTS)} (default: %(default)s)")
    _add_cell(p, "auto", "auto, cpu, cuda or cuda:i")
    p.add_argument("--steps", type=_int_in(1), default=5, help="profiled steps (default: %(default)s)")
    p.add_argument("--rows", type=_int_in(1), default=25, help="operators listed (default: %(default)s)")
    p.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    p.set_defaults(func=_cmd_profile)

    p = bench_sub.add_parser(
        "pytorch3d-bins", help="PyTorch3D's bin_size / max_faces_per_bin on one cell (CUDA)",
        description="Time one bench-renderers cell's forward+backward with PyTorch3D for each bin_size × "
                    "max_faces_per_bin pair, and check its pixels against a reference that cannot overflow "
                    "(PyTorch3D's bin size, 'auto' capacity): a bin that overflows drops triangles, and such "
                    "settings are reported, not timed. Writes <out>/pytorch3d_bins_<device>.csv and .md.",
    )
    bins_list = _list_of(_bin_setting, "integers, 'default' or 'auto'")
    p.add_argument("--backend", default="pytorch3d", choices=("pytorch3d", "pytorch3d-soft"),
                   help="(default: %(default)s)")
    _add_cell(p, "cuda", "cuda or cuda:i")
    p.add_argument("--bin-sizes", type=bins_list, default=(None, 32, 64), metavar="PX,...",
                   help="bin sides, px, or 'default' (PyTorch3D's heuristic; default: default,32,64)")
    p.add_argument("--max-faces", type=bins_list, default=(None, "auto", 4000), metavar="N,...",
                   help="bin capacities, 'default' (max(10000, F/5)) or 'auto' (sized from the triangles; "
                        "default: default,auto,4000)")
    p.add_argument("--repeats", type=_int_in(1), default=5, help="timed calls per setting (default: %(default)s)")
    p.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    p.set_defaults(func=_cmd_bins)

    p = bench_sub.add_parser("report", help="re-make the Markdown table (and plot) from a benchmark CSV",
                             description="Re-make <stem>.md (and <stem>.png for renderers and train) from a "
                                         "benchmark CSV alone.")
    p.add_argument("csv", help="a renderers_<device>.csv, train_<device>.csv or pytorch3d_bins_<device>.csv")
    p.add_argument("--out", default=None, help="output folder (default: next to the CSV)")
    p.set_defaults(func=_cmd_report)
