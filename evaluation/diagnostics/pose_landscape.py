"""Where the photometric loss points the pose: its value around the true pose of test faces.

Input: a train config (CONFIG: a packaged config's name such as ``converge``, or a YAML
file) whose model, camera and synthetic data define the test faces. Scores the mean face
(α = δ = β = 0) at the true pose of each test face, offset along one pose axis at a time
(yaw and pitch in rad, x translation in mm), under three lights: the mean light (γ = 0,
the encoder's first prediction), the true ambient band only, and the true light. The
photometric term is taken with both normalisations (``paper``: ÷ all vertices;
``weights``: ÷ the visible ones). A curve whose minimum is at offset 0 gives the pose a
signal from the mean face; one that falls away from 0 has a degenerate minimum there.

It also measures how well the per-image gradient of the photometric term, taken at the
encoder's first prediction (the mean face at pose 0) under each light, points each pose
parameter towards its truth: the correlation over the faces between ``−∂E/∂p`` and
``p_true − p``. An encoder learns a parameter from that gradient alone; 1 is what a
supervised regression gets, 0 no signal (NaN: the gradient is the same on every face).
Both normalisations give the same correlation (per image they differ by a positive
factor).

Both are taken through the config's renderer (``renderer.name`` and ``renderer.options``:
the loss a training run through it minimises); the test faces are drawn as the suite draws
them (``data.synthetic_renderer``). --set changes the config, for example the image size
and mesh level, or the renderer.

Outputs, all optional, both tables printed: --out, a CSV with one row per light ×
normalisation × axis × offset (the mean photometric loss over the faces); beside it
``<out stem>_gradient.csv``, one row per renderer × image size × mesh level × light × pose
parameter (the correlation; --append adds to it instead of replacing it); --figure, a PNG
of the curves, one panel per axis. Runs on the CPU.

    mofa-bench diagnose pose-landscape converge --size 64 \\
        --out reports/fig10/pose_landscape.csv --figure reports/fig10/pose_landscape.png
    mofa-bench diagnose pose-landscape converge --gradient-only \\
        --set renderer.name=pytorch3d --set 'renderer.options={blur_radius: 0.5, faces_per_pixel: 16}' \\
        --out reports/fig10/pose_landscape.csv --append
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from evaluation.diagnostics.signal import gradient_signal, loss_gradient
from mofa_bench.code_vector import CODE_SLICES
from mofa_bench.decoder import MoFADecoder
from mofa_bench.losses import photometric_loss
from mofa_bench.scoring.protocol import synthetic_test_batch
from mofa_checks import InputError

#: Offsets per axis: ``(code entry, unit, offsets)``.
AXES: dict[str, tuple[int, str, tuple[float, ...]]] = {
    "yaw": (CODE_SLICES["rotation"].start + 1, "rad", (-1.5, -1.0, -0.6, -0.3, -0.15, 0.0, 0.15, 0.3, 0.6, 1.0, 1.5)),
    "pitch": (CODE_SLICES["rotation"].start, "rad", (-1.5, -1.0, -0.6, -0.3, -0.15, 0.0, 0.15, 0.3, 0.6, 1.0, 1.5)),
    "x": (CODE_SLICES["translation"].start, "mm", (-16.0, -8.0, -4.0, -2.0, 0.0, 2.0, 4.0, 8.0, 16.0)),
}
#: Lights: how many leading γ entries are true (0: the mean light; 3: the ambient band; 27: all).
LIGHTS: dict[str, int] = {"mean light": 0, "true ambient": 3, "true light": 27}
NORMALIZATIONS = ("paper", "weights")


def mean_face_at_true_pose(true: torch.Tensor, light_entries: int) -> torch.Tensor:
    """``(B, 257)`` codes: the true pose, the first ``light_entries`` γ entries true, zero elsewhere."""
    code = torch.zeros_like(true)
    for part in ("rotation", "translation"):
        code[:, CODE_SLICES[part]] = true[:, CODE_SLICES[part]]
    gamma = CODE_SLICES["gamma"].start
    code[:, gamma:gamma + light_entries] = true[:, gamma:gamma + light_entries]
    return code


def landscape(decoder: MoFADecoder, batch) -> list[dict]:
    """The rows of the CSV (module docstring) for a batch of faces with true codes."""
    rows = []
    with torch.no_grad():
        for light, entries in LIGHTS.items():
            base = mean_face_at_true_pose(batch.codes, entries)
            for axis, (entry, unit, offsets) in AXES.items():
                for offset in offsets:
                    code = base.clone()
                    code[:, entry] += offset
                    samples = decoder.photometric_samples(decoder.form(code), batch.images)
                    for norm in NORMALIZATIONS:
                        rows.append({"light": light, "normalization": norm, "axis": axis, "unit": unit,
                                     "offset": offset, "photometric": float(photometric_loss(samples, norm))})
    return rows


#: Pose parameters of the gradient check: name → code entry.
POSE_PARAMETERS: dict[str, int] = {
    **{name: CODE_SLICES["rotation"].start + i for i, name in enumerate(("pitch", "yaw", "roll"))},
    **{name: CODE_SLICES["translation"].start + i for i, name in enumerate(("x", "y", "z"))},
}


def gradient_alignment(decoder: MoFADecoder, batch) -> list[dict]:
    """Rows ``{light, parameter, correlation}``: per-image ``−∂E_photo/∂p`` against ``p_true``, at pose 0.

    The gradient and the correlation are :mod:`.signal`'s (:func:`~.signal.loss_gradient`,
    :func:`~.signal.gradient_signal`), here of the photometric term alone under each light.
    The correlation is NaN for a parameter whose gradient is the same on every face.
    """
    def photometric(code: torch.Tensor) -> torch.Tensor:
        return photometric_loss(decoder.photometric_samples(decoder.form(code), batch.images), "paper")

    basis = torch.zeros(len(POSE_PARAMETERS), batch.codes.shape[1], dtype=torch.float64)
    basis[torch.arange(len(POSE_PARAMETERS)), list(POSE_PARAMETERS.values())] = 1.0
    rows = []
    for light, entries in LIGHTS.items():
        code = mean_face_at_true_pose(batch.codes, entries)
        code[:, CODE_SLICES["rotation"]] = 0.0
        code[:, CODE_SLICES["translation"]] = 0.0
        signal = gradient_signal(loss_gradient(photometric, code), batch.codes - code, basis)
        rows += [{"light": light, "parameter": name, "correlation": float(value)}
                 for name, value in zip(POSE_PARAMETERS, signal)]
    return rows


def plot(frame, path: Path) -> None:
    """One panel per axis, a line per light × normalisation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(AXES), figsize=(4.2 * len(AXES), 3.6))
    styles = {"paper": "--", "weights": "-"}
    colors = dict(zip(LIGHTS, ("tab:gray", "tab:orange", "tab:blue")))
    for ax, (axis, (_, unit, _)) in zip(axes, AXES.items()):
        for (light, norm), part in frame[frame["axis"] == axis].groupby(["light", "normalization"], sort=False):
            ax.plot(part["offset"], part["photometric"], styles[norm], color=colors[light], marker=".",
                    label=f"{light}, ÷ {'all' if norm == 'paper' else 'visible'}")
        ax.axvline(0.0, color="k", lw=0.5)
        ax.set_xlabel(f"{axis} offset from the truth ({unit})")
        ax.set_ylabel("photometric loss (mean face)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(LIGHTS), fontsize=8, frameon=False)
    fig.suptitle("Photometric loss of the mean face around the true pose")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mofa-bench diagnose pose-landscape``."""
    parser.add_argument("config", metavar="CONFIG",
                        help="train config: a packaged config's name (e.g. converge) or a YAML file")
    parser.add_argument("--size", type=int, default=64, help="test faces (default: %(default)s)")
    parser.add_argument("--out", default=None, metavar="CSV",
                        help="landscape CSV to write; the gradient rows go to <stem>_gradient.csv beside it")
    parser.add_argument("--figure", default=None, metavar="PNG", help="PNG of the curves to write")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="change the config, e.g. --set camera.image_size=240 (repeatable)")
    parser.add_argument("--gradient-only", action="store_true",
                        help="measure the gradient's alignment alone (no landscape CSV or figure)")
    parser.add_argument("--append", action="store_true",
                        help="add the gradient rows to an existing <stem>_gradient.csv (with --out)")


def run(args: argparse.Namespace) -> int:
    """``mofa-bench diagnose pose-landscape``: print (and write) the landscape and the gradient alignment."""
    import pandas as pd

    from mofa_bench.output_paths import output_folder

    if args.append and not args.out:
        raise InputError("--append: adds to the <stem>_gradient.csv of --out; give --out")
    if args.figure and args.gradient_only:
        raise InputError("--figure: --gradient-only draws no landscape")
    out = Path(args.out) if args.out else None
    if out:
        output_folder(out.parent, "--out")
    if args.figure:
        output_folder(Path(args.figure).parent, "--figure")
    config, test_decoder, batch = synthetic_test_batch(args.config, args.size, args.overrides)
    decoder = test_decoder.with_renderer(config.renderer.name, **config.renderer.options)
    setting = {"renderer": _renderer_label(config), "image_size": config.camera.image_size,
               "subdivisions": config.model.subdivisions, "faces": len(batch.images)}
    alignment = pd.DataFrame([{**setting, **row} for row in gradient_alignment(decoder, batch)])
    written = []
    if out:
        gradient_path = out.with_name(out.stem + "_gradient.csv")
        if args.append and gradient_path.exists():
            alignment = pd.concat([pd.read_csv(gradient_path), alignment], ignore_index=True)
        alignment.to_csv(gradient_path, index=False)
        written.append(gradient_path)
    described = (f"{len(batch.images)} test faces of {args.config}, {setting['renderer']}, "
                 f"{setting['image_size']} px, level {setting['subdivisions']}")
    if not args.gradient_only:
        frame = pd.DataFrame(landscape(decoder, batch))
        if out:
            frame.to_csv(out, index=False)
            written.append(out)
        if args.figure:
            plot(frame, Path(args.figure))
            written.append(Path(args.figure))
        table = frame.pivot_table(index=["axis", "offset"], columns=["light", "normalization"], values="photometric",
                                  sort=False).sort_index(level="offset", sort_remaining=False).sort_index(
                                      level="axis", key=lambda axis: axis.map(list(AXES).index),
                                      sort_remaining=False)
        print(f"{described}: photometric loss of the mean face at the true pose + offset")
        print(table.round(4).to_string())
    print(f"\n{described}: correlation of -dE_photo/dp with the true p, at the mean face and pose 0")
    latest = alignment.tail(len(LIGHTS) * len(POSE_PARAMETERS))
    print(latest.pivot_table(index="light", columns="parameter", values="correlation", sort=False, dropna=False)
          [list(POSE_PARAMETERS)].round(2).to_string())
    for path in written:
        print(f"wrote {path}")
    return 0


def _renderer_label(config) -> str:
    """``per_vertex``, ``pytorch3d`` or ``pytorch3d (blur_radius=0.5, faces_per_pixel=16)``."""
    options = ", ".join(f"{key}={value}" for key, value in sorted(config.renderer.options.items()))
    return f"{config.renderer.name} ({options})" if options else config.renderer.name

