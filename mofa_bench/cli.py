"""The ``mofa-bench`` command line.

The core commands live here; the study's commands (``suite``, ``report``, ``bench``,
``diagnose``) plug in through the command registry: the ``mofa_bench.commands`` entry-point
group, whose entries are ``register(subparsers)`` functions (the ``evaluation`` package
declares its own in ``pyproject.toml``). ``renderers ← mofa_bench ← evaluation`` import one
way, this module included.

Subcommands: ``info``, ``contact-sheet``, ``model export``, ``train``, ``reconstruct``,
``prepare``, and from the registry ``suite``, ``report``, ``bench renderers|train|profile|pytorch3d-bins|report``,
``diagnose``. Run ``mofa-bench <command>
--help`` for each one's options.

Errors: every failure ends in one line on stderr, ``mofa-bench <command>: error: <cause>``,
and exit status 1 — a user mistake (config, file, checkpoint, renderer, path) as its
message, anything else with its exception type and a hint. ``--debug`` (anywhere on the
command line) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from mofa_bench.arguments import positive_int, positive_number
from mofa_bench.errors import MofaBenchError
from mofa_checks import InputError
from renderers.errors import RendererError

_EPILOG = """examples:
  mofa-bench info
  mofa-bench contact-sheet --out out/contact_sheet.png
  mofa-bench model export --out out/model
  mofa-bench train --config quick --renderer per_vertex
  mofa-bench train --config my_config.yaml
  mofa-bench reconstruct photo.jpg --checkpoint runs/synthetic_resnet18
  mofa-bench reconstruct photo.jpg --method fit
  mofa-bench suite quick --out runs/quick
  mofa-bench report runs/quick
  mofa-bench bench renderers --device cpu --quick --backends per_vertex
  mofa-bench bench train --device cuda --encoders alexnet --batches 5,64
  mofa-bench bench report reports/bench/renderers_cpu.csv
"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit status 2), like every other error.

    Subcommand parsers made with ``add_parser`` are of the same class.
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


#: argparse type of ``--timeout``.
positive_seconds = positive_number("seconds")


def _cmd_info(args: argparse.Namespace) -> int:
    import torch

    from mofa_bench.environment import git_commit, package_versions
    from renderers import available_renderers

    print("mofa-bench", __import__("mofa_bench").__version__, f"(commit {git_commit()})")
    print("\nversions:")
    for name, version in package_versions().items():
        print(f"  {name:<18} {version}")
    print("\ndevices:")
    print(f"  cpu                {torch.get_num_threads()} threads")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            print(f"  cuda:{i}             {torch.cuda.get_device_name(i)}")
    else:
        print("  cuda               not available")
    print("\nrenderers:")
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        for name, state in available_renderers(device).items():
            print(f"  {name:<12} {device:<5} {state}")
    from mofa_bench.photos import available_detectors, available_landmarkers

    print("\nphotos (prepare, reconstruct):")
    for kind, states in (("detector", available_detectors()), ("landmarker", available_landmarkers())):
        for name, state in states.items():
            print(f"  {name:<12} {kind:<10} {state}")
    print("\nface model:")
    try:
        from mofa_bench.face_model.mediapipe_mesh import canonical_mesh_path

        print(f"  default            MediaPipe canonical mesh at {canonical_mesh_path()}")
    except MofaBenchError as err:
        print(f"  default            unavailable: {err}")
    return 0


def _load_model(args: argparse.Namespace):
    from mofa_bench.face_model.model import FaceModel

    if args.model == "default":
        return FaceModel.load("default", subdivisions=args.subdivisions)
    return FaceModel.load(args.model)


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default",
                   help="'default' (built-in) or a path to .npz / BFM2009 .mat / BFM2017 .h5 (default: %(default)s)")
    p.add_argument("--subdivisions", type=int, default=3,
                   help="subdivision level of the default model: 0=468, 1≈1.8k, 2≈7.3k, 3≈29k, 4≈115k vertices "
                        "(default: %(default)s)")


def _cmd_contact_sheet(args: argparse.Namespace) -> int:
    from mofa_bench.contact_sheet import render_contact_sheet
    from mofa_bench.environment import resolve_device
    from mofa_bench.output_paths import image_output_file, output_folder

    resolve_device(args.device)
    out = image_output_file(args.out, "--out")
    if args.mesh:
        output_folder(Path(args.mesh).parent, "--mesh")
    model = _load_model(args)
    print(model.summary())
    path = render_contact_sheet(model, out, rows=args.rows, columns=args.columns,
                                image_size=args.image_size, seed=args.seed, renderer=args.renderer,
                                device=args.device)
    added = " (--out had no extension: PNG)" if path.suffix != Path(args.out).suffix else ""
    print(f"wrote {path}{added}")
    if args.mesh:
        for suffix in (".obj", ".ply"):
            mesh_path = model.export_mesh(Path(args.mesh).with_suffix(suffix))
            print(f"wrote {mesh_path}")
    return 0


def _cmd_model_export(args: argparse.Namespace) -> int:
    from mofa_bench.output_paths import output_folder

    out = output_folder(args.out, "--out")
    model = _load_model(args)
    print(model.summary())
    for path in (model.save_npz(out / f"{model.name}_model.npz"),
                 model.export_mesh(out / f"{model.name}_mean.obj"),
                 model.export_mesh(out / f"{model.name}_mean.ply")):
        print(f"wrote {path}")
    return 0


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    from mofa_bench.output_paths import output_folder
    from mofa_bench.reconstruct import build_decoder, load_trained_model, reconstruct

    output_folder(args.out, "--out")
    fit = None
    if args.method == "fit":
        import dataclasses

        from mofa_bench.config import load_config
        from mofa_bench.reconstruct_fit import build_landmark_fit
        from mofa_bench.environment import resolve_device

        if args.checkpoint is not None:
            raise InputError("--checkpoint: --method fit uses no trained model (it fits each photo from the zero "
                             "code); give --config for its face model, camera, renderer and loss")
        config = load_config(args.config)
        options = dict(config.method_options) if config.method == "fit" else {}
        if args.fit_solver is not None and args.fit_solver != options.get("solver", "adam"):
            options = {"solver": args.fit_solver}  # the config's steps/lr/damping were for its own solver
        if args.fit_steps is not None:
            options["steps"] = args.fit_steps
        config = dataclasses.replace(config, method="fit", method_options=options)
        device = resolve_device(args.device)
        decoder = build_decoder(config, device, args.renderer)
        model = build_landmark_fit(config, decoder)
        fit = model.fit
        steps = "Adam steps" if fit.solver == "adam" else "Levenberg-Marquardt iterations"
        region = ", photometric term in the face region" if fit.solver == "adam" else ""
        print(f"fit: {fit.steps} {steps} per photo from the zero code, {model.image_size} px crops, detected "
              f"landmarks (weight {fit.loss_weights.landmark:g}){region}, renderer {decoder.renderer.name}, "
              f"device {device}")
        from mofa_bench.reconstruct_bound import bound_lm_fit

        estimate = bound_lm_fit(model, device, args.timeout)
        if estimate:
            print(estimate)
    else:
        if args.checkpoint is None:
            raise InputError("--checkpoint: required (a trained run), unless --method fit fits each photo instead")
        if args.config is not None or args.fit_steps is not None or args.fit_solver is not None or \
                args.timeout is not None:
            raise InputError("--config, --fit-steps, --fit-solver and --timeout go with --method fit; a checkpoint "
                             "brings its own config")
        model = load_trained_model(args.checkpoint, args.device, renderer=args.renderer)
        print(f"checkpoint: {model.checkpoint} (step {model.step}, encoder {model.config.encoder.name}, "
              f"{model.image_size} px crops, renderer {model.decoder.renderer.name}, device {model.device})")
    print(f"face model: {model.decoder.model.summary()}")
    results = reconstruct(model, args.inputs, args.out, batch_size=args.batch_size, detector=args.detector,
                          allow_no_face=args.allow_no_face, mesh_formats=args.mesh_format, colors=args.colors,
                          posed=args.posed, recursive=args.recursive, grey="skip" if args.skip_grey else "convert")
    named = {str(Path(i)) for i in args.inputs}
    failed = [r for r in results if r.status == "failed" or (r.status == "skipped" and str(r.source) in named)]
    for r in results:
        if r.status != "ok":
            print(f"{r.status}: {r.message}", file=sys.stderr)
    from mofa_bench.photos.reader import NOT_IMAGE

    ok = sum(r.status == "ok" for r in results)
    others = sum(r.status == "skipped" and r.message.endswith(NOT_IMAGE) for r in results)
    print(f"reconstructed {ok} of {len(results) - others} photos into {args.out} "
          f"(index: {Path(args.out) / 'reconstructions.csv'})" + (f"; {others} files that are no image skipped"
                                                                   if others else ""))
    if fit is not None and fit.last_fit is not None:
        stopped = (f"; stopped by --timeout after {len(fit.last_fit.losses) - 1} of {fit.steps} iterations"
                   if fit.last_fit.stopped else "")
        print(f"fit: {fit.last_fit_seconds_per_image:.3f} s per photo (last batch), loss "
              f"{fit.last_fit.losses[0]:.4f} → {fit.last_fit.losses[-1]:.4f}{stopped}")
    return 1 if failed else 0


def _add_reconstruct_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reconstruct", help="photos → 257-d code, coloured mesh (.obj/.ply), overlay PNG",
        description="Reconstruct faces with a trained encoder (--checkpoint), or by fitting a code to each "
                    "photo (--method fit: no trained model needed). Each photo is cropped around its face "
                    "(MediaPipe detection framed from its landmarks where installed; see --detector) and "
                    "written as <stem>.obj/.ply, <stem>_overlay.png (crop | reconstruction | overlay), "
                    "<stem>_code.npz/.json, plus reconstructions.csv listing every file. A photo that "
                    "fails, a file that is no image and an input that is no file (missing, a FIFO, a link loop) "
                    "are reported and the others still run; the exit status is 1 if a photo failed or an input "
                    "named on the command line was skipped. Outputs never overwrite an "
                    "input photo or each other (renamed outputs are listed in reconstructions.csv).",
    )
    p.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    p.add_argument("--method", default="encoder", choices=["encoder", "fit"],
                   help="encoder: the trained encoder of --checkpoint; fit: optimise each photo's code from zero "
                        "(Adam or Levenberg-Marquardt on the MoFA loss through the renderer) (default: %(default)s)")
    p.add_argument("--checkpoint", default=None,
                   help="a checkpoint .pt from mofa-bench train, or its run directory (uses best.pt, else last.pt); "
                        "required for --method encoder")
    p.add_argument("--config", default=None,
                   help="--method fit: YAML config (a path, or a packaged name: quick, converge, ...) naming the "
                        "face model, camera, renderer, loss and method_options (default: built-in defaults)")
    p.add_argument("--fit-steps", type=positive_int, default=None,
                   help="--method fit: Adam steps or LM iterations per photo (default: method_options.steps, else "
                        "100 Adam steps or 20 LM iterations)")
    p.add_argument("--fit-solver", default=None, choices=["adam", "lm"],
                   help="--method fit: adam, or lm (Levenberg-Marquardt: Gauss-Newton steps on the same loss, "
                        "few and costly) (default: method_options.solver, else adam)")
    p.add_argument("--timeout", type=positive_seconds, default=None, metavar="SECONDS",
                   help="--method fit --fit-solver lm: stop each batch's fit after this many seconds, keeping its "
                        "best codes so far (LM through a rasterizer on the CPU is refused without it when its "
                        "estimate passes 10 min per photo)")
    p.add_argument("--out", default="out/reconstruct", help="output folder (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i] (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="photos per batch (default: %(default)s)")
    p.add_argument("--detector", default="auto", choices=["auto", "mediapipe", "dlib", "haar", "none"],
                   help="face crops: mediapipe/dlib = detected and framed from landmarks like `prepare`; "
                        "haar = the paper's box crops; auto = mediapipe if installed, else haar if OpenCV is, "
                        "else the centre square; none = centre square (default: %(default)s)")
    p.add_argument("--allow-no-face", action="store_true",
                   help="use the centre square for photos where no face is detected instead of failing them")
    p.add_argument("--mesh-format", nargs="+", default=["obj", "ply"], choices=["obj", "ply"],
                   help="mesh files to write (default: obj ply)")
    p.add_argument("--colors", default="reflectance", choices=["reflectance", "shaded"],
                   help="vertex colours: albedo, or lit by the estimated illumination (default: %(default)s)")
    p.add_argument("--posed", action="store_true",
                   help="write camera-space vertices (head pose applied) instead of model space")
    p.add_argument("--renderer", default=None,
                   help="draw overlays (and with --method fit, fit) with this renderer (default: the run's or "
                        "the config's)")
    p.add_argument("--recursive", action="store_true", help="search folders recursively")
    p.add_argument("--skip-grey", action="store_true",
                   help="skip greyscale photos (by default they are converted to RGB, noted in reconstructions.csv)")
    p.set_defaults(func=_cmd_reconstruct)


def _cmd_train(args: argparse.Namespace) -> int:
    from mofa_bench.scoring.validation import validate
    from mofa_bench.config import load_config
    from mofa_bench.output_paths import output_folder
    from mofa_bench.training.trainer import Trainer

    if args.allow_config_change and not args.resume:
        raise InputError("--allow-config-change goes with --resume")
    config = load_config(args.config, args.set, renderer__name=args.renderer, device=args.device,
                         name=args.name, out_dir=args.out, optim__iterations=args.iterations,
                         encoder__name=args.encoder)
    builder = None
    if config.method != "mofa":
        from mofa_bench.methods import method_builder

        builder = method_builder(config.method)
    output_folder(Path(config.out_dir) / config.name, "--out/--name (run directory)")
    trainer = Trainer(config)
    if not trainer.dist.is_main:  # under torchrun rank 0 reports for every rank
        trainer.fit(resume=args.resume, allow_config_change=args.allow_config_change)
        return 0
    print(f"run directory: {trainer.run_dir}")
    print(f"face model: {trainer.face_model.summary()}")
    print(f"renderer: {config.renderer.name} · encoder: {config.encoder.name} · device: {trainer.device}")
    result = trainer.fit(resume=args.resume, allow_config_change=args.allow_config_change)
    if result.new_steps == 0:
        print(f"the run has already finished {result.steps} of {config.optim.iterations} steps; nothing to do "
              f"(metrics: {result.run_dir / 'metrics.csv'}; raise --iterations to continue it)")
        return 0
    print(f"finished {result.steps} steps; final loss {result.final_loss:.4f}")
    headline = ("photometric", "geometric_mm", "geometric_model_mm", "landmark_px")
    for name in headline:
        if name in result.validation:
            print(f"  validation {name}: {result.validation[name]:.4f}")
    if result.validation:
        print(f"  every validation metric: {result.run_dir / 'validation.csv'}")
    if result.skipped:
        print(f"  {result.skipped} batches skipped (non-finite), see {result.run_dir / 'skipped.csv'}")
    return 0


def _add_train_parser(sub: argparse._SubParsersAction) -> None:
    from mofa_bench.configs import config_names

    p = sub.add_parser(
        "train", help="train an encoder against the analytic decoder and a renderer",
        description="Train a MoFA model-based face autoencoder. The run directory gets the resolved config, "
                    "versions, checkpoints (last/best), metrics CSVs (validation: photometric, geometric and "
                    "landmark errors and per-code-part diagnostics), sample grids and loss curves.",
    )
    p.add_argument("--config", default=None,
                   help="YAML config: a path, or the name of a packaged config (%s) (default: built-in defaults)"
                        % ", ".join(config_names("train")))
    p.add_argument("--renderer", default=None, help="override renderer.name (per_vertex, pytorch3d, nvdiffrast)")
    p.add_argument("--encoder", default=None, help="override encoder.name (alexnet, vgg16, resnet18, resnet50)")
    p.add_argument("--device", default=None, help="override device (auto, cpu, cuda)")
    p.add_argument("--iterations", type=int, default=None, help="override optim.iterations")
    p.add_argument("--name", default=None, help="run name (run directory = <out>/<name>)")
    p.add_argument("--out", default=None, help="parent folder of run directories (default: runs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set optim.lr=0.05 (repeatable)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run from its checkpoints/last.pt (its config must match the requested one)")
    p.add_argument("--allow-config-change", action="store_true",
                   help="with --resume: continue even where the config differs from the checkpoint's "
                        "(each change is recorded in the run's config_changes.csv)")
    p.set_defaults(func=_cmd_train)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(
        prog="mofa-bench",
        description="Model-based face autoencoders (MoFA) trained and compared across differentiable renderers.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (may be given anywhere on the command line)")
    sub = parser.add_subparsers(dest="command", metavar="<command>")

    p = sub.add_parser("info", help="versions, devices and which renderers work here (and why not)")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("contact-sheet", help="render the face model under random codes into a PNG grid")
    _add_model_args(p)
    p.add_argument("--out", default="out/contact_sheet.png", help="output PNG (default: %(default)s)")
    p.add_argument("--mesh", default=None, help="also export the mean face as <MESH>.obj and <MESH>.ply")
    p.add_argument("--rows", type=positive_int, default=4)
    p.add_argument("--columns", type=positive_int, default=6)
    p.add_argument("--image-size", type=positive_int, default=240, help="pixels per face (default: %(default)s)")
    p.add_argument("--renderer", default="per_vertex", help="renderer used to draw (default: %(default)s)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_contact_sheet)

    p = sub.add_parser("model", help="face-model utilities")
    model_sub = p.add_subparsers(dest="model_command", metavar="<action>")
    pe = model_sub.add_parser("export", help="write the model as .npz and its mean face as .obj/.ply")
    _add_model_args(pe)
    pe.add_argument("--out", default="out/model", help="output folder (default: %(default)s)")
    pe.set_defaults(func=_cmd_model_export)

    _add_reconstruct_parser(sub)

    _add_train_parser(sub)

    from mofa_bench.photos.command import add_parser as register_prepare

    register_prepare(sub)
    for entry in registered_commands():
        _register_plugin(sub, entry)
    return parser


#: The entry-point group of the command registry: ``name = "module:register"``, where
#: ``register(subparsers)`` adds the command's parser (with ``func`` set) to ``subparsers``.
COMMAND_GROUP = "mofa_bench.commands"


def registered_commands() -> list:
    """The registry's entry points (``importlib.metadata.EntryPoint``), sorted by name."""
    from importlib.metadata import entry_points

    return sorted(entry_points(group=COMMAND_GROUP), key=lambda entry: entry.name)


def _register_plugin(sub: argparse._SubParsersAction, entry) -> None:
    """Add one registered command; one that cannot be loaded becomes a command that says why."""
    try:
        register = entry.load()
    except Exception as err:  # noqa: BLE001 - a broken plug-in must not take the other commands down
        reason = f"the {entry.name!r} command could not be loaded from {entry.value}: {type(err).__name__}: {err}"

        def unavailable(args: argparse.Namespace, reason: str = reason) -> int:
            raise MofaBenchError(reason)

        sub.add_parser(entry.name, help=f"(unavailable: {err})").set_defaults(func=unavailable)
        return
    register(sub)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mofa-bench`` console script.

    ``--debug`` anywhere among the arguments lets an error end in its traceback; without
    it, every error is one line on stderr and exit status 1 (130 when interrupted).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    prefix = f"mofa-bench {args.command}: error:"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (MofaBenchError, InputError, RendererError) as err:
        if debug:
            raise
        print(f"{prefix} {_one_line(err)}", file=sys.stderr)
        return 1
    except OSError as err:  # a file the user named: missing, not writable, disk full
        if debug:
            raise
        where = f"{err.filename}: " if err.filename else ""
        print(f"{prefix} {where}{err.strerror or _one_line(err)}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - a bug or an unforeseen input: still one line
        if debug:
            raise
        print(f"{prefix} {type(err).__name__}: {_one_line(err)} (run again with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
