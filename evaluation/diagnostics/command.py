"""``mofa-bench diagnose NAME``: the learning protocol's analyses.

:func:`register_cli` adds ``diagnose`` to ``mofa-bench``'s parser, with one subcommand per
module of :data:`ANALYSES`; each module's docstring is its ``--help`` and its
``add_arguments`` / ``run`` its options and action. ``mofa-bench diagnose`` alone lists
them.
"""

from __future__ import annotations

import argparse
import importlib

__all__ = ["ANALYSES", "register_cli"]

#: Subcommand → (module under ``evaluation.diagnostics``, one-line summary for the list).
ANALYSES: dict[str, tuple[str, str]] = {
    "mode-signal": ("mode_signal", "per identity/expression mode: how well a run learnt it, and whether the "
                                   "loss's gradient points at the truth (RUN [--reference RUN] → CSV)"),
    "generalization-gap": ("generalization_gap", "a run's errors on its own training faces against unseen ones, "
                                                 "each beside the mean face's (RUN → CSV)"),
    "pose-landscape": ("pose_landscape", "the photometric loss around the true pose of test faces, and how its "
                                         "gradient points each pose parameter (CONFIG → CSV, PNG)"),
    "loss-optimum": ("loss_optimum", "per-image optimum of the training loss over the face codes, with the true "
                                     "pose and light (CONFIG → CSV)"),
    "partial-truth": ("partial_truth", "the test errors of codes true on some parts and the mean face elsewhere "
                                       "(CONFIG → CSV)"),
    "signal": ("signal", "per renderer ± landmarks: how well each image's loss gradient at the mean face points "
                         "each code part at its truth (CONFIG → CSV, PNG)"),
    "fit-curves": ("fit_curves", "per renderer ± landmarks: test error of the per-image Adam fit against steps "
                                 "and seconds (CONFIG → CSV, PNG)"),
}

_DESCRIPTION = """\
The learning protocol's analyses of trained runs (RUN: a run directory or checkpoint) and
of train configs on their synthetic test faces (CONFIG: a packaged config's name, e.g.
converge, or a YAML file). Each prints its tables and writes them as CSV with --out
(pose-landscape, signal and fit-curves also a PNG with --figure); see
`mofa-bench diagnose NAME --help`. Readings of their outputs: reports/fig10/README.md,
reports/renderers/README.md (signal, fit-curves)."""


def _help_text(doc: str | None) -> str:
    """A module docstring as ``--help`` text: reST's double backticks as single ones."""
    return (doc or "").strip().replace("``", "`")


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``diagnose`` and its analyses (see the module docstring)."""
    diagnose = sub.add_parser("diagnose", help="the learning protocol's analyses of runs and configs (CSV, figures)",
                              description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    analyses = diagnose.add_subparsers(dest="diagnose_command", metavar="NAME")

    def show_list(args: argparse.Namespace) -> int:
        diagnose.print_help()
        return 2

    diagnose.set_defaults(func=show_list)
    for name, (module_name, summary) in ANALYSES.items():
        module = importlib.import_module(f"evaluation.diagnostics.{module_name}")
        p = analyses.add_parser(name, help=summary, description=_help_text(module.__doc__),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
