"""``mofa-bench prepare``: the command line of :mod:`mofa_bench.photos.prepare`."""

from __future__ import annotations

import argparse

from mofa_bench.arguments import positive_number
from mofa_bench.photos.detection import DEFAULT_DETECTOR, available_detectors, detector_names

__all__ = ["add_parser", "run", "summary"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``prepare`` (sources ``folder``, ``csv``, ``celeba``, ``lfw``, ``300vw``) on the CLI's subparsers."""
    p = subparsers.add_parser(
        "prepare", help="photos → framed face crops, 68 landmarks with confidences, Parquet manifest",
        description="Prepare real photos for training and evaluation: detect the face, measure its landmarks, "
                    "crop it framed like the face model's renders, and list every photo (face found or "
                    "skipped, with the reason) in <out>/manifest.parquet. Reruns resume.")
    actions = p.add_subparsers(dest="prepare_command", metavar="<source>")
    f = actions.add_parser("folder", help="every photo in a folder (and its subfolders)")
    f.add_argument("path", help="folder of photos (any format Pillow reads; every file gets a manifest row)")
    f.add_argument("--no-recursive", action="store_true", help="only the folder itself, not its subfolders")
    c = actions.add_parser("csv", help="the photos a CSV lists (column path; optional x, y, w, h face box)")
    c.add_argument("path", help="CSV file; relative paths in it are taken from its folder")
    a = actions.add_parser("celeba", help="CelebA: img_celeba/ with its box list (or --aligned)")
    a.add_argument("path", help="the CelebA folder (annotation lists anywhere below it)")
    a.add_argument("--aligned", action="store_true", help="img_align_celeba/ with its 5-point landmark list")
    w = actions.add_parser("lfw", help="LFW: <Name>/<Name>_NNNN.jpg, the centred face of each")
    w.add_argument("path", help="the LFW folder")
    v = actions.add_parser("300vw", help="300-VW: annotated video frames (<id>/vid.avi + <id>/annot/*.pts)")
    v.add_argument("path", help="the 300-VW folder (one folder per video)")
    v.add_argument("--every", type=int, default=1, help="keep every N-th annotated frame (default: %(default)s)")
    for q in (f, c, a, w, v):
        _add_common(q)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    return p




def _add_common(f: argparse.ArgumentParser) -> None:
    f.add_argument("--out", required=True, help="output folder (crops/, manifest.parquet, prepare.json)")
    f.add_argument("--size", type=int, default=240, help="crop side in px (default: %(default)s)")
    f.add_argument("--detector", default=DEFAULT_DETECTOR, choices=detector_names(),
                   help="face detector (default: %(default)s)")
    f.add_argument("--landmarker", default="mediapipe", choices=["mediapipe", "dlib", "none"],
                   help="68-point landmarks (and the framing); none: frame from the detection alone "
                        "(default: %(default)s)")
    f.add_argument("--no-landmarks", action="store_true", help="the same as --landmarker none")
    f.add_argument("--min-face", type=float, default=32.0,
                   help="skip faces whose box side is below this many px (default: %(default)s)")
    f.add_argument("--max-outside", type=float, default=0.25,
                   help="skip faces with more than this fraction of their box outside the photo (default: %(default)s)")
    f.add_argument("--skip-grey", action="store_true",
                   help="skip greyscale photos (by default they are converted to RGB, with a note in the manifest)")
    f.add_argument("--allow-grey", action="store_true", help=argparse.SUPPRESS)  # the default now
    f.add_argument("--max-megapixels", type=positive_number(), default=50.0,
                   help="skip photos larger than this (default: %(default)s)")
    f.add_argument("--workers", type=int, default=1, help="processes (default: %(default)s)")
    f.add_argument("--limit", type=int, default=None, help="process at most this many new photos")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    f.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``mofa-bench prepare <source>``; prints a summary, returns the exit status (0)."""
    from mofa_bench.output_paths import output_folder
    from mofa_bench.photos.prepare import PrepareSettings, prepare_csv, prepare_folder

    output_folder(args.out, "--out")
    state = available_detectors()[args.detector]
    if not state.available:
        from mofa_bench.photos.detection import DetectorUnavailableError

        raise DetectorUnavailableError(f"face detector {args.detector!r} is unavailable: {state.reason}. "
                                       f"Fix: {state.fix}")
    landmarker = None if args.no_landmarks or args.landmarker == "none" else args.landmarker
    settings = PrepareSettings(size=args.size, detector=args.detector, landmarker=landmarker, min_face=args.min_face,
                               max_outside=args.max_outside, allow_grey=not args.skip_grey,
                               max_pixels=int(args.max_megapixels * 1e6))
    options = dict(workers=args.workers, progress=not args.no_progress, limit=args.limit)
    if args.prepare_command == "csv":
        frame = prepare_csv(args.path, args.out, settings, **options)
    elif args.prepare_command == "folder":
        frame = prepare_folder(args.path, args.out, settings, recursive=not args.no_recursive, **options)
    else:
        from pathlib import Path

        from mofa_bench.photos import adapters
        from mofa_bench.photos.prepare import prepare_photos

        if args.prepare_command == "celeba":
            items = adapters.celeba_items(args.path, aligned=args.aligned)
        elif args.prepare_command == "lfw":
            items = adapters.lfw_items(args.path)
        else:
            items = adapters.vw300_items(args.path, Path(args.out) / "frames", every=args.every)
        frame = prepare_photos(items, args.out, settings, **options)
    print(summary(frame, args.out))
    return 0


def summary(frame, out: str) -> str:
    """The lines ``prepare`` prints: faces found of files listed, skips by reason, notes by kind.

    Args:
        frame: the manifest (pandas DataFrame).
        out: the output folder, as given.
    """
    ok = frame[frame["status"] == "ok"]
    lines = [f"{len(ok)} faces from {len(frame)} files in {out} (manifest: {out}/manifest.parquet)"]
    skipped = frame[frame["status"] != "ok"]
    if len(skipped):
        lines.append(f"{len(skipped)} skipped:")
        for reason, count in skipped["reason"].str.replace(r" \(.*", "", regex=True).value_counts().items():
            lines.append(f"  {count:>6}  {reason}")
    notes = frame.loc[frame["note"].astype(bool), "note"] if "note" in frame else frame.iloc[:0, 0]
    if len(notes):
        lines.append(f"{len(notes)} with a note:")
        for note, count in notes.str.replace(r" \(.*", "", regex=True).value_counts().items():
            lines.append(f"  {count:>6}  {note}")
    return "\n".join(lines)
